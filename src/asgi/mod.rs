//! ASGI 3 applications (FastAPI, Starlette, Django's ASGI handler) in
//! daemon processes. Like [`crate::wsgi`], it knows nothing about Apache or
//! daemon processes: the daemon layer hands it connections and hooks.
//!
//! How a request runs. Each application group of a daemon process that
//! serves an ASGI application gets one asyncio event loop (uvloop's when
//! uvloop is installed) on a thread of its own ([`Server::run`]). The
//! daemon's worker threads keep doing what they do for WSGI: take a
//! connection from the process's epoll set, read and check the request's
//! vars (secret, restart, maximum-requests, queue timeout, a changed
//! script). For an ASGI application the worker then hands the request
//! over (a [`Request`]: the scope, built here from the CGI variables, the
//! body read so far, a duplicate of the connection's descriptor) and is
//! free again at once; it never waits for the application. A request for
//! a script already known to hold an ASGI application goes without the
//! GIL ([`Server::enqueue`]: the loop's thread builds its scope), the
//! first one with it ([`Server::submit`]); either way one function
//! ([`start`]) turns it into server.py's objects. The loop owns the
//! duplicate from then on and speaks the daemon protocol on it
//! with non-blocking I/O through an asyncio transport: the body after the
//! go-ahead as the application awaits `receive()`, the response as it
//! awaits `send()`, with flow control both ways (reading pauses while the
//! application has 256 KiB unread; `send()` of a body part waits while
//! 64 KiB are unsent). So a process serves as many concurrent requests as
//! its loop can hold, whatever `threads=` is; `threads=` bounds the loop's
//! default executor (`run_in_executor(None, ...)`, `asyncio.to_thread`,
//! asgiref's `sync_to_async`).
//!
//! Why the loop, not Rust, does the socket I/O: a response is produced by
//! `await send(...)` on the loop's thread, and a write that would block
//! must suspend that coroutine, not a thread; the loop's transports do
//! exactly that (and uvloop's do it in C). The descriptor is duplicated so
//! that the daemon keeps its own: when the response has ended, the loop
//! stops reading (the client's next request stays in the socket), closes
//! its duplicate and calls the `done` hook, which gives the connection
//! back to the epoll set, or closes it.
//!
//! What else runs on the loop: the lifespan protocol (startup before an
//! application's first request, shutdown from mod_wsgi's `process_stopping`
//! event, so at a graceful stop), `request-timeout` (the request's task is
//! cancelled and 504 answered if nothing was sent yet), and error
//! answers. The Python side, loaded once per interpreter, is `server.py`
//! (the loop and its executor, the hand-over), `connection.py` (a
//! request's HTTP cycle on the connection) and `lifespan.py`.

mod scope;
mod source;

use std::ffi::CStr;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCFunction, PyDict, PyFunction, PyModule, PyTuple, PyType};

pub use scope::HttpScope;
pub use source::embedded_module;

use crate::wsgi::log_script_error;

/// The Python side, one module a job: its name in each interpreter's
/// `sys.modules`, its name in tracebacks and its source. The server (the
/// loop, the hand-over) imports the other two, so it comes last.
const MODULES: [(&CStr, &CStr, &str); 3] = [
    (
        c"_wsgi_rs_asgi_connection",
        c"<mod_wsgi_rs asgi connection>",
        include_str!("connection.py"),
    ),
    (
        c"_wsgi_rs_asgi_lifespan",
        c"<mod_wsgi_rs asgi lifespan>",
        include_str!("lifespan.py"),
    ),
    (
        c"_wsgi_rs_asgi",
        c"<mod_wsgi_rs asgi server>",
        include_str!("server.py"),
    ),
];

/// The server module of this interpreter, loaded (with the modules it
/// imports) on first use.
fn module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let [connection, lifespan, server] = MODULES;
    for (name, file, source) in [connection, lifespan] {
        embedded_module(py, name, file, source)?;
    }
    let (name, file, source) = server;
    embedded_module(py, name, file, source)
}

/// `CO_COROUTINE`: the code object is an `async def`'s.
const CO_COROUTINE: u32 = 0x80;

