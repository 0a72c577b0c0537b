//! The Apache child's side of daemon mode: forwards a request to its daemon
//! group over the group's UNIX socket (uwsgi plus our extensions, see
//! `daemon::protocol`) and relays the response. A request body up to the
//! group's `request-buffer-size` is read from the client before connecting
//! and sent with the request, so a slow client holds this Apache thread
//! (the cheap kind), never a daemon thread; larger ones and the response
//! are streamed in bounded buffers. Each Apache thread keeps its connection to a group open
//! between requests ([`connect`]). A daemon that rejects the request (it is
//! restarting) is retried on a fresh connection, so reloads lose no request;
//! one try on one connection is in [`relay`].

mod availability;
mod connect;
mod relay;
mod tunnel;

use std::cell::RefCell;
use std::ffi::c_int;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::backend::ApacheBackend;
use super::ffi;
use super::plan::DaemonGroup;
use super::request::Request;
use crate::daemon::protocol::{self, ProtocolError};
use crate::wsgi::{Backend, BodyError};
use connect::{connect, put_idle, take_idle};
use relay::{attempt, Attempt, Connection, Outgoing};
pub use tunnel::is_websocket_request;

/// The largest request packet buffer a thread keeps between requests (a
/// body buffered up to `request-buffer-size` may make it larger once).
const KEPT_PACKET: usize = 256 * 1024;
/// Reads of the request body and of the response.
const BLOCK: usize = 64 * 1024;

/// httpd's error level.
const APLOG_ERR: i32 = ffi::APLOG_ERR as i32;

thread_local! {
    /// Reused buffers: the request packet and the response reads.
    static BUFFERS: RefCell<Option<Buffers>> = const { RefCell::new(None) };
}

/// A thread's buffers, reused from request to request.
#[derive(Default)]
struct Buffers {
    /// The encoded request.
    packet: Vec<u8>,
    /// Response reads.
    input: Vec<u8>,
}

/// The request as it goes to the daemon.
pub struct Forward<'a> {
    /// The CGI variables.
    pub vars: Vec<(&'a [u8], &'a [u8])>,
    /// Our private variables (secret, script, groups, ...).
    pub private: Vec<(&'static str, String)>,
    /// The body is chunked: its length is unknown.
    pub chunked: bool,
    /// The declared body length.
    pub content_length: u64,
    /// `WSGIErrorOverride On`: an error status from the application is
    /// answered with Apache's error document instead of its body.
    pub error_override: bool,
    /// The client asks for a WebSocket ([`is_websocket_request`]).
    pub upgrade: bool,
}

/// An HTTP status as the handler's return value.
fn status(code: u32) -> c_int {
    code as c_int
}

/// Forwards the request to `group` and relays the answer; the handler's return value.
pub fn forward(
    req: &Request<'_>,
    group: &DaemonGroup,
    fwd: Forward<'_>,
    socket_timeout: Duration,
) -> c_int {
    // Taken for the request's duration: a subrequest run from inside an
    // output filter gets buffers of its own.
    let mut buffers = BUFFERS.with(|b| b.borrow_mut().take()).unwrap_or_default();
    let code = forward_with(req, group, &fwd, socket_timeout, &mut buffers);
    if buffers.packet.capacity() > KEPT_PACKET {
        buffers.packet = Vec::new();
    }
    BUFFERS.with(|b| *b.borrow_mut() = Some(buffers));
    code
}

/// `forward` with this thread's buffers.
fn forward_with(
    req: &Request<'_>,
    group: &DaemonGroup,
    fwd: &Forward<'_>,
    socket_timeout: Duration,
    buffers: &mut Buffers,
) -> c_int {
    let name = &group.launch.spec.name;
    // SAFETY: the backend is dropped before this function returns.
    let mut apache = unsafe { ApacheBackend::new(req.raw(), false) };
    let limit = group.launch.spec.request_buffer_size;
    let (body, streamed) = match read_small_body(req, &mut apache, fwd, limit) {
        Ok(read) => read,
        Err(code) => return code,
    };
    if let Err(code) = encode_packet(req, name, fwd, &body, streamed, &mut buffers.packet) {
        return code;
    }
    if buffers.input.is_empty() {
        buffers.input = vec![0u8; protocol::MAX_HEAD + BLOCK];
    }
    let request = Outgoing {
        packet: &buffers.packet,
        streamed,
        early_body: if streamed { &body } else { &[] },
        error_override: fwd.error_override,
        upgrade: fwd.upgrade.then_some(socket_timeout),
        header_line_limit: protocol::header_line_limit(group.launch.spec.header_buffer_size),
    };
    send_with_retries(
        req,
        &mut apache,
        group,
        &request,
        socket_timeout,
        &mut buffers.input,
    )
}

/// Reads a body of up to `limit` bytes (`request-buffer-size`) from the
/// client before the daemon is involved, so a slow client never holds a
/// daemon thread, and says whether the body is streamed after the daemon's
/// go-ahead instead: when it is declared larger, or turns out larger (a
/// chunked body, or input filters that change its length), in which case
/// what was read goes first. Streaming waits for the go-ahead so a
/// rejecting daemon never consumes a body it cannot give back.
fn read_small_body(
    req: &Request<'_>,
    apache: &mut ApacheBackend,
    fwd: &Forward<'_>,
    limit: u64,
) -> Result<(Vec<u8>, bool), c_int> {
    let mut streamed = fwd.content_length > limit || (fwd.chunked && limit == 0);
    let mut body = Vec::new();
    if !streamed && (fwd.content_length > 0 || fwd.chunked) {
        let mut block = vec![0u8; BLOCK];
        loop {
            match apache.read_body(&mut block) {
                Ok(0) => break,
                Ok(n) => body.extend_from_slice(&block[..n]),
                Err(BodyError::AlreadyAnswered(_)) => return Err(ffi::AP_FILTER_ERROR),
                Err(e) => {
                    req.log(
                        ffi::APLOG_INFO as i32,
                        &format!("WSGIRS580: reading the request body failed: {e}"),
                    );
                    return Err(status(ffi::HTTP_BAD_REQUEST));
                }
            }
            if body.len() as u64 > limit {
                streamed = true;
                break;
            }
        }
    }
    Ok((body, streamed))
}

