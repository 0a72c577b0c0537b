//! The running-requests table of the metrics board: one small record per
//! request being served by this Apache generation (its group, process,
//! thread, start time and the start of its URL), for the status page's
//! table of running requests, as `mod_status` lists Apache's workers.
//!
//! A request claims a free record (compare-and-swap of its owner cell),
//! writes it, and frees it when it ends. Readers in other processes may
//! read a record while it is rewritten, so each record carries a sequence
//! counter (a seqlock): odd while its writer changes it, bumped again when
//! done; a reader keeps a copy only when the counter was even and unchanged
//! across its reads, and retries a few times otherwise. Every cell is an
//! atomic, so a torn read is merely detected and dropped, never undefined.

use std::sync::atomic::{fence, AtomicU64, Ordering};

/// Records in the table: requests beyond this many at once run unlisted.
pub const SLOTS: usize = 512;

/// Bytes of the URL kept (longer ones are cut, at a character boundary).
pub const URL_BYTES: usize = 128;

/// Offsets within one record.
mod at {
    /// The seqlock counter: odd while the record is being written.
    pub const SEQ: usize = 0;
    /// 1 while a request owns the record.
    pub const OWNER: usize = 1;
    /// The board group index + 1 (0: not known yet).
    pub const GROUP: usize = 2;
    /// The serving process (0: no request).
    pub const PID: usize = 3;
    /// The serving thread.
    pub const TID: usize = 4;
    /// When the request started, microseconds since the Unix epoch.
    pub const START: usize = 5;
    /// The URL's length in bytes.
    pub const URL_LEN: usize = 6;
    /// The URL's bytes, eight to a cell.
    pub const URL: usize = 7;
    /// Cells per record.
    pub const SIZE: usize = URL + super::URL_BYTES / 8;
}

/// Cells the table needs.
pub const CELLS: usize = SLOTS * at::SIZE;

/// One running request as read from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningRequest {
    /// The board group index (0 embedded, daemon groups from 1), or None
    /// while the request has not been routed yet.
    pub group: Option<usize>,
    /// The serving process.
    pub pid: u32,
    /// The serving thread (the kernel's thread id).
    pub tid: u64,
    /// When it started, microseconds since the Unix epoch.
    pub start_micros: u64,
    /// The start of its URL.
    pub url: String,
}

/// The table over its cells.
#[derive(Debug, Clone, Copy)]
pub struct Running<'a> {
    /// `CELLS` cells.
    cells: &'a [AtomicU64],
}

/// `url` cut to at most [`URL_BYTES`] bytes at a character boundary.
fn cut(url: &str) -> &str {
    if url.len() <= URL_BYTES {
        return url;
    }
    let mut end = URL_BYTES;
    while !url.is_char_boundary(end) {
        end -= 1;
    }
    &url[..end]
}

impl<'a> Running<'a> {
    /// The table over `cells` (at least [`CELLS`] of them).
    pub fn new(cells: &'a [AtomicU64]) -> Running<'a> {
        Running { cells }
    }

    /// Record `i`'s cells.
    fn record(&self, i: usize) -> &'a [AtomicU64] {
        &self.cells[i * at::SIZE..(i + 1) * at::SIZE]
    }

    /// Claims a record for a request of process `pid`, thread `tid`, that
    /// started at `start_micros` for `url`; None when every record is taken
    /// (the request then runs unlisted). The record is freed when the guard
    /// drops.
    pub fn claim(&self, pid: u32, tid: u64, start_micros: u64, url: &str) -> Option<Slot<'a>> {
        // Start where this thread usually lands, so concurrent claims
        // rarely contend for the same record.
        let first = (tid as usize).wrapping_mul(0x9E37_79B9) % SLOTS;
        let index = (0..SLOTS).map(|k| (first + k) % SLOTS).find(|&i| {
            self.record(i)[at::OWNER]
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        })?;
        let slot = Slot {
            record: self.record(index),
        };
        let url = cut(url).as_bytes();
        slot.write(|r| {
            r[at::GROUP].store(0, Ordering::Relaxed);
            r[at::PID].store(pid.into(), Ordering::Relaxed);
            r[at::TID].store(tid, Ordering::Relaxed);
            r[at::START].store(start_micros, Ordering::Relaxed);
            r[at::URL_LEN].store(url.len() as u64, Ordering::Relaxed);
            for (k, chunk) in url.chunks(8).enumerate() {
                let mut word = [0u8; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                r[at::URL + k].store(u64::from_le_bytes(word), Ordering::Relaxed);
            }
        });
        Some(slot)
    }

