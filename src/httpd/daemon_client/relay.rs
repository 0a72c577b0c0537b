//! One attempt at a request on one connection: send the request (and a
//! streamed body after the daemon's go-ahead), then relay the response to
//! Apache as it arrives, flushing only when the daemon has nothing more
//! ready.

use std::ffi::c_int;
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::availability::{await_answer, Awaited};
use super::tunnel;
use super::{status, APLOG_ERR, BLOCK};
use crate::daemon::protocol;
use crate::httpd::backend::ApacheBackend;
use crate::httpd::ffi;
use crate::httpd::plan::DaemonGroup;
use crate::httpd::request::Request;
use crate::wsgi::{Backend, BodyError};

/// How an attempt ended.
pub(super) enum Attempt {
    /// Finished; the connection, when it is ready for the next request.
    Done(c_int, Option<UnixStream>),
    /// The daemon is restarting: retry on a fresh connection after a pause.
    Rejected,
    /// A kept connection turned out closed before the daemon took the
    /// request: retry at once on a fresh one.
    Stale,
    /// A fresh connection was reset before any answer: the daemon process
    /// went away (killed, or exiting) holding part of our request unread,
    /// so it never ran it. Retried like a rejection.
    Unread,
}

/// Whether a read failed because the socket timeout passed.
fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// A write or first read failing this way on a kept connection means the
/// daemon closed it without reading our request (see `daemon::protocol`).
fn is_stale(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset)
}

/// The response side of a connection, read through one buffer.
struct Reader<'a> {
    /// The connection.
    stream: &'a UnixStream,
    /// The buffer, reused across requests.
    buf: &'a mut Vec<u8>,
    /// Where unconsumed data starts.
    start: usize,
    /// Where received data ends.
    end: usize,
}

