//! How a daemon process forked from its group's template process (see
//! [`template`](super::template)) talks to it: short datagrams on a socket
//! pair the template made before forking, each naming the sender's slot and
//! pid, and SIGUSR2 back from the template.
//!
//! - `Prepare`: the process is nearing its end (maximum-requests is close):
//!   start its successor now, so it is ready by then.
//! - `Retire`: the process must be replaced (maximum-requests reached,
//!   restart-interval, inactivity-timeout, request-timeout…): start its
//!   successor if not yet done, and hand over as soon as it is ready.
//! - `Standby`: a successor has started Python's threads' worth of set-up
//!   and waits for the signal to serve.
//! - `Reload`: a WSGI script changed: the template itself (which imported
//!   it) must be replaced by a fresh one from the Apache parent.
//!
//! SIGUSR2 from the template means "serve now" to a successor on standby,
//! and "your successor serves: stop taking work and exit" to the process it
//! replaces.
//!
//! Without a template the Apache parent forks every process, and a daemon
//! process (perhaps of another user) cannot signal it. A [`Relay`] is its
//! line instead: it asks for a successor in its slot's shared health record
//! (see [`health`](super::health)) and writes a byte on the parent's wake
//! pipe, whose reading end a small process of the parent's waits on and
//! exits on, which wakes the parent; the parent starts the successor in
//! the slot's other record and names it in the asker's. The successor
//! marks its record ready (and wakes the parent, which may then start the
//! group's next successor); the process it replaces sees that and stops
//! taking work and exits. It serves on meanwhile, past its
//! maximum-requests if need be (it asks on reaching it, not ahead).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::net::SendFlags;
use rustix::rand::GetRandomFlags;

use super::health::{Health, SlotState};

/// What a message asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// Start my successor: I will retire soon.
    Prepare,
    /// Replace me as soon as my successor serves.
    Retire,
    /// I am a successor, ready to serve on your signal.
    Standby,
    /// A script changed: the template must be replaced.
    Reload,
}

impl Ask {
    /// The byte on the wire.
    fn code(self) -> u8 {
        match self {
            Ask::Prepare => 1,
            Ask::Retire => 2,
            Ask::Standby => 3,
            Ask::Reload => 4,
        }
    }

    /// The message a byte stands for.
    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Ask::Prepare),
            2 => Some(Ask::Retire),
            3 => Some(Ask::Standby),
            4 => Some(Ask::Reload),
            _ => None,
        }
    }
}

/// One message: what, from which slot, from which pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// What is asked.
    pub ask: Ask,
    /// The sender's slot in its group.
    pub slot: u32,
    /// The sender's pid.
    pub pid: i32,
}

/// A message's size on the wire.
pub const MESSAGE_LEN: usize = 9;

impl Message {
    /// The message as sent.
    pub fn encode(&self) -> [u8; MESSAGE_LEN] {
        let mut out = [0; MESSAGE_LEN];
        out[0] = self.ask.code();
        out[1..5].copy_from_slice(&self.slot.to_le_bytes());
        out[5..9].copy_from_slice(&self.pid.to_le_bytes());
        out
    }

    /// A received datagram's message, if it is one.
    pub fn decode(bytes: &[u8]) -> Option<Message> {
        let bytes: &[u8; MESSAGE_LEN] = bytes.try_into().ok()?;
        Some(Message {
            ask: Ask::from_code(bytes[0])?,
            slot: u32::from_le_bytes(bytes[1..5].try_into().ok()?),
            pid: i32::from_le_bytes(bytes[5..9].try_into().ok()?),
        })
    }
}

/// A daemon process's line to the template that forked it.
#[derive(Debug)]
pub struct Link {
    /// Our end of the template's datagram socket pair.
    fd: i32,
    /// Our slot in the group.
    slot: usize,
    /// We were started as a successor: wait for the signal to serve.
    pub standby: bool,
    /// Prepare was sent.
    prepared: AtomicBool,
    /// Retire (or Reload) was sent.
    retired: AtomicBool,
    /// The template said our successor serves.
    pub handed_over: AtomicBool,
}

impl Clone for Link {
    fn clone(&self) -> Self {
        Link::new(self.fd, self.slot, self.standby)
    }
}

impl Link {
    /// The link of process `slot`, sending on `fd`.
    pub fn new(fd: i32, slot: usize, standby: bool) -> Link {
        Link {
            fd,
            slot,
            standby,
            prepared: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            handed_over: AtomicBool::new(false),
        }
    }

