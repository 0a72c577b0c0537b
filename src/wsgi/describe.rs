//! Describing Python errors and values for the log and for exception
//! messages: a traceback as log lines, logged against its request, and the
//! type name a message shows for a wrong value.

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

/// Logs an exception with its traceback against the request.
pub fn log_exception(py: Python<'_>, exchange: &Exchange, context: &str, err: &PyErr) {
    exchange.log(py, LogLevel::Error, context);
    for line in format_exception(py, err) {
        exchange.log(py, LogLevel::Error, &line);
    }
}

/// The type name of a value, for messages about a value of the wrong type.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}
