//! What a daemon's worker threads wait on: one epoll set per process holding
//! the group's listening socket and every connection no worker holds (idle
//! persistent ones, and those whose request has not fully arrived). Each is
//! armed one-shot, so a connecting client or an arriving request wakes
//! exactly one worker (a shared `poll` on the listener woke them all, which
//! cost more than the request itself), and while a worker holds a
//! connection no other worker can be handed it.
//!
//! The set owns its connections, each under a token never used twice, so
//! [`Poller::sweep`] can close one whose event a worker is just receiving:
//! that worker then finds the token gone instead of a descriptor that may
//! already belong to another connection.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

/// The event token of the listening socket; connections use their own.
const LISTENER: u64 = u64::MAX;

/// What woke a worker.
pub enum Ready<T> {
    /// A client is connecting: accept it.
    Listener,
    /// Data (or the client's close) is waiting on this connection, which
    /// the worker now holds.
    Connection(T),
}

/// The connections in the set, by token.
struct Parked<T> {
    /// The next token to hand out.
    next: u64,
    /// Each parked connection.
    conns: HashMap<u64, T>,
}

/// The epoll set a daemon process's workers wait on.
pub struct Poller<T> {
    /// The epoll instance.
    epoll: OwnedFd,
    /// The group's listening socket.
    listener: RawFd,
    /// The connections the set holds.
    parked: Mutex<Parked<T>>,
}

/// A syscall's -1 as the `errno` error.
fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl<T: AsRawFd> Poller<T> {
    /// A set watching the group's listening socket.
    pub fn new(listener: RawFd) -> io::Result<Poller<T>> {
        // SAFETY: epoll_create1 returns a fresh descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        check(fd)?;
        // SAFETY: fd is ours alone from here on.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        let poller = Poller {
            epoll,
            listener,
            parked: Mutex::new(Parked {
                next: 0,
                conns: HashMap::new(),
            }),
        };
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

    /// Hands a connection to the set until data or its close arrives; the
    /// set owns it until a worker receives it as [`Ready::Connection`] (or
    /// [`Poller::sweep`] takes it). `known`: it was in the set before.
    pub fn park(&self, conn: T, known: bool) -> Result<(), T> {
        let fd = conn.as_raw_fd();
        let op = if known {
            libc::EPOLL_CTL_MOD
        } else {
            libc::EPOLL_CTL_ADD
        };
        let mut parked = self.lock();
        let token = parked.next;
        parked.next += 1;
        // In the table before it is armed: its event may reach a worker
        // as soon as it is.
        parked.conns.insert(token, conn);
        match self.ctl(op, fd, token) {
            Ok(()) => Ok(()),
            Err(_) => Err(parked
                .conns
                .remove(&token)
                .expect("a connection that was never armed is still there")),
        }
    }

    /// Takes out every parked connection `expired` picks; dropping one
    /// closes it, which also takes it out of the epoll set.
    pub fn sweep(&self, mut expired: impl FnMut(&T) -> bool) -> Vec<T> {
        let mut parked = self.lock();
        let tokens: Vec<u64> = parked
            .conns
            .iter()
            .filter(|(_, conn)| expired(conn))
            .map(|(token, _)| *token)
            .collect();
        tokens
            .iter()
            .filter_map(|token| parked.conns.remove(token))
            .collect()
    }

    /// The table of parked connections.
    fn lock(&self) -> std::sync::MutexGuard<'_, Parked<T>> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `timeout_ms` for work.
    pub fn wait(&self, timeout_ms: i32) -> Option<Ready<T>> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: room for exactly one event, as passed.
        let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut ev, 1, timeout_ms) };
        if n != 1 {
            return None;
        }
        match ev.u64 {
            LISTENER => Some(Ready::Listener),
            // Gone when swept meanwhile.
            token => self.lock().conns.remove(&token).map(Ready::Connection),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn a_parked_connection_goes_to_one_waiter_or_to_the_sweep() {
        let dir = std::env::temp_dir().join(format!("poller-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let listener = UnixListener::bind(&dir).unwrap();
        listener.set_nonblocking(true).unwrap();
        let poller: Poller<UnixStream> = Poller::new(listener.as_raw_fd()).unwrap();
        // A connecting client wakes a waiter as the listener.
        let _client = UnixStream::connect(&dir).unwrap();
        assert!(matches!(poller.wait(1000), Some(Ready::Listener)));
        let (a, mut a_peer) = UnixStream::pair().unwrap();
        let (b, _b_peer) = UnixStream::pair().unwrap();
        let (a_fd, b_fd) = (a.as_raw_fd(), b.as_raw_fd());
        assert!(poller.park(a, false).is_ok());
        assert!(poller.park(b, false).is_ok());
        // Nothing arrived: nothing to hand out.
        assert!(poller.wait(0).is_none());
        a_peer.write_all(b"x").unwrap();
        let Some(Ready::Connection(got)) = poller.wait(1000) else {
            panic!("no connection handed out");
        };
        assert_eq!(got.as_raw_fd(), a_fd);
        // One-shot: handed out once; swept ones are gone for good.
        assert!(poller.wait(0).is_none());
        let swept = poller.sweep(|c| c.as_raw_fd() == b_fd);
        assert_eq!(swept.len(), 1);
        assert!(poller.sweep(|_| true).is_empty());
        let _ = std::fs::remove_file(&dir);
    }
}
