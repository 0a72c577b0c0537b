//! Text streams that write into the Apache error log: `wsgi.errors` (one per
//! request) and the replacements for `sys.stdout` / `sys.stderr`. Output is
//! line-buffered per thread, so lines from concurrent requests do not mix,
//! and each line is attributed to the request running on that thread.

use std::cell::RefCell;
use std::sync::Arc;

use pyo3::exceptions::{PyOSError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::gateway::{Exchange, LogLevel};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    Stdout,
    Stderr,
    Errors,
}

impl StreamKind {
    fn index(self) -> usize {
        self as usize
    }
}

thread_local! {
    /// The request this thread is serving, for `sys.stdout`/`sys.stderr`.
    static CURRENT: RefCell<Option<Arc<Exchange>>> = const { RefCell::new(None) };
    /// The application group of the request this thread serves, for
    /// `mod_wsgi.application_group` (all groups share one interpreter).
    static CURRENT_GROUP: RefCell<String> = const { RefCell::new(String::new()) };
    /// Partial lines not yet logged, per stream kind.
    static PENDING: RefCell<[String; 3]> = const { RefCell::new([String::new(), String::new(), String::new()]) };
}

/// Marks `exchange` as the request this thread serves (None when done).
pub fn set_current_request(exchange: Option<Arc<Exchange>>) {
    if exchange.is_none() {
        CURRENT_GROUP.with(|g| g.borrow_mut().clear());
    }
    CURRENT.with(|c| *c.borrow_mut() = exchange);
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

fn emit(py: Python<'_>, own: Option<&Arc<Exchange>>, line: &str) {
    let current = own
        .cloned()
        .or_else(|| CURRENT.with(|c| c.borrow().clone()));
    match current {
        Some(ex) => ex.log(py, LogLevel::Error, line),
        None => log::error!("{line}"),
    }
}

/// Logs whatever partial lines this thread still holds (end of a request).
pub fn flush_thread_streams(py: Python<'_>, exchange: Option<&Arc<Exchange>>) {
    let pending: Vec<String> = PENDING.with(|p| {
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

#[pyclass(module = "mod_wsgi")]
pub struct LogStream {
    kind: StreamKind,
    /// Set for `wsgi.errors`: always log against that request.
    exchange: Option<Arc<Exchange>>,
    /// `WSGIRestrictStdout On`: writing raises, as in mod_wsgi.
    restricted: bool,
}

impl LogStream {
    pub fn for_request(exchange: Arc<Exchange>) -> Self {
        LogStream {
            kind: StreamKind::Errors,
            exchange: Some(exchange),
            restricted: false,
        }
    }

    pub fn global(kind: StreamKind, restricted: bool) -> Self {
        LogStream {
            kind,
            exchange: None,
            restricted,
        }
    }

    fn check(&self) -> PyResult<()> {
        if self.restricted {
            return Err(PyOSError::new_err(
                "sys.stdout access restricted by mod_wsgi",
            ));
        }
        Ok(())
    }

    fn push(&self, py: Python<'_>, text: &str) {
        let lines: Vec<String> = PENDING.with(|p| {
            let mut p = p.borrow_mut();
            let buf = &mut p[self.kind.index()];
            buf.push_str(text);
            match buf.rfind('\n') {
                None => Vec::new(),
                Some(end) => {
                    let rest = buf.split_off(end + 1);
                    let done = std::mem::replace(buf, rest);
                    done.lines().map(str::to_owned).collect()
                }
            }
        });
        for line in lines {
            emit(py, self.exchange.as_ref(), &line);
        }
    }
}

#[pymethods]
impl LogStream {
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        self.check()?;
        let text = data.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "write() argument must be str, not {}",
                data.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let text = text.to_cow()?;
        self.push(py, &text);
        Ok(text.chars().count())
    }

    fn writelines(&self, py: Python<'_>, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(py, &line?)?;
        }
        Ok(())
    }

    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.check()?;
        let pending = PENDING.with(|p| std::mem::take(&mut p.borrow_mut()[self.kind.index()]));
        if !pending.is_empty() {
            emit(py, self.exchange.as_ref(), &pending);
        }
        Ok(())
    }

    fn isatty(&self) -> bool {
        false
    }

    fn readable(&self) -> bool {
        false
    }

    fn writable(&self) -> bool {
        true
    }

    fn seekable(&self) -> bool {
        false
    }

    fn fileno(&self) -> PyResult<i32> {
        Err(PyOSError::new_err("log stream has no file descriptor"))
    }

    fn close(&self) {}

    #[getter]
    fn closed(&self) -> bool {
        false
    }

    #[getter]
    fn encoding(&self) -> &'static str {
        "utf-8"
    }

    #[getter]
    fn errors(&self) -> &'static str {
        "backslashreplace"
    }

    #[getter]
    fn name(&self) -> &'static str {
        match self.kind {
            StreamKind::Stdout => "<stdout>",
            StreamKind::Stderr => "<stderr>",
            StreamKind::Errors => "<wsgi.errors>",
        }
    }
}

/// `sys.stdin` under `WSGIRestrictStdin On`.
#[pyclass(module = "mod_wsgi")]
pub struct RestrictedStdin;

#[pymethods]
impl RestrictedStdin {
    #[pyo3(signature = (*_args))]
    fn read(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        Err(PyOSError::new_err(
            "sys.stdin access restricted by mod_wsgi",
        ))
    }

    #[pyo3(signature = (*_args))]
    fn readline(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        Err(PyOSError::new_err(
            "sys.stdin access restricted by mod_wsgi",
        ))
    }

    #[pyo3(signature = (*_args))]
    fn readlines(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        Err(PyOSError::new_err(
            "sys.stdin access restricted by mod_wsgi",
        ))
    }

    fn isatty(&self) -> bool {
        false
    }
}

/// Logs a line against the request this thread serves, or the server log.
pub fn log_for_current_request(py: Python<'_>, level: LogLevel, msg: &str) {
    match CURRENT.with(|c| c.borrow().clone()) {
        Some(ex) => ex.log(py, level, msg),
        None => log::log!(level.to_log(), "{msg}"),
    }
}
