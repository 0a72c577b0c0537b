//! The streams that write into the Apache error log: `sys.stdout`,
//! `sys.stderr` and `wsgi.errors`. As under mod_wsgi, each is an
//! `io.TextIOWrapper` (utf-8, `errors='replace'`, line-buffered, write
//! through) over a binary [`LogBuffer`], so code that needs the bytes layer
//! (`sys.stdout.buffer`, as Mercurial's hgweb does at import) finds it.
//!
//! The streams are per interpreter, not per request: each buffer turns
//! what it is given into lines, kept per thread so lines from concurrent
//! requests do not mix, and logs every line against the request the
//! writing thread is serving (the server log outside one). mod_wsgi makes a new `wsgi.errors`
//! per request; one shared object routed by thread gives the same lines
//! without building a TextIOWrapper for every request. A partial line is
//! held back at most 8 KiB (Apache's limit for one log line): longer text
//! without a newline is logged in pieces, so a thread never holds more.

use std::cell::RefCell;
use std::sync::Arc;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::gateway::{Exchange, LogLevel};

/// Which stream a line was written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// `sys.stdout`.
    Stdout,
    /// `sys.stderr`.
    Stderr,
    /// `wsgi.errors`.
    Errors,
}

impl StreamKind {
    /// Its slot among a thread's buffers.
    fn index(self) -> usize {
        self as usize
    }

    /// Its name, as `name` attributes show it.
    fn name(self) -> &'static str {
        match self {
            StreamKind::Stdout => "<stdout>",
            StreamKind::Stderr => "<stderr>",
            StreamKind::Errors => "<wsgi.errors>",
        }
    }
}

