//! The metrics board: a fixed table of `u64` cells that every Apache child
//! and every daemon process update with relaxed atomic adds, and that the
//! metrics handler reads. The cells live in memory the Apache parent shares
//! before forking (see `httpd::metrics`); this file only knows their
//! layout, so it is plain safe code, unit tested on a heap-allocated table.
//!
//! The table outlives Apache's restarts, as Apache's scoreboard does: the
//! processes of an earlier generation (Apache children finishing their
//! requests, daemon processes serving until the new ones are ready) count
//! into the same cells as the new generation's, and counters never go back
//! to zero. So nothing a process of any generation writes to may move:
//!
//! - each group (index 0 is embedded mode, then each daemon group in the
//!   order its name first appeared) has a block of counters (requests, two
//!   histograms, restarts and timeouts) that stays its own, by name, for the
//!   table's life; a later configuration only appends blocks for new names
//!   ([`Layout::next`]), in room kept for them;
//! - each daemon process has a *place* (its pid, threads, busy threads,
//!   memory), claimed by the parent for one of the parent's process slots
//!   from a pool of places ([`Board::claim`]) and tagged with its group's
//!   block, so a process of an earlier generation and its successor never
//!   share one. The parent zeroes a place when its process dies, so gauges
//!   never keep a dead process's threads, and frees it when its slot goes.
//!
//! A configuration that does not fit the room kept needs a table of its own
//! (the caller makes one, and counting starts again).

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
    /// Apache restarted: a process of the earlier generation finished its
    /// requests and stopped once its group's new processes were ready (or,
    /// its group gone, once no earlier Apache child was left).
    Graceful,
}

impl Reason {
    /// Every reason, in label order.
    pub const ALL: [Reason; 10] = [
        Reason::MaximumRequests,
        Reason::Reload,
        Reason::Timeout,
        Reason::StartupTimeout,
        Reason::RestartInterval,
        Reason::InactivityTimeout,
        Reason::Deadlock,
        Reason::Memory,
        Reason::Crash,
        Reason::Graceful,
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
            Reason::Graceful => "graceful",
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
    /// Cells per group.
    pub const SIZE: usize = RESTARTS + Reason::ALL.len();
}

/// Offsets within one daemon process's place.
mod place {
    /// The board group whose process it holds, 0 while the place is free.
    pub const GROUP: usize = 0;
    /// The process id, 0 when none runs.
    pub const PID: usize = 1;
    /// Its request threads.
    pub const THREADS: usize = 2;
    /// Those serving a request.
    pub const BUSY: usize = 3;
    /// Its resident memory in bytes.
    pub const RSS: usize = 4;
    /// 1 once it has counted the reason it is exiting for.
    pub const ACCOUNTED: usize = 5;
    /// Cells per place.
    pub const SIZE: usize = 6;
}

/// Group blocks kept free, beyond the first configuration's, for groups a
/// later configuration adds.
const SPARE_GROUPS: usize = 16;
/// Process places a configuration needs at most per process: two (a
/// successor has a place of its own while the process it replaces
/// finishes, see `httpd::supervisor::succession`).
const PLACES_IN_USE: usize = 2;
/// Process places kept per process of the first configuration: for the
/// current generation's processes and as many again for those of earlier
/// generations still serving, twice over for a later configuration with
/// more processes.
const PLACES_PER_PROCESS: usize = 4 * PLACES_IN_USE;
/// Spare places beyond those.
const SPARE_PLACES: usize = 16;

/// One group's block in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLayout {
    /// The `group` label.
    pub name: String,
    /// Request threads per process (embedded: the MPM's threads per child).
    pub threads: usize,
    /// The first cell of its block.
    start: usize,
}

/// The shape of the table: which group has which block, where the process
/// places are. Every generation's layout of one table puts every cell at
/// the same offset (see [`Layout::next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Embedded mode first, then every daemon group named since the table
    /// was made, in the order their names first appeared.
    pub groups: Vec<GroupLayout>,
    /// The board group of each daemon group of this configuration, in plan
    /// order.
    current: Vec<usize>,
    /// Group blocks the table has room for.
    group_room: usize,
    /// Where the process places start.
    places: usize,
    /// How many places there are.
    place_room: usize,
    /// Where the running-requests table starts (after the places).
    running: usize,
    /// Cells in all.
    pub cells: usize,
}

/// The `group` label of embedded mode.
pub const EMBEDDED: &str = "embedded";

