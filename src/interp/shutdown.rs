//! The end of a process that ran Python, in either mode: in every
//! interpreter (each application group's), the application's
//! `subscribe_shutdown()` callbacks (and `subscribe_events()` ones) get the
//! `process_stopping` event, then its `atexit` callbacks run, as mod_wsgi
//! runs both when it destroys each interpreter. The interpreters themselves
//! are never finalised (a thread may still be inside one).

use pyo3::prelude::*;

/// Runs the shutdown callbacks, and the atexit callbacks when `destroy`
/// (`WSGIDestroyInterpreter On`, the default: mod_wsgi runs atexit callbacks
/// as it destroys an interpreter, and its shutdown callbacks regardless), if
/// Python ever started here. `reason` is mod_wsgi's `shutdown_reason`
/// (`"shutdown_signal"`, …).
pub fn process_stopping(reason: &str, destroy: bool) {
    if !super::is_initialized() {
        return;
    }
    super::for_each_group(|py, group| {
        crate::wsgi::publish_process_stopping(py, reason);
        if !destroy {
            return;
        }
        if let Err(e) = py
            .import("atexit")
            .and_then(|m| m.call_method0("_run_exitfuncs"))
        {
            log::error!("WSGIRS350: atexit callback failed in application group '{group}': {e}");
        }
    });
}
