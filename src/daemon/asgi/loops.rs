//! The event loops of a daemon process: one [`Server`] per application
//! group, made with its loop thread on the group's first ASGI request (or
//! at start-up for a preloaded ASGI application, so that its lifespan
//! startup runs before the process serves).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::sync::MutexExt;

use crate::asgi::{Hooks, Server, Settings, Wire};
use crate::daemon::protocol;
use crate::daemon::state::Daemon;
use crate::daemon::stop::StopReason;
use crate::interp;

/// Each application group's server, made on its first ASGI request.
static SERVERS: Mutex<Vec<(String, Arc<Server>)>> = Mutex::new(Vec::new());

/// The daemon protocol's bytes for the server.
fn wire() -> Wire {
    let errors = [(500, "Internal Server Error"), (504, "Gateway Timeout")]
        .into_iter()
        .flat_map(|(status, reason)| {
            [true, false].map(|framed| {
                (
                    (status, framed),
                    protocol::error_response(status, reason, framed),
                )
            })
        })
        .collect();
    Wire {
        go_ahead: protocol::CONTINUE,
        end_keep: protocol::END_KEEP.to_le_bytes(),
        end_close: protocol::END_CLOSE.to_le_bytes(),
        max_frame: protocol::MAX_FRAME,
        internal_header: protocol::INTERNAL_ERROR_HEADER,
        errors,
    }
}

/// The server of `group` (the application group), started with its loop
/// thread the first time.
pub(super) fn server(py: Python<'_>, daemon: &Arc<Daemon>, group: &str) -> PyResult<Arc<Server>> {
    // Waits detached: the holder may be running Python.
    let mut servers = SERVERS
        .lock_py_attached(py)
        .unwrap_or_else(|p| p.into_inner());
    if let Some((_, server)) = servers.iter().find(|(name, _)| name == group) {
        return Ok(server.clone());
    }
    let spec = &daemon.launch.spec;
    let settings = Settings {
        group: spec.name.clone(),
        threads: spec.threads as usize,
        request_timeout: spec.request_timeout,
        shutdown_timeout: spec.shutdown_timeout,
    };
    let failed = daemon.clone();
    let metrics = daemon.launch.metrics;
    let hooks = Hooks {
        startup_failed: Box::new(move |reason| {
            failed.load_failed.store(true, Ordering::SeqCst);
            failed.request_restart(StopReason::AsgiStartupFailed(reason.to_owned()));
        }),
        timed_out: Box::new(move || {
            if let Some(m) = metrics {
                m.timeout();
            }
        }),
    };
    let server = Arc::new(Server::new(py, &settings, &wire(), hooks)?);
    let running = server.clone();
    let name = group.to_owned();
    let label = daemon.group().to_owned();
    std::thread::Builder::new()
        .name("asgi-loop".into())
        .spawn(move || {
            let ran = interp::with_group(&name, |py| running.run(py).map_err(|e| e.to_string()));
            log::error!(
                "WSGIRS506: (wsgi:{label}) the ASGI event loop of application group '{name}' stopped: {:?}",
                ran
            );
        })
        .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?;
    log::info!(
        "WSGIRS505: (wsgi:{}) pid {}: ASGI event loop ({}) started for application group '{}', executor of {} thread(s)",
        daemon.group(),
        std::process::id(),
        server.loop_name(py),
        group,
        settings.threads
    );
    servers.push((group.to_owned(), server.clone()));
    Ok(server)
}