    /// Reads record `i` consistently; None when it holds no request or
    /// kept changing under the reader.
    fn read(&self, i: usize) -> Option<RunningRequest> {
        let r = self.record(i);
        if r[at::OWNER].load(Ordering::Relaxed) == 0 {
            return None;
        }
        for _ in 0..4 {
            let before = r[at::SEQ].load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let load = |k: usize| r[k].load(Ordering::Relaxed);
            let len = (load(at::URL_LEN) as usize).min(URL_BYTES);
            let mut bytes = Vec::with_capacity(URL_BYTES);
            for k in 0..URL_BYTES / 8 {
                bytes.extend_from_slice(&load(at::URL + k).to_le_bytes());
            }
            bytes.truncate(len);
            let seen = RunningRequest {
                group: load(at::GROUP).checked_sub(1).map(|g| g as usize),
                pid: load(at::PID) as u32,
                tid: load(at::TID),
                start_micros: load(at::START),
                url: String::from_utf8_lossy(&bytes).into_owned(),
            };
            fence(Ordering::Acquire);
            if r[at::SEQ].load(Ordering::Relaxed) == before {
                return (seen.pid != 0).then_some(seen);
            }
        }
        None
    }

    /// Every request running now, oldest first.
    pub fn list(&self) -> Vec<RunningRequest> {
        let mut all: Vec<RunningRequest> = (0..SLOTS).filter_map(|i| self.read(i)).collect();
        all.sort_by_key(|r| r.start_micros);
        all
    }
}

/// A claimed record; freed when dropped.
#[derive(Debug)]
pub struct Slot<'a> {
    /// Its cells.
    record: &'a [AtomicU64],
}

impl Slot<'_> {
    /// Changes the record under its seqlock.
    fn write(&self, change: impl FnOnce(&[AtomicU64])) {
        let seq = &self.record[at::SEQ];
        seq.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::Release);
        change(self.record);
        seq.fetch_add(1, Ordering::Release);
    }

    /// The request was routed to board group `group`.
    pub fn set_group(&self, group: usize) {
        self.write(|r| r[at::GROUP].store(group as u64 + 1, Ordering::Relaxed));
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.write(|r| r[at::PID].store(0, Ordering::Relaxed));
        self.record[at::OWNER].store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<AtomicU64> {
        (0..CELLS).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn claimed_records_are_listed_until_dropped() {
        let cells = table();
        let t = Running::new(&cells);
        let a = t.claim(10, 7, 2_000, "/b?x=1").unwrap();
        let b = t.claim(11, 7, 1_000, "/a").unwrap();
        b.set_group(2);
        let listed = t.list();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].url, "/a", "oldest first");
        assert_eq!(listed[0].group, Some(2));
        assert_eq!((listed[1].pid, listed[1].tid), (10, 7));
        assert_eq!(listed[1].group, None);
        drop(a);
        assert_eq!(t.list().len(), 1);
        drop(b);
        assert!(t.list().is_empty());
    }

    #[test]
    fn long_urls_are_cut_at_a_character_boundary() {
        let cells = table();
        let t = Running::new(&cells);
        let url = format!("/{}", "é".repeat(100));
        let _s = t.claim(1, 1, 1, &url).unwrap();
        let seen = &t.list()[0].url;
        assert!(seen.len() <= URL_BYTES && url.starts_with(seen.as_str()));
        assert_eq!(seen.len(), 127);
    }

    #[test]
    fn a_full_table_refuses_and_a_freed_record_is_reused() {
        let cells = table();
        let t = Running::new(&cells);
        let all: Vec<_> = (0..SLOTS)
            .map(|i| t.claim(1, i as u64, 1, "/").unwrap())
            .collect();
        assert!(t.claim(1, 0, 1, "/").is_none());
        drop(all);
        assert!(t.claim(1, 0, 1, "/").is_some());
    }

    #[test]
    fn a_record_being_written_is_not_read() {
        let cells = table();
        let t = Running::new(&cells);
        let _s = t.claim(1, 1, 1, "/x").unwrap();
        let i = (0..SLOTS).find(|&i| t.read(i).is_some()).unwrap();
        cells[i * at::SIZE + at::SEQ].fetch_add(1, Ordering::Relaxed);
        assert!(t.list().is_empty(), "odd counter: being written");
        cells[i * at::SIZE + at::SEQ].fetch_add(1, Ordering::Relaxed);
        assert_eq!(t.list().len(), 1);
    }

    #[test]
    fn concurrent_writers_never_show_a_torn_record() {
        let cells: &'static [AtomicU64] = Box::leak(table().into_boxed_slice());
        let t = Running::new(cells);
        let slot = t.claim(1, 1, 1, "/aaaaaaaaaaaaaaaa").unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for k in 0..20_000u64 {
                    slot.write(|r| {
                        r[at::START].store(k, Ordering::Relaxed);
                        r[at::TID].store(k, Ordering::Relaxed);
                    });
                }
                stop.store(true, Ordering::Relaxed);
            });
            while !stop.load(Ordering::Relaxed) {
                for r in t.list() {
                    assert_eq!(r.start_micros, r.tid, "a torn record was read");
                }
            }
        });
    }
}
