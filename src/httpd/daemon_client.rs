//! The Apache child's side of daemon mode: forwards a request to its daemon
//! group over the group's UNIX socket (uwsgi plus our extensions, see
//! `daemon::protocol`) and relays the response, streaming both bodies in
//! bounded buffers. Each Apache thread keeps its connection to a group open
//! between requests. A daemon that rejects the request (it is restarting)
//! is retried on a fresh connection, so reloads lose no request.

use std::cell::RefCell;
use std::ffi::c_int;
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::backend::ApacheBackend;
use super::ffi;
use super::plan::DaemonGroup;
use super::request::Request;
use crate::daemon::protocol::{self, ProtocolError};
use crate::wsgi::{Backend, BodyError};

/// Bodies up to this size are read before connecting and sent with the
/// request head in one write; larger or chunked ones wait for the daemon's
/// go-ahead, so a rejecting daemon never consumes them.
const INLINE_BODY: usize = 64 * 1024;
const BLOCK: usize = 64 * 1024;

const APLOG_ERR: i32 = ffi::APLOG_ERR as i32;

thread_local! {
    /// This thread's open connections to daemon groups, by socket path, each
    /// between requests. Taken out while in use, so a subrequest run from
    /// inside an output filter opens its own.
    static IDLE: RefCell<Vec<(PathBuf, UnixStream)>> = const { RefCell::new(Vec::new()) };
    /// Reused buffers: the request packet and the response reads.
    static BUFFERS: RefCell<Option<Buffers>> = const { RefCell::new(None) };
}

#[derive(Default)]
struct Buffers {
    packet: Vec<u8>,
    input: Vec<u8>,
}

/// An idle connection to `path` that is still open, if this thread has one.
fn take_idle(path: &std::path::Path) -> Option<UnixStream> {
    let stream = IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let at = idle.iter().position(|(p, _)| p == path)?;
        Some(idle.swap_remove(at).1)
    })?;
    // Anything to read on an idle connection (the daemon closed it, or sent
    // something it should not have) makes it unusable.
    let mut pfd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: poll on one pollfd we own, without waiting.
    let ready = unsafe { libc::poll(&mut pfd, 1, 0) };
    (ready == 0).then_some(stream)
}

fn put_idle(path: &std::path::Path, stream: UnixStream) {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        // One per group: a subrequest's connection may have come back first.
        if !idle.iter().any(|(p, _)| p == path) {
            idle.push((path.to_owned(), stream));
        }
    });
}

/// The request as it goes to the daemon.
pub struct Forward<'a> {
    pub vars: Vec<(&'a [u8], &'a [u8])>,
    pub private: Vec<(&'static str, String)>,
    pub chunked: bool,
    pub content_length: u64,
}

enum Attempt {
    /// Finished; the connection, when it is ready for the next request.
    Done(c_int, Option<UnixStream>),
    /// The daemon is restarting: retry on a fresh connection after a pause.
    Rejected,
    /// A kept connection turned out closed before the daemon took the
    /// request: retry at once on a fresh one.
    Stale,
}

fn status(code: u32) -> c_int {
    code as c_int
}

/// One non-blocking connect: a full backlog (a stuck group) answers EAGAIN
/// at once instead of blocking the Apache thread past connect-timeout.
fn try_connect(path: &std::path::Path) -> std::io::Result<UnixStream> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let addr = super::supervisor::unix_addr(path)
        .ok_or_else(|| std::io::Error::other("socket path too long"))?;
    // SAFETY: a fresh socket we own (OwnedFd closes it on every path);
    // the address is a valid sockaddr_un for the call.
    unsafe {
        let fd = libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let owned = OwnedFd::from_raw_fd(fd);
        let rc = libc::connect(
            fd,
            (&addr as *const libc::sockaddr_un).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        );
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = UnixStream::from(owned);
        stream.set_nonblocking(false)?;
        Ok(stream)
    }
}

fn connect(group: &DaemonGroup, deadline: Instant) -> std::io::Result<UnixStream> {
    let mut pause = Duration::from_millis(5);
    loop {
        match try_connect(&group.socket_path) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
        }
    }
}

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
    stream: &'a UnixStream,
    buf: &'a mut Vec<u8>,
    start: usize,
    end: usize,
}