    /// Sends `ask` (never blocks: a lost message only delays a recycle,
    /// which the process's monitor then ends by itself).
    fn send(&self, ask: Ask) {
        let msg = Message {
            ask,
            slot: self.slot as u32,
            pid: std::process::id() as i32,
        }
        .encode();
        // The template's end, inherited across fork and never closed here.
        if let Some(fd) = crate::sys::fd::inherited(self.fd) {
            let _ = rustix::net::send(fd, &msg, SendFlags::DONTWAIT | SendFlags::NOSIGNAL);
        }
    }

    /// Asks for the successor ahead of time (once).
    pub fn prepare(&self) {
        if !self.prepared.swap(true, Ordering::SeqCst) {
            self.send(Ask::Prepare);
        }
    }

    /// Asks to be replaced (once); `reload`: because a script changed.
    pub fn retire(&self, reload: bool) {
        if !self.retired.swap(true, Ordering::SeqCst) {
            self.send(if reload { Ask::Reload } else { Ask::Retire });
        }
    }

    /// Tells the template this successor is ready.
    pub fn standing_by(&self) {
        self.send(Ask::Standby);
    }
}

/// Without a template: a daemon process's line to the Apache parent (see
/// the module's documentation).
#[derive(Clone, Debug)]
pub struct Relay {
    /// The group's health records.
    health: Health,
    /// This process's record.
    record: usize,
    /// The writing end of the parent's wake pipe (non-blocking).
    wake: i32,
}

impl Relay {
    /// The line of the process in `record`, waking the parent on `wake`.
    pub fn new(health: Health, record: usize, wake: i32) -> Relay {
        Relay {
            health,
            record,
            wake,
        }
    }

    /// Wakes the parent: one byte on its pipe (never blocks; a full pipe
    /// already wakes it).
    fn nudge(&self) {
        // Inherited across fork for the purpose, never closed here.
        if let Some(fd) = crate::sys::fd::inherited(self.wake) {
            let _ = rustix::io::write(fd, &[1u8]);
        }
    }

    /// Asks for a successor (the first ask only).
    pub fn ask(&self) {
        if !self.asked() {
            self.health.want(self.record);
            self.nudge();
        }
    }

    /// Whether a successor was asked for.
    pub fn asked(&self) -> bool {
        self.health.wanted_at(self.record).is_some()
    }

    /// The successor's pid, once it serves.
    pub fn heir_serving(&self) -> Option<u32> {
        self.health.heir_serving(self.record)
    }

    /// The pid of the process this one succeeds, if it is a successor.
    pub fn predecessor(&self) -> Option<u32> {
        let partner = self.health.partner(self.record);
        (self.health.heir(partner) == std::process::id()).then(|| self.health.pid(partner))
    }

    /// This process serves. A successor (`successor`) wakes the parent,
    /// which starts one successor of a group at a time.
    pub fn serving(&self, successor: bool) {
        self.health.serving(self.record, std::process::id());
        if successor {
            self.nudge();
        }
    }

    /// This process loaded the script at `path` in application group
    /// `group` first: its successor loads it before it serves.
    pub fn loaded(&self, group: &str, path: &std::path::Path) {
        use std::os::unix::ffi::OsStrExt;
        let mut text = group.as_bytes().to_vec();
        text.push(0);
        text.extend_from_slice(path.as_os_str().as_bytes());
        if let Ok(text) = String::from_utf8(text) {
            self.health.set_warm(self.record, &text);
        }
    }

    /// The successor is not to load anything ahead (it replaces an idle
    /// process: inactivity-timeout frees the application's memory until a
    /// request comes, as under mod_wsgi).
    pub fn cold(&self) {
        self.health.clear_warm(self.record);
    }

    /// The script the process this one succeeds loaded first, as
    /// (application group, path): a successor loads it before it serves,
    /// so its first requests do not wait for the application's imports.
    pub fn inherited(&self) -> Option<(String, std::path::PathBuf)> {
        self.predecessor()?;
        let warm = self.health.warm(self.health.partner(self.record))?;
        let text = String::from_utf8(warm).ok()?;
        let (group, path) = text.split_once('\0')?;
        Some((group.to_owned(), path.into()))
    }

    /// This process no longer serves (its successor does).
    pub fn vacate(&self) {
        self.health.set(self.record, SlotState::Vacant);
    }
}

/// A process dying sooner than this after start counts as a start-up failure.
pub const YOUNG: Duration = Duration::from_secs(10);
/// The longest wait before restarting a failing process.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long to wait before starting a process again after `failures`
/// consecutive young deaths: none after a clean exit, then doubling up to
/// [`MAX_BACKOFF`], so a broken application cannot fork-bomb the host.
pub fn restart_delay(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => Duration::from_secs(1 << n.min(5)).min(MAX_BACKOFF),
    }
}

