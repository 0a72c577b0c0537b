//! Replacement before retirement without a template: a daemon process that
//! must be replaced (maximum-requests near, restart-interval,
//! inactivity-timeout, request-timeout, maximum-memory, startup-timeout)
//! serves on while the parent starts its successor, and stops only once the
//! successor serves (the daemon's side is `daemon::succession::Relay`).
//!
//! - The process asks in its slot's health record and writes a byte on the
//!   parent's *wake pipe*. The parent gets the MPM's monitor hook only about
//!   every ten seconds and hears at once only of deaths, and the process may
//!   run as another user and cannot signal it; so a *waker*, a small process
//!   forked from the parent, waits on the pipe and exits when a byte comes,
//!   which wakes the parent ([`start_due`] then runs, and forks a new waker).
//! - The parent starts the successor in the slot's other health record and
//!   board place, and names it in the asker's record. One successor of a
//!   group starts at a time, oldest ask first: others serve on until their
//!   turn. The successor marks its record ready and writes a byte too, so
//!   the parent can start the group's next one.
//! - The old process sees its successor serve, stops taking work, finishes
//!   what it runs and exits; its death makes the successor the slot's
//!   process. A successor that dies before serving is not tried again for
//!   that process, which serves on until its own bound and then stops as a
//!   process without a successor does (the slot is then started afresh).

use std::ffi::c_int;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::tracked::{next_key, Registration, Tracked};
use super::{become_helper, fork_process, register, Supervisor};
use crate::daemon::health::SlotState;
use crate::metrics::Reason;

/// The parent's wake pipe: (reading end, writing end), both non-blocking
/// and close-on-exec, made once and kept across generations.
static WAKE: OnceLock<Option<(i32, i32)>> = OnceLock::new();

/// The wake pipe, made on first use (None if it cannot be).
pub(super) fn wake_pipe() -> Option<(i32, i32)> {
    *WAKE.get_or_init(|| {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills our local pair.
        let made = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if made != 0 {
            ::log::error!(
                "WSGIRS436: cannot create the pipe daemon processes wake the Apache parent with: {}; without a template, a recycled process is replaced after it exits",
                std::io::Error::last_os_error()
            );
            return None;
        }
        Some((fds[0], fds[1]))
    })
}

/// The writing end daemon processes wake the parent on, if there is one.
pub(super) fn wake_writer() -> Option<i32> {
    WAKE.get().copied().flatten().map(|(_, w)| w)
}

/// The pipe's ends, for processes that must not hold them (Apache children).
pub(super) fn wake_fds() -> Vec<i32> {
    WAKE.get()
        .copied()
        .flatten()
        .map_or_else(Vec::new, |(r, w)| vec![r, w])
}

/// A successor being started, or serving while the process it replaces
/// finishes.
pub(super) struct Heir {
    /// The process (registered under a key of its own).
    pub(super) process: Tracked,
    /// Its health record and board place (the slot's other one).
    pub(super) record: usize,
    /// When it was started.
    pub(super) started: Instant,
}

/// Starts the successors asked for (one starting per group at a time) and
/// makes sure a waker waits for the next ask.
pub(super) fn start_due(sup: &mut Supervisor) {
    if sup.stopping || sup.parked || wake_writer().is_none() {
        return;
    }
    let plan = sup.plan.clone();
    let mut any = false;
    for (g, group) in plan.daemon_groups.iter().enumerate() {
        if group.launch.spec.process_template {
            continue;
        }
        any = true;
        let health = &group.launch.health;
        let starting = sup.slots.iter().any(|s| {
            s.group == g
                && s.heir
                    .as_ref()
                    .is_some_and(|h| health.state(h.record) != SlotState::Ready)
        });
        if starting {
            continue;
        }
        let next = sup
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.group == g && s.process.alive() && s.heir.is_none() && !s.heir_failed
            })
            .filter_map(|(i, s)| health.wanted_at(s.record).map(|at| (at, i)))
            .min();
        if let Some((_, index)) = next {
            start_heir(sup, index);
        }
    }
    if any && !sup.standalone && sup.waker.is_none() {
        start_waker(sup);
    }
}

/// Forks the successor of slot `index`'s process.
fn start_heir(sup: &mut Supervisor, index: usize) {
    let (group, record, old) = {
        let s = &sup.slots[index];
        (s.group, s.record, s.process.pid())
    };
    let plan = sup.plan.clone();
    let launch = &plan.daemon_groups[group].launch;
    let health = &launch.health;
    let partner = health.partner(record);
    health.begin(partner);
    health.set(partner, SlotState::Starting);
    let place = sup.slots[index].place(partner);
    let Some(pid) = fork_process(sup, group, partner, false, Duration::ZERO, place.as_slice())
    else {
        health.set(partner, SlotState::Vacant);
        sup.slots[index].heir_failed = true;
        return;
    };
    health.set_heir(record, pid as u32);
    if let Some(place) = place {
        place.started(pid as u32);
    }
    ::log::info!(
        "WSGIRS432: (wsgi:{}) starting pid {pid} to replace pid {old} (slot {})",
        launch.spec.name,
        sup.slots[index].member
    );
    // The record of the last process that left the slot is unregistered
    // by now (its death was handled before this call).
    sup.slots[index].spare = None;
    let mut process = Tracked::new(next_key());
    process.started(pid);
    if !sup.standalone {
        // SAFETY: pconf is live while the supervisor is not parked.
        unsafe { register(&mut process, sup.pconf) };
    }
    sup.slots[index].heir = Some(Heir {
        process,
        record: partner,
        started: Instant::now(),
    });
}

