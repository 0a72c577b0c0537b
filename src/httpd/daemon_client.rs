//! The Apache child's side of daemon mode: forwards a request to its daemon
//! group over the group's UNIX socket (uwsgi plus our extensions, see
//! `daemon::protocol`) and relays the response, streaming both bodies in
//! bounded buffers. A daemon that rejects the request (it is restarting) is
//! retried on a fresh connection, so reloads lose no request.

use std::ffi::c_int;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::backend::ApacheBackend;
use super::ffi;
use super::plan::DaemonGroup;
use super::request::Request;
use crate::daemon::protocol::{self, ProtocolError};
use crate::wsgi::{Backend, BodyError};

/// Bodies up to this size are read before connecting and sent with the
/// request head in one write; larger or chunked ones wait for the daemon's
/// go-ahead, so a rejecting daemon never consumes them.
const INLINE_BODY: u64 = 64 * 1024;
const BLOCK: usize = 64 * 1024;

const APLOG_ERR: i32 = ffi::APLOG_ERR as i32;

/// The request as it goes to the daemon.
pub struct Forward<'a> {
    pub vars: Vec<(&'a [u8], &'a [u8])>,
    pub private: Vec<(&'static str, String)>,
    pub chunked: bool,
    pub content_length: u64,
}

enum Attempt {
    Done(c_int),
    Retry,
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

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Reads one byte; None at end of stream.
fn read_byte(stream: &mut UnixStream) -> std::io::Result<Option<u8>> {
    let mut b = [0u8; 1];
    match read_some(stream, &mut b)? {
        0 => Ok(None),
        _ => Ok(Some(b[0])),
    }
}

/// `read`, retried when a signal interrupts it (prefork children get
/// SIGUSR1 on a graceful restart while they wait for a slow app).
fn read_some(stream: &mut UnixStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

pub fn forward(
    req: &Request<'_>,
    group: &DaemonGroup,
    fwd: Forward<'_>,
    socket_timeout: Duration,
) -> c_int {
    let name = &group.launch.spec.name;
    // SAFETY: the backend is dropped before this function returns.
    let mut apache = unsafe { ApacheBackend::new(req.raw(), false) };
    let streamed = fwd.chunked || fwd.content_length > INLINE_BODY;
    let mut inline = Vec::new();
    if !streamed && fwd.content_length > 0 {
        let mut buf = vec![0u8; BLOCK];
        loop {
            match apache.read_body(&mut buf) {
                Ok(0) => break,
                Ok(n) => inline.extend_from_slice(&buf[..n]),
                Err(BodyError::AlreadyAnswered(_)) => return ffi::AP_FILTER_ERROR,
                Err(e) => {
                    req.log(
                        ffi::APLOG_INFO as i32,
                        &format!("reading the request body failed: {e}"),
                    );
                    return status(ffi::HTTP_BAD_REQUEST);
                }
            }
        }
    }
    // Rejections come from processes that are restarting; their
    // replacements take a moment to start, so retries back off, and give up
    // only after connect-timeout without a process willing to serve.
    let deadline = Instant::now() + group.connect_timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        let stream = match connect(group, deadline) {
            Ok(s) => s,
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
        };
        let timeout = Some(socket_timeout).filter(|t| !t.is_zero());
        let _ = stream.set_read_timeout(timeout);
        let _ = stream.set_write_timeout(timeout);
        match attempt(req, &mut apache, stream, &fwd, streamed, &inline, name) {
            Attempt::Done(code) => return code,
            Attempt::Retry => {
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

fn attempt(
    req: &Request<'_>,
    apache: &mut ApacheBackend,
    mut stream: UnixStream,
    fwd: &Forward<'_>,
    streamed: bool,
    inline: &[u8],
    name: &str,
) -> Attempt {
    let queue_start = micros_now().to_string();
    let mut private: Vec<(&[u8], &[u8])> = fwd
        .private
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    private.push((protocol::VAR_QUEUE_START.as_bytes(), queue_start.as_bytes()));
    if streamed {
        private.push((protocol::VAR_EXPECT.as_bytes(), b"1"));
    }
    let packet = match protocol::encode_request(fwd.vars.iter().copied().chain(private)) {
        Ok(p) => p,
        Err(e @ (ProtocolError::VarsTooLarge(_) | ProtocolError::VarTooLong)) => {
            req.log(
                APLOG_ERR,
                &format!("request cannot be passed to daemon process '{name}': {e}"),
            );
            return Attempt::Done(status(ffi::HTTP_INTERNAL_SERVER_ERROR));
        }
        Err(e) => {
            req.log(APLOG_ERR, &e.to_string());
            return Attempt::Done(status(ffi::HTTP_INTERNAL_SERVER_ERROR));
        }
    };
    let sent = stream
        .write_all(&packet)
        .and_then(|()| stream.write_all(inline));
    if let Err(e) = sent {
        // The daemon may have answered (rejected) before reading it all.
        req.log(
            ffi::APLOG_DEBUG as i32,
            &format!("sending request to daemon '{name}': {e}"),
        );
    }
    let mut first = match read_byte(&mut stream) {
        Ok(Some(b)) => b,
        Ok(None) => return Attempt::Done(daemon_closed(req, name)),
        Err(e) if is_timeout(&e) => return Attempt::Done(timed_out(req, name)),
        Err(e) => {
            req.log(
                APLOG_ERR,
                &format!("reading from daemon process '{name}' failed: {e}"),
            );
            return Attempt::Done(status(ffi::HTTP_BAD_GATEWAY));
        }
    };
    if first == protocol::REJECT {
        return Attempt::Retry;
    }
    if streamed {
        if first != protocol::CONTINUE {
            req.log(
                APLOG_ERR,
                &format!("daemon process '{name}' sent an unexpected reply"),
            );
            return Attempt::Done(status(ffi::HTTP_BAD_GATEWAY));
        }
        if let Some(code) = stream_body(req, apache, &mut stream, fwd.chunked) {
            return Attempt::Done(code);
        }
        first = match read_byte(&mut stream) {
            Ok(Some(b)) => b,
            Ok(None) => return Attempt::Done(daemon_closed(req, name)),
            Err(e) if is_timeout(&e) => return Attempt::Done(timed_out(req, name)),
            Err(_) => return Attempt::Done(daemon_closed(req, name)),
        };
    }
    Attempt::Done(relay_response(req, apache, &mut stream, first, name))
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

/// Streams the request body to the daemon; Some(status) when the request
/// must end here.
fn stream_body(
    req: &Request<'_>,
    apache: &mut ApacheBackend,
    stream: &mut UnixStream,
    chunked: bool,
) -> Option<c_int> {
    let mut buf = vec![0u8; BLOCK];
    loop {
        match apache.read_body(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    // The daemon stopped reading; its answer tells why.
                    return None;
                }
            }
            Err(BodyError::AlreadyAnswered(_)) => return Some(ffi::AP_FILTER_ERROR),
            Err(e) => {
                req.log(
                    ffi::APLOG_INFO as i32,
                    &format!("reading the request body failed: {e}"),
                );
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return Some(status(ffi::HTTP_BAD_REQUEST));
            }
        }
    }
    if chunked {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    None
}

fn relay_response(
    req: &Request<'_>,
    apache: &mut ApacheBackend,
    stream: &mut UnixStream,
    first: u8,
    name: &str,
) -> c_int {
    let mut head = vec![first];
    // The head is small; byte-wise reads stop exactly at its end so the
    // framed body that follows stays in the socket.
    let mut chunk = [0u8; 512];
    let mut rest = Vec::new();
    loop {
        if head.ends_with(b"\r\n\r\n") {
            break;
        }
        if head.len() > protocol::MAX_HEAD {
            req.log(
                APLOG_ERR,
                &format!("response header from daemon process '{name}' is too long"),
            );
            return status(ffi::HTTP_INTERNAL_SERVER_ERROR);
        }
        let n = match read_some(stream, &mut chunk) {
            Ok(0) => return daemon_closed(req, name),
            Ok(n) => n,
            Err(e) if is_timeout(&e) => return timed_out(req, name),
            Err(_) => return daemon_closed(req, name),
        };
        let data = &chunk[..n];
        // Find where the head ends inside this read.
        let mut split = None;
        for (i, &b) in data.iter().enumerate() {
            head.push(b);
            if head.ends_with(b"\r\n\r\n") {
                split = Some(i + 1);
                break;
            }
        }
        if let Some(at) = split {
            rest.extend_from_slice(&data[at..]);
            break;
        }
    }
    let Some(parsed) = protocol::parse_response_head(&head) else {
        req.log(
            APLOG_ERR,
            &format!("malformed response header from daemon process '{name}'"),
        );
        return status(ffi::HTTP_BAD_GATEWAY);
    };
    if parsed
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case(protocol::INTERNAL_ERROR_HEADER))
    {
        // The daemon already logged the cause; Apache renders the error.
        return parsed.status as c_int;
    }
    apache.start_response(parsed.status, &parsed.status_line, &parsed.headers);
    let mut reader = rest.as_slice().chain(stream);
    let mut buf = vec![0u8; BLOCK];
    loop {
        let mut len = [0u8; 4];
        if let Err(e) = reader.read_exact(&mut len) {
            return truncated(req, apache, name, &e);
        }
        let mut left = u32::from_le_bytes(len) as usize;
        if left == 0 {
            return ffi::OK as c_int;
        }
        while left > 0 {
            let want = left.min(BLOCK);
            if let Err(e) = reader.read_exact(&mut buf[..want]) {
                return truncated(req, apache, name, &e);
            }
            left -= want;
            if apache.write_body(&buf[..want], left == 0).is_err() {
                // The client went away; nothing more to deliver.
                return ffi::OK as c_int;
            }
        }
    }
}

fn truncated(
    req: &Request<'_>,
    apache: &mut ApacheBackend,
    name: &str,
    e: &std::io::Error,
) -> c_int {
    req.log(
        APLOG_ERR,
        &format!("response from daemon process '{name}' ended before it was complete ({e}); aborting the connection"),
    );
    apache.abort();
    ffi::OK as c_int
}
