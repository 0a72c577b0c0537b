//! WebSockets through Apache: a request that asks for one is forwarded with
//! `WSGI_RS_UPGRADE` (see `daemon::protocol`); when the daemon accepts it
//! (a `101` head), the client's connection is handed over to a tunnel, as
//! `mod_proxy_http`/`mod_proxy_wstunnel` do after a backend's 101: Apache
//! sends the 101 on, then relays raw bytes both ways between the client's
//! connection (through its connection filters, so TLS works) and the daemon
//! connection until either side closes. The WebSocket framing is the
//! daemon's business (`daemon::websocket`); Apache only moves bytes.
//!
//! The tunnel holds the Apache thread that runs it for as long as the
//! socket is open: httpd 2.4 has no public API to hand a connection's
//! polling to the event MPM (`mod_proxy_wstunnel` in 2.4 runs its tunnels
//! the same way), so every open WebSocket costs one Apache worker thread.

use std::ffi::c_int;
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::APLOG_ERR;
use crate::daemon::protocol::ResponseHead;
use crate::httpd::backend::ApacheBackend;
use crate::httpd::ffi;
use crate::httpd::request::Request;
use crate::wsgi::Backend;

/// What the client sends and the daemon answers are relayed in blocks of
/// this size.
const BLOCK: usize = 64 * 1024;