impl Layout {
    /// A new table's layout for embedded mode with `embedded_threads`
    /// threads per Apache child, and `daemons` (name, processes, threads) in
    /// plan order, with room for later configurations to add groups and
    /// for earlier generations' processes to keep their places.
    pub fn new<'a>(
        embedded_threads: usize,
        daemons: impl IntoIterator<Item = (&'a str, usize, usize)>,
    ) -> Layout {
        let daemons: Vec<_> = daemons.into_iter().collect();
        let processes: usize = daemons.iter().map(|&(_, p, _)| p).sum();
        let group_room = 1 + daemons.len() + SPARE_GROUPS;
        let place_room = processes * PLACES_PER_PROCESS + SPARE_PLACES;
        let places = group_room * at::SIZE;
        let running = places + place_room * place::SIZE;
        let empty = Layout {
            groups: vec![GroupLayout {
                name: EMBEDDED.to_owned(),
                threads: embedded_threads,
                start: 0,
            }],
            current: Vec::new(),
            group_room,
            places,
            place_room,
            running,
            cells: running + super::running::CELLS,
        };
        empty
            .next(embedded_threads, daemons)
            .expect("a new table has room for its own configuration")
    }

    /// The layout of the same table for the next configuration: every group
    /// keeps its block (by name), a new name takes the next free block, and
    /// nothing moves, so a process forked under an earlier layout still
    /// writes where this one reads. None when the configuration does not fit
    /// (more groups than the room kept, or more places needed than half the
    /// room: the rest are for earlier generations still serving).
    pub fn next<'a>(
        &self,
        embedded_threads: usize,
        daemons: impl IntoIterator<Item = (&'a str, usize, usize)>,
    ) -> Option<Layout> {
        let mut layout = self.clone();
        layout.groups[0].threads = embedded_threads;
        layout.current.clear();
        let mut processes = 0;
        for (name, members, threads) in daemons {
            processes += members;
            let index = match layout.groups.iter().position(|g| g.name == name) {
                Some(index) => index,
                None if layout.groups.len() < layout.group_room => {
                    let start = layout.groups.len() * at::SIZE;
                    layout.groups.push(GroupLayout {
                        name: name.to_owned(),
                        threads,
                        start,
                    });
                    layout.groups.len() - 1
                }
                None => return None,
            };
            layout.groups[index].threads = threads;
            layout.current.push(index);
        }
        (processes * PLACES_IN_USE * 2 <= layout.place_room).then_some(layout)
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

    /// The same table seen with the next configuration's layout (see
    /// [`Layout::next`]), or None when that configuration does not fit it.
    pub fn next<'a>(
        &self,
        embedded_threads: usize,
        daemons: impl IntoIterator<Item = (&'a str, usize, usize)>,
    ) -> Option<Board> {
        let layout = self.layout.next(embedded_threads, daemons)?;
        Some(Board {
            layout,
            cells: self.cells,
        })
    }

    /// The board group of daemon group `plan_index` of this board's
    /// configuration (an index no group has when there is none).
    pub fn daemon_group(&self, plan_index: usize) -> usize {
        self.layout
            .current
            .get(plan_index)
            .copied()
            .unwrap_or(usize::MAX)
    }

    /// Claims a free process place for a process of board group `group`
    /// (a daemon group, from 1); None when every place is taken. Only the
    /// process that supervises the daemons claims and frees places.
    pub fn claim(&self, group: usize) -> Option<usize> {
        if group == 0 || group >= self.layout.groups.len() {
            return None;
        }
        (0..self.layout.place_room).find(|&p| {
            let claimed = self.place_cell(p, place::GROUP).is_some_and(|c| {
                c.compare_exchange(0, group as u64, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            });
            if claimed {
                for offset in [place::PID, place::THREADS, place::BUSY, place::RSS] {
                    self.store(self.place_cell(p, offset), 0);
                }
                self.store(self.place_cell(p, place::ACCOUNTED), 0);
            }
            claimed
        })
    }

    /// Frees place `place`: its process is gone and its slot too.
    pub fn release(&self, place: usize) {
        for offset in [place::PID, place::THREADS, place::BUSY, place::RSS] {
            self.store(self.place_cell(place, offset), 0);
        }
        self.store(self.place_cell(place, place::GROUP), 0);
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

    /// Cell `offset` of process place `place`.
    fn place_cell(&self, place: usize, offset: usize) -> Option<&AtomicU64> {
        if place >= self.layout.place_room {
            return None;
        }
        self.cells
            .get(self.layout.places + place * place::SIZE + offset)
    }

    /// Sets a cell.
    fn store(&self, cell: Option<&AtomicU64>, value: u64) {
        if let Some(c) = cell {
            c.store(value, Ordering::Release);
        }
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

    /// A thread of group `group` (of the process in place `place`, or of
    /// the group as a whole when None) starts serving a request; it is idle
    /// again when the guard is dropped.
    pub fn busy(&self, group: usize, place: Option<usize>) -> Busy<'_> {
        let cell = match place {
            Some(p) => self.place_cell(p, place::BUSY),
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

    /// Process `pid` now runs in place `place` (claimed for its group).
    pub fn process_started(&self, place: usize, pid: u32) {
        for offset in [place::THREADS, place::BUSY, place::RSS, place::ACCOUNTED] {
            self.store(self.place_cell(place, offset), 0);
        }
        self.store(self.place_cell(place, place::PID), pid.into());
    }

    /// The process in place `place` of group `group` has gone: its gauges
    /// are cleared, and unless it counted its own reason it counts as a
    /// restart for `reason` (None: not a restart, Apache is stopping it).
    pub fn process_gone(&self, group: usize, place: usize, reason: Option<Reason>) {
        let accounted = self
            .place_cell(place, place::ACCOUNTED)
            .is_some_and(|c| c.swap(0, Ordering::Acquire) != 0);
        for offset in [place::PID, place::THREADS, place::BUSY, place::RSS] {
            self.store(self.place_cell(place, offset), 0);
        }
        if let Some(reason) = reason.filter(|_| !accounted) {
            self.restart(group, place, reason);
        }
    }

    /// Counts a restart of the process in place `place` of group `group`
    /// for `reason`, once per process: its own account comes first, the
    /// parent's guess never doubles it.
    pub fn restart(&self, group: usize, place: usize, reason: Reason) {
        let first = self
            .place_cell(place, place::ACCOUNTED)
            .is_none_or(|c| c.swap(1, Ordering::Release) == 0);
        if first {
            let index = Reason::ALL.iter().position(|&r| r == reason).unwrap_or(0);
            self.add(self.cell(group, at::RESTARTS + index), 1);
        }
    }

    /// The process in place `place` runs `threads` request threads.
    pub fn set_threads(&self, place: usize, threads: usize) {
        self.store(self.place_cell(place, place::THREADS), threads as u64);
    }

    /// The process in place `place` has `bytes` resident.
    pub fn set_resident(&self, place: usize, bytes: u64) {
        self.store(self.place_cell(place, place::RSS), bytes);
    }

    /// The table of requests running now.
    pub fn running(&self) -> super::running::Running<'_> {
        super::running::Running::new(&self.cells[self.layout.running..])
    }

    /// The `group` label of board group `group`.
    pub fn group_name(&self, group: usize) -> Option<&str> {
        self.layout.groups.get(group).map(|g| g.name.as_str())
    }

    /// A consistent-enough copy of every group's figures, for the handler:
    /// every group named since the table was made (a group a later
    /// configuration dropped keeps its counters, and its processes still
    /// serving count in its gauges).
    pub fn snapshot(&self) -> Vec<GroupFigures> {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        // The running processes' places, by board group.
        let places: Vec<&[AtomicU64]> = (0..self.layout.place_room)
            .map(|p| {
                let s = self.layout.places + p * place::SIZE;
                &self.cells[s..s + place::SIZE]
            })
            .filter(|p| load(&p[place::PID]) != 0)
            .collect();
        self.layout
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let block = &self.cells[g.start..g.start + at::SIZE];
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
                let members: Vec<&&[AtomicU64]> = places
                    .iter()
                    .filter(|p| load(&p[place::GROUP]) == i as u64)
                    .collect();
                let sum = |offset: usize| members.iter().map(|m| load(&m[offset])).sum::<u64>();
                let daemon = i > 0;
                let (processes, threads, busy) = if daemon {
                    (members.len() as u64, sum(place::THREADS), sum(place::BUSY))
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
                    resident: sum(place::RSS),
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
        let (p0, p1) = (b.claim(1).unwrap(), b.claim(1).unwrap());
        assert_ne!(p0, p1);
        b.process_started(p0, 100);
        b.set_threads(p0, 4);
        b.set_resident(p0, 1 << 20);
        b.process_started(p1, 101);
        b.set_threads(p1, 4);
        let busy = b.busy(1, Some(p1));
        let f = &b.snapshot()[1];
        assert_eq!(
            (f.processes, f.threads, f.busy, f.resident),
            (2, 8, 1, 1 << 20)
        );
        drop(busy);
        assert_eq!(b.snapshot()[1].busy, 0);
        // A dead process takes its threads with it, even one still busy.
        let _stuck = b.busy(1, Some(p0));
        b.process_gone(1, p0, None);
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
        let (p0, p1) = (b.claim(1).unwrap(), b.claim(1).unwrap());
        b.process_started(p0, 100);
        b.restart(1, p0, Reason::MaximumRequests);
        b.restart(1, p0, Reason::Timeout);
        b.process_gone(1, p0, Some(Reason::Crash));
        assert_eq!(restarts(&b), vec![(Reason::MaximumRequests, 1)]);
        // Died without a word: a crash; stopped by Apache: nothing.
        b.process_started(p0, 102);
        b.process_gone(1, p0, Some(Reason::Crash));
        b.process_started(p1, 103);
        b.process_gone(1, p1, None);
        assert_eq!(
            restarts(&b),
            vec![(Reason::MaximumRequests, 1), (Reason::Crash, 1)]
        );
        // Retired by a restart of Apache, unless it had its own reason.
        b.process_started(p1, 104);
        b.process_gone(1, p1, Some(Reason::Graceful));
        b.process_started(p1, 105);
        b.restart(1, p1, Reason::Reload);
        b.process_gone(1, p1, Some(Reason::Graceful));
        assert_eq!(
            restarts(&b),
            vec![
                (Reason::MaximumRequests, 1),
                (Reason::Reload, 1),
                (Reason::Crash, 1),
                (Reason::Graceful, 1)
            ]
        );
    }

    /// What a process forked under one configuration writes lands, under
    /// the next, in its group's block (found by name), whatever groups the
    /// next one drops, adds or resizes; and its place stays its own.
    #[test]
    fn the_next_configuration_reads_what_earlier_processes_write() {
        let old = Board::on_heap(Layout::new(4, [("a", 2, 1), ("b", 1, 1)]));
        let a = old.daemon_group(0);
        let place = old.claim(a).unwrap();
        old.process_started(place, 100);
        old.set_threads(place, 1);
        old.request(a, 200, 0, 0);
        // "b" removed, "c" added before "a", "a" grown to 3 processes of 8
        // threads.
        let new = old.next(4, [("c", 1, 2), ("a", 3, 8)]).unwrap();
        assert_eq!(new.daemon_group(1), a, "a keeps its block");
        let c = new.daemon_group(0);
        assert_ne!(c, a);
        let mine = new.claim(a).unwrap();
        assert_ne!(mine, place, "the successor has a place of its own");
        new.process_started(mine, 200);
        new.set_threads(mine, 8);
        // The old process goes on counting, with the old layout.
        old.request(a, 200, 0, 0);
        old.restart(a, place, Reason::Reload);
        let _busy = old.busy(a, Some(place));
        new.request(c, 404, 0, 0);
        let figures = |name: &str| new.snapshot().into_iter().find(|g| g.name == name).unwrap();
        let fa = figures("a");
        assert_eq!(fa.codes, vec![(200, 2)]);
        assert_eq!((fa.processes, fa.threads, fa.busy), (2, 9, 1));
        assert!(fa.restarts.contains(&(Reason::Reload, 1)));
        assert_eq!(figures("c").codes, vec![(404, 1)]);
        assert_eq!(figures("b").codes, vec![], "a dropped group stays listed");
        // The parent reaps the old process and frees its place.
        new.process_gone(a, place, Some(Reason::Graceful));
        new.release(place);
        let fa = figures("a");
        assert_eq!((fa.processes, fa.threads), (1, 8));
        assert!(fa.restarts.contains(&(Reason::Reload, 1)));
        assert!(fa.restarts.contains(&(Reason::Graceful, 0)));
    }

    /// A configuration that does not fit the room kept is refused, and
    /// places run out rather than spill into other cells.
    #[test]
    fn the_room_kept_is_never_exceeded() {
        let b = Board::on_heap(Layout::new(1, [("a", 1, 1)]));
        let many: Vec<String> = (0..SPARE_GROUPS + 1).map(|i| format!("g{i}")).collect();
        assert!(b.next(1, many.iter().map(|n| (n.as_str(), 1, 1))).is_none());
        assert!(b
            .next(1, many[..SPARE_GROUPS].iter().map(|n| (n.as_str(), 0, 1)))
            .is_some());
        assert!(b.next(1, [("a", 100, 1)]).is_none(), "too many processes");
        let room = PLACES_PER_PROCESS + SPARE_PLACES;
        let places: Vec<usize> = (0..room).map(|_| b.claim(1).unwrap()).collect();
        assert_eq!(places.len(), room);
        assert_eq!(b.claim(1), None);
        assert_eq!(b.claim(0), None, "embedded mode has no places");
        b.release(places[3]);
        assert_eq!(b.claim(1), Some(places[3]));
        // Out of range: ignored.
        b.process_started(room, 1);
        b.set_threads(usize::MAX, 1);
        assert_eq!(b.snapshot()[1].processes, 0);
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
