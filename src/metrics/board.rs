//! The metrics board: a fixed table of `u64` cells that every Apache child
//! and every daemon process of one Apache generation update with relaxed
//! atomic adds, and that the metrics handler reads. The cells live in memory
//! the Apache parent shares before forking (see `httpd::metrics`); this file
//! only knows their layout, so it is plain safe code, unit tested on a
//! heap-allocated table.
//!
//! Per group (index 0 is embedded mode, then each daemon group in plan
//! order) the table holds the request counters, two histograms, the
//! restart and timeout counters, and one small record per daemon process
//! slot (`processes=N` gives N). A process slot is zeroed by the parent when
//! its process dies, so gauges never keep a dead process's threads.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the histogram buckets, `+Inf` implied.
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The bucket bounds in microseconds, for counting without floats.
const BUCKET_MICROS: [u64; 14] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000,
];

/// HTTP status codes counted one by one: 100 to 599.
const CODES: usize = 500;

/// Why a daemon process was replaced (`wsgi_rs_process_restarts_total`'s
/// `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `maximum-requests` reached.
    MaximumRequests,
    /// The WSGI script changed (touch-to-reload).
    Reload,
    /// A request ran past `request-timeout`.
    Timeout,
    /// The application did not load within `startup-timeout`.
    StartupTimeout,
    /// `restart-interval` passed.
    RestartInterval,
    /// `inactivity-timeout` passed without requests.
    InactivityTimeout,
    /// The interpreter stayed deadlocked past `deadlock-timeout`.
    Deadlock,
    /// Resident memory passed `maximum-memory`.
    Memory,
    /// The process died without saying why (a signal, an abort, the kernel's
    /// out-of-memory killer, a failed start).
    Crash,
}

impl Reason {
    /// Every reason, in label order.
    pub const ALL: [Reason; 9] = [
        Reason::MaximumRequests,
        Reason::Reload,
        Reason::Timeout,
        Reason::StartupTimeout,
        Reason::RestartInterval,
        Reason::InactivityTimeout,
        Reason::Deadlock,
        Reason::Memory,
        Reason::Crash,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Reason::MaximumRequests => "maximum-requests",
            Reason::Reload => "reload",
            Reason::Timeout => "timeout",
            Reason::StartupTimeout => "startup-timeout",
            Reason::RestartInterval => "restart-interval",
            Reason::InactivityTimeout => "inactivity-timeout",
            Reason::Deadlock => "deadlock",
            Reason::Memory => "memory",
            Reason::Crash => "crash",
        }
    }
}

/// A histogram's cells: the buckets (`+Inf` last), then the sum in
/// microseconds.
const HISTOGRAM: usize = BUCKETS.len() + 2;

/// Offsets of a group's counters within its block.
mod at {
    use super::{Reason, HISTOGRAM};
    /// `requests_total` by code, then one cell for codes outside 100-599.
    pub const STATUS: usize = 0;
    /// Application time.
    pub const DURATION: usize = STATUS + super::CODES + 1;
    /// Queue wait.
    pub const QUEUE: usize = DURATION + HISTOGRAM;
    /// Request body bytes.
    pub const BYTES_IN: usize = QUEUE + HISTOGRAM;
    /// Response body bytes.
    pub const BYTES_OUT: usize = BYTES_IN + 1;
    /// Requests past `request-timeout`.
    pub const TIMEOUTS: usize = BYTES_OUT + 1;
    /// Busy threads of the group as a whole (embedded mode).
    pub const BUSY: usize = TIMEOUTS + 1;
    /// Live processes of the group as a whole (embedded mode: Apache children).
    pub const PROCESSES: usize = BUSY + 1;
    /// Restarts by reason.
    pub const RESTARTS: usize = PROCESSES + 1;
    /// Where the process slots start.
    pub const MEMBERS: usize = RESTARTS + Reason::ALL.len();
}

