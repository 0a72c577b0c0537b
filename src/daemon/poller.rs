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
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Mutex;

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::event::Timespec;

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
    listener: BorrowedFd<'static>,
    /// The connections the set holds.
    parked: Mutex<Parked<T>>,
}

/// How every descriptor is armed: readable or closed by the peer, once.
fn one_shot() -> EventFlags {
    EventFlags::IN | EventFlags::RDHUP | EventFlags::ONESHOT
}

impl<T: AsFd> Poller<T> {
    /// A set watching the group's listening socket (inherited across fork:
    /// see `sys::fd::inherited`).
    pub fn new(listener: RawFd) -> io::Result<Poller<T>> {
        let listener = crate::sys::fd::inherited(listener)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let poller = Poller {
            epoll: epoll::create(epoll::CreateFlags::CLOEXEC)?,
            listener,
            parked: Mutex::new(Parked {
                next: 0,
                conns: HashMap::new(),
            }),
        };
        epoll::add(
            &poller.epoll,
            listener,
            EventData::new_u64(LISTENER),
            one_shot(),
        )?;
        Ok(poller)
    }

    /// The group's listening socket, to accept from.
    pub fn listener(&self) -> BorrowedFd<'static> {
        self.listener
    }

    /// Lets the next connecting client wake a worker again.
    pub fn rearm_listener(&self) {
        // ENOENT after stop_listening: nothing to do.
        let _ = epoll::modify(
            &self.epoll,
            self.listener,
            EventData::new_u64(LISTENER),
            one_shot(),
        );
    }

    /// No more connections are taken by this process (it is exiting); other
    /// processes of the group, or its replacement, take them.
    pub fn stop_listening(&self) {
        let _ = epoll::delete(&self.epoll, self.listener);
    }

    /// Hands a connection to the set until data or its close arrives; the
    /// set owns it until a worker receives it as [`Ready::Connection`] (or
    /// [`Poller::sweep`] takes it). `known`: it was in the set before.
    pub fn park(&self, conn: T, known: bool) -> Result<(), T> {
        let mut parked = self.lock();
        let token = parked.next;
        parked.next += 1;
        // In the table before it is armed: its event may reach a worker
        // as soon as it is.
        parked.conns.insert(token, conn);
        let fd = parked.conns[&token].as_fd();
        let data = EventData::new_u64(token);
        let armed = if known {
            epoll::modify(&self.epoll, fd, data, one_shot())
        } else {
            epoll::add(&self.epoll, fd, data, one_shot())
        };
        match armed {
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
        let mut room = [MaybeUninit::uninit(); 1];
        // Negative: no limit, as epoll_wait's own -1.
        let limit = (timeout_ms >= 0).then(|| Timespec {
            tv_sec: i64::from(timeout_ms / 1000),
            tv_nsec: i64::from(timeout_ms % 1000) * 1_000_000,
        });
        let Ok(([ev], _)) = epoll::wait(&self.epoll, &mut room, limit.as_ref()) else {
            return None;
        };
        match ev.data.u64() {
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
    use std::os::fd::AsRawFd;
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