/// Encodes the request packet: the vars, ours last, and unless the body is
/// streamed, the whole body in frames.
fn encode_packet(
    req: &Request<'_>,
    name: &str,
    fwd: &Forward<'_>,
    body: &[u8],
    streamed: bool,
    packet: &mut Vec<u8>,
) -> Result<(), c_int> {
    let queue_start = protocol::micros_now().to_string();
    let mut private: Vec<(&[u8], &[u8])> = fwd
        .private
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    private.push((protocol::VAR_QUEUE_START.as_bytes(), queue_start.as_bytes()));
    if streamed {
        private.push((protocol::VAR_EXPECT.as_bytes(), b"1"));
    }
    if fwd.upgrade {
        private.push((protocol::VAR_UPGRADE.as_bytes(), b"websocket"));
    }
    packet.clear();
    match protocol::encode_request_into(packet, fwd.vars.iter().copied().chain(private)) {
        Ok(()) => {}
        Err(e @ (ProtocolError::VarsTooLarge(_) | ProtocolError::VarTooLong)) => {
            req.log(
                APLOG_ERR,
                &format!("WSGIRS581: request cannot be passed to daemon process '{name}': {e}"),
            );
            return Err(status(ffi::HTTP_INTERNAL_SERVER_ERROR));
        }
        Err(e) => {
            req.log(
                APLOG_ERR,
                &format!("WSGIRS582: request not forwarded to daemon process '{name}': {e}"),
            );
            return Err(status(ffi::HTTP_INTERNAL_SERVER_ERROR));
        }
    }
    if !streamed {
        for frame in body.chunks(protocol::MAX_FRAME) {
            packet.extend_from_slice(&protocol::frame_header(frame.len()));
            packet.extend_from_slice(frame);
        }
        packet.extend_from_slice(&protocol::frame_header(0));
    }
    Ok(())
}

/// Sends the request, on this thread's kept connection first, and retries
/// on fresh ones while the group's processes reject it. Rejections come
/// from processes that are restarting; their replacements take a moment to
/// start, so retries back off, and give up only after connect-timeout
/// without a process willing to serve.
fn send_with_retries(
    req: &Request<'_>,
    apache: &mut ApacheBackend,
    group: &DaemonGroup,
    request: &Outgoing<'_>,
    socket_timeout: Duration,
    input: &mut Vec<u8>,
) -> c_int {
    let name = &group.launch.spec.name;
    let deadline = Instant::now() + group.connect_timeout;
    let mut pause = Duration::from_millis(2);
    let mut reuse = true;
    loop {
        let kept = if reuse {
            take_idle(&group.socket_path)
        } else {
            None
        };
        let reused = kept.is_some();
        // A connection made while no process serves yet is watched: should
        // the group's start fail meanwhile, nobody will take the request.
        let mut watch = None;
        let stream = match kept {
            Some(s) => s,
            None => {
                match availability::before_connect(req, group, deadline) {
                    Ok(true) => {}
                    Ok(false) => watch = Some(socket_timeout),
                    Err(code) => return code,
                }
                match open_connection(req, group, deadline, socket_timeout) {
                    Ok(s) => s,
                    Err(code) => return code,
                }
            }
        };
        reuse = false;
        let connection = Connection {
            stream,
            reused,
            watch,
        };
        let outcome = attempt(req, apache, connection, request, input, group);
        match outcome {
            Attempt::Done(code, keep) => {
                if let Some(stream) = keep {
                    put_idle(&group.socket_path, stream);
                }
                return code;
            }
            Attempt::Stale => {}
            Attempt::Rejected | Attempt::Unread => {
                let message = if matches!(outcome, Attempt::Rejected) {
                    format!("WSGIRS583: daemon process '{name}' is restarting; retrying request")
                } else {
                    format!("WSGIRS463: daemon process '{name}' went away before reading the whole request; retrying it")
                };
                req.log(ffi::APLOG_DEBUG as i32, &message);
                if Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    }
    req.log(
        APLOG_ERR,
        &format!("WSGIRS584: WSGI daemon process '{name}' kept rejecting the request"),
    );
    status(ffi::HTTP_SERVICE_UNAVAILABLE)
}

/// A fresh connection to the group with the socket timeout set, or the
/// status to answer when none could be made by `deadline`.
fn open_connection(
    req: &Request<'_>,
    group: &DaemonGroup,
    deadline: Instant,
    socket_timeout: Duration,
) -> Result<UnixStream, c_int> {
    match connect(group, deadline) {
        Ok(s) => {
            let timeout = Some(socket_timeout).filter(|t| !t.is_zero());
            let _ = s.set_read_timeout(timeout);
            let _ = s.set_write_timeout(timeout);
            Ok(s)
        }
        Err(e) => {
            req.log(
                APLOG_ERR,
                &format!(
                    "WSGIRS585: Unable to connect to WSGI daemon process '{}' on '{}' within {}s: {e}",
                    group.launch.spec.name,
                    group.socket_path.display(),
                    group.connect_timeout.as_secs()
                ),
            );
            Err(status(ffi::HTTP_SERVICE_UNAVAILABLE))
        }
    }
}
