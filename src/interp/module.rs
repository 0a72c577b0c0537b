//! The `mod_wsgi` Python module that applications can import, as they can
//! under mod_wsgi 4.9/6.0: version and process facts, `request_data()`,
//! event subscriptions (`subscribe_events`, `subscribe_shutdown`, and the
//! `event_callbacks` / `shutdown_callbacks` lists), `active_requests`,
//! `process_metrics()` and `server_metrics()`, `RequestTimeout` (mod_wsgi
//! 6's exception for a request past `request-timeout`), plus `ApacheLogHandler`, a
//! `logging` handler that keeps Python's levels in the Apache error log
//! (warning -> `[wsgi_rs:warn]`) instead of logging everything as an error.
//! What the events carry and when they fire lives in `wsgi/events.rs`.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

use super::PythonSettings;
use crate::wsgi::{
    current_application_group, log_for_current_request, version_tuple, FileWrapper, LogLevel,
};

/// Python code run in the module: what is simplest written in Python.
const MODULE_SOURCE: &std::ffi::CStr = c"
import logging as _logging

event_callbacks = []
shutdown_callbacks = []

def subscribe_events(callback):
    '''Calls callback(name, **event) for every event of this process.'''
    event_callbacks.append(callback)
    _note_subscriber()
    return callback

def subscribe_shutdown(callback):
    '''Calls callback('process_stopping', **event) when the process stops.'''
    shutdown_callbacks.append(callback)
    return callback

def subscribe_signals(callback):
    '''mod_wsgi 6 delivers SIGHUP/SIGUSR2 of a daemon process to callback;
    mod_wsgi_rs never does (as mod_wsgi 6 in embedded mode): the callback is
    returned unchanged, so decorator use keeps the function, and a warning
    says it will not be called.'''
    _log(30, 'mod_wsgi.subscribe_signals(%r): mod_wsgi_rs does not deliver '
             'process signals to Python; this callback will never be called '
             '(use signal.signal() in a daemon process)' % (callback,))
    return callback

_NOT_PROVIDED = {
    'request_metrics': 'use process_metrics() or the request_finished event',
    'start_recording_metrics': 'process_metrics() needs no opt-in here',
}

def __getattr__(name):
    # Module attributes that depend on the request being served, or that
    # are only kept once something asks for them.
    if name == 'application_group':
        return _application_group()
    if name == 'active_requests':
        return _active_requests()
    if name in _NOT_PROVIDED:
        raise AttributeError('mod_wsgi.%s is not provided by mod_wsgi_rs: %s'
                             % (name, _NOT_PROVIDED[name]))
    raise AttributeError('module mod_wsgi has no attribute %r' % name)

class RequestTimeout(BaseException):
    '''Raised in a daemon thread whose request ran past request-timeout
    (with interrupt-timeout set). A BaseException, so `except Exception`
    does not swallow it; catch it only to clean up, then re-raise.'''

class ApacheLogHandler(_logging.Handler):
    '''Writes records to the Apache error log at the level of the record.'''

    def emit(self, record):
        try:
            _log(record.levelno, self.format(record))
        except Exception:
            self.handleError(record)
";

/// `mod_wsgi._application_group()`: the current request's group.
#[pyfunction]
#[pyo3(name = "_application_group")]
fn application_group() -> String {
    current_application_group()
}

/// `mod_wsgi.active_requests`.
#[pyfunction]
#[pyo3(name = "_active_requests")]
fn active_requests(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    crate::wsgi::active_requests(py)
}

/// Records that events now have a subscriber.
#[pyfunction]
#[pyo3(name = "_note_subscriber")]
fn note_subscriber() {
    crate::wsgi::note_subscriber();
}

/// The dict of the request this thread serves, shared with its events.
#[pyfunction]
fn request_data(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    crate::wsgi::request_data(py)
}

/// What this process has served: mod_wsgi 4.9's keys and shapes.
#[pyfunction]
fn process_metrics(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    crate::wsgi::process_metrics(py)
}

/// mod_wsgi's Apache scoreboard view, which it gives only when
/// `WSGIServerMetrics On` (or `server-metrics=On`) allows; mod_wsgi_rs
/// does not read the scoreboard, so this is always mod_wsgi's answer for
/// "not enabled": None.
#[pyfunction]
fn server_metrics() -> Option<()> {
    None
}

/// `mod_wsgi._log()`: logs a record's lines at its level.
#[pyfunction]
#[pyo3(name = "_log")]
fn log_record(py: Python<'_>, level: i64, message: &str) {
    let level = LogLevel::from_python(level);
    for line in message.lines() {
        log_for_current_request(py, level, line);
    }
}

/// Creates the `mod_wsgi` module and puts it in `sys.modules`.
pub(crate) fn install(py: Python<'_>, settings: &PythonSettings) -> PyResult<()> {
    crate::wsgi::mark_process_start();
    let m = PyModule::new(py, "mod_wsgi")?;
    m.add("version", version_tuple(py)?)?;
    m.add("server", "mod_wsgi_rs")?;
    m.add("process_group", settings.process_group.as_str())?;
    m.add("maximum_processes", settings.maximum_processes)?;
    m.add("threads_per_process", settings.threads_per_process)?;
    m.add_class::<FileWrapper>()?;
    m.add_function(wrap_pyfunction!(log_record, &m)?)?;
    m.add_function(wrap_pyfunction!(application_group, &m)?)?;
    m.add_function(wrap_pyfunction!(active_requests, &m)?)?;
    m.add_function(wrap_pyfunction!(note_subscriber, &m)?)?;
    m.add_function(wrap_pyfunction!(request_data, &m)?)?;
    m.add_function(wrap_pyfunction!(process_metrics, &m)?)?;
    m.add_function(wrap_pyfunction!(server_metrics, &m)?)?;
    py.run(MODULE_SOURCE, Some(&m.dict()), None)?;
    py.import("sys")?
        .getattr("modules")?
        .set_item("mod_wsgi", m)?;
    Ok(())
}