impl Reader<'_> {
    fn available(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

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
    if buffers.packet.capacity() > 4 * INLINE_BODY {
        buffers.packet = Vec::new();
    }
    BUFFERS.with(|b| *b.borrow_mut() = Some(buffers));
    code
}

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
    let mut streamed = fwd.chunked || fwd.content_length > INLINE_BODY as u64;
    // A body sized small is read now; should the input filters make it
    // larger than INLINE_BODY, what was read goes first in a streamed body.
    let mut body = Vec::new();
    if !streamed && fwd.content_length > 0 {
        let mut block = vec![0u8; BLOCK];
        loop {
            match apache.read_body(&mut block) {
                Ok(0) => break,
                Ok(n) => body.extend_from_slice(&block[..n]),
                Err(BodyError::AlreadyAnswered(_)) => return ffi::AP_FILTER_ERROR,
                Err(e) => {
                    req.log(
                        ffi::APLOG_INFO as i32,
                        &format!("reading the request body failed: {e}"),
                    );
                    return status(ffi::HTTP_BAD_REQUEST);
                }
            }
            if body.len() > INLINE_BODY {
                streamed = true;
                break;
            }
        }
    }

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
    let packet = &mut buffers.packet;
    packet.clear();
    match protocol::encode_request_into(packet, fwd.vars.iter().copied().chain(private)) {
        Ok(()) => {}
        Err(e @ (ProtocolError::VarsTooLarge(_) | ProtocolError::VarTooLong)) => {
            req.log(
                APLOG_ERR,
                &format!("request cannot be passed to daemon process '{name}': {e}"),
            );
            return status(ffi::HTTP_INTERNAL_SERVER_ERROR);
        }
        Err(e) => {
            req.log(APLOG_ERR, &e.to_string());
            return status(ffi::HTTP_INTERNAL_SERVER_ERROR);
        }
    }
    if !streamed {
        if !body.is_empty() {
            packet.extend_from_slice(&protocol::frame_header(body.len()));
            packet.extend_from_slice(&body);
        }
        packet.extend_from_slice(&protocol::frame_header(0));
    }
    if buffers.input.is_empty() {
        buffers.input = vec![0u8; protocol::MAX_HEAD + BLOCK];
    }
    let request = Outgoing {
        packet: &buffers.packet,
        streamed,
        early_body: if streamed { &body } else { &[] },
    };

    // Rejections come from processes that are restarting; their
    // replacements take a moment to start, so retries back off, and give up
    // only after connect-timeout without a process willing to serve.
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
        let stream = match kept {
            Some(s) => s,
            None => match connect(group, deadline) {
                Ok(s) => {
                    let timeout = Some(socket_timeout).filter(|t| !t.is_zero());
                    let _ = s.set_read_timeout(timeout);
                    let _ = s.set_write_timeout(timeout);
                    s
                }
                Err(e) => {
                    req.log(
                        APLOG_ERR,
                        &format!(
                            "Unable to connect to WSGI daemon process '{name}' on '{}' within {}s: {e}",
                            group.socket_path.display(),
                            group.connect_timeout.as_secs()
                        ),
                    );
                    return status(ffi::HTTP_SERVICE_UNAVAILABLE);
                }
            },
        };
        reuse = false;
        match attempt(
            req,
            &mut apache,
            stream,
            reused,
            &request,
            &mut buffers.input,
            name,
        ) {
            Attempt::Done(code, keep) => {
                if let Some(stream) = keep {
                    put_idle(&group.socket_path, stream);
                }
                return code;
            }
            Attempt::Stale => {}
            Attempt::Rejected => {
                req.log(
                    ffi::APLOG_DEBUG as i32,
                    &format!("daemon process '{name}' is restarting; retrying request"),
                );
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
        &format!("WSGI daemon process '{name}' kept rejecting the request"),
    );
    status(ffi::HTTP_SERVICE_UNAVAILABLE)
}

/// What goes to the daemon: the packet (vars, and the framed body when it
/// is sent at once), or for a streamed body the bytes already read from the
/// client, sent first after the go-ahead.
struct Outgoing<'a> {
    packet: &'a [u8],
    streamed: bool,
    early_body: &'a [u8],
}

fn attempt(
    req: &Request<'_>,
    apache: &mut ApacheBackend,
    stream: UnixStream,
    reused: bool,
    request: &Outgoing<'_>,
    input: &mut Vec<u8>,
    name: &str,
) -> Attempt {
    if let Err(e) = (&stream).write_all(request.packet) {
        if reused && is_stale(&e) {
            return Attempt::Stale;
        }
        // The daemon may have answered (rejected) before reading it all.
        req.log(
            ffi::APLOG_DEBUG as i32,
            &format!("sending request to daemon '{name}': {e}"),
        );
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
        Err(e) if is_timeout(&e) => return Attempt::Done(timed_out(req, name), None),
        Err(e) => {
            req.log(
                APLOG_ERR,
                &format!("reading from daemon process '{name}' failed: {e}"),
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
    let (code, kept) = relay_response(req, apache, &mut reader, name);
    let keep = (kept && in_sync).then_some(stream);
    Attempt::Done(code, keep)
}

fn daemon_closed(req: &Request<'_>, name: &str) -> c_int {
    req.log(
        APLOG_ERR,
        &format!("Truncated or oversized response headers received from daemon process '{name}': the process closed the connection (it may have crashed)"),
    );
    status(ffi::HTTP_BAD_GATEWAY)
}

fn timed_out(req: &Request<'_>, name: &str) -> c_int {
    req.log(
        APLOG_ERR,
        &format!("Timeout when reading response headers from daemon process '{name}'"),
    );
    status(ffi::HTTP_GATEWAY_TIME_OUT)
}

enum BodySent {
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
                    &format!("reading the request body failed: {e}"),
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
) -> (c_int, bool) {
    let head_len = loop {
        let avail = reader.available();
        if let Some(at) = avail.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if avail.len() > protocol::MAX_HEAD {
            req.log(
                APLOG_ERR,
                &format!("response header from daemon process '{name}' is too long"),
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
    let Some(parsed) = protocol::parse_response_head(&reader.available()[..head_len]) else {
        req.log(
            APLOG_ERR,
            &format!("malformed response header from daemon process '{name}'"),
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
        &format!("response from daemon process '{name}' ended before it was complete ({e}); aborting the connection"),
    );
    apache.abort();
    ffi::OK as c_int
}
