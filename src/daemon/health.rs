//! Whether a daemon group can serve, as the Apache children see it.
//!
//! The group's socket belongs to the Apache parent, so connecting to it
//! succeeds even when no process of the group lives: the request would sit
//! in the listen backlog until socket-timeout. To answer such a request at
//! once, each process slot of a group has a small record in memory shared
//! (an anonymous `MAP_SHARED` mapping made before anything forks) between
//! the supervisor, the group's processes and the Apache children:
//!
//! - the supervisor marks a slot *starting* when it starts a process, and
//!   *failed* (with a cause, unless the process left one) when a process
//!   dies young enough to be held off before the next try;
//! - a process marks its slot *retrying* when its back-off ends, *ready*
//!   once it serves, and *failed* with its own error when it cannot start;
//! - an Apache child reads the verdict before it connects ([`Verdict`]).
//!
//! Each process slot has two records, its own and its *partner*
//! ([`Health::partner`]): without a template, a process that must be
//! replaced asks for a successor in its record ([`Health::want`]), the
//! supervisor starts one in the partner record and names it there
//! ([`Health::set_heir`]), and the successor says in its record that it
//! serves ([`Health::serving`]); the process it replaces reads that and
//! hands over (see [`succession`](super::succession)). A record no process
//! uses is *vacant*, which the verdict ignores.
//!
//! Each slot's cause text is written by one process at a time (its current
//! process, or the supervisor after reaping it) and read under a sequence
//! count, so a reader never sees half of one. Every other process's copy
//! of a group's record is made read-only ([`Health::read_only`]) or
//! inaccessible ([`Health::seal`]), so one group's application cannot make
//! another group look failed.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::sys::shm::{shared_records, Shared};

/// Longest cause kept; longer ones are cut at a character boundary.
const CAUSE_MAX: usize = 480;
/// Longest script a process names for its successor to load (longer ones
/// are not named).
const WARM_MAX: usize = 1024;

/// What a process slot is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// Never set (health records unavailable): assume it serves.
    Unknown,
    /// A process is starting with no failure before it.
    Starting,
    /// A process is serving.
    Ready,
    /// The last start failed; the next try has not begun.
    Failed,
    /// A process is starting after a failed start.
    Retrying,
    /// No process uses the record (a slot's spare one, see [`Health::partner`]).
    Vacant,
}

impl SlotState {
    /// The state as stored in the shared record.
    fn code(self) -> u32 {
        match self {
            Self::Unknown => 0,
            Self::Starting => 1,
            Self::Ready => 2,
            Self::Failed => 3,
            Self::Retrying => 4,
            Self::Vacant => 5,
        }
    }

    /// The state a stored code stands for (anything unknown: Unknown).
    fn from_code(code: u32) -> Self {
        match code {
            1 => Self::Starting,
            2 => Self::Ready,
            3 => Self::Failed,
            4 => Self::Retrying,
            5 => Self::Vacant,
            _ => Self::Unknown,
        }
    }
}

/// What a request to the group should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Connect: a process serves (`ready`), or one is on its way that has
    /// not failed before (a slow start is waited for, as always).
    Serve {
        /// A process of the group is serving.
        ready: bool,
    },
    /// Every slot's last start failed and one is trying again: wait for it,
    /// up to connect-timeout.
    Retrying {
        /// Why the last start failed.
        cause: String,
    },
    /// Every slot's last start failed and none is trying: answer 503 now.
    Down {
        /// Why the last start failed.
        cause: String,
    },
}

shared_records! {
/// One process slot's record, as laid out in the shared mapping.
struct SlotRecord {
    /// A [`SlotState`] code.
    state: AtomicU32,
    /// Odd while the cause is being written.
    seq: AtomicU32,
    /// When the last failure was recorded, in ms since the epoch.
    failed_at: AtomicU64,
    /// How many bytes of `cause` are the last failure's cause.
    len: AtomicU32,
    /// The last failure's cause, UTF-8.
    cause: [AtomicU8; CAUSE_MAX],
    /// The pid of the process serving in the record (set with ready).
    pid: AtomicU32,
    /// The pid of the successor the supervisor started for this record's
    /// process (in the partner record), or 0.
    heir: AtomicU32,
    /// When this record's process asked for a successor (ms since the
    /// epoch), or 0.
    wanted_at: AtomicU64,
    /// How many bytes of `warm` name the script this record's process
    /// loaded first (0: none yet); set once, after the bytes.
    warm_len: AtomicU32,
    /// That script, for its successor to load before it serves.
    warm: [AtomicU8; WARM_MAX],
}
}