/// Offsets within one daemon process slot.
mod member {
    /// The process id, 0 when none runs.
    pub const PID: usize = 0;
    /// Its request threads.
    pub const THREADS: usize = 1;
    /// Those serving a request.
    pub const BUSY: usize = 2;
    /// Its resident memory in bytes.
    pub const RSS: usize = 3;
    /// 1 once it has counted the reason it is exiting for.
    pub const ACCOUNTED: usize = 4;
    /// Cells per slot.
    pub const SIZE: usize = 5;
}

/// One group's place in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLayout {
    /// The `group` label.
    pub name: String,
    /// Daemon process slots (0 for embedded mode).
    pub members: usize,
    /// Request threads per process (embedded: the MPM's threads per child).
    pub threads: usize,
    /// The first cell of its block.
    start: usize,
}

/// The shape of the table: which groups, how many process slots each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Embedded mode first, then the daemon groups in plan order.
    pub groups: Vec<GroupLayout>,
    /// Where the running-requests table starts (after the groups).
    running: usize,
    /// Cells in all.
    pub cells: usize,
}

/// The `group` label of embedded mode.
pub const EMBEDDED: &str = "embedded";

impl Layout {
    /// The layout for embedded mode with `embedded_threads` threads per
    /// Apache child, and `daemons` (name, processes, threads) in plan order.
    pub fn new<'a>(
        embedded_threads: usize,
        daemons: impl IntoIterator<Item = (&'a str, usize, usize)>,
    ) -> Layout {
        let mut groups = Vec::new();
        let mut cells = 0;
        let all = std::iter::once((EMBEDDED, 0, embedded_threads)).chain(daemons);
        for (name, members, threads) in all {
            groups.push(GroupLayout {
                name: name.to_owned(),
                members,
                threads,
                start: cells,
            });
            cells += at::MEMBERS + members * member::SIZE;
        }
        Layout {
            groups,
            running: cells,
            cells: cells + super::running::CELLS,
        }
    }
}

/// The table: a layout over its cells.
pub struct Board {
    /// The shape.
    layout: Layout,
    /// The cells, zeroed at first; `layout.cells` of them.
    cells: &'static [AtomicU64],
}

impl fmt::Debug for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Board")
            .field("groups", &self.layout.groups.len())
            .field("cells", &self.cells.len())
            .finish()
    }
}

/// Microseconds of `d`, saturating.
fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

impl Board {
    /// A board over `cells`, which must hold `layout.cells` zeroed cells;
    /// None when they do not.
    pub fn new(layout: Layout, cells: &'static [AtomicU64]) -> Option<Board> {
        (cells.len() == layout.cells).then_some(Board { layout, cells })
    }

    /// A board on the heap, for tests.
    #[cfg(test)]
    pub fn on_heap(layout: Layout) -> Board {
        let cells: Vec<AtomicU64> = (0..layout.cells).map(|_| AtomicU64::new(0)).collect();
        Board {
            cells: Box::leak(cells.into_boxed_slice()),
            layout,
        }
    }

    /// Cell `offset` of group `group`'s block (none when the group is unknown).
    fn cell(&self, group: usize, offset: usize) -> Option<&AtomicU64> {
        let g = self.layout.groups.get(group)?;
        self.cells.get(g.start + offset)
    }

    /// Cell `offset` of process slot `slot` of group `group`.
    fn member_cell(&self, group: usize, slot: usize, offset: usize) -> Option<&AtomicU64> {
        let g = self.layout.groups.get(group)?;
        if slot >= g.members {
            return None;
        }
        self.cells
            .get(g.start + at::MEMBERS + slot * member::SIZE + offset)
    }