/// A process that had reached Ready and lived this long before it was lost
/// (killed, a crash in a request, the out-of-memory killer) did not fail to
/// start: its replacement starts at once, however often it happens.
pub const SETTLED: Duration = Duration::from_secs(1);

/// After a slot's process exited: the slot's new count of consecutive
/// young deaths, and how long its next process waits. `crashed`: not a
/// clean exit; `lived`: how long it ran; `served`: it had reached Ready.
/// A clean exit (a recycle) or the loss of a settled process: at once. A
/// process that crashes young: back-off, except the first time for one that
/// had reached Ready (only its requests in flight were lost).
pub fn after_exit(failures: u32, crashed: bool, lived: Duration, served: bool) -> (u32, Duration) {
    if !crashed || (served && lived >= SETTLED) {
        return (0, Duration::ZERO);
    }
    let failures = if lived < YOUNG { failures + 1 } else { 0 };
    let delay = if failures == 1 && served {
        Duration::ZERO
    } else {
        restart_delay(failures)
    };
    (failures, delay)
}

/// How many requests before its limit a process asks for its successor:
/// a quarter of the limit, at most one per thread, at least one.
pub fn lead(limit: u64, threads: u64) -> u64 {
    (limit / 4).clamp(1, threads.max(1))
}

/// This process's request limit: `maximum` plus a random share of `jitter`
/// (0 when there is no limit).
pub fn limit_with_jitter(maximum: u64, jitter: u64) -> u64 {
    if maximum == 0 || jitter == 0 {
        return maximum;
    }
    let mut bytes = [0u8; 8];
    let n = rustix::rand::getrandom(&mut bytes, GetRandomFlags::NONBLOCK);
    let random = if matches!(n, Ok(8)) {
        u64::from_le_bytes(bytes)
    } else {
        // No entropy yet (early boot): the pid and clock still differ
        // between processes. (The clock is read here, not through
        // `state::now_secs`: `state` uses this module.)
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        u64::from(std::process::id()).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ clock
    };
    maximum.saturating_add(random % (jitter.saturating_add(1)).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_settled_processes_come_back_at_once_young_crashes_back_off() {
        let secs = Duration::from_secs;
        // A recycle, however young or often.
        assert_eq!(after_exit(3, false, secs(0), true), (0, secs(0)));
        // Killed after serving a while: at once, every time.
        assert_eq!(after_exit(4, true, secs(2), true), (0, secs(0)));
        // Dying at start-up, again and again: back-off doubles.
        assert_eq!(after_exit(0, true, secs(0), false), (1, secs(2)));
        assert_eq!(after_exit(1, true, secs(0), false), (2, secs(4)));
        // Ready but dead within a second: once free, then back-off.
        assert_eq!(
            after_exit(0, true, Duration::from_millis(300), true),
            (1, secs(0))
        );
        assert_eq!(
            after_exit(1, true, Duration::from_millis(300), true),
            (2, secs(4))
        );
        // An old process that crashes starts the count again.
        assert_eq!(after_exit(5, true, secs(60), false), (0, secs(0)));
    }

    #[test]
    fn messages_round_trip_and_junk_is_refused() {
        for ask in [Ask::Prepare, Ask::Retire, Ask::Standby, Ask::Reload] {
            let m = Message {
                ask,
                slot: 3,
                pid: 4242,
            };
            assert_eq!(Message::decode(&m.encode()), Some(m));
        }
        assert_eq!(Message::decode(&[9, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(Message::decode(&[1, 0, 0]), None);
    }

    #[test]
    fn lead_is_a_quarter_within_one_and_the_threads() {
        assert_eq!(lead(50, 8), 8);
        assert_eq!(lead(20, 8), 5);
        assert_eq!(lead(5, 2), 1);
        assert_eq!(lead(1, 2), 1);
        assert_eq!(lead(1000, 0), 1);
    }

    #[test]
    fn jitter_stays_within_its_bound_and_varies() {
        assert_eq!(limit_with_jitter(0, 10), 0);
        assert_eq!(limit_with_jitter(50, 0), 50);
        let limits: Vec<u64> = (0..200).map(|_| limit_with_jitter(50, 10)).collect();
        assert!(limits.iter().all(|l| (50..=60).contains(l)), "{limits:?}");
        assert!(limits.iter().any(|&l| l != limits[0]), "{limits:?}");
        assert_eq!(limit_with_jitter(u64::MAX, u64::MAX), u64::MAX);
    }
}