thread_local! {
    /// The request this thread is serving: where its output lines go.
    static CURRENT: RefCell<Option<Arc<Exchange>>> = const { RefCell::new(None) };
    /// The application group of the request this thread serves, for
    /// `mod_wsgi.application_group` (all groups share one interpreter).
    static CURRENT_GROUP: RefCell<String> = const { RefCell::new(String::new()) };
    /// Partial lines not yet logged, per stream kind.
    static PENDING: RefCell<[Vec<u8>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// Marks `exchange` as the request this thread serves (None when done).
pub fn set_current_request(exchange: Option<Arc<Exchange>>) {
    if exchange.is_none() {
        CURRENT_GROUP.with(|g| g.borrow_mut().clear());
    }
    CURRENT.with(|c| *c.borrow_mut() = exchange);
}

/// The request this thread serves, if any.
pub fn current_request() -> Option<Arc<Exchange>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Records the application group of the request this thread serves.
pub fn set_current_application_group(group: &str) {
    CURRENT_GROUP.with(|g| {
        let mut g = g.borrow_mut();
        g.clear();
        g.push_str(group);
    });
}

/// The application group of the request this thread serves ("" outside one).
pub fn current_application_group() -> String {
    CURRENT_GROUP.with(|g| g.borrow().clone())
}

/// Logs one line of application output, decoded leniently (the text layer
/// already encoded it as utf-8; raw bytes written to `.buffer` may not be).
fn emit(py: Python<'_>, own: Option<&Arc<Exchange>>, line: &[u8]) {
    let line = String::from_utf8_lossy(line);
    let current = own.cloned().or_else(current_request);
    match current {
        Some(ex) => ex.log(py, LogLevel::Error, &line),
        None => log::error!("{line}"),
    }
}

/// Logs whatever partial lines this thread still holds (end of a request).
pub fn flush_thread_streams(py: Python<'_>, exchange: Option<&Arc<Exchange>>) {
    let pending: Vec<Vec<u8>> = PENDING.with(|p| {
        p.borrow_mut()
            .iter_mut()
            .filter(|s| !s.is_empty())
            .map(std::mem::take)
            .collect()
    });
    for line in pending {
        emit(py, exchange, &line);
    }
}

/// The binary layer under the log streams (mod_wsgi calls its type
/// `mod_wsgi.Log`): takes bytes (or str, as mod_wsgi's does) and logs
/// complete lines.
#[pyclass(module = "mod_wsgi", name = "Log", frozen, immutable_type)]
pub struct LogBuffer {
    /// Which stream it is.
    kind: StreamKind,
}

impl LogBuffer {
    /// Adds bytes; complete lines are logged.
    fn push(&self, py: Python<'_>, data: &[u8]) {
        let lines = PENDING.with(|p| take_lines(&mut p.borrow_mut()[self.kind.index()], data));
        for line in lines {
            emit(py, None, &line);
        }
    }
}

/// The longest partial line a thread holds back. Apache cuts an error log
/// line at 8 KiB (`MAX_STRING_LEN`) anyway, so text that goes on longer
/// without a newline is logged in pieces of this size instead of being
/// kept: an application printing progress dots for hours (or a background
/// thread that never ends a line) would otherwise grow the buffer without
/// bound.
const MAX_PENDING: usize = 8192;

/// Appends `data` to the partial line `pending` and returns the lines it
/// completes, and the pieces of a partial line that grew past
/// [`MAX_PENDING`] (cut before a UTF-8 continuation byte, so a character is
/// not split between two log lines). Only the new bytes are searched for
/// newlines, so a line written a byte at a time costs no rescans.
fn take_lines(pending: &mut Vec<u8>, data: &[u8]) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut rest = data;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        let mut line = std::mem::take(pending);
        line.extend_from_slice(&rest[..end]);
        lines.push(line);
        rest = &rest[end + 1..];
    }
    pending.extend_from_slice(rest);
    while pending.len() > MAX_PENDING {
        let mut cut = MAX_PENDING;
        // At most three continuation bytes end a valid UTF-8 character.
        while cut > MAX_PENDING - 3 && pending[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
        let tail = pending.split_off(cut);
        lines.push(std::mem::replace(pending, tail));
    }
    lines
}

#[pymethods]
impl LogBuffer {
    /// Takes bytes, any object with the buffer protocol (memoryview,
    /// bytearray) or str; returns the number of bytes taken, as a raw
    /// stream's write() does (writers that loop until all is written rely
    /// on it).
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        if let Ok(bytes) = data.cast::<PyBytes>() {
            let bytes = bytes.as_bytes();
            self.push(py, bytes);
            return Ok(bytes.len());
        }
        if let Ok(text) = data.cast::<PyString>() {
            let text = text.to_cow()?;
            self.push(py, text.as_bytes());
            return Ok(text.len());
        }
        let buffer = PyBuffer::<u8>::get(data)?;
        let bytes = buffer.to_vec(py)?;
        self.push(py, &bytes);
        Ok(bytes.len())
    }

    /// `writelines(lines)`.
    fn writelines(&self, py: Python<'_>, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(py, &line?)?;
        }
        Ok(())
    }

    /// Logs what is left of a line.
    fn flush(&self, py: Python<'_>) {
        let pending = PENDING.with(|p| std::mem::take(&mut p.borrow_mut()[self.kind.index()]));
        if !pending.is_empty() {
            emit(py, None, &pending);
        }
    }

    /// Flushes only: the streams are shared by every request of the
    /// process, so one application closing its copy must not silence the
    /// others (mod_wsgi's never report closed either).
    fn close(&self, py: Python<'_>) {
        self.flush(py);
    }

    /// Never closed.
    #[getter]
    fn closed(&self) -> bool {
        false
    }

    /// Not a terminal.
    fn isatty(&self) -> bool {
        false
    }

    /// Not readable.
    fn readable(&self) -> bool {
        false
    }

    /// Writable.
    fn writable(&self) -> bool {
        true
    }

    /// Not seekable.
    fn seekable(&self) -> bool {
        false
    }

    /// No file descriptor: raises.
    fn fileno(&self) -> PyResult<i32> {
        Err(PyOSError::new_err(
            "Apache/mod_wsgi log object is not associated with a file descriptor.",
        ))
    }

    /// The stream's name.
    #[getter]
    fn name(&self) -> &'static str {
        self.kind.name()
    }
}

