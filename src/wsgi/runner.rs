//! Running a WSGI application: calling it with the environ and
//! `start_response`, delivering what it returns, and calling `close()` on
//! every path out.

use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::describe::log_exception;
use super::gateway::Exchange;
use super::response::{deliver, fail, finish, Failure, Outcome};
use super::start_response::StartResponse;

/// Calls the WSGI application and delivers its response through the exchange.
pub fn run_application(
    py: Python<'_>,
    app: &Bound<'_, PyAny>,
    environ: Bound<'_, PyDict>,
    exchange: &Arc<Exchange>,
    script: &str,
) -> Outcome {
    let start_response = match Bound::new(py, StartResponse::new(exchange.clone())) {
        Ok(s) => s,
        Err(e) => {
            log_exception(py, exchange, "could not create start_response", &e);
            return Outcome::Failed;
        }
    };
    let begun = super::metrics::request_begun();
    let (started, app) = super::events::request_started(py, exchange, app, &environ);
    let outcome = call_and_deliver(py, &app, environ, start_response, exchange, script);
    super::events::request_finished(py, exchange, started);
    super::metrics::request_ended(begun);
    outcome
}

/// The application's call, its response's delivery and its `close()`.
fn call_and_deliver(
    py: Python<'_>,
    app: &Bound<'_, PyAny>,
    environ: Bound<'_, PyDict>,
    start_response: Bound<'_, StartResponse>,
    exchange: &Arc<Exchange>,
    script: &str,
) -> Outcome {
    let context = || format!("Exception occurred processing WSGI script '{script}'.");
    let result = match app.call1((environ, start_response)) {
        Ok(r) => r,
        Err(e) => return fail(py, exchange, &context(), Failure::App(e)),
    };
    let delivered = deliver(py, exchange, &result);
    // Plain lists and tuples have no close(); asking would raise and discard
    // an AttributeError on every request.
    let closed =
        if result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>() {
            Ok(())
        } else {
            match result.getattr_opt(intern!(py, "close")) {
                Ok(Some(close)) => close.call0().map(drop),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            }
        };
    match (delivered, closed) {
        (Err(f), closed) => {
            if let Err(e) = closed {
                log_exception(py, exchange, &context(), &e);
                super::events::request_exception(py, exchange, &e);
            }
            fail(py, exchange, &context(), f)
        }
        (Ok(()), Err(e)) => fail(py, exchange, &context(), Failure::App(e)),
        (Ok(()), Ok(())) => finish(py, exchange),
    }
}
