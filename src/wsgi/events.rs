//! mod_wsgi's request events and per-request data: `request_data()`, the
//! `request_started` / `response_started` / `request_exception` /
//! `request_finished` events for `subscribe_events()` callbacks, the
//! `process_stopping` event (also for `subscribe_shutdown()` callbacks) and
//! the `active_requests` dict.
//!
//! Nothing here costs a request that nobody watches: events are published
//! only once a callback was subscribed and while the interpreter's
//! `mod_wsgi.event_callbacks` holds one (decided once per request),
//! `request_data()`'s dict is made when first asked for, and
//! `active_requests` is kept only once something has looked it up. Each
//! application group's interpreter has its own `mod_wsgi` module, so its
//! own callbacks and active requests.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use super::describe::log_script_error;
use super::gateway::{Exchange, LogLevel};
use super::log_stream::current_request;

/// Set once any interpreter has subscribed a callback: until then a request
/// does not even look its interpreter's `mod_wsgi.event_callbacks` up.
static SUBSCRIBED: AtomicBool = AtomicBool::new(false);
/// Set once any interpreter has looked `mod_wsgi.active_requests` up.
static TRACK_ACTIVE: AtomicBool = AtomicBool::new(false);
/// Where each interpreter's `mod_wsgi` module keeps its active requests.
const ACTIVE_ATTR: &str = "_active_requests_dict";
/// For request ids: requests started in this process.
static REQUEST_SERIAL: AtomicU64 = AtomicU64::new(0);

/// Notes that a callback was subscribed (`mod_wsgi.subscribe_events`).
pub fn note_subscriber() {
    SUBSCRIBED.store(true, Ordering::Release);
}

/// An attribute of the `mod_wsgi` module of the interpreter this thread is
/// in: every application group has its own module, callbacks and requests.
fn module_attr<'py>(py: Python<'py>, name: &str) -> Option<Bound<'py, PyAny>> {
    py.import("mod_wsgi").ok()?.getattr(name).ok()
}

/// The callbacks subscribed to event `name`, if any.
fn callbacks<'py>(py: Python<'py>, name: &str) -> Option<Bound<'py, PyList>> {
    module_attr(py, name)?.cast_into::<PyList>().ok()
}

/// `mod_wsgi.active_requests` of this interpreter: from the first lookup
/// on, every request enters it (request id -> request data) when it starts
/// and leaves when it ends.
pub fn active_requests(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let module = py.import("mod_wsgi")?;
    let dict = match module.getattr_opt(ACTIVE_ATTR)? {
        Some(d) => d.cast_into::<PyDict>()?,
        None => {
            let d = PyDict::new(py);
            module.setattr(ACTIVE_ATTR, &d)?;
            d
        }
    };
    TRACK_ACTIVE.store(true, Ordering::Release);
    Ok(dict)
}

/// Whether anything subscribed to events.
fn has_subscribers(py: Python<'_>) -> bool {
    SUBSCRIBED.load(Ordering::Acquire)
        && callbacks(py, "event_callbacks").is_some_and(|l| !l.is_empty())
}

/// Seconds since the epoch, as events report times.
fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The request's data dict and id, made on first use.
fn data_and_id<'py>(
    py: Python<'py>,
    exchange: &Exchange,
) -> (Bound<'py, PyDict>, Bound<'py, PyString>) {
    let mut guard = exchange.lock(py);
    let state = &mut *guard;
    let track = &mut state.track;
    let data = track
        .request_data
        .get_or_insert_with(|| PyDict::new(py).unbind())
        .bind(py)
        .clone();
    let id = track
        .request_id
        .get_or_insert_with(|| {
            // Apache's log id where the server side has one (embedded
            // mode), as mod_wsgi uses; otherwise one of this process's own.
            let id = state
                .backend
                .as_mut()
                .and_then(|b| b.request_id())
                .unwrap_or_else(|| {
                    let serial = REQUEST_SERIAL.fetch_add(1, Ordering::Relaxed);
                    format!("{:x}-{serial:x}", std::process::id())
                });
            PyString::new(py, &id).unbind()
        })
        .bind(py)
        .clone();
    (data, id)
}

/// `mod_wsgi.request_data()`: the dict of the request this thread serves,
/// shared with that request's events.
pub fn request_data(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let exchange =
        current_request().ok_or_else(|| PyRuntimeError::new_err("no active request for thread"))?;
    Ok(data_and_id(py, &exchange).0)
}

