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
//! without building a TextIOWrapper for every request.

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
        let lines: Vec<Vec<u8>> = PENDING.with(|p| {
            let mut p = p.borrow_mut();
            let buf = &mut p[self.kind.index()];
            buf.extend_from_slice(data);
            match buf.iter().rposition(|&b| b == b'\n') {
                None => Vec::new(),
                Some(end) => {
                    let rest = buf.split_off(end + 1);
                    let done = std::mem::replace(buf, rest);
                    done[..end]
                        .split(|&b| b == b'\n')
                        .map(<[u8]>::to_vec)
                        .collect()
                }
            }
        });
        for line in lines {
            emit(py, None, &line);
        }
    }
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
