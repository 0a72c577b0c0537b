//! WebSockets for ASGI applications in daemon processes: the `websocket`
//! scope of the ASGI spec over a connection Apache tunnels to us (see
//! `httpd::daemon_client::tunnel` for Apache's side and
//! [`protocol`](super::protocol) for the `WSGI_RS_UPGRADE` exchange).
//!
//! - [`handshake`]: checking the client's opening handshake and writing the
//!   101 that accepts it (Apache relays it unchanged).
//! - [`channel`]: the connection as the event loop drives it: a
//!   non-blocking socket with tungstenite's framing on top.
//! - `serve.py`: the ASGI side (`receive`/`send`, the message state
//!   machine), run as a coroutine on the daemon process's event loop; it
//!   waits on the socket with the loop's `add_reader`/`add_writer`, so an
//!   open WebSocket holds no thread.

pub mod channel;
pub mod handshake;

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

use super::protocol::{self, Vars};
use channel::Channel;
use handshake::Handshake;

/// The ASGI side, compiled once per interpreter that serves WebSockets.
const SERVE_PY: &str = include_str!("serve.py");

/// The name `serve.py` has in `sys.modules`.
const MODULE: &std::ffi::CStr = c"_wsgi_rs_websocket";

/// Whether the request asks for a WebSocket our client can tunnel.
pub fn requested(vars: &Vars) -> bool {
    vars.get(protocol::VAR_UPGRADE) == Some(b"websocket")
}

/// A WebSocket ready for the event loop.
pub struct Task<'py> {
    /// `start(state)` makes the coroutine that serves it.
    pub start: Bound<'py, PyAny>,
    /// What an exception the application raises is logged under.
    pub failure: String,
}

/// Prepares a WebSocket request for the event loop: `http_scope` is the
/// scope it would have as an HTTP request (its `websocket` scope is made
/// from it), `conn` the loop's own descriptor of the daemon connection,
/// which the task owns from now on (after its 101 it carries the
/// WebSocket's bytes). Ok(Err(answer)): the handshake is malformed (logged)
/// and `answer` (a 400) is what to write instead, the application unrun.
pub fn prepare<'py>(
    py: Python<'py>,
    group: &str,
    app: &Bound<'py, PyAny>,
    http_scope: &Bound<'py, PyDict>,
    vars: &Vars,
    conn: OwnedFd,
) -> PyResult<Result<Task<'py>, Vec<u8>>> {
    let uri = vars.get_str("REQUEST_URI").unwrap_or_default();
    let handshake = match Handshake::from_vars(vars) {
        Ok(handshake) => handshake,
        Err(why) => {
            log::info!("WSGIRS543: (wsgi:{group}) WebSocket request '{uri}' refused (400): {why}");
            return Ok(Err(protocol::error_response(400, "Bad Request", true)));
        }
    };
    let subprotocols = handshake.subprotocols.clone();
    let channel = Bound::new(py, Channel::new(UnixStream::from(conn), handshake)?)?;
    let serve = serve_module(py)?.getattr("serve")?;
    let start = py.import("functools")?.getattr("partial")?.call1((
        serve,
        app,
        http_scope,
        subprotocols,
        channel,
    ))?;
    Ok(Ok(Task {
        start,
        failure: format!(
            "WSGIRS544: (wsgi:{group}) ASGI application raised while serving WebSocket '{uri}'"
        ),
    }))
}

/// `serve.py` as a module of the calling interpreter.
fn serve_module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    crate::asgi::embedded_module(py, MODULE, c"<mod_wsgi_rs websocket>", SERVE_PY)
}
