//! The state one daemon process's workers and monitor share: the gate that
//! counts requests in flight and closes for a graceful exit, the restart
//! request, the loaded scripts and the slots of the running requests.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::active::ActiveRequest;
use super::intake::{Conn, Limits, Stage};
use super::poller::Poller;
use super::stop::StopReason;
use super::DaemonLaunch;
use crate::interp::ScriptCache;

/// Whether requests may still be served, and how many are in flight.
#[derive(Default)]
pub(super) struct Gate {
    /// The process is exiting: no new work is taken.
    pub(super) closing: bool,
    /// Connections a worker holds, or that are receiving a request.
    pub(super) active: usize,
}

/// State shared by the workers and the monitor of one daemon process.
pub struct Daemon {
    /// What the process was started with.
    pub launch: DaemonLaunch,
    /// The loaded scripts.
    pub scripts: ScriptCache,
    /// Whether work may be taken, and how much is in flight.
    pub(super) gate: Mutex<Gate>,
    /// Signalled whenever a request ends, for the drain.
    pub(super) idle: Condvar,
    /// Set once the process should be replaced (script changed, limits):
    /// our client is then told to retry elsewhere.
    pub(super) restart_reason: Mutex<Option<StopReason>>,
    /// A restart has been asked for.
    pub restarting: AtomicBool,
    /// Without a template: restarting, the process serves on until its
    /// successor does (see `succession::Relay`).
    pub(super) awaiting: AtomicBool,
    /// An application has loaded in this process; until then failed loads
    /// count against `startup-timeout`.
    pub app_loaded: AtomicBool,
    /// An application failed to load.
    pub load_failed: AtomicBool,
    /// Requests taken so far, for `maximum-requests`.
    pub(super) served: AtomicU64,
    /// This process's `maximum-requests`, its jitter added (0: none).
    pub(super) limit: u64,
    /// Open client connections that have carried a request, idle ones
    /// included.
    pub(super) connections: AtomicUsize,
    /// What the workers wait on.
    pub(super) poller: Poller<Conn>,
    /// When a request last started or ended (seconds), for `inactivity-timeout`.
    pub(super) last_activity: AtomicU64,
    /// The heartbeat thread's last tick under the GIL (seconds).
    pub(super) heartbeat: AtomicU64,
    /// Each worker's running request.
    pub slots: Vec<Mutex<Option<ActiveRequest>>>,
    /// When the process started, for the start-up and restart intervals.
    pub(super) started: Instant,
}