/// Calls every callback of `callbacks` as `callback(name, **event)`; a dict
/// a callback returns is merged into the event for the ones after it. A
/// failing callback is logged and the others still run.
fn call_each(
    py: Python<'_>,
    callbacks: &Bound<'_, PyList>,
    name: &str,
    event: &Bound<'_, PyDict>,
    exchange: Option<&Exchange>,
) {
    // A snapshot: a callback subscribing another must not loop forever.
    let snapshot: Vec<Bound<'_, PyAny>> = callbacks.iter().collect();
    for callback in snapshot {
        match callback.call((name,), Some(event)) {
            Ok(result) => {
                if let Ok(extra) = result.cast::<PyDict>() {
                    let _ = event.update(extra.as_mapping());
                }
            }
            Err(e) => {
                let message = "WSGIRS378: Exception occurred within event callback.";
                log_script_error(py, message, Some(&e), |line| match exchange {
                    Some(ex) => ex.log(py, LogLevel::Error, line),
                    None => log::error!("{line}"),
                });
            }
        }
    }
}

/// Calls every callback of event `name`; their errors are logged.
fn publish(py: Python<'_>, name: &str, event: &Bound<'_, PyDict>, exchange: Option<&Exchange>) {
    if let Some(list) = callbacks(py, "event_callbacks") {
        call_each(py, &list, name, event, exchange);
    }
    if name == "process_stopping" {
        if let Some(list) = callbacks(py, "shutdown_callbacks") {
            call_each(py, &list, name, event, exchange);
        }
    }
}

/// The `process_stopping` event, once, when the process is shutting down.
pub fn publish_process_stopping(py: Python<'_>, reason: &str) {
    let event = PyDict::new(py);
    if event.set_item("shutdown_reason", reason).is_ok() {
        publish(py, "process_stopping", &event, None);
    }
}

/// What a request's events need to remember between its start and end.
pub(crate) struct Started {
    /// Set when the request's events are published.
    timing: Option<Timing>,
    /// This interpreter's `active_requests` and the request's key in it.
    tracked: Option<(Py<PyDict>, Py<PyString>)>,
}

/// When a published request started, by the wall clock (for the events'
/// epoch times), a monotonic clock (for durations) and its thread's CPU.
struct Timing {
    /// Wall-clock start.
    application_start: SystemTime,
    /// Monotonic start.
    clock: Instant,
    /// The thread's user and system CPU seconds at the start.
    cpu: Option<(f64, f64)>,
}

/// At the start of a request: enters it into `active_requests` when that is
/// kept, and publishes `request_started` when someone subscribed. Returns
/// the application to call (a subscriber may wrap it, by returning a dict
/// with another `application_object`).
pub(crate) fn request_started<'py>(
    py: Python<'py>,
    exchange: &Exchange,
    app: &Bound<'py, PyAny>,
    environ: &Bound<'py, PyDict>,
) -> (Started, Bound<'py, PyAny>) {
    let mut started = Started {
        timing: None,
        tracked: None,
    };
    let publish_events = has_subscribers(py);
    if !publish_events && !TRACK_ACTIVE.load(Ordering::Acquire) {
        return (started, app.clone());
    }
    let (data, id) = data_and_id(py, exchange);
    if TRACK_ACTIVE.load(Ordering::Acquire) {
        if let Some(active) =
            module_attr(py, ACTIVE_ATTR).and_then(|d| d.cast_into::<PyDict>().ok())
        {
            if active.set_item(&id, &data).is_ok() {
                started.tracked = Some((active.unbind(), id.clone().unbind()));
            }
        }
    }
    if !publish_events {
        return (started, app.clone());
    }
    exchange.lock(py).track.published = true;
    let application_start = SystemTime::now();
    started.timing = Some(Timing {
        application_start,
        clock: Instant::now(),
        cpu: thread_cpu_times(),
    });
    let event = PyDict::new(py);
    let now = epoch_seconds(application_start);
    let filled = (|| -> PyResult<()> {
        event.set_item("request_id", &id)?;
        event.set_item("thread_id", super::metrics::thread_id())?;
        event.set_item("server_pid", std::process::id())?;
        event.set_item("request_start", now)?;
        // mod_wsgi 4.9's daemon hand-over facts: this module does not
        // measure the queue, so a daemon reports it as starting at once.
        let daemon = environ
            .get_item("mod_wsgi.process_group")?
            .is_some_and(|g| g.is_truthy().unwrap_or(false));
        let handed_over = if daemon { now } else { 0.0 };
        event.set_item("daemon_connects", u8::from(daemon))?;
        event.set_item("daemon_restarts", 0)?;
        event.set_item("queue_start", handed_over)?;
        event.set_item("daemon_start", handed_over)?;
        event.set_item("application_object", app)?;
        if let Some(callable) = environ.get_item("mod_wsgi.callable_object")? {
            event.set_item("callable_object", callable)?;
        }
        event.set_item("request_environ", environ)?;
        event.set_item("application_start", now)?;
        event.set_item("request_data", &data)?;
        Ok(())
    })();
    if filled.is_err() {
        return (started, app.clone());
    }
    publish(py, "request_started", &event, Some(exchange));
    let app = match event.get_item("application_object") {
        Ok(Some(wrapped)) => wrapped,
        _ => app.clone(),
    };
    (started, app)
}

