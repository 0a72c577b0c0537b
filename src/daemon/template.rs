//! A daemon group's template process (`process-template=On`): the Apache
//! parent forks it in place of the group's processes; it switches user,
//! starts Python and imports the group's start-up scripts that run in the
//! main interpreter once, then forks each daemon process from itself
//! (copy-on-write, in milliseconds) and supervises them.
//!
//! Replacement before retirement: a process that must be replaced
//! (maximum-requests, restart-interval, inactivity-timeout, request-timeout)
//! tells the template ([`succession`](super::succession)); the template
//! forks its successor, which sets up and waits; once it is ready the
//! template signals it to serve and the old process to stop taking work and
//! exit. Under maximum-requests the successor is asked for a little before
//! the limit, so it is usually ready when the old process stops.
//! Replacements of one group are made one at a time (a queue), so its
//! processes never recycle together; `maximum-requests-jitter` spreads
//! their limits as well.
//!
//! A changed WSGI script means the template itself is stale: it stops its
//! processes (they finish their requests) and exits, and the Apache parent
//! starts a fresh template, which imports the new code.
//!
//! The template stays single-threaded (forking needs that), never serves,
//! and makes no sub-interpreter (CPython keeps only the main interpreter
//! across a fork): scripts of other application groups are loaded in each
//! forked process.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::net::{AddressFamily, RecvFlags, SocketFlags, SocketType};
use rustix::process::Signal;

use super::health::SlotState;
use super::monitor::{signal_set, succession_signal_set};
use super::process::{preload, prepare, serve};
use super::succession::{Ask, Link, Message};
use super::DaemonLaunch;
use crate::interp::{self, ScriptCache};
use crate::metrics::ProcessMetrics;
use crate::sys::{process, signals};

mod exits;

/// A process of the group, as its template sees it.
#[derive(Clone, Copy, Debug)]
struct Child {
    /// Its pid.
    pid: i32,
    /// When it started serving.
    started: Instant,
}

/// One process slot of the group.
#[derive(Debug, Default)]
struct Place {
    /// The process serving in the slot.
    current: Option<Child>,
    /// Its successor, and whether that is ready to serve.
    successor: Option<(i32, bool)>,
    /// The current process asked to be replaced (or died): hand over as
    /// soon as the successor is ready.
    retiring: bool,
    /// Consecutive young deaths, for the back-off.
    failures: u32,
    /// When an empty slot gets its next process.
    respawn_at: Option<Instant>,
}

/// The template's state.
struct Template {
    /// What the group's processes start with.
    launch: DaemonLaunch,
    /// The scripts imported here, handed to every forked process.
    scripts: Option<ScriptCache>,
    /// A start-up script failed to import here.
    load_failed: bool,
    /// Each slot's place on the metrics board.
    members: Vec<Option<ProcessMetrics>>,
    /// The slots.
    places: Vec<Place>,
    /// Replaced processes still finishing their requests.
    retired: Vec<i32>,
    /// Slots waiting for a successor to be started, in order.
    queue: VecDeque<usize>,
    /// The slot whose successor is starting (one at a time).
    changing: Option<usize>,
    /// Our end of the message socket pair (taken, so closed, in a forked
    /// child).
    inbox: Option<OwnedFd>,
    /// The processes' end, inherited by each.
    outbox: OwnedFd,
    /// The signals (child deaths, stop requests) as a descriptor (taken,
    /// so closed, in a forked child).
    signals: Option<OwnedFd>,
    /// This process.
    pid: i32,
}

/// Runs the template of `launch`'s group (forked by the Apache parent,
/// after waiting `hold_off`); never returns. `members`: each slot's place
/// on the metrics board.
pub fn run(launch: DaemonLaunch, hold_off: Duration, members: Vec<Option<ProcessMetrics>>) -> ! {
    let name = launch.spec.name.clone();
    let health = launch.health.clone();
    let slots = launch.spec.processes as usize;
    if let Err(msg) = start(launch, hold_off, members) {
        for slot in 0..slots {
            health.fail(slot, &msg);
        }
        log::error!(
            "WSGIRS420: template process (wsgi:{name}) pid {}: {msg}",
            std::process::id()
        );
    }
    process::exit_now(1)
}

/// Sets the template up and supervises; returns only on a start-up failure.
fn start(
    launch: DaemonLaunch,
    hold_off: Duration,
    members: Vec<Option<ProcessMetrics>>,
) -> Result<(), String> {
    let slots: Vec<usize> = (0..launch.spec.processes as usize).collect();
    prepare(&launch, hold_off, &slots)?;
    let scripts = ScriptCache::new();
    let ok = preload(&launch, &scripts, str::is_empty);
    let (inbox, outbox) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| format!("cannot create the template's socket pair: {e}"))?;
    // The mask blocks the signals the descriptor reports (SIGUSR2 too, so
    // the forked processes start with it blocked).
    signals::block_only(&signals::with(succession_signal_set(), libc::SIGCHLD));
    let watched = signals::with(signal_set(), libc::SIGCHLD);
    let signals =
        signals::descriptor(&watched).map_err(|e| format!("cannot watch signals: {e}"))?;
    let places = slots.iter().map(|_| Place::default()).collect();
    let mut t = Template {
        launch,
        scripts: Some(scripts),
        load_failed: !ok,
        members,
        places,
        retired: Vec::new(),
        queue: VecDeque::new(),
        changing: None,
        inbox: Some(inbox),
        outbox,
        signals: Some(signals),
        pid: std::process::id() as i32,
    };
    log::info!(
        "WSGIRS421: template process (wsgi:{}) pid {} ready: Python started{}; forking {} process(es)",
        t.launch.spec.name,
        t.pid,
        if t.launch.preloads.iter().any(|k| k.group.is_empty()) {
            " and start-up scripts imported"
        } else {
            ""
        },
        slots.len()
    );
    for slot in slots {
        t.places[slot].respawn_at = Some(Instant::now());
    }
    t.supervise()
}

