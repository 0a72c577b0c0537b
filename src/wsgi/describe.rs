//! Describing Python errors and values for the log and for exception
//! messages: a traceback as log lines, the one function that logs an error
//! with its traceback, and the type name a message shows for a wrong value.

use pyo3::prelude::*;

use super::gateway::{Exchange, LogLevel};
use crate::sys::python::in_sub_interpreter;

/// Formats a Python exception with its traceback, one string per line, the way
/// `traceback.print_exception` would print it.
pub fn format_exception(py: Python<'_>, err: &PyErr) -> Vec<String> {
    let formatted = (|| -> PyResult<Vec<String>> {
        let tb = py.import("traceback")?;
        let lines: Vec<String> = tb
            .call_method1(
                "format_exception",
                (err.get_type(py), err.value(py), err.traceback(py)),
            )?
            .extract()?;
        Ok(lines)
    })();
    let mut lines: Vec<String> = match formatted {
        Ok(chunks) => chunks
            .iter()
            .flat_map(|c| c.trim_end_matches('\n').split('\n'))
            .map(str::to_owned)
            .collect(),
        Err(_) => vec![err.to_string()],
    };
    if refused_in_sub_interpreter(py, err) {
        lines.push(SUB_INTERPRETER_HINT.to_owned());
    }
    lines
}

/// Follows the traceback of an import an extension module refused in an
/// application group's sub-interpreter.
pub const SUB_INTERPRETER_HINT: &str = "mod_wsgi_rs: this application group runs in a Python \
     sub-interpreter and an extension module refused to load there; run the application in \
     the main interpreter with 'WSGIApplicationGroup %{GLOBAL}'";

/// An extension module that refuses to load in a sub-interpreter raises
/// ImportError (PyO3 modules such as `cryptography`: "... subinterpreters"
/// or "... once per interpreter process"; NumPy 2: "... more than once per
/// process"; Python 3.12+ for every single-phase module: "... does not
/// support loading in subinterpreters"). Its message names interpreters but
/// not the way out, which the log then adds.
fn refused_in_sub_interpreter(py: Python<'_>, err: &PyErr) -> bool {
    use pyo3::exceptions::{PyImportError, PyModuleNotFoundError};
    if !err.is_instance_of::<PyImportError>(py)
        || err.is_instance_of::<PyModuleNotFoundError>(py)
        || !in_sub_interpreter()
    {
        return false;
    }
    let message = err.value(py).to_string();
    message.contains("interpreter") || message.contains("once per process")
}

/// Logs a script error: `message`, then the Python exception behind it
/// (when there is one) with its traceback, a line at a time through `log`.
/// Every script error reaches a log this way, whatever the log is.
pub fn log_script_error(
    py: Python<'_>,
    message: &str,
    err: Option<&PyErr>,
    mut log: impl FnMut(&str),
) {
    log(message);
    if let Some(err) = err {
        for line in format_exception(py, err) {
            log(&line);
        }
    }
}

/// Logs an exception with its traceback against the request.
pub fn log_exception(py: Python<'_>, exchange: &Exchange, context: &str, err: &PyErr) {
    log_script_error(py, context, Some(err), |line| {
        exchange.log(py, LogLevel::Error, line)
    });
}

/// The type name of a value, for messages about a value of the wrong type.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}