/// `response_started`, from `start_response` (the exchange is not locked).
pub(crate) fn response_started(
    py: Python<'_>,
    exchange: &Exchange,
    status: &Bound<'_, PyAny>,
    headers: &Bound<'_, PyAny>,
    exc_info: Option<&Bound<'_, PyAny>>,
) {
    if !exchange.lock(py).track.published {
        return;
    }
    let (data, id) = data_and_id(py, exchange);
    let event = PyDict::new(py);
    let filled = (|| -> PyResult<()> {
        event.set_item("request_id", id)?;
        event.set_item("response_status", status)?;
        event.set_item("response_headers", headers)?;
        event.set_item("exception_info", exc_info)?;
        event.set_item("request_data", data)?;
        Ok(())
    })();
    if filled.is_ok() {
        publish(py, "response_started", &event, Some(exchange));
    }
}

/// `request_exception`, for an exception that left the application.
pub(crate) fn request_exception(py: Python<'_>, exchange: &Exchange, err: &PyErr) {
    if !exchange.lock(py).track.published {
        return;
    }
    let (data, id) = data_and_id(py, exchange);
    let event = PyDict::new(py);
    let filled = (|| -> PyResult<()> {
        let info = PyTuple::new(
            py,
            [
                err.get_type(py).into_any(),
                err.value(py).clone().into_any(),
                err.traceback(py)
                    .map(Bound::into_any)
                    .unwrap_or_else(|| py.None().into_bound(py)),
            ],
        )?;
        event.set_item("request_id", id)?;
        event.set_item("exception_info", info)?;
        event.set_item("request_data", data)?;
        Ok(())
    })();
    if filled.is_ok() {
        publish(py, "request_exception", &event, Some(exchange));
    }
}

/// At the end of a request: `request_finished` for subscribers, and out of
/// `active_requests`.
pub(crate) fn request_finished(py: Python<'_>, exchange: &Exchange, started: Started) {
    if let Some((active, id)) = &started.tracked {
        let _ = active.bind(py).del_item(id);
    }
    let Some(timing) = started.timing else {
        return;
    };
    let (data, id) = data_and_id(py, exchange);
    let application_time = timing.clock.elapsed().as_secs_f64();
    let finish = epoch_seconds(timing.application_start) + application_time;
    let event = PyDict::new(py);
    let filled = (|| -> PyResult<()> {
        let state = exchange.lock(py);
        let t = &state.track;
        event.set_item("request_id", &id)?;
        event.set_item("input_reads", t.input_reads)?;
        event.set_item("input_length", t.input_length)?;
        event.set_item("input_time", t.input_time.as_secs_f64())?;
        event.set_item("output_length", state.response.bytes_sent)?;
        event.set_item("output_writes", t.output_writes)?;
        event.set_item("output_time", t.output_time.as_secs_f64())?;
        if let Some((code, _)) = &state.response.status {
            event.set_item("status", *code)?;
        }
        drop(state);
        if let (Some((u0, s0)), Some((u1, s1))) = (timing.cpu, thread_cpu_times()) {
            let user = (u1 - u0).max(0.0);
            let system = (s1 - s0).max(0.0);
            event.set_item("cpu_user_time", user)?;
            event.set_item("cpu_system_time", system)?;
            event.set_item("cpu_time", user + system)?;
        }
        event.set_item("application_finish", finish)?;
        event.set_item("application_time", application_time)?;
        event.set_item("request_data", &data)?;
        Ok(())
    })();
    if filled.is_ok() {
        publish(py, "request_finished", &event, Some(exchange));
    }
}

/// CPU time used by this thread so far, (user, system) seconds.
fn thread_cpu_times() -> Option<(f64, f64)> {
    crate::sys::usage::cpu_times(crate::sys::usage::Who::Thread)
}