impl Template {
    /// The group's name.
    fn name(&self) -> &str {
        &self.launch.spec.name
    }

    /// Forks the process for `slot`; `standby`: a successor, which waits
    /// for the signal to serve. The child never returns.
    fn fork(&mut self, slot: usize, standby: bool) -> Option<i32> {
        let pid = match interp::fork() {
            Ok(pid) => pid,
            Err(e) => {
                log::error!(
                    "WSGIRS425: template process (wsgi:{}) cannot fork a daemon process: {e}",
                    self.name()
                );
                return None;
            }
        };
        if pid > 0 {
            return Some(pid);
        }
        // The child: the template's own descriptors are not its business.
        // Its mask: SIGCHLD back to normal.
        drop(self.inbox.take());
        drop(self.signals.take());
        signals::block_only(&succession_signal_set());
        process::terminate_with_parent();
        if process::parent_pid() != self.pid {
            process::exit_now(0);
        }
        let mut launch = self.launch.clone();
        launch.metrics = self.members.get(slot).copied().flatten();
        launch.parent_pid = self.pid;
        launch.succession = Some(Arc::new(Link::new(self.outbox.as_raw_fd(), slot, standby)));
        if let (Some(retitle), Some(title)) = (launch.retitle, launch.spec.process_title()) {
            retitle(&title);
        }
        let health = launch.health.clone();
        let name = launch.spec.name.clone();
        let scripts = self.scripts.take().unwrap_or_default();
        let load_failed = self.load_failed;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            serve(launch, slot, scripts, load_failed)
        }));
        let msg = match outcome {
            Ok(Err(msg)) => msg,
            _ => "internal error".to_owned(),
        };
        health.fail(slot, &msg);
        log::error!(
            "WSGIRS430: daemon process (wsgi:{name}) pid {}: {msg}",
            std::process::id()
        );
        process::exit_now(1)
    }

    /// The main loop: messages, child deaths, respawns and stop requests.
    fn supervise(&mut self) -> ! {
        loop {
            let wait = self
                .next_due()
                .map_or(1000, |d| d.as_millis().min(1000) as i64);
            let wait = Timespec {
                tv_sec: wait / 1000,
                tv_nsec: wait % 1000 * 1_000_000,
            };
            if let (Some(signals), Some(inbox)) = (&self.signals, &self.inbox) {
                let mut fds = [
                    PollFd::new(signals, PollFlags::IN),
                    PollFd::new(inbox, PollFlags::IN),
                ];
                let _ = rustix::event::poll(&mut fds, Some(&wait));
            }
            let (children, stop) = self.read_signals();
            if stop {
                self.stop("Apache asked daemon processes to stop");
            }
            self.read_messages();
            if children {
                self.reap();
            }
            self.respawn_due();
            self.start_next_successor();
            if process::parent_pid() != self.launch.parent_pid {
                self.stop("the Apache parent has gone");
            }
        }
    }

    /// How long until the next empty slot is due, if one is waiting.
    fn next_due(&self) -> Option<Duration> {
        let now = Instant::now();
        self.places
            .iter()
            .filter_map(|p| p.respawn_at)
            .map(|at| at.saturating_duration_since(now))
            .min()
    }

    /// Drains the signal descriptor: (a child died, stop was asked).
    fn read_signals(&self) -> (bool, bool) {
        let (mut children, mut stop) = (false, false);
        let Some(fd) = &self.signals else {
            return (children, stop);
        };
        loop {
            let Some(signo) = signals::next_reported(fd) else {
                return (children, stop);
            };
            if signo == libc::SIGCHLD as u32 {
                children = true;
            } else {
                stop = true;
            }
        }
    }

    /// Handles every message waiting.
    fn read_messages(&mut self) {
        let mut buf = [0u8; 64];
        loop {
            let Some(inbox) = &self.inbox else {
                return;
            };
            let Ok((_, n)) = rustix::net::recv(inbox, &mut buf, RecvFlags::DONTWAIT) else {
                return;
            };
            if let Some(msg) = Message::decode(&buf[..n.min(buf.len())]) {
                self.handle(msg);
            }
        }
    }

    /// One message from a process of the group.
    fn handle(&mut self, msg: Message) {
        let slot = msg.slot as usize;
        let Some(place) = self.places.get_mut(slot) else {
            return;
        };
        let current = place.current.is_some_and(|c| c.pid == msg.pid);
        match msg.ask {
            Ask::Prepare if current => self.want_successor(slot, false),
            Ask::Retire if current => {
                place.retiring = true;
                if place.successor.is_some_and(|(_, ready)| ready) {
                    self.hand_over(slot);
                } else {
                    self.want_successor(slot, true);
                }
            }
            Ask::Standby if place.successor.is_some_and(|(pid, _)| pid == msg.pid) => {
                place.successor = Some((msg.pid, true));
                if place.retiring || place.current.is_none() {
                    self.hand_over(slot);
                }
            }
            Ask::Reload => {
                log::info!(
                    "WSGIRS422: template process (wsgi:{}) pid {}: a script changed; the template is replaced to import it afresh",
                    self.name(),
                    self.pid
                );
                self.stop("a script changed");
            }
            _ => {}
        }
    }

    /// Queues slot `slot` for a successor (first when `urgent`: its
    /// process has stopped taking work).
    fn want_successor(&mut self, slot: usize, urgent: bool) {
        if self.places[slot].successor.is_some() {
            return;
        }
        if let Some(at) = self.queue.iter().position(|&s| s == slot) {
            if !urgent {
                return;
            }
            self.queue.remove(at);
        }
        if urgent {
            self.queue.push_front(slot);
        } else {
            self.queue.push_back(slot);
        }
    }

    /// Starts the next queued successor, unless one is starting: one
    /// replacement at a time per group.
    fn start_next_successor(&mut self) {
        if self.changing.is_some() {
            return;
        }
        let now = Instant::now();
        let Some(at) = self.queue.iter().position(|&s| {
            let p = &self.places[s];
            p.current.is_some() && p.successor.is_none() && p.respawn_at.is_none_or(|t| t <= now)
        }) else {
            return;
        };
        let slot = self.queue.remove(at).expect("position is in the queue");
        self.places[slot].respawn_at = None;
        let Some(pid) = self.fork(slot, true) else {
            self.places[slot].respawn_at = Some(now + Duration::from_secs(1));
            self.queue.push_back(slot);
            return;
        };
        let old = self.places[slot].current.map_or(0, |c| c.pid);
        log::info!(
            "WSGIRS423: (wsgi:{}) starting pid {pid} to replace pid {old} (slot {slot})",
            self.name()
        );
        self.places[slot].successor = Some((pid, false));
        self.changing = Some(slot);
    }

    /// The ready successor of `slot` serves; the process it replaces (if
    /// still there) stops taking work and exits once its requests are done.
    fn hand_over(&mut self, slot: usize) {
        let place = &mut self.places[slot];
        let Some((pid, true)) = place.successor else {
            return;
        };
        place.successor = None;
        place.retiring = false;
        let old = place.current.replace(Child {
            pid,
            started: Instant::now(),
        });
        // The successor first, so one serves at every moment.
        process::signal_child(pid, Signal::USR2);
        if let Some(old) = old {
            process::signal_child(old.pid, Signal::USR2);
            self.retired.push(old.pid);
        }
        if let Some(m) = self.members.get(slot).copied().flatten() {
            m.started(pid as u32);
        }
        if self.changing == Some(slot) {
            self.changing = None;
        }
        log::info!(
            "WSGIRS424: (wsgi:{}) pid {pid} serves in place of pid {} (slot {slot})",
            self.name(),
            old.map_or(0, |c| c.pid)
        );
        self.start_next_successor();
    }

    /// Starts processes for empty slots whose back-off has passed.
    fn respawn_due(&mut self) {
        let now = Instant::now();
        for slot in 0..self.places.len() {
            let p = &self.places[slot];
            if p.current.is_some() || p.successor.is_some() || p.respawn_at.is_none_or(|t| t > now)
            {
                continue;
            }
            let health = &self.launch.health;
            if p.failures == 0 {
                health.set(slot, SlotState::Starting);
            } else {
                health.begin_retry(slot);
            }
            self.places[slot].respawn_at = None;
            match self.fork(slot, false) {
                Some(pid) => {
                    self.places[slot].current = Some(Child {
                        pid,
                        started: Instant::now(),
                    });
                    if let Some(m) = self.members.get(slot).copied().flatten() {
                        m.started(pid as u32);
                    }
                }
                None => self.places[slot].respawn_at = Some(now + Duration::from_secs(1)),
            }
        }
    }

    /// Stops every process of the group (they finish their requests within
    /// shutdown-timeout) and exits.
    fn stop(&mut self, why: &str) -> ! {
        let mut pids: Vec<i32> = self.retired.clone();
        for p in &self.places {
            pids.extend(p.current.map(|c| c.pid));
            pids.extend(p.successor.map(|(pid, _)| pid));
        }
        for &pid in &pids {
            process::signal_child(pid, Signal::TERM);
        }
        log::info!(
            "WSGIRS427: template process (wsgi:{}) pid {} exiting: {why}",
            self.name(),
            self.pid
        );
        // The processes finish on their own (their parent-death signal is
        // SIGTERM too).
        process::exit_now(0)
    }
}