/// Whether `req` asks to become a WebSocket (RFC 6455 4.1: a GET over
/// HTTP/1.1 with `Upgrade: websocket` and `Connection: upgrade`, tokens in
/// any case). HTTP/2 requests never do: their protocol forbids `Upgrade`.
pub fn is_websocket_request(req: &Request<'_>) -> bool {
    let has_token = |value: Option<&[u8]>, token: &str| {
        value.is_some_and(|v| {
            v.split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    req.method() == b"GET"
        && req.protocol() == b"HTTP/1.1"
        && has_token(req.header_in(c"Upgrade"), "websocket")
        && has_token(req.header_in(c"Connection"), "upgrade")
}

/// Hands the client's connection over after the daemon's 101 (`head`) and
/// relays bytes until either side closes; `early`: what the daemon sent
/// after its head, already read. The handler's return value: DONE, the
/// connection is not reused.
pub(super) fn run(
    req: &Request<'_>,
    apache: &mut ApacheBackend,
    daemon: &UnixStream,
    head: &ResponseHead,
    early: &[u8],
    name: &str,
    socket_timeout: Duration,
) -> c_int {
    // The headers go out with the interim 101, Upgrade and Connection
    // included (the daemon wrote them).
    apache.start_response(head.status, &head.status_line, &head.headers);
    let mut client_timeout: ffi::apr_interval_time_t = -1;
    let line = std::ffi::CString::new(head.status_line.as_str()).unwrap_or_default();
    // SAFETY: live request; the status line is copied into its pool
    // before httpd keeps it.
    let client_fd = unsafe {
        let pooled = ffi::apr_pstrdup((*req.raw()).pool, line.as_ptr());
        ffi::wsgi_rs_tunnel_begin(req.raw(), pooled, &mut client_timeout)
    };
    if client_fd < 0 {
        req.log(
            APLOG_ERR,
            &format!("WSGIRS540: WebSocket to daemon process '{name}' ended at once: the client connection has no socket to relay"),
        );
        return ffi::DONE as c_int;
    }
    // Like mod_proxy's tunnels: idle for longer than the larger of the
    // client's and the daemon's timeouts, the socket is closed.
    let client_timeout = u64::try_from(client_timeout)
        .map(Duration::from_micros)
        .unwrap_or(Duration::ZERO);
    let idle = client_timeout.max(socket_timeout);
    let ended = Pump {
        req,
        // SAFETY: brigades in the live request's pool.
        input: unsafe { ffi::wsgi_rs_brigade_new(req.raw()) },
        // SAFETY: as above.
        output: unsafe { ffi::wsgi_rs_brigade_new(req.raw()) },
        daemon,
        client_fd,
    }
    .relay(early, idle);
    if let Err(why) = ended {
        req.log(
            ffi::APLOG_INFO as i32,
            &format!("WSGIRS541: WebSocket to daemon process '{name}' closed: {why}"),
        );
    }
    ffi::DONE as c_int
}

/// The two ends of a tunnel.
struct Pump<'a, 'r> {
    /// The request whose connection is tunnelled.
    req: &'a Request<'r>,
    /// Reads from the client.
    input: *mut ffi::apr_bucket_brigade,
    /// Writes to the client.
    output: *mut ffi::apr_bucket_brigade,
    /// The daemon connection.
    daemon: &'a UnixStream,
    /// The client's socket, for polling.
    client_fd: c_int,
}

/// How one look at one side went.
enum Moved {
    /// Bytes went across.
    Some,
    /// Nothing to move now.
    Nothing,
    /// This side closed (or failed).
    Closed,
}

impl Pump<'_, '_> {
    /// Relays until the daemon closes its end (after the client closed
    /// its own, the daemon is told by a half-close and closes in turn).
    /// Err: why the tunnel ended otherwise.
    fn relay(&self, early: &[u8], idle: Duration) -> Result<(), String> {
        if !early.is_empty() && !self.to_client(early) {
            return Err("the client went away".into());
        }
        let mut buf = vec![0u8; BLOCK];
        let mut client_open = true;
        loop {
            let mut moved = false;
            if client_open {
                match self.client_to_daemon(&mut buf)? {
                    Moved::Some => moved = true,
                    Moved::Nothing => {}
                    Moved::Closed => {
                        client_open = false;
                        // The daemon sees the end of the stream: the
                        // application gets its disconnect.
                        let _ = self.daemon.shutdown(std::net::Shutdown::Write);
                    }
                }
            }
            match self.daemon_to_client(&mut buf)? {
                Moved::Some => moved = true,
                Moved::Nothing => {}
                Moved::Closed => return Ok(()),
            }
            if !moved && !self.wait(client_open, idle)? {
                return Err(format!("idle for {}s", idle.as_secs()));
            }
        }
    }

    /// Moves what the client sent to the daemon.
    fn client_to_daemon(&self, buf: &mut [u8]) -> Result<Moved, String> {
        let mut got = 0;
        // SAFETY: live request and brigade; buf is writable for its length.
        let rc = unsafe {
            ffi::wsgi_rs_tunnel_read(
                self.req.raw(),
                self.input,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut got,
            )
        };
        match rc {
            1 => {
                let mut daemon = self.daemon;
                daemon
                    .write_all(&buf[..got])
                    .map_err(|e| format!("writing to the daemon failed: {e}"))?;
                Ok(Moved::Some)
            }
            0 => Ok(Moved::Nothing),
            _ => Ok(Moved::Closed),
        }
    }

    /// Moves what the daemon sent to the client.
    fn daemon_to_client(&self, buf: &mut [u8]) -> Result<Moved, String> {
        // SAFETY: recv into our buffer, without waiting.
        let n = unsafe {
            libc::recv(
                self.daemon.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            if !self.to_client(&buf[..n as usize]) {
                return Err("the client went away".into());
            }
            return Ok(Moved::Some);
        }
        if n == 0 {
            return Ok(Moved::Closed);
        }
        match std::io::Error::last_os_error().kind() {
            ErrorKind::WouldBlock | ErrorKind::Interrupted => Ok(Moved::Nothing),
            ErrorKind::ConnectionReset => Ok(Moved::Closed),
            e => Err(format!("reading from the daemon failed: {e}")),
        }
    }

    /// Sends `data` to the client at once; false when it went away.
    fn to_client(&self, data: &[u8]) -> bool {
        // SAFETY: live request and brigade; the transient bucket is sent
        // (or copied) before the call returns.
        let rv = unsafe {
            ffi::wsgi_rs_tunnel_write(
                self.req.raw(),
                self.output,
                data.as_ptr().cast(),
                data.len(),
            )
        };
        rv == ffi::APR_SUCCESS as i32
    }

    /// Waits until either side has something (the client only while it is
    /// open); false after `idle` with nothing.
    fn wait(&self, client_open: bool, idle: Duration) -> Result<bool, String> {
        let mut fds = [
            libc::pollfd {
                fd: self.daemon.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.client_fd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let count = if client_open { 2 } else { 1 };
        let timeout = if idle.is_zero() {
            -1
        } else {
            idle.as_millis().min(c_int::MAX as u128) as c_int
        };
        // SAFETY: poll on pollfds we own, for at most `timeout`.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), count, timeout) };
        match ready {
            0 => Ok(false),
            n if n > 0 => Ok(true),
            _ if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted => Ok(true),
            _ => Err(format!(
                "polling failed: {}",
                std::io::Error::last_os_error()
            )),
        }
    }
}
