//! The metrics board: a fixed table of `u64` cells that every Apache child
//! and every daemon process update with relaxed atomic adds, and that the
//! metrics handler reads. The cells live in memory the Apache parent shares
//! before forking (see `httpd::metrics`); this module only knows their
//! layout, so it is plain safe code, unit tested on a heap-allocated table.
//! This file is the table and the counting into its group blocks; its
//! layout is in `board/layout.rs`, the pool of process places in
//! `board/places.rs`, reading it back in `board/figures.rs`.
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

mod figures;
mod layout;
mod places;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use figures::{GroupFigures, Histogram};
use layout::{at, place, BUCKET_MICROS, CODES};
pub use layout::{Layout, BUCKETS};

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

    /// The table of requests running now.
    pub fn running(&self) -> crate::metrics::running::Running<'_> {
        crate::metrics::running::Running::new(&self.cells[self.layout.running..])
    }

    /// The `group` label of board group `group`.
    pub fn group_name(&self, group: usize) -> Option<&str> {
        self.layout.groups.get(group).map(|g| g.name.as_str())
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

#[cfg(test)]
mod tests {
    use super::layout::{PLACES_PER_PROCESS, SPARE_GROUPS, SPARE_PLACES};
    use super::*;
    use crate::metrics::Reason;

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
    fn a_board_needs_its_cells() {
        let layout = Layout::new(1, []);
        let short: &'static [AtomicU64] = Box::leak(Box::new([AtomicU64::new(0)]));
        assert!(Board::new(layout, short).is_none());
    }
}