impl Reader<'_> {
    /// Data received and not consumed yet.
    fn available(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks `n` bytes as consumed.
    fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// Reads more; Ok(0) at end of stream. `wait`: block until something
    /// arrives (else WouldBlock when nothing is there yet).
    fn fill(&mut self, wait: bool) -> std::io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
        let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
        loop {
            let room = &mut self.buf[self.end..];
            // SAFETY: recv into the writable tail of our buffer.
            let n = unsafe {
                libc::recv(
                    self.stream.as_raw_fd(),
                    room.as_mut_ptr().cast(),
                    room.len(),
                    flags,
                )
            };
            if n >= 0 {
                self.end += n as usize;
                return Ok(n as usize);
            }
            let e = std::io::Error::last_os_error();
            // Prefork children get SIGUSR1 on a graceful restart while they
            // wait for a slow app.
            if e.kind() != ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// What goes to the daemon: the packet (vars, and the framed body when it
/// is sent at once), or for a streamed body the bytes already read from the
/// client, sent first after the go-ahead.
pub(super) struct Outgoing<'a> {
    /// The encoded request.
    pub(super) packet: &'a [u8],
    /// The body follows the daemon's go-ahead.
    pub(super) streamed: bool,
    /// Body bytes read before connecting, sent first when streamed.
    pub(super) early_body: &'a [u8],
    /// `WSGIErrorOverride`: Apache renders the application's error responses.
    pub(super) error_override: bool,
    /// The request asks for a WebSocket: a 101 answer starts a tunnel, idle
    /// for at most this long (the group's socket-timeout).
    pub(super) upgrade: Option<Duration>,
    /// The longest response header line taken (`header-buffer-size=`).
    pub(super) header_line_limit: usize,
}

/// The connection one try of a request uses.
pub(super) struct Connection {
    /// The socket to the group's daemon processes.
    pub(super) stream: UnixStream,
    /// Kept from an earlier request (it may have been closed meanwhile).
    pub(super) reused: bool,
    /// Made while no process of the group was serving (see
    /// `availability`): the answer is awaited up to this socket-timeout,
    /// watching the group's start-up meanwhile.
    pub(super) watch: Option<Duration>,
}

/// One try of the request to `group` on `connection`: send it, then relay
/// the answer.
pub(super) fn attempt(
    req: &Request<'_>,
    apache: &mut ApacheBackend,
    connection: Connection,
    request: &Outgoing<'_>,
    input: &mut Vec<u8>,
    group: &DaemonGroup,
) -> Attempt {
    let Connection {
        stream,
        reused,
        watch,
    } = connection;
    let name = group.launch.spec.name.as_str();
    if let Err(e) = (&stream).write_all(request.packet) {
        if reused && is_stale(&e) {
            return Attempt::Stale;
        }
        // The daemon may have answered (rejected) before reading it all.
        req.log(
            ffi::APLOG_DEBUG as i32,
            &format!("WSGIRS587: sending request to daemon '{name}': {e}"),
        );
    }
    if let Some(socket_timeout) = watch {
        match await_answer(req, group, &stream, socket_timeout) {
            Awaited::Readable => {}
            Awaited::TimedOut => return Attempt::Done(timed_out(req, name), None),
            Awaited::Answered(code) => return Attempt::Done(code, None),
        }
    }
    let mut reader = Reader {
        stream: &stream,
        buf: input,
        start: 0,
        end: 0,
    };
    match reader.fill(true) {
        Ok(0) => return Attempt::Done(daemon_closed(req, name), None),
        Ok(_) => {}
        Err(e) if reused && is_stale(&e) => return Attempt::Stale,
        // A UNIX socket is reset, rather than ended, only when its peer
        // closed with data still unread; the daemon takes a request only
        // once it has read all of it (see `daemon::intake`), so one cut
        // off like this never ran. It happens to a connection a daemon
        // accepted, or was still receiving, when it was killed.
        Err(e) if e.kind() == ErrorKind::ConnectionReset => return Attempt::Unread,
        Err(e) if is_timeout(&e) => return Attempt::Done(timed_out(req, name), None),
        Err(e) => {
            req.log(
                APLOG_ERR,
                &format!("WSGIRS588: reading from daemon process '{name}' failed: {e}"),
            );
            return Attempt::Done(status(ffi::HTTP_BAD_GATEWAY), None);
        }
    }
    let first = reader.available()[0];
    if first == protocol::REJECT {
        return Attempt::Rejected;
    }
    // A streamed body goes after the go-ahead; an answer without one (an
    // error) means the daemon does not want it.
    let mut in_sync = true;
    if request.streamed {
        if first == protocol::CONTINUE {
            reader.consume(1);
            match stream_body(req, apache, &stream, request.early_body) {
                BodySent::Complete => {}
                BodySent::Cut => in_sync = false,
                BodySent::Failed(code) => return Attempt::Done(code, None),
            }
        } else {
            in_sync = false;
        }
    }
    let (code, kept) = relay_response(req, apache, &mut reader, name, request);
    let keep = (kept && in_sync).then_some(stream);
    Attempt::Done(code, keep)
}

/// Logs a daemon that closed the connection without answering; 502.
fn daemon_closed(req: &Request<'_>, name: &str) -> c_int {
    req.log(
        APLOG_ERR,
        &format!("WSGIRS589: Truncated or oversized response headers received from daemon process '{name}': the process closed the connection (it may have crashed)"),
    );
    status(ffi::HTTP_BAD_GATEWAY)
}

/// Logs a daemon that did not answer within the socket timeout; 504.
fn timed_out(req: &Request<'_>, name: &str) -> c_int {
    req.log(
        APLOG_ERR,
        &format!("WSGIRS590: Timeout when reading response headers from daemon process '{name}'"),
    );
    status(ffi::HTTP_GATEWAY_TIME_OUT)
}

/// How sending a streamed body ended.
enum BodySent {
    /// All of it, and the end frame.
    Complete,
    /// The daemon stopped reading; its answer tells why.
    Cut,
    /// The request ends here with this status.
    Failed(c_int),
}

/// Streams the request body to the daemon in frames, `early` first.
fn stream_body(
    req: &Request<'_>,
    apache: &mut ApacheBackend,
    mut stream: &UnixStream,
    early: &[u8],
) -> BodySent {
    let mut send = |data: &[u8]| -> bool {
        let header = protocol::frame_header(data.len());
        let mut parts = [std::io::IoSlice::new(&header), std::io::IoSlice::new(data)];
        let mut parts = &mut parts[..];
        while !parts.is_empty() {
            match stream.write_vectored(parts) {
                Ok(0) => return false,
                Ok(n) => std::io::IoSlice::advance_slices(&mut parts, n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    };
    if !early.is_empty() && !send(early) {
        return BodySent::Cut;
    }
    let mut buf = vec![0u8; BLOCK];
    loop {
        match apache.read_body(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if !send(&buf[..n]) {
                    return BodySent::Cut;
                }
            }
            Err(BodyError::AlreadyAnswered(_)) => return BodySent::Failed(ffi::AP_FILTER_ERROR),
            Err(e) => {
                req.log(
                    ffi::APLOG_INFO as i32,
                    &format!("WSGIRS580: reading the request body failed: {e}"),
                );
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return BodySent::Failed(status(ffi::HTTP_BAD_REQUEST));
            }
        }
    }
    if stream.write_all(&protocol::frame_header(0)).is_err() {
        return BodySent::Cut;
    }
    BodySent::Complete
}

/// Relays the daemon's response to the client: the status, and whether the
/// connection is ready for another request.
fn relay_response(
    req: &Request<'_>,
    apache: &mut ApacheBackend,
    reader: &mut Reader<'_>,
    name: &str,
    request: &Outgoing<'_>,
) -> (c_int, bool) {
    let head_len = loop {
        let avail = reader.available();
        if let Some(at) = avail.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if avail.len() > protocol::head_limit(request.header_line_limit) {
            req.log(
                APLOG_ERR,
                &format!("WSGIRS591: response header from daemon process '{name}' is too long"),
            );
            return (status(ffi::HTTP_INTERNAL_SERVER_ERROR), false);
        }
        match reader.fill(true) {
            Ok(0) => return (daemon_closed(req, name), false),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return (timed_out(req, name), false),
            Err(_) => return (daemon_closed(req, name), false),
        }
    };
    let longest = protocol::longest_line(&reader.available()[..head_len]);
    if longest > request.header_line_limit {
        req.log(
            APLOG_ERR,
            &format!(
                "WSGIRS606: a response header line from daemon process '{name}' takes {longest} \
                 bytes, more than header-buffer-size={}",
                request.header_line_limit
            ),
        );
        return (status(ffi::HTTP_INTERNAL_SERVER_ERROR), false);
    }
    let Some(parsed) = protocol::parse_response_head(&reader.available()[..head_len]) else {
        req.log(
            APLOG_ERR,
            &format!("WSGIRS592: malformed response header from daemon process '{name}'"),
        );
        return (status(ffi::HTTP_BAD_GATEWAY), false);
    };
    reader.consume(head_len);
    if parsed
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case(protocol::INTERNAL_ERROR_HEADER))
    {
        // The daemon already logged the cause; Apache renders the error.
        return (parsed.status as c_int, false);
    }
    if parsed.status == 101 {
        return (
            switch_protocols(req, apache, reader, &parsed, name, request),
            false,
        );
    }
    if request.error_override && (400..600).contains(&parsed.status) {
        // Like ProxyErrorOverride: Apache answers with its error document
        // for the status; the application's headers and body are dropped
        // (read off, so the connection stays usable).
        let kept = skip_body(reader).unwrap_or(false);
        return (parsed.status as c_int, kept);
    }
    apache.start_response(parsed.status, &parsed.status_line, &parsed.headers);
    // Body bytes go to Apache as they come, flushed only when the daemon
    // has nothing more ready: a streamed response reaches the client
    // promptly, a large one in large writes.
    let mut unflushed = false;
    loop {
        while reader.available().len() < 4 {
            if let Err(e) = more(reader, apache, &mut unflushed) {
                return (truncated(req, apache, name, &e), false);
            }
        }
        let avail = reader.available();
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]);
        reader.consume(4);
        if len == protocol::END_KEEP || len == protocol::END_CLOSE {
            // Sent now, with this thread, rather than by the event MPM's
            // write-completion hand-off after the handler (see
            // ApacheBackend::finish).
            if unflushed {
                let _ = apache.write_body(&[], true);
            }
            return (ffi::OK as c_int, len == protocol::END_KEEP);
        }
        match len {
            n if n as usize > protocol::MAX_FRAME => {
                let e = std::io::Error::other("malformed body frame");
                return (truncated(req, apache, name, &e), false);
            }
            _ => {}
        }
        let mut left = len as usize;
        while left > 0 {
            if reader.available().is_empty() {
                if let Err(e) = more(reader, apache, &mut unflushed) {
                    return (truncated(req, apache, name, &e), false);
                }
            }
            let n = reader.available().len().min(left);
            if apache.write_body(&reader.available()[..n], false).is_err() {
                // The client went away; nothing more to deliver.
                return (ffi::OK as c_int, false);
            }
            unflushed = true;
            reader.consume(n);
            left -= n;
        }
    }
}

