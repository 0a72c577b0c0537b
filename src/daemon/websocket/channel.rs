//! One WebSocket connection as `serve.py` drives it from the event loop:
//! the daemon connection, non-blocking, with tungstenite's framing (server
//! role, raw-stream mode: the handshake is ours, see `handshake`). Every
//! call does what it can without waiting and says so; the loop waits for
//! the socket with `add_reader`/`add_writer` and calls again.
//!
//! Bytes that must go out before any frame (the 101 head, or a refusal's
//! HTTP response) sit in [`Conn::head`] and are written first.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard};

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use tungstenite::error::{Error as WsError, ProtocolError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::Message;

use super::handshake::Handshake;
use crate::daemon::protocol;

/// Close code for a connection that ended without a close frame (RFC 6455
/// 7.1.5), as the application's `websocket.disconnect` reports it.
pub const ABNORMAL: u16 = 1006;

/// The daemon connection, with the bytes that go before any frame.
struct Conn {
    /// The socket, non-blocking.
    stream: UnixStream,
    /// Not yet written head bytes.
    head: Vec<u8>,
}

impl Conn {
    /// Writes what is left of the head; Ok(false) when the socket is full.
    fn drain_head(&mut self) -> std::io::Result<bool> {
        while !self.head.is_empty() {
            match self.stream.write(&self.head) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.head.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.drain_head()? {
            return Err(ErrorKind::WouldBlock.into());
        }
        self.stream.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.drain_head()? {
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(())
    }
}

/// A WebSocket connection (`mod_wsgi.WebSocket`), for `serve.py` only.
#[pyclass(module = "mod_wsgi", name = "WebSocket", frozen, immutable_type)]
pub struct Channel {
    /// The connection's descriptor, for the loop's readiness callbacks.
    fd: i32,
    /// The client's handshake.
    handshake: Handshake,
    /// The framed connection. Only the loop's thread calls in; the lock
    /// makes the object safe wherever Python drops it.
    ws: Mutex<WebSocket<Conn>>,
}

impl Channel {
    /// Takes over the daemon connection.
    pub fn new(stream: UnixStream, handshake: Handshake) -> PyResult<Channel> {
        stream.set_nonblocking(true)?;
        let fd = stream.as_raw_fd();
        let conn = Conn {
            stream,
            head: Vec::new(),
        };
        let ws = WebSocket::from_raw_socket(conn, Role::Server, Some(WebSocketConfig::default()));
        Ok(Channel {
            fd,
            handshake,
            ws: Mutex::new(ws),
        })
    }

    /// The framed connection.
    fn ws(&self) -> MutexGuard<'_, WebSocket<Conn>> {
        self.ws.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A message queued for sending; Ok even when the socket is full (the
/// frame waits in tungstenite's buffer for [`Channel::flush`]).
fn queued(sent: Result<(), WsError>) -> PyResult<()> {
    match sent {
        Ok(()) => Ok(()),
        Err(WsError::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(()),
        Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
            Err(PyOSError::new_err("the WebSocket is closed"))
        }
        Err(WsError::Protocol(ProtocolError::SendAfterClosing)) => {
            Err(PyOSError::new_err("the WebSocket is closed"))
        }
        Err(WsError::Io(e)) => Err(e.into()),
        Err(e) => Err(PyRuntimeError::new_err(e.to_string())),
    }
}

#[pymethods]
impl Channel {
    /// The socket's descriptor.
    fn fileno(&self) -> i32 {
        self.fd
    }

    /// Queues the 101 accepting the handshake.
    #[pyo3(signature = (subprotocol, headers))]
    fn accept(
        &self,
        subprotocol: Option<String>,
        headers: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> PyResult<()> {
        let head = self
            .handshake
            .accept(subprotocol.as_deref(), &headers)
            .map_err(PyValueError::new_err)?;
        self.ws().get_mut().head.extend_from_slice(&head);
        Ok(())
    }

    /// Queues an HTTP error answer instead of the 101 (a refused or failed
    /// handshake): Apache renders its own page for `status`.
    fn refuse(&self, status: u16, reason: &str) {
        let answer = protocol::error_response(status, reason, true);
        self.ws().get_mut().head.extend_from_slice(&answer);
    }

    /// The next message without waiting: None when none is complete yet,
    /// else `("text", str)`, `("bytes", bytes)` or `("close", (code,
    /// reason))` (the client's close frame, or 1006 when the connection
    /// ended without one).
    fn read<'py>(&self, py: Python<'py>) -> PyResult<Option<(&'static str, Bound<'py, PyAny>)>> {
        let mut ws = self.ws();
        loop {
            let closed = |code: u16, reason: &str| -> PyResult<_> {
                Ok(Some((
                    "close",
                    (code, reason).into_pyobject(py)?.into_any(),
                )))
            };
            return match ws.read() {
                Ok(Message::Text(text)) => {
                    Ok(Some(("text", PyString::new(py, text.as_str()).into_any())))
                }
                Ok(Message::Binary(data)) => {
                    Ok(Some(("bytes", PyBytes::new(py, &data).into_any())))
                }
                // Pings are answered by tungstenite (at the next flush).
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Ok(Message::Close(frame)) => match frame {
                    Some(CloseFrame { code, reason }) => closed(u16::from(code), reason.as_str()),
                    // A close frame without a code (RFC 6455 7.1.5).
                    None => closed(1005, ""),
                },
                Err(WsError::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(None),
                Err(WsError::Io(e)) if e.kind() == ErrorKind::Interrupted => continue,
                Err(WsError::Capacity(_)) => closed(1009, ""),
                Err(WsError::Utf8(_)) => closed(1007, ""),
                Err(_) => closed(ABNORMAL, ""),
            };
        }
    }

    /// Queues a text message.
    fn send_text(&self, text: String) -> PyResult<()> {
        queued(self.ws().write(Message::text(text)))
    }

    /// Queues a binary message.
    fn send_bytes(&self, data: Vec<u8>) -> PyResult<()> {
        queued(self.ws().write(Message::binary(data)))
    }

    /// Queues the close frame with `code` and `reason`.
    fn close(&self, code: u16, reason: String) -> PyResult<()> {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        match self.ws().close(Some(frame)) {
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Ok(()),
            other => queued(other),
        }
    }

    /// Writes what is queued; True when all of it went (or the connection
    /// is over, so nothing more can), False when the socket is full.
    fn flush(&self) -> PyResult<bool> {
        let mut ws = self.ws();
        match ws.flush() {
            Ok(()) => Ok(true),
            Err(WsError::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(false),
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                // A refusal never became a WebSocket: its head is all there is.
                ws.get_mut().drain_head().map_err(PyErr::from)
            }
            Err(WsError::Io(e)) => Err(e.into()),
            Err(e) => Err(PyOSError::new_err(e.to_string())),
        }
    }

    /// Ends the connection: the daemon's end of the tunnel closes, and
    /// Apache closes the client's.
    fn shutdown(&self) {
        let _ = self
            .ws()
            .get_ref()
            .stream
            .shutdown(std::net::Shutdown::Both);
    }
}