/// The shared health records of one daemon group (cheap to clone).
#[derive(Clone, Default)]
pub struct Health(Option<Arc<Shared<SlotRecord>>>);

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("slots", &self.0.as_ref().map_or(0, |m| m.len()))
            .finish()
    }
}

/// Now, in ms since the epoch (comparable across processes).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Health {
    /// Shared records for `processes` processes (two each, the second
    /// vacant), to be made before forking.
    pub fn create(processes: usize) -> std::io::Result<Self> {
        let processes = processes.max(1);
        let slots = 2 * processes;
        // All zero at first: state Unknown, no cause.
        let health = Self(Some(Arc::new(Shared::new(slots)?)));
        for spare in processes..slots {
            health.set(spare, SlotState::Vacant);
        }
        Ok(health)
    }

    /// How many records there are (two per process slot).
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |m| m.len())
    }

    /// Whether there are no records (health records unavailable).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The other record of `record`'s process slot: where its successor
    /// starts.
    pub fn partner(&self, record: usize) -> usize {
        let half = self.len() / 2;
        if self.is_empty() {
            record
        } else if record < half {
            record + half
        } else {
            record - half
        }
    }

    /// The supervisor is about to start a process in `record`: no pid, no
    /// successor, nothing asked yet.
    pub fn begin(&self, record: usize) {
        if let Some(s) = self.slot(record) {
            s.pid.store(0, Ordering::Relaxed);
            s.heir.store(0, Ordering::Relaxed);
            s.warm_len.store(0, Ordering::Relaxed);
            s.wanted_at.store(0, Ordering::Release);
        }
    }

    /// The process in `record` names nothing for its successor to load.
    pub fn clear_warm(&self, record: usize) {
        if let Some(s) = self.slot(record) {
            s.warm_len.store(0, Ordering::Release);
        }
    }

    /// The process in `record` names what its successor should load before
    /// it serves (the first name counts; too long a one is not kept).
    pub fn set_warm(&self, record: usize, text: &str) {
        let Some(s) = self.slot(record) else { return };
        if text.is_empty() || text.len() > WARM_MAX || s.warm_len.load(Ordering::Acquire) != 0 {
            return;
        }
        for (cell, byte) in s.warm.iter().zip(text.bytes()) {
            cell.store(byte, Ordering::Relaxed);
        }
        s.warm_len.store(text.len() as u32, Ordering::Release);
    }

    /// What the process in `record` named for its successor, if anything.
    pub fn warm(&self, record: usize) -> Option<Vec<u8>> {
        let s = self.slot(record)?;
        let len = (s.warm_len.load(Ordering::Acquire) as usize).min(WARM_MAX);
        (len > 0).then(|| {
            s.warm[..len]
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect()
        })
    }

    /// The process in `record` serves, as `pid`.
    pub fn serving(&self, record: usize, pid: u32) {
        if let Some(s) = self.slot(record) {
            s.pid.store(pid, Ordering::Relaxed);
            s.state.store(SlotState::Ready.code(), Ordering::Release);
        }
    }

    /// The pid serving in `record` (0: none said so).
    pub fn pid(&self, record: usize) -> u32 {
        self.slot(record)
            .map_or(0, |s| s.pid.load(Ordering::Acquire))
    }

    /// The process in `record` asks for a successor (the first ask counts).
    pub fn want(&self, record: usize) {
        if let Some(s) = self.slot(record) {
            let _ = s.wanted_at.compare_exchange(
                0,
                now_ms().max(1),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    /// When the process in `record` asked for a successor, if it did.
    pub fn wanted_at(&self, record: usize) -> Option<u64> {
        let at = self.slot(record)?.wanted_at.load(Ordering::Acquire);
        (at != 0).then_some(at)
    }

    /// The supervisor started `pid` to succeed the process in `record`.
    pub fn set_heir(&self, record: usize, pid: u32) {
        if let Some(s) = self.slot(record) {
            s.heir.store(pid, Ordering::Release);
        }
    }

    /// The successor the supervisor started for the process in `record`
    /// (0: none).
    pub fn heir(&self, record: usize) -> u32 {
        self.slot(record)
            .map_or(0, |s| s.heir.load(Ordering::Acquire))
    }

    /// The successor started for the process in `record`, once it serves.
    pub fn heir_serving(&self, record: usize) -> Option<u32> {
        let heir = self.heir(record);
        let partner = self.partner(record);
        (heir != 0 && self.state(partner) == SlotState::Ready && self.pid(partner) == heir)
            .then_some(heir)
    }

    /// Slot `index`'s record, if there are records and such a slot.
    fn slot(&self, index: usize) -> Option<&SlotRecord> {
        self.0.as_ref()?.get(index)
    }

    /// Every slot's record.
    fn slots(&self) -> impl Iterator<Item = &SlotRecord> {
        let n = self.len();
        (0..n).filter_map(|i| self.slot(i))
    }

    /// This process only reads the records from now on (Apache children).
    pub fn read_only(&self) {
        if let Some(m) = &self.0 {
            m.read_only();
        }
    }

    /// This process never touches the records (another group's processes).
    pub fn seal(&self) {
        if let Some(m) = &self.0 {
            m.seal();
        }
    }

    /// What slot `slot` is doing.
    pub fn state(&self, slot: usize) -> SlotState {
        self.slot(slot).map_or(SlotState::Unknown, |s| {
            SlotState::from_code(s.state.load(Ordering::Acquire))
        })
    }

    /// Marks what slot `slot` is doing.
    pub fn set(&self, slot: usize, state: SlotState) {
        if let Some(s) = self.slot(slot) {
            s.state.store(state.code(), Ordering::Release);
        }
    }

    /// A held-off process begins its try: failed becomes retrying.
    pub fn begin_retry(&self, slot: usize) {
        if let Some(s) = self.slot(slot) {
            let _ = s.state.compare_exchange(
                SlotState::Failed.code(),
                SlotState::Retrying.code(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    /// Records why the slot's start failed and marks it failed.
    pub fn fail(&self, slot: usize, cause: &str) {
        let Some(s) = self.slot(slot) else { return };
        let mut end = cause.len().min(CAUSE_MAX);
        while !cause.is_char_boundary(end) {
            end -= 1;
        }
        // Odd while writing, whatever a writer killed half-way left.
        let seq = s.seq.load(Ordering::Acquire) | 1;
        s.seq.store(seq, Ordering::Release);
        for (cell, byte) in s.cause.iter().zip(cause[..end].bytes()) {
            cell.store(byte, Ordering::Relaxed);
        }
        s.len.store(end as u32, Ordering::Relaxed);
        s.failed_at.store(now_ms(), Ordering::Relaxed);
        s.seq.store(seq.wrapping_add(1), Ordering::Release);
        s.state.store(SlotState::Failed.code(), Ordering::Release);
    }

    /// The slot's last recorded cause and when it was recorded.
    fn cause(s: &SlotRecord) -> (String, u64) {
        for _ in 0..64 {
            let before = s.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let len = (s.len.load(Ordering::Relaxed) as usize).min(CAUSE_MAX);
            let bytes: Vec<u8> = s.cause[..len]
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect();
            let at = s.failed_at.load(Ordering::Relaxed);
            std::sync::atomic::fence(Ordering::Acquire);
            if s.seq.load(Ordering::Relaxed) == before {
                return (printable(&bytes), at);
            }
        }
        ("(cause being recorded)".to_owned(), 0)
    }

    /// Whether a request should be sent to the group now.
    pub fn verdict(&self) -> Verdict {
        let mut ready = false;
        let mut coming = false;
        let mut retrying = false;
        let mut any = false;
        for s in self.slots() {
            any = true;
            match SlotState::from_code(s.state.load(Ordering::Acquire)) {
                SlotState::Ready => ready = true,
                SlotState::Unknown | SlotState::Starting => coming = true,
                SlotState::Retrying => retrying = true,
                SlotState::Failed | SlotState::Vacant => {}
            }
        }
        if !any || ready || coming {
            return Verdict::Serve {
                ready: ready || !any,
            };
        }
        let cause = self
            .slots()
            .map(Self::cause)
            .max_by_key(|(_, at)| *at)
            .map(|(c, _)| c)
            .unwrap_or_default();
        if retrying {
            Verdict::Retrying { cause }
        } else {
            Verdict::Down { cause }
        }
    }
}

/// The cause as text fit for one log line: whatever a process wrote, no
/// control characters reach the log.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_records_always_serve() {
        let h = Health::default();
        h.set(0, SlotState::Failed);
        h.fail(0, "x");
        assert_eq!(h.verdict(), Verdict::Serve { ready: true });
        assert_eq!(h.state(0), SlotState::Unknown);
    }

    #[test]
    fn fresh_records_serve_and_starting_is_waited_for() {
        let h = Health::create(2).unwrap();
        assert_eq!(h.verdict(), Verdict::Serve { ready: false });
        h.set(0, SlotState::Starting);
        h.fail(1, "boom");
        assert_eq!(h.verdict(), Verdict::Serve { ready: false });
        h.set(0, SlotState::Ready);
        assert_eq!(h.verdict(), Verdict::Serve { ready: true });
    }

    #[test]
    fn a_successor_is_named_and_serves_in_the_partner_record() {
        let h = Health::create(2).unwrap();
        assert_eq!(h.len(), 4);
        assert_eq!((h.partner(0), h.partner(3)), (2, 1));
        assert_eq!(h.state(2), SlotState::Vacant);
        h.serving(0, 100);
        h.set(1, SlotState::Failed);
        assert_eq!(h.verdict(), Verdict::Serve { ready: true });
        assert_eq!(h.wanted_at(0), None);
        h.want(0);
        let at = h.wanted_at(0).unwrap();
        h.want(0);
        assert_eq!(h.wanted_at(0), Some(at), "the first ask counts");
        assert_eq!(h.heir_serving(0), None);
        h.begin(2);
        h.set(2, SlotState::Starting);
        h.set_heir(0, 200);
        assert_eq!(h.heir_serving(0), None, "not ready yet");
        // A stale ready record of another pid is not the successor.
        h.serving(2, 300);
        assert_eq!(h.heir_serving(0), None);
        h.serving(2, 200);
        assert_eq!(h.heir_serving(0), Some(200));
        h.set(0, SlotState::Vacant);
        assert_eq!(h.verdict(), Verdict::Serve { ready: true });
        h.set(2, SlotState::Failed);
        assert!(matches!(h.verdict(), Verdict::Down { .. }));
        h.set_warm(0, "first");
        h.set_warm(0, "second");
        assert_eq!(h.warm(0).as_deref(), Some(&b"first"[..]));
        h.clear_warm(0);
        assert_eq!(h.warm(0), None);
        h.set_warm(0, "first");
        h.begin(0);
        assert_eq!((h.pid(0), h.wanted_at(0), h.warm(0)), (0, None, None));
    }

    #[test]
    fn all_failed_is_down_with_the_latest_cause() {
        let h = Health::create(2).unwrap();
        h.fail(0, "first");
        std::thread::sleep(std::time::Duration::from_millis(2));
        h.fail(1, "second\nline");
        assert_eq!(
            h.verdict(),
            Verdict::Down {
                cause: "second?line".into()
            }
        );
        h.begin_retry(1);
        assert_eq!(h.state(1), SlotState::Retrying);
        assert!(matches!(h.verdict(), Verdict::Retrying { cause } if cause == "second?line"));
        // Retrying only moves a failed slot.
        h.set(0, SlotState::Ready);
        h.begin_retry(0);
        assert_eq!(h.state(0), SlotState::Ready);
        assert_eq!(h.verdict(), Verdict::Serve { ready: true });
    }

    #[test]
    fn long_causes_are_cut_at_a_character() {
        let h = Health::create(1).unwrap();
        let long = "é".repeat(CAUSE_MAX);
        h.fail(0, &long);
        let Verdict::Down { cause } = h.verdict() else {
            panic!("not down")
        };
        assert!(cause.len() <= CAUSE_MAX && cause.chars().all(|c| c == 'é'));
        assert_eq!(h.state(1), SlotState::Vacant);
        assert!(h.slot(2).is_none());
    }

    #[test]
    #[allow(unsafe_code)] // fork in a test: the child only writes and leaves.
    fn records_are_shared_with_a_forked_process() {
        let h = Health::create(1).unwrap();
        // SAFETY: the child only writes the shared record and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            h.fail(0, "from the child");
            // SAFETY: leave the test harness's child at once.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(
            h.verdict(),
            Verdict::Down {
                cause: "from the child".into()
            }
        );
    }
}
