//! Reading the metrics board: a copy of every group's figures at one
//! moment, for the handler's Prometheus text and status page.

use std::sync::atomic::{AtomicU64, Ordering};

use super::layout::{at, place, BUCKETS, CODES};
use super::Board;
use crate::metrics::reason::Reason;

impl Board {
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
