//! A daemon process's side of ASGI (see [`crate::asgi`] for the design):
//! which requests go to the event loop, and the hand-over itself, with the
//! GIL (a script's first request, a WebSocket) or without it (a script
//! already known to hold an ASGI application); which start-up scripts'
//! lifespans start with the process.
//!
//! - [`mod@known`]: the applications requests have reached, for the
//!   hand-over without the GIL.
//! - [`loops`]: one event loop per application group.
//! - [`mod@handed`]: a handed-over request's bookkeeping until the loop is
//!   done with its connection.

mod handed;
mod known;
mod loops;

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use pyo3::prelude::*;

use super::backend::Body;
use super::protocol::{self, Vars};
use super::state::Daemon;
use super::websocket;
use crate::asgi::{BodySource, Connection, HttpScope, Request, Scope, Server};
use crate::config::Interface;
use crate::interp::{self, ScriptError, ScriptKey};
use handed::handed;
pub(super) use handed::BusyMark;
use known::remember;
pub(super) use known::{known, Lookup};
use loops::server;

/// mod_wsgi's default callable name.
const DEFAULT_CALLABLE: &str = "application";

/// The callable name ASGI frameworks' documentation uses (`app =
/// FastAPI()`), tried when the script has no callable of the default name.
const ASGI_CALLABLE: &str = "app";

/// The application the request goes to if it goes to the event loop: the
/// loaded callable when the alias's `interface=asgi` says so or (without
/// `interface=`) it is an ASGI application. A script without the default
/// `application` but with an ASGI `app` runs that.
pub(super) fn application<'py>(
    py: Python<'py>,
    daemon: &Daemon,
    vars: &Vars,
    key: &ScriptKey,
    callable: &str,
    mtime: Option<i64>,
    loaded: &Result<Bound<'py, PyAny>, ScriptError>,
) -> Option<Bound<'py, PyAny>> {
    // The alias's option; for a request naming no script (a plain uwsgi
    // peer's), the default application's WSGIImportScript option.
    let default = daemon
        .launch
        .default_interface
        .filter(|_| vars.get(protocol::VAR_SCRIPT).is_none());
    let interface = vars
        .get(protocol::VAR_INTERFACE)
        .or(default.map(|i| i.name().as_bytes()));
    if interface == Some(b"wsgi") {
        return None;
    }
    match loaded {
        Ok(app)
            if interface == Some(b"asgi")
                || daemon
                    .scripts
                    .classify(py, key, callable, app, crate::asgi::is_asgi_app) =>
        {
            Some(app.clone())
        }
        Ok(_) => None,
        Err(ScriptError::MissingCallable { .. }) if callable == DEFAULT_CALLABLE => {
            let app = daemon
                .scripts
                .application(py, key, ASGI_CALLABLE, mtime, false)
                .ok()
                .filter(|app| interface == Some(b"asgi") || crate::asgi::is_asgi_app(app))?;
            daemon.app_loaded.store(true, Ordering::SeqCst);
            Some(app)
        }
        Err(_) => None,
    }
}

/// What a worker read of a request for the loop, given on alike by both
/// hand-overs.
pub(super) struct Taken {
    /// Its body as read so far.
    pub body: Body,
    /// The peer is our client.
    pub framed: bool,
    /// The metrics' busy mark, moved to the hand-over.
    pub busy: BusyMark,
}

/// An ASGI request, read and checked, ready for the loop.
pub(super) struct AsgiRequest<'a> {
    /// Its vars, script, callable and mtime.
    pub lookup: Lookup<'a>,
    /// Its script was found unchanged: the application may be remembered
    /// for the fast hand-over.
    pub fresh: bool,
    /// What the worker read.
    pub taken: Taken,
}

/// A request for a known ASGI application, owned for the loop.
pub(super) struct KnownRequest {
    /// Its vars.
    pub vars: Vars,
    /// The script and application group.
    pub key: ScriptKey,
    /// What the worker read.
    pub taken: Taken,
}

/// Answers a request the loop could not be given with a 500; false, the
/// hand-overs' answer then (the worker keeps the connection, to close it).
fn refuse(stream: &UnixStream, framed: bool) -> bool {
    let answer = protocol::error_response(500, "Internal Server Error", framed);
    let _ = (&*stream).write_all(&answer);
    false
}

/// Hands the request on `stream` to its group's event loop; false (a 500
/// answered and logged) when it could not. When it returns true the worker
/// must let go of the descriptor without closing it: it belongs to the
/// hand-over, which parks or closes it when the loop is done.
pub(super) fn hand_over(
    py: Python<'_>,
    daemon: &Arc<Daemon>,
    stream: &UnixStream,
    app: Bound<'_, PyAny>,
    request: AsgiRequest<'_>,
) -> bool {
    let AsgiRequest {
        lookup,
        fresh,
        taken,
    } = request;
    let (vars, key) = (lookup.vars, lookup.key);
    let framed = taken.framed;
    let app = Arc::new(app.unbind());
    let prepared = (|| -> PyResult<_> {
        let server = server(py, daemon, &key.group)?;
        if fresh && !websocket::requested(vars) {
            remember(py, &lookup, &app, &server);
        }
        let fd = stream.try_clone().map(OwnedFd::from)?;
        let scope = HttpScope::from_cgi(vars.public()).to_dict(py)?;
        Ok((server, fd, scope))
    })();
    let (server, fd, scope) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            handover_failed(py, daemon, vars, &e);
            return refuse(stream, framed);
        }
    };
    // A WebSocket leaves HTTP: a task of its own serves the connection.
    if websocket::requested(vars) {
        let app = app.bind(py);
        let task = match websocket::prepare(py, daemon.group(), app, &scope, vars, fd) {
            Ok(Ok(task)) => task,
            Ok(Err(answer)) => {
                let _ = (&*stream).write_all(&answer);
                return false;
            }
            Err(e) => {
                handover_failed(py, daemon, vars, &e);
                return refuse(stream, framed);
            }
        };
        let done = handed(daemon, stream, taken.busy, vars);
        let script = key.path.display().to_string();
        // On an error the connection is closed (Handed's drop): the loop
        // is gone, nothing can answer.
        if let Err(e) = server.submit_task(py, app, task.start, script, task.failure, done) {
            handover_failed(py, daemon, vars, &e);
        }
        return true;
    }
    let request = Request {
        app,
        scope: Scope::Built(scope.unbind()),
        conn: connection(daemon, stream, fd, taken, vars, key),
    };
    // As above.
    if let Err(e) = server.submit(py, request) {
        handover_failed(py, daemon, vars, &e);
    }
    true
}

