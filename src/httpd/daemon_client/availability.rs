//! Whether a daemon group can take a request, from its shared health
//! records (`daemon::health`): connecting to a group none of whose processes
//! lives succeeds into the listen backlog of the parent's socket, where the
//! request would wait out socket-timeout. A group whose processes all failed
//! to start is answered 503 at once instead, naming the cause; a process
//! trying again is waited for up to connect-timeout; a first start, however
//! slow, is waited for as before.

use std::ffi::c_int;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::{status, APLOG_ERR};
use crate::daemon::health::Verdict;
use crate::httpd::ffi;
use crate::httpd::plan::DaemonGroup;
use crate::httpd::request::Request;

/// How often the records are looked at while waiting on them.
const LOOK: Duration = Duration::from_millis(50);

/// Answers a request the group cannot serve: 503 and the one log line that
/// names the group and why its last start failed.
fn unavailable(req: &Request<'_>, group: &DaemonGroup, cause: &str) -> c_int {
    req.log(
        APLOG_ERR,
        &format!(
            "WSGIRS586: WSGI daemon process group '{}' cannot start, request answered 503: {cause}",
            group.launch.spec.name
        ),
    );
    status(ffi::HTTP_SERVICE_UNAVAILABLE)
}

/// Before connecting: Ok(whether a process is known to serve), or the
/// status to answer now.
pub(super) fn before_connect(
    req: &Request<'_>,
    group: &DaemonGroup,
    deadline: Instant,
) -> Result<bool, c_int> {
    loop {
        match group.launch.health.verdict() {
            Verdict::Serve { ready } => return Ok(ready),
            Verdict::Down { cause } => return Err(unavailable(req, group, &cause)),
            Verdict::Retrying { cause } if Instant::now() >= deadline => {
                return Err(unavailable(req, group, &cause))
            }
            Verdict::Retrying { .. } => std::thread::sleep(LOOK),
        }
    }
}

/// How waiting for the first byte of an answer ended.
pub(super) enum Awaited {
    /// Something to read (or the connection closed): read it.
    Readable,
    /// Nothing within socket-timeout.
    TimedOut,
    /// The status to answer: the group stopped being able to start while
    /// the request waited in the backlog.
    Answered(c_int),
}

/// Waits for the daemon's first byte on a connection made while no process
/// of the group was serving yet, watching the records meanwhile: a start
/// that fails leaves the request nobody to take it.
pub(super) fn await_answer(
    req: &Request<'_>,
    group: &DaemonGroup,
    stream: &UnixStream,
    socket_timeout: Duration,
) -> Awaited {
    let start = Instant::now();
    loop {
        let mut pfd = libc::pollfd {
            fd: stream.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one pollfd we own, for at most LOOK.
        let ready = unsafe { libc::poll(&mut pfd, 1, LOOK.as_millis() as c_int) };
        if ready != 0 {
            // Readable, closed, or an error (EINTR included) the read sees.
            return Awaited::Readable;
        }
        if let Verdict::Down { cause } = group.launch.health.verdict() {
            return Awaited::Answered(unavailable(req, group, &cause));
        }
        if !socket_timeout.is_zero() && start.elapsed() >= socket_timeout {
            return Awaited::TimedOut;
        }
    }
}