/// Seconds since the epoch, for the activity and heartbeat stamps.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Daemon {
    /// The application of `key` loaded (for a request, or a successor's
    /// warm-up). The first one a process loads is what its successor loads
    /// before it serves (without a template, see `succession::Relay`).
    pub(super) fn loaded(&self, key: &crate::interp::ScriptKey) {
        if !self.app_loaded.load(Ordering::Relaxed) && !self.app_loaded.swap(true, Ordering::SeqCst)
        {
            if let Some(relay) = &self.launch.relay {
                relay.loaded(&key.group, &key.path);
            }
        }
    }

    /// A request that counts as activity for inactivity-timeout started or
    /// ended (not those under `WSGIIgnoreActivity On`).
    pub(super) fn note_activity(&self) {
        self.last_activity.store(now_secs(), Ordering::Relaxed);
    }

    /// The state of a process with `threads` workers and the scripts
    /// loaded so far, before any request.
    pub(super) fn new(
        launch: DaemonLaunch,
        poller: Poller<Conn>,
        threads: usize,
        scripts: ScriptCache,
    ) -> Daemon {
        Daemon {
            scripts,
            gate: Mutex::new(Gate::default()),
            idle: Condvar::new(),
            restart_reason: Mutex::new(None),
            restarting: AtomicBool::new(false),
            awaiting: AtomicBool::new(false),
            app_loaded: AtomicBool::new(false),
            load_failed: AtomicBool::new(false),
            served: AtomicU64::new(0),
            limit: super::succession::limit_with_jitter(
                launch.spec.maximum_requests,
                launch.spec.maximum_requests_jitter,
            ),
            connections: AtomicUsize::new(0),
            poller,
            last_activity: AtomicU64::new(now_secs()),
            heartbeat: AtomicU64::new(now_secs()),
            slots: (0..threads).map(|_| Mutex::new(None)).collect(),
            started: Instant::now(),
            launch,
        }
    }

    /// Asks for a graceful replacement of this process.
    pub fn request_restart(&self, reason: StopReason) {
        let mut r = self
            .restart_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            log::info!(
                "WSGIRS341: daemon process (wsgi:{}) pid {} will restart: {reason}",
                self.launch.spec.name,
                std::process::id()
            );
            let retire_template = matches!(reason, StopReason::ScriptChanged(_));
            let metric = reason.metric();
            // Without a template: serve on until a successor does (set
            // before `restarting`, so no request is refused meanwhile).
            if let Some(relay) = self.launch.relay.as_ref() {
                if reason.waits_for_successor() {
                    self.awaiting.store(true, Ordering::SeqCst);
                    if reason == StopReason::InactivityTimeout {
                        relay.cold();
                    }
                    relay.ask();
                }
            }
            *r = Some(reason);
            self.restarting.store(true, Ordering::SeqCst);
            // A template replaces the process once its successor serves;
            // a changed script replaces the template itself.
            // Counted now, while the slot on the metrics board is still
            // this process's: its successor takes the slot over.
            if let Some(link) = &self.launch.succession {
                if let Some(metrics) = &self.launch.metrics {
                    if let Some(why) = metric {
                        metrics.restart(why);
                    }
                }
                link.retire(retire_template);
            }
        } else if !reason.waits_for_successor() && self.awaiting.load(Ordering::SeqCst) {
            // Serving on until a successor serves, the process learns its
            // script changed: it stops now, so requests after a touch get
            // the new code (from a fresh process), as under mod_wsgi.
            log::info!(
                "WSGIRS341: daemon process (wsgi:{}) pid {} will restart: {reason}",
                self.launch.spec.name,
                std::process::id()
            );
            *r = Some(reason);
            self.awaiting.store(false, Ordering::SeqCst);
        }
    }

    /// The process group's name.
    pub fn group(&self) -> &str {
        &self.launch.spec.name
    }

    /// Counts a request as it is taken; false when this process must not
    /// serve it (it is restarting, or maximum-requests is reached). Counted
    /// when taken, not when finished: the client's next request may arrive
    /// before this one's worker has finished its bookkeeping, and must
    /// already see the restart (maximum-requests is exact).
    ///
    /// A process forked from a template asks for its successor a little
    /// before its limit ([`lead`](super::succession::lead)), stops taking
    /// new connections at the limit, and for any other reason to restart
    /// serves on until its successor does. Without a template a process
    /// asks the Apache parent at its limit and serves on past it until its
    /// successor serves: a fresh start takes far longer than a fork, so
    /// asking a few requests ahead would gain nothing under load, and under
    /// a light one would hand over before the limit.
    pub fn admit(&self) -> bool {
        let n = self.served.fetch_add(1, Ordering::SeqCst) + 1;
        let max = self.limit;
        let link = self.launch.succession.as_deref();
        let relay = self.launch.relay.as_ref();
        if let Some(link) = link.filter(|_| max > 0) {
            let lead = super::succession::lead(max, self.slots.len() as u64);
            if max > lead && n == max - lead {
                link.prepare();
            }
        }
        let within = max == 0 || n <= max || relay.is_some();
        let admitted = within
            && (link.is_some()
                || !self.restarting.load(Ordering::SeqCst)
                || self.awaiting.load(Ordering::SeqCst));
        if max > 0 && n == max {
            if link.is_some() {
                self.poller.stop_listening();
            }
            self.request_restart(StopReason::MaximumRequests(max));
        }
        admitted
    }

    /// Open client connections that have carried a request, idle ones
    /// included.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// What a connection may send before a worker takes its request.
    pub(super) fn intake_limits(&self) -> Limits {
        Limits {
            header_timeout: self.launch.spec.header_timeout,
            body_timeout: self.launch.socket_timeout,
            body: usize::try_from(self.launch.spec.request_buffer_size).unwrap_or(usize::MAX),
        }
    }

    /// Closes the connections whose request did not arrive in time (the
    /// monitor calls it every tick): no thread was waiting for them, but
    /// they count as in flight for the drain.
    pub(super) fn close_stalled(&self) {
        let now = Instant::now();
        let stalled = self.poller.sweep(|conn| conn.expired(now));
        if stalled.is_empty() {
            return;
        }
        let limits = self.intake_limits();
        let heads = stalled.iter().filter(|c| c.stage() == Stage::Head).count();
        if heads > 0 {
            log::info!(
                "WSGIRS460: (wsgi:{}) closed {heads} connection(s) that sent no complete request head within header-timeout ({}s)",
                self.group(),
                limits.header_timeout.as_secs()
            );
        }
        let bodies = stalled.len() - heads;
        if bodies > 0 {
            log::info!(
                "WSGIRS461: (wsgi:{}) closed {bodies} connection(s) whose request body stopped arriving for socket-timeout ({}s)",
                self.group(),
                limits.body_timeout.as_secs()
            );
        }
        let counted = stalled.iter().filter(|c| c.counted).count();
        let closed = stalled.len();
        drop(stalled);
        self.connections.fetch_sub(counted, Ordering::SeqCst);
        let mut gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        gate.active -= closed;
        self.idle.notify_all();
    }
}
