//! What a daemon's worker threads wait on: one epoll set per process holding
//! the group's listening socket and every idle persistent connection. Each
//! is armed one-shot, so a connecting client or an arriving request wakes
//! exactly one worker (a shared `poll` on the listener woke them all, which
//! cost more than the request itself), and while a worker serves a
//! connection no other worker can be handed it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The event token of the listening socket; connections use their fd.
const LISTENER: u64 = u64::MAX;

/// What woke a worker.
pub enum Ready {
    /// A client is connecting: accept it.
    Listener,
    /// A request (or the client's close) is waiting on this idle
    /// connection. The worker now owns the descriptor (see [`Poller::park`]).
    Connection(RawFd),
}

/// The epoll set a daemon process's workers wait on.
pub struct Poller {
    /// The epoll instance.
    epoll: OwnedFd,
    /// The group's listening socket.
    listener: RawFd,
}

/// A syscall's -1 as the `errno` error.
fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Poller {
    /// A set watching the group's listening socket.
    pub fn new(listener: RawFd) -> io::Result<Poller> {
        // SAFETY: epoll_create1 returns a fresh descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        check(fd)?;
        // SAFETY: fd is ours alone from here on.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        let poller = Poller { epoll, listener };
        poller.ctl(libc::EPOLL_CTL_ADD, listener, LISTENER)?;
        Ok(poller)
    }

    /// One `epoll_ctl` call, one-shot, with `token` as the event's data.
    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32,
            u64: token,
        };
        // SAFETY: plain epoll_ctl on descriptors we hold; ev outlives the call.
        check(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut ev) })
    }

    /// Lets the next connecting client wake a worker again.
    pub fn rearm_listener(&self) {
        // ENOENT after stop_listening: nothing to do.
        let _ = self.ctl(libc::EPOLL_CTL_MOD, self.listener, LISTENER);
    }

    /// No more connections are taken by this process (it is exiting); other
    /// processes of the group, or its replacement, take them.
    pub fn stop_listening(&self) {
        // SAFETY: removing a registration; a null event is allowed for DEL.
        unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                self.listener,
                std::ptr::null_mut(),
            )
        };
    }

    /// Hands an idle connection to the set until its next request arrives;
    /// the set owns it until a worker receives it as
    /// [`Ready::Connection`]. `known`: it was handed over before.
    pub fn park(&self, conn: OwnedFd, known: bool) -> Result<(), OwnedFd> {
        let fd = conn.as_raw_fd();
        let op = if known {
            libc::EPOLL_CTL_MOD
        } else {
            libc::EPOLL_CTL_ADD
        };
        match self.ctl(op, fd, fd as u64) {
            Ok(()) => {
                // Ownership now travels with the event (one-shot: exactly one
                // worker receives it).
                std::mem::forget(conn);
                Ok(())
            }
            Err(_) => Err(conn),
        }
    }

    /// Waits up to `timeout_ms` for work.
    pub fn wait(&self, timeout_ms: i32) -> Option<Ready> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: room for exactly one event, as passed.
        let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut ev, 1, timeout_ms) };
        if n != 1 {
            return None;
        }
        Some(match ev.u64 {
            LISTENER => Ready::Listener,
            fd => Ready::Connection(fd as RawFd),
        })
    }
}
