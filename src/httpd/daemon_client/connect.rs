//! Connections to daemon groups: a non-blocking connect retried until
//! connect-timeout, and each Apache thread's idle connections, kept open
//! between requests.

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::httpd::plan::DaemonGroup;

thread_local! {
    /// This thread's open connections to daemon groups, by socket path, each
    /// between requests. Taken out while in use, so a subrequest run from
    /// inside an output filter opens its own.
    static IDLE: RefCell<Vec<(PathBuf, UnixStream)>> = const { RefCell::new(Vec::new()) };
}

/// An idle connection to `path` that is still open, if this thread has one.
pub(super) fn take_idle(path: &std::path::Path) -> Option<UnixStream> {
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

/// Keeps `stream` for this thread's next request to the group at `path`.
pub(super) fn put_idle(path: &std::path::Path, stream: UnixStream) {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        // One per group: a subrequest's connection may have come back first.
        if !idle.iter().any(|(p, _)| p == path) {
            idle.push((path.to_owned(), stream));
        }
    });
}

/// One non-blocking connect: a full backlog (a stuck group) answers EAGAIN
/// at once instead of blocking the Apache thread past connect-timeout.
fn try_connect(path: &std::path::Path) -> std::io::Result<UnixStream> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let addr = crate::httpd::supervisor::unix_addr(path)
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
            size_of::<libc::sockaddr_un>() as libc::socklen_t,
        );
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = UnixStream::from(owned);
        stream.set_nonblocking(false)?;
        Ok(stream)
    }
}

/// Connects to the group, retrying with back-off until `deadline`.
pub(super) fn connect(group: &DaemonGroup, deadline: Instant) -> std::io::Result<UnixStream> {
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