    /// Adds `n` to a cell.
    fn add(&self, cell: Option<&AtomicU64>, n: u64) {
        if let Some(c) = cell {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Subtracts 1 from a gauge cell.
    fn sub(&self, cell: Option<&AtomicU64>) {
        if let Some(c) = cell {
            // Never below zero: a slot zeroed by the parent while a request
            // was still finishing must not wrap.
            let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
        }
    }

    /// Counts a finished request of group `group` answered with `code`,
    /// with its body sizes.
    pub fn request(&self, group: usize, code: u32, bytes_in: u64, bytes_out: u64) {
        let index = match code {
            100..=599 => code as usize - 100,
            _ => CODES,
        };
        self.add(self.cell(group, at::STATUS + index), 1);
        self.add(self.cell(group, at::BYTES_IN), bytes_in);
        self.add(self.cell(group, at::BYTES_OUT), bytes_out);
    }

    /// Counts `d` into the histogram at `offset` of group `group`.
    fn observe(&self, group: usize, offset: usize, d: Duration) {
        let us = micros(d);
        let bucket = BUCKET_MICROS
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BUCKETS.len());
        self.add(self.cell(group, offset + bucket), 1);
        self.add(self.cell(group, offset + BUCKETS.len() + 1), us);
    }

    /// Counts a request's application time.
    pub fn duration(&self, group: usize, d: Duration) {
        self.observe(group, at::DURATION, d);
    }

    /// Counts how long a request waited for a daemon thread.
    pub fn queue_wait(&self, group: usize, d: Duration) {
        self.observe(group, at::QUEUE, d);
    }

    /// Counts a request that ran past `request-timeout`.
    pub fn timeout(&self, group: usize) {
        self.add(self.cell(group, at::TIMEOUTS), 1);
    }

    /// A thread of group `group` (process slot `slot`, or the group as a
    /// whole when None) starts serving a request; it is idle again when the
    /// guard is dropped.
    pub fn busy(&self, group: usize, slot: Option<usize>) -> Busy<'_> {
        let cell = match slot {
            Some(s) => self.member_cell(group, s, member::BUSY),
            None => self.cell(group, at::BUSY),
        };
        self.add(cell, 1);
        Busy { board: self, cell }
    }

    /// An Apache child starts (+1) or exits (-1): the embedded processes gauge.
    pub fn embedded_process(&self, started: bool) {
        let cell = self.cell(0, at::PROCESSES);
        if started {
            self.add(cell, 1);
        } else {
            self.sub(cell);
        }
    }

    /// The parent started process `pid` in slot `slot` of group `group`.
    pub fn process_started(&self, group: usize, slot: usize, pid: u32) {
        for offset in [
            member::THREADS,
            member::BUSY,
            member::RSS,
            member::ACCOUNTED,
        ] {
            if let Some(c) = self.member_cell(group, slot, offset) {
                c.store(0, Ordering::Relaxed);
            }
        }
        if let Some(c) = self.member_cell(group, slot, member::PID) {
            c.store(pid.into(), Ordering::Release);
        }
    }

    /// The process in slot `slot` of group `group` has gone: its gauges are
    /// cleared, and unless it counted its own reason (or Apache is stopping
    /// it, `count_crash` false) it counts as a crash.
    pub fn process_gone(&self, group: usize, slot: usize, count_crash: bool) {
        let accounted = self
            .member_cell(group, slot, member::ACCOUNTED)
            .is_some_and(|c| c.swap(0, Ordering::Acquire) != 0);
        for offset in [member::PID, member::THREADS, member::BUSY, member::RSS] {
            if let Some(c) = self.member_cell(group, slot, offset) {
                c.store(0, Ordering::Relaxed);
            }
        }
        if count_crash && !accounted {
            self.restart(group, slot, Reason::Crash);
        }
    }

    /// Counts a restart of the process in slot `slot` for `reason`, once per
    /// process: its own account comes first, the parent's crash guess never
    /// doubles it.
    pub fn restart(&self, group: usize, slot: usize, reason: Reason) {
        let first = self
            .member_cell(group, slot, member::ACCOUNTED)
            .is_none_or(|c| c.swap(1, Ordering::Release) == 0);
        if first || reason == Reason::Crash {
            let index = Reason::ALL.iter().position(|&r| r == reason).unwrap_or(0);
            self.add(self.cell(group, at::RESTARTS + index), 1);
        }
    }

    /// The process in slot `slot` runs `threads` request threads.
    pub fn set_threads(&self, group: usize, slot: usize, threads: usize) {
        if let Some(c) = self.member_cell(group, slot, member::THREADS) {
            c.store(threads as u64, Ordering::Relaxed);
        }
    }

    /// The process in slot `slot` has `bytes` resident.
    pub fn set_resident(&self, group: usize, slot: usize, bytes: u64) {
        if let Some(c) = self.member_cell(group, slot, member::RSS) {
            c.store(bytes, Ordering::Relaxed);
        }
    }

