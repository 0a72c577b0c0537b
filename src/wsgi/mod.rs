//! The WSGI (PEP 3333) core. It knows nothing about Apache: a request arrives
//! as CGI variables plus a [`Backend`] that reads the body and writes the
//! response, so embedded mode and daemon mode run the same code.

mod environ;
mod file_wrapper;
mod gateway;
mod input;
mod log_stream;
mod response;
mod start_response;

pub use environ::{EnvironSpec, WsgiFlags};
pub use file_wrapper::FileWrapper;
pub use gateway::{Backend, BodyError, Exchange, LogLevel, WriteError};
pub use input::Input;
pub use log_stream::{
    current_application_group, flush_thread_streams, log_for_current_request,
    set_current_application_group, set_current_request, LogStream, RestrictedStdin, StreamKind,
};
pub use response::{log_exception, run_application, Outcome};
pub use start_response::StartResponse;

/// Formats a Python exception with its traceback, one string per line, the way
/// `traceback.print_exception` would print it.
pub fn format_exception(py: pyo3::Python<'_>, err: &pyo3::PyErr) -> Vec<String> {
    use pyo3::prelude::*;
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