/// Whether `f` is a coroutine function (`inspect.iscoroutinefunction`,
/// without importing anything: this runs for every request of a WSGI
/// application too): a bound method's function counts, and so does a
/// callable marked by asgiref's `markcoroutinefunction`.
fn is_coroutine_function(f: &Bound<'_, PyAny>) -> bool {
    let py = f.py();
    let mut f = f.clone();
    if !f.is_instance_of::<PyFunction>() {
        match f.getattr_opt(intern!(py, "__func__")) {
            Ok(Some(inner)) => f = inner,
            _ => return false,
        }
    }
    if matches!(f.getattr_opt(intern!(py, "_is_coroutine")), Ok(Some(mark)) if !mark.is_none()) {
        return true;
    }
    if !f.is_instance_of::<PyFunction>() {
        return false;
    }
    f.getattr(intern!(py, "__code__"))
        .and_then(|code| code.getattr(intern!(py, "co_flags")))
        .and_then(|flags| flags.extract::<u32>())
        .is_ok_and(|flags| flags & CO_COROUTINE != 0)
}

/// Whether `app` is an ASGI 3 application: a coroutine function, or an
/// instance whose `__call__` is one (a class is a factory, not an
/// application).
pub fn is_asgi_app(app: &Bound<'_, PyAny>) -> bool {
    if is_coroutine_function(app) {
        return true;
    }
    if app.is_instance_of::<PyType>() || app.is_instance_of::<PyFunction>() {
        return false;
    }
    matches!(app.getattr_opt(intern!(app.py(), "__call__")), Ok(Some(call)) if is_coroutine_function(&call))
}

/// The daemon protocol's bytes the server writes, given by the daemon
/// layer (which owns the wire format).
pub struct Wire {
    /// The go-ahead for a framed body.
    pub go_ahead: u8,
    /// Ends a response, the connection staying open.
    pub end_keep: [u8; 4],
    /// Ends a response, the connection then closing.
    pub end_close: [u8; 4],
    /// Largest body frame.
    pub max_frame: usize,
    /// The header that marks the daemon's own error answers.
    pub internal_header: &'static str,
    /// The daemon's error answers: (status, framed peer) and their bytes
    /// (500 and 504, for both kinds of peer).
    pub errors: Vec<((u16, bool), Vec<u8>)>,
}

/// What a server is for.
pub struct Settings {
    /// The process group, for log lines.
    pub group: String,
    /// `threads=`: the default executor's size.
    pub threads: usize,
    /// `request-timeout` (zero: none).
    pub request_timeout: Duration,
    /// `shutdown-timeout`: how long the lifespan shutdown may take.
    pub shutdown_timeout: Duration,
}

/// What the daemon does when the server reports.
pub struct Hooks {
    /// A lifespan startup failed: the process must stop.
    pub startup_failed: Box<dyn Fn(&str) + Send + Sync>,
    /// A request ran past `request-timeout` (and was cancelled).
    pub timed_out: Box<dyn Fn() + Send + Sync>,
}

/// How the request body reaches the application.
pub enum BodySource {
    /// Read in full before the hand-over.
    Memory(Vec<u8>),
    /// Framed on the connection once the server sends the go-ahead.
    Framed,
    /// `left` more raw bytes on the connection after `early` (plain uwsgi
    /// peers).
    Plain {
        /// Body bytes read with the vars.
        early: Vec<u8>,
        /// Bytes still to come.
        left: u64,
    },
}

impl BodySource {
    /// connection.py's body mode (BODY_MEMORY, BODY_FRAMED, BODY_PLAIN), the
    /// bytes at hand and how many more come.
    fn parts(self) -> (u8, Vec<u8>, u64) {
        match self {
            BodySource::Memory(data) => (0, data, 0),
            BodySource::Framed => (1, Vec::new(), 0),
            BodySource::Plain { early, left } => (2, early, left),
        }
    }
}

/// Builds a request's scope dict, on the loop's thread.
pub type ScopeBuilder =
    Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyDict>> + Send>;

