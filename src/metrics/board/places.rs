//! The pool of per-process places on the metrics board: the parent claims
//! a place for each daemon process it forks (tagged with the process's
//! group), zeroes it when the process dies and frees it when its slot goes;
//! the process counts its threads, memory and the reason it exits for
//! there, once.

use std::sync::atomic::{AtomicU64, Ordering};

use super::layout::{at, place};
use super::Board;
use crate::metrics::reason::Reason;

impl Board {
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

    /// Cell `offset` of process place `place`.
    pub(super) fn place_cell(&self, place: usize, offset: usize) -> Option<&AtomicU64> {
        if place >= self.layout.place_room {
            return None;
        }
        self.cells
            .get(self.layout.places + place * place::SIZE + offset)
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
}
