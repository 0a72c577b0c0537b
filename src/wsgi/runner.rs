//! The request runner both modes share: embedded mode (with Apache's
//! request as the [`Backend`]) and daemon mode (with the socket) hand it a
//! backend, a way to load the application and the environ's inputs; it
//! loads the application (logging a script error with its traceback), builds
//! the environ, runs the application, flushes the thread's output lines,
//! closes the request's scope on every way out and lets the backend finish.
//! Calling the application itself (`start_response`, delivering what it
//! returns, `close()` on every path out) is [`run_application`].

use std::fmt::Display;
use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::describe::{log_exception, log_script_error};
use super::environ::EnvironSpec;
use super::gateway::{Backend, Exchange, LogLevel};
use super::input::Input;
use super::log_stream::{flush_thread_streams, set_current_request};
use super::response::{deliver, fail, finish, Failure, Outcome};
use super::start_response::StartResponse;

/// Why the application could not be loaded, as the runner logs it.
pub trait LoadError: Display {
    /// The Python exception behind the failure, for its traceback.
    fn python_error(&self) -> Option<&PyErr>;

    /// The first line of the log, with its `WSGIRSnnn` id.
    fn logged(&self) -> String;
}

/// Runs one request from start to end and returns how it ended; the
/// backend has had its [`Backend::finish`] by then. `load` loads the
/// application (from the process's script cache); `amend` adds what only
/// one mode has to the built environ; `script` names the application in
/// messages.
pub fn run_request<'a, 'py, I, E>(
    py: Python<'py>,
    backend: Box<dyn Backend>,
    load: impl FnOnce() -> Result<Bound<'py, PyAny>, E>,
    environ: EnvironSpec<'a, I>,
    amend: impl FnOnce(&Bound<'py, PyDict>) -> PyResult<()>,
    script: &str,
) -> Outcome
where
    I: Iterator<Item = (&'a [u8], &'a [u8])>,
    E: LoadError,
{
    let mut scope = RequestScope::open(backend);
    let exchange = scope.exchange();
    // Load, build the environ, run; each step may end the request.
    let outcome = (|| {
        let app = match load() {
            Ok(app) => app,
            Err(e) => {
                log_script_error(py, &e.logged(), e.python_error(), |line| {
                    exchange.log(py, LogLevel::Error, line)
                });
                return Outcome::Failed;
            }
        };
        if !app_ready(py, exchange) {
            return Outcome::Aborted;
        }
        let environ = Bound::new(py, Input::new(exchange.clone()))
            .and_then(|input| environ.build(py, input))
            .and_then(|environ| amend(&environ).map(|()| environ));
        let environ = match environ {
            Ok(environ) => environ,
            Err(e) => {
                log_exception(
                    py,
                    exchange,
                    "WSGIRS373: Could not build the WSGI environ",
                    &e,
                );
                return Outcome::Failed;
            }
        };
        set_current_request(Some(exchange.clone()));
        run_application(py, &app, environ, exchange, script)
    })();
    if let Some(mut backend) = scope.end(py) {
        py.detach(|| backend.finish(&outcome));
    }
    outcome
}

/// Tells the backend the application is about to run; false when the
/// client has gone.
fn app_ready(py: Python<'_>, exchange: &Exchange) -> bool {
    let mut state = exchange.lock(py);
    let Some(backend) = state.backend.as_mut() else {
        return false;
    };
    let backend: &mut dyn Backend = backend.as_mut();
    py.detach(|| backend.app_ready()).is_ok()
}

/// The request's scope: ended once the application is done, or on any
/// other way out (a panic included), so no lingering Python object can
/// reach the backend afterwards and the thread serves no request. Its
/// output lines are logged first, while they can still be attributed to
/// the request. The runner uses it, and so does anything else that runs
/// Python code for a request (the access scripts).
pub struct RequestScope {
    /// The request's exchange.
    exchange: Arc<Exchange>,
    /// Not ended yet.
    open: bool,
}

impl RequestScope {
    /// Opens the scope of a request carried by `backend`.
    pub fn open(backend: Box<dyn Backend>) -> RequestScope {
        RequestScope {
            exchange: Exchange::new(backend),
            open: true,
        }
    }

    /// The request's exchange, for the Python objects made for it.
    pub fn exchange(&self) -> &Arc<Exchange> {
        &self.exchange
    }

    /// Ends the scope; the backend, for its last word, the first time.
    pub fn end(&mut self, py: Python<'_>) -> Option<Box<dyn Backend>> {
        if !std::mem::replace(&mut self.open, false) {
            return None;
        }
        flush_thread_streams(py, Some(&self.exchange));
        set_current_request(None);
        self.exchange.close(py)
    }
}

impl Drop for RequestScope {
    fn drop(&mut self) {
        if self.open {
            Python::attach(|py| {
                self.end(py);
            });
        }
    }
}
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
            log_exception(
                py,
                exchange,
                "WSGIRS374: could not create start_response",
                &e,
            );
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
                log_exception(py, exchange, &format!("WSGIRS370: {}", context()), &e);
                super::events::request_exception(py, exchange, &e);
            }
            fail(py, exchange, &context(), f)
        }
        (Ok(()), Err(e)) => fail(py, exchange, &context(), Failure::App(e)),
        (Ok(()), Ok(())) => finish(py, exchange),
    }
}