/// A request's scope.
pub enum Scope {
    /// Built by a worker that holds the GIL anyway ([`Server::submit`]).
    Built(Py<PyDict>),
    /// Made on the loop's thread ([`Server::enqueue`]).
    Later(ScopeBuilder),
}

/// The connection a request came on, and what the loop does with it.
pub struct Connection {
    /// The loop's own descriptor of the connection.
    pub fd: OwnedFd,
    /// The request's body.
    pub body: BodySource,
    /// The peer is our client (frames, end marker, keep-alive).
    pub framed: bool,
    /// The connection may carry the client's next request.
    pub keep_alive: bool,
    /// The script, for messages.
    pub script: String,
    /// Called once, on the loop's thread, when the loop is done with the
    /// connection: true when it is ready for the next request. Dropped
    /// uncalled if the loop cannot take the request.
    pub done: Box<dyn FnOnce(bool) + Send>,
}

/// One request handed over to the loop, by either entry: plain Rust data,
/// which [`start`] turns into server.py's objects.
pub struct Request {
    /// The ASGI application (only touched with the GIL held).
    pub app: Arc<Py<PyAny>>,
    /// The request's scope.
    pub scope: Scope,
    /// Its connection.
    pub conn: Connection,
}

/// Requests waiting for the loop, and the pipe that wakes it: a worker
/// writes a byte only when the queue was empty, so a busy loop takes many
/// requests per wake-up, and no worker thread needs the GIL (which the
/// loop's thread holds while it runs Python) to hand a request over.
struct Inbox {
    /// The waiting requests.
    queue: Mutex<Vec<Request>>,
    /// Written by workers (non-blocking).
    wake: UnixStream,
    /// Read by the loop (non-blocking), registered with `add_reader`.
    woken: UnixStream,
}

/// One application group's event loop and its Python server object.
pub struct Server {
    /// The `Server` of server.py.
    server: Py<PyAny>,
    /// Requests handed over without the GIL.
    inbox: Arc<Inbox>,
    /// The process group, for log lines.
    group: String,
}