    /// The table of requests running now.
    pub fn running(&self) -> super::running::Running<'_> {
        super::running::Running::new(&self.cells[self.layout.running..])
    }

    /// The `group` label of board group `group`.
    pub fn group_name(&self, group: usize) -> Option<&str> {
        self.layout.groups.get(group).map(|g| g.name.as_str())
    }

    /// A consistent-enough copy of every group's figures, for the handler.
    pub fn snapshot(&self) -> Vec<GroupFigures> {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        self.layout
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let block = &self.cells[g.start..g.start + at::MEMBERS + g.members * member::SIZE];
                let histogram = |offset: usize| Histogram {
                    buckets: block[offset..offset + BUCKETS.len() + 1]
                        .iter()
                        .map(load)
                        .collect(),
                    sum_micros: load(&block[offset + BUCKETS.len() + 1]),
                };
                let codes = (0..=CODES)
                    .filter_map(|c| {
                        let n = load(&block[at::STATUS + c]);
                        (n > 0).then_some((if c < CODES { c as u32 + 100 } else { 0 }, n))
                    })
                    .collect();
                let members: Vec<&[AtomicU64]> = (0..g.members)
                    .map(|m| {
                        let s = at::MEMBERS + m * member::SIZE;
                        &block[s..s + member::SIZE]
                    })
                    .filter(|m| load(&m[member::PID]) != 0)
                    .collect();
                let sum = |offset: usize| members.iter().map(|m| load(&m[offset])).sum::<u64>();
                let daemon = i > 0;
                let (processes, threads, busy) = if daemon {
                    (
                        members.len() as u64,
                        sum(member::THREADS),
                        sum(member::BUSY),
                    )
                } else {
                    let processes = load(&block[at::PROCESSES]);
                    (
                        processes,
                        processes * g.threads as u64,
                        load(&block[at::BUSY]),
                    )
                };
                GroupFigures {
                    name: g.name.clone(),
                    daemon,
                    codes,
                    duration: histogram(at::DURATION),
                    queue: histogram(at::QUEUE),
                    bytes_in: load(&block[at::BYTES_IN]),
                    bytes_out: load(&block[at::BYTES_OUT]),
                    timeouts: load(&block[at::TIMEOUTS]),
                    processes,
                    threads,
                    busy,
                    resident: sum(member::RSS),
                    restarts: Reason::ALL
                        .iter()
                        .enumerate()
                        .map(|(r, &reason)| (reason, load(&block[at::RESTARTS + r])))
                        .collect(),
                }
            })
            .collect()
    }
}

/// A busy thread; idle again when dropped.
pub struct Busy<'a> {
    /// The board.
    board: &'a Board,
    /// The gauge it raised.
    cell: Option<&'a AtomicU64>,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.board.sub(self.cell);
    }
}

/// A histogram's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    /// Per bucket (not cumulative), `+Inf` last.
    pub buckets: Vec<u64>,
    /// The sum of the observations in microseconds.
    pub sum_micros: u64,
}