/// A text stream over a [`LogBuffer`], built as mod_wsgi builds its own.
fn text_stream(py: Python<'_>, kind: StreamKind) -> PyResult<Bound<'_, PyAny>> {
    let buffer = Bound::new(py, LogBuffer { kind })?;
    // TextIOWrapper(buffer, encoding, errors, newline, line_buffering,
    // write_through): write-through leaves the line assembly to the buffer,
    // per thread, so a stream shared between threads holds no text of its
    // own.
    py.import("io")?.getattr("TextIOWrapper")?.call1((
        buffer,
        "utf-8",
        "replace",
        py.None(),
        true,
        true,
    ))
}

/// The `wsgi.errors` stream of this process (the environ template holds it).
pub(crate) fn errors_stream(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    text_stream(py, StreamKind::Errors)
}

/// What `WSGIRestrictStdout On` / `WSGIRestrictStdin On` put in place of
/// the stream: any use of it raises, naming the directive's effect, as
/// mod_wsgi's restricted object does.
#[pyclass(module = "mod_wsgi", name = "Restricted", frozen, immutable_type)]
pub struct Restricted {
    /// The stream it replaces.
    name: &'static str,
}

#[pymethods]
impl Restricted {
    /// Any use raises.
    fn __getattr__(&self, _name: &str) -> PyResult<()> {
        Err(PyOSError::new_err(format!(
            "{} access restricted by mod_wsgi",
            self.name
        )))
    }
}

/// Replaces `sys.stdout`, `sys.stderr` (and `sys.stdin` when restricted)
/// in the interpreter that is being set up.
pub fn install_stdio(py: Python<'_>, restrict_stdout: bool, restrict_stdin: bool) -> PyResult<()> {
    let sys = py.import("sys")?;
    if restrict_stdout {
        sys.setattr("stdout", Restricted { name: "sys.stdout" })?;
    } else {
        sys.setattr("stdout", text_stream(py, StreamKind::Stdout)?)?;
    }
    sys.setattr("stderr", text_stream(py, StreamKind::Stderr)?)?;
    if restrict_stdin {
        sys.setattr("stdin", Restricted { name: "sys.stdin" })?;
    }
    Ok(())
}

/// Logs a line against the request this thread serves, or the server log.
pub fn log_for_current_request(py: Python<'_>, level: LogLevel, msg: &str) {
    match current_request() {
        Some(ex) => ex.log(py, level, msg),
        None => log::log!(level.to_log(), "{msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_lines_are_taken_and_the_rest_kept() {
        let mut pending = Vec::new();
        assert!(take_lines(&mut pending, b"partial").is_empty());
        let lines = take_lines(&mut pending, b" line\nsecond\n\nthird");
        assert_eq!(lines, [&b"partial line"[..], b"second", b""]);
        assert_eq!(pending, b"third");
    }

    /// Text without newlines, written forever, must not grow the thread's
    /// buffer without bound: it is logged in pieces instead.
    #[test]
    fn a_line_that_never_ends_is_logged_in_pieces() {
        let mut pending = Vec::new();
        let mut logged = 0;
        for _ in 0..10_000 {
            for piece in take_lines(&mut pending, &[b'.'; 100]) {
                assert_eq!(piece.len(), MAX_PENDING);
                logged += piece.len();
            }
            assert!(pending.len() <= MAX_PENDING, "{} bytes held", pending.len());
        }
        assert_eq!(logged + pending.len(), 1_000_000);
    }

    /// The same through the stream's buffer, as an application writes.
    #[test]
    fn a_thread_holds_at_most_one_pieces_worth() {
        crate::interp::initialize(&crate::interp::PythonSettings::default()).expect("Python");
        crate::interp::with_python(|py| {
            let buffer = LogBuffer {
                kind: StreamKind::Stdout,
            };
            for _ in 0..1000 {
                buffer.push(py, &[b'.'; 1000]);
                let held = PENDING.with(|p| p.borrow()[StreamKind::Stdout.index()].len());
                assert!(held <= MAX_PENDING, "{held} bytes held");
            }
            buffer.flush(py);
        });
    }

    #[test]
    fn a_piece_never_splits_a_character() {
        let mut pending = Vec::new();
        let text = "é".repeat(MAX_PENDING);
        let pieces = take_lines(&mut pending, text.as_bytes());
        assert!(!pieces.is_empty());
        for piece in pieces.iter().chain([&pending]) {
            assert!(std::str::from_utf8(piece).is_ok());
        }
    }
}