/// A Python callable running `f` (pyo3 closures must be `Fn`).
fn callable<'py, F>(py: Python<'py>, f: F) -> PyResult<Bound<'py, PyCFunction>>
where
    F: Fn(&Bound<'_, PyTuple>) -> PyResult<()> + Send + Sync + 'static,
{
    PyCFunction::new_closure(py, None, None, move |args, _kwargs| f(args))
}

/// The `log(level, message)` hook.
fn log_hook(py: Python<'_>) -> PyResult<Bound<'_, PyCFunction>> {
    callable(py, |args| {
        let (level, message): (String, String) = args.extract()?;
        let level = match level.as_str() {
            "error" => log::Level::Error,
            "warning" => log::Level::Warn,
            "info" => log::Level::Info,
            _ => log::Level::Debug,
        };
        log::log!(level, "{message}");
        Ok(())
    })
}

/// The `log_exception(message, exc)` hook: the one script-error logger.
fn log_exception_hook(py: Python<'_>) -> PyResult<Bound<'_, PyCFunction>> {
    callable(py, |args| {
        let py = args.py();
        let message: String = args.get_item(0)?.extract()?;
        let err = PyErr::from_value(args.get_item(1)?);
        log_script_error(py, &message, Some(&err), |line| log::error!("{line}"));
        Ok(())
    })
}

impl Server {
    /// A server for the current interpreter (its loop does not run yet).
    pub fn new(py: Python<'_>, settings: &Settings, wire: &Wire, hooks: Hooks) -> PyResult<Server> {
        let module = module(py)?;
        let errors = PyDict::new(py);
        for ((status, framed), bytes) in &wire.errors {
            errors.set_item((*status, *framed), PyBytes::new(py, bytes))?;
        }
        let wire = module.getattr("Wire")?.call1((
            PyBytes::new(py, &[wire.go_ahead]),
            PyBytes::new(py, &wire.end_keep),
            PyBytes::new(py, &wire.end_close),
            wire.max_frame,
            wire.internal_header,
            errors,
        ))?;
        let Hooks {
            startup_failed,
            timed_out,
        } = hooks;
        let startup_failed = callable(py, move |args| {
            let reason: String = args.get_item(0)?.extract()?;
            startup_failed(&reason);
            Ok(())
        })?;
        let timed_out = callable(py, move |_| {
            timed_out();
            Ok(())
        })?;
        let hooks = (
            log_hook(py)?,
            log_exception_hook(py)?,
            startup_failed,
            timed_out,
        );
        let (wake, woken) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        woken.set_nonblocking(true)?;
        let inbox = Arc::new(Inbox {
            queue: Mutex::new(Vec::new()),
            wake,
            woken,
        });
        let drain = drain_hook(py, inbox.clone(), settings.group.clone())?;
        let server = module.getattr("Server")?.call1((
            &settings.group,
            settings.threads,
            settings.request_timeout.as_secs_f64(),
            settings.shutdown_timeout.as_secs_f64(),
            wire,
            hooks,
            (inbox.woken.as_raw_fd(), drain),
        ))?;
        Ok(Server {
            server: server.unbind(),
            inbox,
            group: settings.group.clone(),
        })
    }

    /// Hands a request over to the loop from any thread, without the GIL:
    /// the loop's thread builds its scope and starts it. The request is
    /// dropped (its descriptor closed, `done` uncalled) if the loop cannot
    /// be woken.
    pub fn enqueue(&self, request: Request) {
        let inbox = &self.inbox;
        let was_empty = {
            let mut queue = inbox.queue.lock().unwrap_or_else(|p| p.into_inner());
            let was_empty = queue.is_empty();
            queue.push(request);
            was_empty
        };
        if was_empty {
            // A full pipe (WouldBlock) is readable already: the loop wakes.
            if let Err(e) = (&inbox.wake).write(&[1]) {
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    log::error!(
                        "WSGIRS530: (wsgi:{}) could not wake the ASGI event loop: {e}",
                        self.group
                    );
                    let lost =
                        std::mem::take(&mut *inbox.queue.lock().unwrap_or_else(|p| p.into_inner()));
                    drop(lost);
                }
            }
        }
    }

    /// Runs the loop on this thread, for as long as the process lives.
    pub fn run(&self, py: Python<'_>) -> PyResult<()> {
        self.server.call_method0(py, "run").map(drop)
    }

    /// "uvloop" or "asyncio".
    pub fn loop_name(&self, py: Python<'_>) -> String {
        self.server
            .getattr(py, "loop_name")
            .and_then(|n| n.extract(py))
            .unwrap_or_default()
    }

    /// Hands a request over to the loop from a thread holding the GIL
    /// (server.py's `Server.submit` schedules it thread-safely). On an
    /// error the descriptor is closed and `done` is dropped uncalled.
    pub fn submit(&self, py: Python<'_>, request: Request) -> PyResult<()> {
        let submit = self.server.bind(py).getattr(intern!(py, "submit"))?;
        start(py, &submit, request)
    }

    /// Hands a connection that leaves HTTP (a WebSocket) to the loop, from
    /// any thread: `start(state)` makes the coroutine that serves it, run
    /// after the application's lifespan startup (state None if that
    /// failed); what it raises is logged under `failure`; `done(false)`
    /// follows.
    pub fn submit_task(
        &self,
        py: Python<'_>,
        app: &Bound<'_, PyAny>,
        start: Bound<'_, PyAny>,
        script: String,
        failure: String,
        done: Box<dyn FnOnce(bool) + Send>,
    ) -> PyResult<()> {
        let done = done_hook(py, done)?;
        self.server
            .call_method1(py, "submit_task", (app, start, script, failure, done))
            .map(drop)
    }

    /// Starts the application's lifespan (its startup) on the loop, before
    /// any request; returns at once.
    pub fn preload(&self, py: Python<'_>, app: &Bound<'_, PyAny>, script: &str) -> PyResult<()> {
        self.server
            .call_method1(py, "preload", (app, script))
            .map(drop)
    }
}

/// The loop's reader of the wake-up pipe, `drain(begin)`: takes every
/// queued request and starts it with server.py's `begin(...)` (the
/// arguments of `Server.submit`), on the loop's thread.
fn drain_hook(
    py: Python<'_>,
    inbox: Arc<Inbox>,
    group: String,
) -> PyResult<Bound<'_, PyCFunction>> {
    callable(py, move |args| {
        let py = args.py();
        let begin = args.get_item(0)?;
        // Read the wake-ups before taking the queue: a request queued after
        // the take writes a new one, so it is never left behind.
        let mut buf = [0u8; 64];
        while matches!((&inbox.woken).read(&mut buf), Ok(n) if n > 0) {}
        let queued = std::mem::take(&mut *inbox.queue.lock().unwrap_or_else(|p| p.into_inner()));
        for request in queued {
            let script = request.conn.script.clone();
            if let Err(e) = start(py, &begin, request) {
                log_script_error(
                    py,
                    &format!(
                        "WSGIRS507: (wsgi:{group}) could not hand a request for '{script}' to the ASGI event loop"
                    ),
                    Some(&e),
                    |line| log::error!("{line}"),
                );
            }
        }
        Ok(())
    })
}

/// Calls `begin` (server.py's `Server._begin`, or `Server.submit`, which
/// schedules it on the loop) with the request's arguments, made here from
/// its Rust data: the one way a request starts. On an error the
/// descriptor is closed and `done` dropped uncalled.
fn start(py: Python<'_>, begin: &Bound<'_, PyAny>, request: Request) -> PyResult<()> {
    let Request { app, scope, conn } = request;
    let scope = match scope {
        Scope::Built(scope) => scope.into_bound(py),
        Scope::Later(build) => build(py)?,
    };
    let Connection {
        fd,
        body,
        framed,
        keep_alive,
        script,
        done,
    } = conn;
    let (mode, early, left) = body.parts();
    let done = done_hook(py, done)?;
    begin.call1((
        app.bind(py),
        fd.as_raw_fd(),
        scope,
        mode,
        PyBytes::new(py, &early),
        left,
        framed,
        keep_alive,
        script,
        done,
    ))?;
    // The loop's socket object owns it now.
    std::mem::forget(fd);
    Ok(())
}

/// The `done(keep)` Python callable running `done` once.
fn done_hook<'py>(
    py: Python<'py>,
    done: Box<dyn FnOnce(bool) + Send>,
) -> PyResult<Bound<'py, PyCFunction>> {
    let done = Mutex::new(Some(done));
    callable(py, move |args| {
        let keep: bool = args.get_item(0)?.extract()?;
        let taken = done.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(done) = taken {
            done(keep);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use pyo3::prelude::*;
    use pyo3::types::PyDict;

    use super::is_asgi_app;
    use crate::interp::{self, PythonSettings};

    #[test]
    fn tells_asgi_applications_from_wsgi_ones() {
        interp::initialize(&PythonSettings::default()).expect("Python starts");
        interp::with_python(|py| {
            let globals = PyDict::new(py);
            py.run(
                cr#"
import functools
async def coroutine_app(scope, receive, send): pass
def wsgi_app(environ, start_response): pass
class AsgiApp:
    async def __call__(self, scope, receive, send): pass
class WsgiApp:
    def __call__(self, environ, start_response): pass
class Marked:
    pass
marked = Marked()
marked.__call__ = None
def marked_function(scope, receive, send): pass
import asyncio.coroutines
marked_function._is_coroutine = asyncio.coroutines._is_coroutine
cases = {
    'coroutine_app': (coroutine_app, True),
    'instance': (AsgiApp(), True),
    'bound': (AsgiApp().__call__, True),
    'marked': (marked_function, True),
    'wsgi_app': (wsgi_app, False),
    'wsgi_instance': (WsgiApp(), False),
    'class': (AsgiApp, False),
    'number': (42, False),
}
"#,
                Some(&globals),
                None,
            )
            .unwrap();
            let cases = globals.get_item("cases").unwrap().unwrap();
            let cases = cases.cast::<PyDict>().unwrap();
            for (name, case) in cases.iter() {
                let (app, expected): (Bound<'_, PyAny>, bool) = case.extract().unwrap();
                assert_eq!(is_asgi_app(&app), expected, "{name}");
            }
        });
    }
}
