//! Metrics for the `wsgi-rs-metrics` handler: the [`board`] every process
//! counts into (across Apache's restarts), and its [`text`] exposition.
//! Pure code: the shared memory the board lives in is set up by
//! `httpd::metrics`, which hands each process its view.

pub(crate) mod board;
mod reason;
pub(crate) mod running;
pub(crate) mod status;
pub(crate) mod text;

use std::time::Duration;

pub(crate) use board::{Board, Layout};
pub(crate) use reason::Reason;

/// One daemon process's place on the board, handed to it at fork.
#[derive(Debug, Clone, Copy)]
pub struct ProcessMetrics {
    /// The board.
    pub board: &'static Board,
    /// Its group's index on the board.
    pub group: usize,
    /// Its place among the board's process places.
    pub slot: usize,
}

impl ProcessMetrics {
    /// Counts this process's restart for `reason` (once per process).
    pub fn restart(&self, reason: Reason) {
        self.board.restart(self.group, self.slot, reason);
    }

    /// A thread of this process takes a request that waited `queued`;
    /// it is idle again when the guard drops.
    pub fn taken(&self, queued: Option<Duration>) -> board::Busy<'static> {
        if let Some(d) = queued {
            self.board.queue_wait(self.group, d);
        }
        self.board.busy(self.group, Some(self.slot))
    }

    /// Counts a request's application time.
    pub fn duration(&self, d: Duration) {
        self.board.duration(self.group, d);
    }

    /// Counts a request past `request-timeout`.
    pub fn timeout(&self) {
        self.board.timeout(self.group);
    }

    /// This process runs `threads` request threads.
    pub fn set_threads(&self, threads: usize) {
        self.board.set_threads(self.slot, threads);
    }

    /// Process `pid` now serves in this slot (a template process's account
    /// of the processes it forks).
    pub fn started(&self, pid: u32) {
        self.board.process_started(self.slot, pid);
    }

    /// The process serving in this slot has gone; see
    /// [`Board::process_gone`].
    pub fn gone(&self, reason: Option<Reason>) {
        self.board.process_gone(self.group, self.slot, reason);
    }

    /// The slot is given up: no process will serve in it again.
    pub fn release(&self) {
        self.board.release(self.slot);
    }

    /// This process has `bytes` resident.
    pub fn set_resident(&self, bytes: u64) {
        self.board.set_resident(self.slot, bytes);
    }
}