/// One group's figures at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFigures {
    /// The `group` label.
    pub name: String,
    /// A daemon group (not embedded mode).
    pub daemon: bool,
    /// Requests by status code (0: a code outside 100-599), non-zero only.
    pub codes: Vec<(u32, u64)>,
    /// Application time.
    pub duration: Histogram,
    /// Queue wait (daemon groups).
    pub queue: Histogram,
    /// Request body bytes.
    pub bytes_in: u64,
    /// Response body bytes.
    pub bytes_out: u64,
    /// Requests past `request-timeout`.
    pub timeouts: u64,
    /// Live processes.
    pub processes: u64,
    /// Their request threads.
    pub threads: u64,
    /// Those serving a request.
    pub busy: u64,
    /// Their resident memory (daemon groups).
    pub resident: u64,
    /// Restarts by reason.
    pub restarts: Vec<(Reason, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> Board {
        Board::on_heap(Layout::new(25, [("app", 2, 4)]))
    }

    #[test]
    fn requests_count_by_group_and_code() {
        let b = board();
        b.request(0, 200, 10, 100);
        b.request(0, 200, 0, 5);
        b.request(1, 404, 3, 0);
        b.request(1, 999, 0, 0);
        let f = b.snapshot();
        assert_eq!(f[0].name, "embedded");
        assert_eq!(f[0].codes, vec![(200, 2)]);
        assert_eq!((f[0].bytes_in, f[0].bytes_out), (10, 105));
        assert_eq!(f[1].name, "app");
        assert_eq!(f[1].codes, vec![(404, 1), (0, 1)]);
        // An unknown group is ignored rather than corrupting another's cells.
        b.request(7, 200, 1, 1);
        assert_eq!(b.snapshot(), f);
    }

    #[test]
    fn histograms_bucket_and_sum() {
        let b = board();
        b.duration(1, Duration::from_micros(1_000));
        b.duration(1, Duration::from_millis(30));
        b.duration(1, Duration::from_secs(100));
        b.queue_wait(1, Duration::ZERO);
        let f = &b.snapshot()[1];
        assert_eq!(f.duration.buckets[0], 1, "the bound is inclusive");
        assert_eq!(f.duration.buckets[5], 1, "30 ms is in the 50 ms bucket");
        assert_eq!(f.duration.buckets[BUCKETS.len()], 1, "+Inf");
        assert_eq!(f.duration.buckets.iter().sum::<u64>(), 3);
        assert_eq!(f.duration.sum_micros, 100_031_000);
        assert_eq!(f.queue.buckets[0], 1);
    }

    #[test]
    fn gauges_follow_processes_and_threads() {
        let b = board();
        b.process_started(1, 0, 100);
        b.set_threads(1, 0, 4);
        b.set_resident(1, 0, 1 << 20);
        b.process_started(1, 1, 101);
        b.set_threads(1, 1, 4);
        let busy = b.busy(1, Some(1));
        let f = &b.snapshot()[1];
        assert_eq!(
            (f.processes, f.threads, f.busy, f.resident),
            (2, 8, 1, 1 << 20)
        );
        drop(busy);
        assert_eq!(b.snapshot()[1].busy, 0);
        // A dead process takes its threads with it, even one still busy.
        let _stuck = b.busy(1, Some(0));
        b.process_gone(1, 0, false);
        let f = &b.snapshot()[1];
        assert_eq!((f.processes, f.threads, f.busy, f.resident), (1, 4, 0, 0));
        // Embedded: children and the MPM's threads.
        b.embedded_process(true);
        b.embedded_process(true);
        let _busy = b.busy(0, None);
        b.embedded_process(false);
        let f = &b.snapshot()[0];
        assert_eq!((f.processes, f.threads, f.busy), (1, 25, 1));
    }

    #[test]
    fn restarts_count_once_per_process() {
        let b = board();
        let restarts = |b: &Board| -> Vec<(Reason, u64)> {
            b.snapshot()[1]
                .restarts
                .iter()
                .copied()
                .filter(|&(_, n)| n > 0)
                .collect()
        };
        b.process_started(1, 0, 100);
        b.restart(1, 0, Reason::MaximumRequests);
        b.restart(1, 0, Reason::Timeout);
        b.process_gone(1, 0, true);
        assert_eq!(restarts(&b), vec![(Reason::MaximumRequests, 1)]);
        // Died without a word: a crash; stopped by Apache: nothing.
        b.process_started(1, 0, 102);
        b.process_gone(1, 0, true);
        b.process_started(1, 1, 103);
        b.process_gone(1, 1, false);
        assert_eq!(
            restarts(&b),
            vec![(Reason::MaximumRequests, 1), (Reason::Crash, 1)]
        );
    }

    #[test]
    fn restart_reason_labels_are_distinct() {
        let labels: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), Reason::ALL.len());
    }

    #[test]
    fn a_board_needs_its_cells() {
        let layout = Layout::new(1, []);
        let short: &'static [AtomicU64] = Box::leak(Box::new([AtomicU64::new(0)]));
        assert!(Board::new(layout, short).is_none());
    }
}