/// The daemon accepted a protocol switch: the tunnel runs, if the request
/// asked for one (else the answer is malformed: 502).
fn switch_protocols(
    req: &Request<'_>,
    apache: &mut ApacheBackend,
    reader: &mut Reader<'_>,
    head: &protocol::ResponseHead,
    name: &str,
    request: &Outgoing<'_>,
) -> c_int {
    // As mod_proxy_http checks a backend's 101: only to a request that
    // asked for it, and to the protocol it asked for.
    let websocket = head
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("upgrade") && v.eq_ignore_ascii_case("websocket"));
    let Some(socket_timeout) = request.upgrade.filter(|_| websocket) else {
        req.log(
            APLOG_ERR,
            &format!("WSGIRS542: daemon process '{name}' answered 101 to a request that asked for no such protocol switch"),
        );
        return status(ffi::HTTP_BAD_GATEWAY);
    };
    let early = reader.available().to_vec();
    tunnel::run(
        req,
        apache,
        reader.stream,
        head,
        &early,
        name,
        socket_timeout,
    )
}

/// Reads and drops a framed response body; whether the connection is ready
/// for the next request.
fn skip_body(reader: &mut Reader<'_>) -> std::io::Result<bool> {
    loop {
        while reader.available().len() < 4 {
            if reader.fill(true)? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
        }
        let avail = reader.available();
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]);
        reader.consume(4);
        if len == protocol::END_KEEP || len == protocol::END_CLOSE {
            return Ok(len == protocol::END_KEEP);
        }
        if len as usize > protocol::MAX_FRAME {
            return Err(std::io::Error::other("malformed body frame"));
        }
        let mut left = len as usize;
        while left > 0 {
            if reader.available().is_empty() && reader.fill(true)? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            let n = reader.available().len().min(left);
            reader.consume(n);
            left -= n;
        }
    }
}

/// Reads more of the response; before waiting for the daemon, sends on
/// what Apache holds unflushed.
fn more(
    reader: &mut Reader<'_>,
    apache: &mut ApacheBackend,
    unflushed: &mut bool,
) -> std::io::Result<()> {
    let got = if *unflushed {
        match reader.fill(false) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                *unflushed = false;
                if apache.write_body(&[], true).is_err() {
                    return Err(ErrorKind::ConnectionAborted.into());
                }
                reader.fill(true)
            }
            other => other,
        }
    } else {
        reader.fill(true)
    }?;
    if got == 0 {
        return Err(ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Logs a response cut short and aborts the client connection.
fn truncated(
    req: &Request<'_>,
    apache: &mut ApacheBackend,
    name: &str,
    e: &std::io::Error,
) -> c_int {
    if e.kind() == ErrorKind::ConnectionAborted {
        // The client went away while we flushed; nothing more to deliver.
        return ffi::OK as c_int;
    }
    req.log(
        APLOG_ERR,
        &format!("WSGIRS593: response from daemon process '{name}' ended before it was complete ({e}); aborting the connection"),
    );
    apache.abort();
    ffi::OK as c_int
}