/// Hands the request on `stream` to the loop without the GIL (see
/// [`known()`]): the loop's thread builds its scope from the vars. False (a
/// 500 answered and logged) when the connection cannot be duplicated; when
/// it returns true the worker lets go of the descriptor as for
/// [`hand_over`].
pub(super) fn hand_over_known(
    daemon: &Arc<Daemon>,
    stream: &UnixStream,
    (app, server): (Arc<Py<PyAny>>, Arc<Server>),
    request: KnownRequest,
) -> bool {
    let KnownRequest { vars, key, taken } = request;
    let fd = match stream.try_clone() {
        Ok(fd) => OwnedFd::from(fd),
        Err(e) => {
            log::error!(
                "WSGIRS507: (wsgi:{}) could not hand request '{}' to the ASGI event loop: {e}",
                daemon.group(),
                vars.get_str("REQUEST_URI").unwrap_or_default()
            );
            return refuse(stream, taken.framed);
        }
    };
    let conn = connection(daemon, stream, fd, taken, &vars, &key);
    server.enqueue(Request {
        app,
        scope: Scope::Later(Box::new(move |py| {
            HttpScope::from_cgi(vars.public()).to_dict(py)
        })),
        conn,
    });
    true
}

/// The connection on `stream` as the loop takes it (`fd` its own
/// descriptor of it); it belongs to the hand-over from now on (see
/// [`handed()`]).
fn connection(
    daemon: &Arc<Daemon>,
    stream: &UnixStream,
    fd: OwnedFd,
    taken: Taken,
    vars: &Vars,
    key: &ScriptKey,
) -> Connection {
    let Taken { body, framed, busy } = taken;
    Connection {
        fd,
        body: body_source(body),
        framed,
        keep_alive: framed,
        script: key.path.display().to_string(),
        done: handed(daemon, stream, busy, vars),
    }
}

/// The request body as the loop takes it.
fn body_source(body: Body) -> BodySource {
    match body {
        Body::Memory { data, .. } => BodySource::Memory(data),
        Body::Framed { .. } => BodySource::Framed,
        Body::Plain { early, left, .. } => {
            let early_len = early.len() as u64;
            let mut early = early;
            early.truncate(left.min(early_len) as usize);
            BodySource::Plain {
                left: left.saturating_sub(early_len),
                early,
            }
        }
    }
}

/// Logs a request the loop could not be given, with the Python error.
fn handover_failed(py: Python<'_>, daemon: &Daemon, vars: &Vars, e: &PyErr) {
    crate::wsgi::log_script_error(
        py,
        &format!(
            "WSGIRS507: (wsgi:{}) could not hand request '{}' to the ASGI event loop",
            daemon.group(),
            vars.get_str("REQUEST_URI").unwrap_or_default()
        ),
        Some(e),
        |line| log::error!("{line}"),
    );
}

/// Starts the lifespan of each ASGI application among the group's start-up
/// scripts (`WSGIImportScript`, aliases naming both groups), so its startup
/// runs before the process serves; a script loaded on demand starts it
/// before its first request instead. Only `application` and `app` are
/// looked at (a start-up script has no alias to name another callable).
pub(super) fn start_lifespans(daemon: &Arc<Daemon>) {
    for key in &daemon.launch.preloads {
        let interface = daemon
            .launch
            .default_interface
            .filter(|_| daemon.launch.default_script.as_ref() == Some(key));
        if interface == Some(Interface::Wsgi) {
            continue;
        }
        let started = interp::with_group(&key.group, |py| -> PyResult<()> {
            // A failed load was logged by the preload.
            let Ok(module) = daemon.scripts.module(py, key, None, false) else {
                return Ok(());
            };
            let app = [DEFAULT_CALLABLE, ASGI_CALLABLE].iter().find_map(|name| {
                module.getattr_opt(*name).ok().flatten().filter(|app| {
                    interface == Some(Interface::Asgi) || crate::asgi::is_asgi_app(app)
                })
            });
            match app {
                Some(app) => server(py, daemon, &key.group)?.preload(
                    py,
                    &app,
                    &key.path.display().to_string(),
                ),
                None => Ok(()),
            }
        });
        let failed = match started {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        log::error!(
            "WSGIRS508: (wsgi:{}) could not start the ASGI lifespan of '{}': {failed}",
            daemon.group(),
            key.path.display()
        );
    }
}
