//! The shape of the metrics board's table: where each group's block of
//! counters and each process place lie, and how the layout of one table
//! carries over from one configuration to the next ([`Layout::next`])
//! without moving a cell a process of an earlier generation writes to.

use crate::metrics::reason::Reason;

/// Upper bounds (seconds) of the histogram buckets, `+Inf` implied.
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The bucket bounds in microseconds, for counting without floats.
pub(super) const BUCKET_MICROS: [u64; 14] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000,
];

/// HTTP status codes counted one by one: 100 to 599.
pub(super) const CODES: usize = 500;

/// A histogram's cells: the buckets (`+Inf` last), then the sum in
/// microseconds.
const HISTOGRAM: usize = BUCKETS.len() + 2;

/// Offsets of a group's counters within its block.
pub(super) mod at {
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
pub(super) mod place {
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
pub(super) const SPARE_GROUPS: usize = 16;
/// Process places a configuration needs at most per process: two (a
/// successor has a place of its own while the process it replaces
/// finishes, see `httpd::supervisor::succession`).
const PLACES_IN_USE: usize = 2;
/// Process places kept per process of the first configuration: for the
/// current generation's processes and as many again for those of earlier
/// generations still serving, twice over for a later configuration with
/// more processes.
pub(super) const PLACES_PER_PROCESS: usize = 4 * PLACES_IN_USE;
/// Spare places beyond those.
pub(super) const SPARE_PLACES: usize = 16;

/// One group's block in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLayout {
    /// The `group` label.
    pub name: String,
    /// Request threads per process (embedded: the MPM's threads per child).
    pub threads: usize,
    /// The first cell of its block.
    pub(super) start: usize,
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
    pub(super) current: Vec<usize>,
    /// Group blocks the table has room for.
    pub(super) group_room: usize,
    /// Where the process places start.
    pub(super) places: usize,
    /// How many places there are.
    pub(super) place_room: usize,
    /// Where the running-requests table starts (after the places).
    pub(super) running: usize,
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
            cells: running + crate::metrics::running::CELLS,
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
