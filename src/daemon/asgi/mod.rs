//! A daemon process's side of ASGI (see [`crate::asgi`] for the design):
//! which requests go to the event loop, starting one loop per application
//! group, and the hand-over itself. A handed-over request still counts as
//! in flight for the graceful drain, as busy for the metrics and as
//! activity, until the loop is done with its connection; the connection
//! then goes back to the epoll set (or is closed) as a worker would.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::sync::MutexExt;

use super::backend::Body;
use super::intake::Conn;
use super::protocol::{self, Vars};
use super::state::Daemon;
use super::stop::StopReason;
use super::websocket;
use crate::asgi::{
    BodySource, Connection, Hooks, HttpScope, Request, Scope, Server, Settings, Wire,
};
use crate::config::Interface;
use crate::interp::{self, ScriptError, ScriptKey};
use crate::metrics::board::Busy;

/// Each application group's server, made on its first ASGI request.
static SERVERS: Mutex<Vec<(String, Arc<Server>)>> = Mutex::new(Vec::new());

/// The ASGI applications requests have reached, remembered so that the
/// next request for the same script hands over without the GIL: the slow
/// path (a worker thread holding the GIL to look the script up, tell ASGI
/// from WSGI and build the scope) competes for the GIL with the event
/// loop's thread, which holds it whenever Python runs there.
static KNOWN: Mutex<Vec<Known>> = Mutex::new(Vec::new());

/// Whether [`KNOWN`] has ever had an entry: a process serving only WSGI
/// applications then never takes the table's lock, which every one of its
/// requests would otherwise do.
static ANY_KNOWN: AtomicBool = AtomicBool::new(false);

/// A script whose callable is an ASGI application, as the slow path found.
struct Known {
    /// The script and application group.
    key: ScriptKey,
    /// The callable's name.
    callable: String,
    /// The request's `interface=` and whether it named its script: the
    /// decision depends on both.
    interface: Option<Vec<u8>>,
    /// The request named its script (else the group's default one).
    named: bool,
    /// The script's mtime when it was found, so a changed script takes the
    /// slow path (which replaces the process when script reloading is on).
    mtime: Option<i64>,
    /// The application.
    app: Arc<Py<PyAny>>,
    /// Its group's server.
    server: Arc<Server>,
}

impl Known {
    /// Whether this is the entry of such a request.
    fn matches(&self, vars: &Vars, key: &ScriptKey, callable: &str) -> bool {
        self.key == *key
            && self.callable == callable
            && self.named == vars.get(protocol::VAR_SCRIPT).is_some()
            && self.interface.as_deref() == vars.get(protocol::VAR_INTERFACE)
    }
}

/// What the fast hand-over needs of a request.
pub(super) struct Lookup<'a> {
    /// Its vars.
    pub vars: &'a Vars,
    /// The script and application group.
    pub key: &'a ScriptKey,
    /// The callable's name.
    pub callable: &'a str,
    /// The script's mtime as Apache saw it.
    pub mtime: Option<i64>,
    /// `WSGIScriptReloading`.
    pub reloading: bool,
}

/// The application and server of a request that can be handed over
/// without the GIL: its script is known to hold an ASGI application and
/// has not changed since (with script reloading on, only when Apache gave
/// the script's mtime, else finding out would take a stat the slow path
/// does). A WebSocket takes the slow path.
pub(super) fn known(request: &Lookup<'_>) -> Option<(Arc<Py<PyAny>>, Arc<Server>)> {
    if !ANY_KNOWN.load(Ordering::Acquire) || websocket::requested(request.vars) {
        return None;
    }
    let known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    let entry = known
        .iter()
        .find(|k| k.matches(request.vars, request.key, request.callable))?;
    if request.reloading && (request.mtime.is_none() || request.mtime != entry.mtime) {
        return None;
    }
    Some((entry.app.clone(), entry.server.clone()))
}

