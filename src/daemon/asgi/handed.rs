//! A handed-over request's bookkeeping: it counts as in flight for the
//! graceful drain, as busy for the metrics and as activity until the loop
//! is done with its connection, which then goes back to the epoll set (or
//! is closed) as a worker would.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::daemon::intake::Conn;
use crate::daemon::protocol::{self, Vars};
use crate::daemon::state::Daemon;
use crate::metrics::board::Busy;

/// A request's busy mark on the metrics board and when it began.
pub(in crate::daemon) type BusyMark = Option<(Busy<'static>, Instant)>;

/// A handed-over request's bookkeeping, done once: when the loop calls
/// `done`, or when the hand-over fails (drop).
struct Handed {
    /// The process's state.
    daemon: Arc<Daemon>,
    /// The daemon's own descriptor of the connection.
    conn: Option<OwnedFd>,
    /// Busy on the metrics board since the worker took it.
    busy: BusyMark,
    /// The request counts as activity.
    counts: bool,
}

impl Handed {
    /// The loop is done with the connection: park it for the client's next
    /// request when `keep`, else close it; the request is over.
    fn finish(&mut self, keep: bool) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let daemon = &self.daemon;
        // The loop made the shared file description non-blocking; workers
        // read with blocking calls and the socket timeout.
        let stream = UnixStream::from(conn);
        let keep = keep && stream.set_nonblocking(false).is_ok();
        let conn = Conn::resting(stream);
        let mut gate = daemon.gate.lock().unwrap_or_else(|p| p.into_inner());
        let parked = keep
            && !gate.closing
            && match daemon.poller.park(conn, true) {
                Ok(()) => true,
                // Never parked before (a fresh connection): add it.
                Err(conn) => daemon.poller.park(conn, false).is_ok(),
            };
        if !parked {
            daemon.connections.fetch_sub(1, Ordering::SeqCst);
        }
        gate.active -= 1;
        daemon.idle.notify_all();
        drop(gate);
        if let (Some(m), Some((_, begun))) = (daemon.launch.metrics, &self.busy) {
            m.duration(begun.elapsed());
        }
        self.busy = None;
        if self.counts {
            daemon.note_activity();
        }
    }
}

impl Drop for Handed {
    fn drop(&mut self) {
        self.finish(false);
    }
}

/// The request is in flight until the loop calls the `done` this returns
/// (or drops it): the connection on `stream` belongs to it from now on.
pub(super) fn handed(
    daemon: &Arc<Daemon>,
    stream: &UnixStream,
    busy: BusyMark,
    vars: &Vars,
) -> Box<dyn FnOnce(bool) + Send> {
    daemon.gate.lock().unwrap_or_else(|p| p.into_inner()).active += 1;
    // Not yet at the edge (issue 12): the worker's socket seen by number
    // while the worker owns it; sound by the protocol the SAFETY states, not
    // by the types (an Arc'd socket would be, at an allocation per
    // connection).
    #[allow(unsafe_code)]
    let handed = Mutex::new(Handed {
        daemon: daemon.clone(),
        // SAFETY: the worker gives up the descriptor without closing it
        // when serve() answers After::Handed (see process.rs), which it
        // does whenever the hand-over functions return true, as they do
        // once they called this.
        conn: Some(unsafe { OwnedFd::from_raw_fd(stream.as_raw_fd()) }),
        busy,
        counts: !vars.flag(protocol::VAR_IGNORE_ACTIVITY),
    });
    Box::new(move |keep| {
        handed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .finish(keep)
    })
}
