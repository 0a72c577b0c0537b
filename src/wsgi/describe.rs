//! Describing Python errors and values for the log and for exception
//! messages: a traceback as log lines, the one function that logs an error
//! with its traceback, and the type name a message shows for a wrong value.

use pyo3::prelude::*;

use super::gateway::{Exchange, LogLevel};

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
    match formatted {
        Ok(chunks) => chunks
            .iter()
            .flat_map(|c| c.trim_end_matches('\n').split('\n'))
            .map(str::to_owned)
            .collect(),
        Err(_) => vec![err.to_string()],
    }
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