/// Remembers the application the slow path found for such a request.
fn remember(py: Python<'_>, request: &Lookup<'_>, app: &Arc<Py<PyAny>>, server: &Arc<Server>) {
    let mut known = KNOWN
        .lock_py_attached(py)
        .unwrap_or_else(|p| p.into_inner());
    let entry = Known {
        key: request.key.clone(),
        callable: request.callable.to_owned(),
        interface: request
            .vars
            .get(protocol::VAR_INTERFACE)
            .map(<[u8]>::to_vec),
        named: request.vars.get(protocol::VAR_SCRIPT).is_some(),
        mtime: request.mtime,
        app: app.clone(),
        server: server.clone(),
    };
    match known
        .iter_mut()
        .find(|k| k.matches(request.vars, request.key, request.callable))
    {
        Some(old) => *old = entry,
        None => known.push(entry),
    }
    ANY_KNOWN.store(true, Ordering::Release);
}

/// A request's busy mark on the metrics board and when it began.
pub(super) type BusyMark = Option<(Busy<'static>, Instant)>;

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
fn server(py: Python<'_>, daemon: &Arc<Daemon>, group: &str) -> PyResult<Arc<Server>> {
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

/// A handed-over request's bookkeeping, done once: when the loop calls
/// `done`, or when the hand-over fails (drop).
struct Handed {
    /// The process's state.
    daemon: Arc<Daemon>,
    /// The daemon's own descriptor of the connection.
    conn: Option<OwnedFd>,
    /// Busy on the metrics board since the worker took it.
    busy: BusyMark,
    /// The request counts as activity.
    counts: bool,
}

impl Handed {
    /// The loop is done with the connection: park it for the client's next
    /// request when `keep`, else close it; the request is over.
    fn finish(&mut self, keep: bool) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let daemon = &self.daemon;
        // The loop made the shared file description non-blocking; workers
        // read with blocking calls and the socket timeout.
        let stream = UnixStream::from(conn);
        let keep = keep && stream.set_nonblocking(false).is_ok();
        let conn = Conn::resting(stream);
        let mut gate = daemon.gate.lock().unwrap_or_else(|p| p.into_inner());
        let parked = keep
            && !gate.closing
            && match daemon.poller.park(conn, true) {
                Ok(()) => true,
                // Never parked before (a fresh connection): add it.
                Err(conn) => daemon.poller.park(conn, false).is_ok(),
            };
        if !parked {
            daemon.connections.fetch_sub(1, Ordering::SeqCst);
        }
        gate.active -= 1;
        daemon.idle.notify_all();
        drop(gate);
        if let (Some(m), Some((_, begun))) = (daemon.launch.metrics, &self.busy) {
            m.duration(begun.elapsed());
        }
        self.busy = None;
        if self.counts {
            daemon.note_activity();
        }
    }
}

impl Drop for Handed {
    fn drop(&mut self) {
        self.finish(false);
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
/// [`known`]): the loop's thread builds its scope from the vars. False (a
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
/// [`handed`]).
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

/// The request is in flight until the loop calls the `done` this returns
/// (or drops it): the connection on `stream` belongs to it from now on.
fn handed(
    daemon: &Arc<Daemon>,
    stream: &UnixStream,
    busy: BusyMark,
    vars: &Vars,
) -> Box<dyn FnOnce(bool) + Send> {
    daemon.gate.lock().unwrap_or_else(|p| p.into_inner()).active += 1;
    let handed = Mutex::new(Handed {
        daemon: daemon.clone(),
        // SAFETY: the worker gives up the descriptor without closing it
        // when serve() answers After::Handed (see process.rs), which it
        // does whenever the hand-over functions return true, as they do
        // once they called this.
        conn: Some(unsafe { OwnedFd::from_raw_fd(stream.as_raw_fd()) }),
        busy,
        counts: !vars.flag(protocol::VAR_IGNORE_ACTIVITY),
    });
    Box::new(move |keep| {
        handed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .finish(keep)
    })
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