/// The slot's process died (its registration already taken) and its
/// successor is there: the successor is the slot's process from now on.
/// The dead one's record is kept as the slot's spare until its
/// registration, which points at it, is gone.
pub(super) fn promote(sup: &mut Supervisor, index: usize) {
    let slot = &mut sup.slots[index];
    let Some(heir) = slot.heir.take() else {
        return;
    };
    sup.plan.daemon_groups[slot.group]
        .launch
        .health
        .set(slot.record, SlotState::Vacant);
    let old = std::mem::replace(&mut slot.process, heir.process);
    slot.spare = Some(old);
    slot.record = heir.record;
    slot.started = heir.started;
    slot.failures = 0;
    slot.respawn_at = None;
    slot.hold_off = Duration::ZERO;
    slot.heir_failed = false;
}

/// If `key` is a successor's or the waker's: handles its death and
/// returns `Some` (with its registration, to unregister once the lock is
/// released).
pub(super) fn died(
    sup: &mut Supervisor,
    key: usize,
    status: c_int,
) -> Option<Option<Registration>> {
    if sup.waker.as_ref().is_some_and(|w| w.key() == key) {
        return Some(sup.waker.take()?.died());
    }
    let index = sup
        .slots
        .iter()
        .position(|s| s.heir.as_ref().is_some_and(|h| h.process.key() == key))?;
    let stopping = sup.stopping;
    let slot = &mut sup.slots[index];
    let mut heir = slot.heir.take()?;
    let registration = heir.process.died();
    let launch = &sup.plan.daemon_groups[slot.group].launch;
    let served = launch.health.state(heir.record) == SlotState::Ready;
    launch.health.set(heir.record, SlotState::Vacant);
    launch.health.set_heir(slot.record, 0);
    if let Some(place) = slot.place(heir.record) {
        place.gone((!stopping).then_some(Reason::Crash));
    }
    if !stopping {
        let pid = slot.process.pid();
        ::log::warn!(
            "WSGIRS435: (wsgi:{}) successor pid {} of pid {pid} died {} (status {status}); pid {pid} serves on and is replaced after it stops",
            launch.spec.name,
            heir.process.pid(),
            if served { "as it began serving" } else { "before serving" },
        );
    }
    slot.heir_failed = true;
    slot.spare = Some(heir.process);
    Some(registration)
}

/// Kills and reaps the waker (pconf's cleanup: its registration is gone
/// or going, and a restart or stop needs no wake-up).
pub(super) fn stop_waker(sup: &mut Supervisor) {
    if let Some(w) = sup.waker.take() {
        w.kill_and_reap();
    }
}

/// Forks the waker: it exits as soon as a byte is on the wake pipe (or
/// the parent is gone), which wakes the parent.
fn start_waker(sup: &mut Supervisor) {
    let Some((read, write)) = WAKE.get().copied().flatten() else {
        return;
    };
    // SAFETY: the Apache parent is single-threaded here, as for the daemons.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        // The monitor hook tries again in a while.
        return;
    }
    if pid == 0 {
        wait_for_a_byte(sup, read, write);
    }
    let mut waker = Tracked::new(next_key());
    waker.started(pid);
    // SAFETY: live pconf (not parked).
    unsafe { register(&mut waker, sup.pconf) };
    sup.waker = Some(waker);
}

/// The waker's life (in the forked process; never returns).
fn wait_for_a_byte(sup: &Supervisor, read: i32, write: i32) -> ! {
    let parent = become_helper(sup);
    // SAFETY: closes our copy of the writing end, so the pipe's readers
    // are the parent and us only.
    unsafe { libc::close(write) };
    loop {
        let mut fd = libc::pollfd {
            fd: read,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polls our one descriptor.
        let ready = unsafe { libc::poll(&mut fd, 1, 1000) };
        // SAFETY: getppid cannot fail.
        let orphaned = unsafe { libc::getppid() } != parent;
        if orphaned || ready > 0 {
            let mut buf = [0u8; 256];
            // SAFETY: reads into our buffer (non-blocking) until the pipe
            // is empty: what the bytes asked for is in the health records,
            // which the parent reads once this process has gone.
            while unsafe { libc::read(read, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
            // SAFETY: leaving the forked waker without Apache's exit code.
            unsafe { libc::_exit(0) }
        }
    }
}
