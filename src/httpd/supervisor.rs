//! The Apache parent's side of daemon mode: one listening UNIX socket per
//! `WSGIDaemonProcess` group, the group's processes forked from the parent
//! (which never starts Python itself), and their supervision: a process that
//! dies is started again (with back-off when it keeps dying young:
//! [`respawn`]), and every process is stopped and reaped, and every socket
//! removed, when Apache stops ([`stop`]). What a restart does is in
//! [`handover`]: the sockets stay and the processes of the old generation
//! serve until the new generation's are ready. A process to be recycled is
//! replaced by a successor before it stops ([`succession`]).

mod handover;
mod one_process;
mod registration;
mod respawn;
mod socket;
mod stop;
mod succession;
mod title;
mod tracked;

use respawn::{process_died, respawn_due};
pub use socket::{create_listener, listener, unix_addr, SocketError};
use stop::{signal_stop, stop_all, stop_processes};
use title::set_process_title;
use tracked::Tracked;

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ffi;
use super::plan::{DaemonGroup, ProcessPlan};
use crate::metrics::ProcessMetrics;

/// One daemon process's place in a group.
struct Slot {
    /// Its group, by index in the plan.
    group: usize,
    /// Its place among its group's processes.
    member: usize,
    /// The health record and board place of its process: `member`, or the
    /// other one of the slot after a successor took over (see
    /// [`succession`]).
    record: usize,
    /// Its process (registered under the slot's index, or its own key
    /// once a successor took over).
    process: Tracked,
    /// The successor of its process, while one is started.
    heir: Option<succession::Heir>,
    /// A successor of its process died before it could take over: none is
    /// tried again for that process.
    heir_failed: bool,
    /// The last process that left the slot, kept until its registration
    /// with httpd (which points at it) is gone.
    spare: Option<Tracked>,
    /// Its places on the metrics board (none when metrics are off): a
    /// template's processes', by member; else one for each of its two
    /// health records (see [`Slot::place`]). Kept by the slot's successive
    /// processes, and by a process of it while it retires.
    places: Vec<ProcessMetrics>,
    /// When it was started.
    started: Instant,
    /// Consecutive young deaths (see `succession::after_exit`).
    failures: u32,
    /// When a replacement is due, after a back-off.
    respawn_at: Option<Instant>,
    /// How long the next process of this slot waits before it starts: the
    /// back-off after young deaths. The process is forked at once and waits
    /// by itself, because the parent only gets the MPM's monitor hook about
    /// every ten seconds, which would stretch a 2 s back-off to 10.
    hold_off: Duration,
    /// The process is the group's template (`process-template=On`): it
    /// forks and supervises the group's processes itself.
    template: bool,
}

/// The parent's view of every daemon process.
struct Supervisor {
    /// The plan the processes are started from.
    plan: Arc<ProcessPlan>,
    /// The configuration pool.
    pconf: *mut ffi::apr_pool_t,
    /// The main server.
    server: *mut ffi::server_rec,
    /// Every process of every group.
    slots: Vec<Slot>,
    /// Apache is stopping: no respawns.
    stopping: bool,
    /// Between two configuration generations: pconf was cleared for a
    /// restart and the next post_config has not adopted the processes yet.
    parked: bool,
    /// Processes of earlier generations still serving (see [`handover`]).
    retiring: Vec<handover::Retiring>,
    /// Listeners of earlier generations' groups that no group of this
    /// generation took over, by socket path: their processes still serve
    /// the old generation's children.
    orphans: Vec<(std::path::PathBuf, i32)>,
    /// The process watching for the moment retiring processes may stop.
    watcher: Option<Tracked>,
    /// The process waiting for daemon processes to ask for successors
    /// (see [`succession`]).
    waker: Option<Tracked>,
    /// This process is `httpd -X`'s supervisor ([`one_process`]): it reaps
    /// its children itself instead of through httpd's other-child list.
    standalone: bool,
}

// SAFETY: the supervisor is only touched by the Apache parent's main thread
// (post_config, the monitor hook, other-child callbacks, pool cleanups); the
// mutex is for Rust's sake.
unsafe impl Send for Supervisor {}

/// The parent's supervisor, once started.
static SUPERVISOR: Mutex<Option<Supervisor>> = Mutex::new(None);

/// The main server, for the process titles of a template's processes
/// (read in forked children, where the supervisor's lock may be held).
static TITLE_SERVER: AtomicPtr<ffi::server_rec> = AtomicPtr::new(std::ptr::null_mut());

/// Sets the title of a process forked from a template (see
/// `set_process_title`).
fn retitle(title: &str) {
    let server = TITLE_SERVER.load(Ordering::Acquire);
    if !server.is_null() {
        // SAFETY: the main server of this generation; the process is a
        // fork (through its template) of the parent, argv still in place.
        unsafe { set_process_title(server, title) };
    }
}

/// The health records a slot's process answers for: its own, or every one
/// of its group's for a template.
fn members_of(plan: &ProcessPlan, slot: &Slot) -> std::ops::Range<usize> {
    if slot.template {
        0..plan.daemon_groups[slot.group].launch.spec.processes as usize
    } else {
        slot.record..slot.record + 1
    }
}

impl Slot {
    /// The board place of the process in health record `record` of this
    /// (non-template) slot.
    fn place(&self, record: usize) -> Option<ProcessMetrics> {
        self.places.get(usize::from(record != self.member)).copied()
    }

    /// The board places its process answers for: its own, or every one of
    /// its group's for a template.
    fn process_places(&self) -> Vec<ProcessMetrics> {
        if self.template {
            self.places.clone()
        } else {
            self.place(self.record).into_iter().collect()
        }
    }
}

/// How many processes group `g` runs.
fn processes_of(g: &DaemonGroup) -> usize {
    g.launch.spec.processes as usize
}

/// Sets up a small helper process just forked from the parent (the
/// graceful hand-over's watcher, succession's waker), whose exit is what
/// wakes the parent: its own process group (so prefork's killpg does not
/// reach it), default signal handling instead of Apache's handlers, and no
/// listening sockets. Returns the parent's pid, so it can tell when it is
/// orphaned.
fn become_helper(sup: &Supervisor) -> c_int {
    // SAFETY: in the freshly forked, single-threaded helper: process group,
    // signal dispositions and its own copies of the listeners only.
    unsafe {
        libc::setpgid(0, 0);
        for sig in [
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGWINCH,
            libc::SIGINT,
            libc::SIGCHLD,
        ] {
            libc::signal(sig, libc::SIG_DFL);
        }
        ffi::ap_close_listeners();
        for g in &sup.plan.daemon_groups {
            libc::close(g.launch.listener_fd);
        }
        for (_, fd) in &sup.orphans {
            libc::close(*fd);
        }
        libc::getppid()
    }
}

/// Forks the process of `group` with health record `member` (its template
/// when `template`), which waits `hold_off` before it starts and counts in
/// board places `places` (its own, or a template's processes'). Returns its
/// pid (the child never returns).
fn fork_process(
    sup: &Supervisor,
    group: usize,
    member: usize,
    template: bool,
    hold_off: Duration,
    places: &[ProcessMetrics],
) -> Option<i32> {
    let plan = &sup.plan;
    let stop = crate::daemon::monitor::signal_set();
    // SAFETY: the Apache parent is single-threaded here (post_config,
    // monitor and other-child callbacks run on its main thread). The stop
    // signals are blocked across fork: one that reaches the child before
    // it has set up its own handling stays pending for it, where Apache's
    // inherited handlers would have swallowed it (a process stopped right
    // after it was forked then ran on until SIGKILLed).
    let pid = unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, &stop, &mut old);
        let pid = libc::fork();
        if pid != 0 {
            libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        }
        pid
    };
    if pid < 0 {
        ::log::error!(
            "WSGIRS310: cannot fork daemon process: {}",
            std::io::Error::last_os_error()
        );
        return None;
    }
    if pid > 0 {
        return Some(pid);
    }
    // Child: its own process group, so the signals prefork sends to its
    // whole group on restart and stop (killpg) do not reach it: the
    // supervisor stops daemons itself, and a daemon stopped behind its back
    // was started again by a generation that was going away.
    // SAFETY: setpgid on ourselves; then closes descriptors this process
    // inherited and will not use.
    unsafe {
        libc::setpgid(0, 0);
        ffi::ap_close_listeners();
        for (i, g) in plan.daemon_groups.iter().enumerate() {
            if i != group {
                libc::close(g.launch.listener_fd);
                g.launch.health.seal();
            }
        }
        for (_, fd) in &sup.orphans {
            libc::close(*fd);
        }
        for fd in succession::wake_fds() {
            if Some(fd) != succession::wake_writer() {
                libc::close(fd);
            }
        }
    }
    let mut launch = plan.daemon_groups[group].launch.clone();
    if !template {
        launch.relay = succession::wake_writer()
            .map(|wake| crate::daemon::succession::Relay::new(launch.health.clone(), member, wake));
    }
    // The process that forked it supervises it: the Apache parent, or
    // under `httpd -X` the supervisor process (see one_process).
    // SAFETY: getppid cannot fail.
    launch.parent_pid = unsafe { libc::getppid() };
    launch.metrics = places.first().copied();
    // Like mod_wsgi, a group logs (its own messages and its requests'
    // wsgi.errors, stderr and logging output) to the error log of the server
    // that defined it, so a WSGIDaemonProcess inside a <VirtualHost> writes
    // to that host's ErrorLog, with that host's LogLevel. The parent opened
    // every host's log before forking.
    super::log::install(plan.daemon_groups[group].owner as *mut ffi::server_rec);
    if let Some(title) = launch.spec.process_title() {
        let title = if template {
            format!("{title} template")
        } else {
            title
        };
        // SAFETY: freshly forked from the parent, argv untouched.
        unsafe { set_process_title(sup.server, &title) };
    }
    // A panic must never unwind out of the child back into httpd's code
    // (it would carry on as a second copy of the MPM's main loop).
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if template {
            launch.metrics = None;
            launch.retitle = Some(retitle);
            let members = places.iter().copied().map(Some).collect();
            crate::daemon::template::run(launch, hold_off, members)
        } else {
            crate::daemon::process::run(launch, hold_off, member)
        }
    }));
    if outcome.is_err() {
        ::log::error!(
            "WSGIRS311: daemon process pid {}: internal error, exiting",
            std::process::id()
        );
    }
    // SAFETY: leaving the forked child without running the parent's exit
    // handlers.
    unsafe { libc::_exit(1) }
}

/// Registers `process` with httpd, [`maintenance`] as its callback (see
/// [`Tracked::register`]).
///
/// # Safety
/// `pconf` must be live.
unsafe fn register(process: &mut Tracked, pconf: *mut ffi::apr_pool_t) {
    // SAFETY: caller's contract.
    unsafe { process.register(pconf, maintenance) }
}

/// The supervisor, locked.
fn lock() -> std::sync::MutexGuard<'static, Option<Supervisor>> {
    SUPERVISOR.lock().unwrap_or_else(|p| p.into_inner())
}

/// httpd's other-child callback: a daemon process died, Apache restarts,
/// or a registration goes (its pool is destroyed, or we unregistered it).
unsafe extern "C" fn maintenance(reason: c_int, data: *mut c_void, status: c_int) {
    super::boundary::guard("daemon maintenance", (), || {
        let key = data as usize;
        let reason = reason as u32;
        let died = matches!(reason, ffi::APR_OC_REASON_DEATH | ffi::APR_OC_REASON_LOST);
        // apr_proc_other_child_unregister calls back into this function
        // (with REASON_UNREGISTER), so it is only ever called with the
        // supervisor lock released.
        let registration = {
            let mut guard = lock();
            let Some(sup) = guard.as_mut() else { return };
            if died {
                let lost = reason == ffi::APR_OC_REASON_LOST;
                process_died(sup, key, lost, status)
            } else {
                if reason == ffi::APR_OC_REASON_UNREGISTER {
                    // Its pool is being destroyed (pconf is cleared), or
                    // we unregistered it ourselves.
                    forget_registration(sup, key);
                }
                // SAFETY: plain read of the MPM's retained state.
                let restarting = unsafe { ffi::wsgi_rs_restart_pending() } != 0;
                if reason == ffi::APR_OC_REASON_RESTART && !restarting {
                    // Apache stops and reclaims its children: stop ours
                    // alongside, so a child waiting on a daemon is freed
                    // within shutdown-timeout. On a restart they stay,
                    // for the next generation (see handover).
                    signal_stop(sup);
                }
                None
            }
        };
        if let Some(registration) = registration {
            // SAFETY: the lock is released.
            unsafe { registration.unregister() };
        }
        if died {
            monitor_tick();
        }
    })
}

/// The registration `key` is gone: forget its pool.
fn forget_registration(sup: &mut Supervisor, key: usize) {
    let processes = sup.slots.iter_mut().flat_map(|s| {
        std::iter::once(&mut s.process).chain(s.heir.as_mut().map(|h| &mut h.process))
    });
    let retiring = sup.retiring.iter_mut().map(|r| &mut r.process);
    if let Some(p) = processes
        .chain(retiring)
        .chain(sup.watcher.as_mut())
        .chain(sup.waker.as_mut())
        .find(|p| p.key() == key)
    {
        p.forget_registration();
    }
}

impl Supervisor {
    /// Every daemon process running, current (successors too) and
    /// retiring (not the watcher nor the waker).
    fn daemons(&self) -> impl Iterator<Item = &Tracked> {
        let current = self.slots.iter().map(|s| &s.process);
        let heirs = self
            .slots
            .iter()
            .filter_map(|s| s.heir.as_ref().map(|h| &h.process));
        let retiring = self.retiring.iter().map(|r| &r.process);
        current.chain(heirs).chain(retiring).filter(|p| p.alive())
    }
}

/// Called by the MPM about every ten seconds in the parent, and after
/// each death of a process (the waker's too): starts processes whose
/// back-off has passed and the successors asked for, and stops the earlier generations' processes whose time has come.
pub fn monitor_tick() {
    super::child_exit::rearm();
    let mut guard = lock();
    if let Some(sup) = guard.as_mut() {
        if !sup.parked {
            respawn_due(sup);
            handover::retire_due(sup);
        }
    }
}

/// Starts every daemon process of the plan and ties their lifetime to
/// `pconf`; after a restart, adopts the processes of the earlier
/// generations (see [`handover`]).
///
/// # Safety
/// Must be called from the Apache parent's post_config with its live pconf
/// and main server; the plan's listeners must be open.
pub unsafe fn start(
    plan: Arc<ProcessPlan>,
    pconf: *mut ffi::apr_pool_t,
    server: *mut ffi::server_rec,
) {
    TITLE_SERVER.store(server, Ordering::Release);
    let mut slots = Vec::new();
    for (group, g) in plan.daemon_groups.iter().enumerate() {
        // A group with a template has one process here: the template.
        let template = g.launch.spec.process_template;
        let processes = if template { 1 } else { processes_of(g) };
        for member in 0..processes {
            let key = slots.len();
            // A process slot has two health records (a successor starts
            // in the other one), each with its board place.
            let places = if template { processes_of(g) } else { 2 };
            slots.push(Slot {
                group,
                member,
                record: member,
                process: Tracked::new(key),
                heir: None,
                heir_failed: false,
                spare: None,
                places: super::metrics::claim_places(group, places),
                started: Instant::now(),
                failures: 0,
                respawn_at: Some(Instant::now()),
                hold_off: Duration::ZERO,
                template,
            });
        }
    }
    if !slots.is_empty() {
        super::child_exit::wake_on_child_exit();
    }
    if plan
        .daemon_groups
        .iter()
        .any(|g| !g.launch.spec.process_template)
    {
        succession::wake_pipe();
    }
    let mut guard = lock();
    let earlier = guard.take().filter(|s| s.parked);
    let (retiring, orphans) = earlier.map(|s| (s.retiring, s.orphans)).unwrap_or_default();
    // A single-process server (`httpd -X`) supervises from a process of
    // its own; this one keeps nothing.
    let standalone = one_process::active();
    let sup = guard.insert(Supervisor {
        plan,
        pconf,
        server,
        slots,
        stopping: false,
        parked: false,
        retiring,
        orphans,
        watcher: None,
        waker: None,
        standalone,
    });
    if standalone {
        let sup = guard.take().expect("just set");
        drop(guard);
        if !sup.slots.is_empty() {
            one_process::spawn(sup);
        }
        return;
    }
    // SAFETY: registered before the children, so it runs after the
    // registrations' pools are destroyed (subpools go first).
    unsafe {
        ffi::apr_pool_cleanup_register(
            pconf,
            std::ptr::null(),
            Some(stop_all),
            Some(ffi::apr_pool_cleanup_null),
        );
    }
    handover::adopt(sup);
    respawn_due(sup);
    handover::retire_due(sup);
}

/// The groups' listener fds (and those of earlier generations' groups
/// still open), for Apache children to close.
pub fn listener_fds(plan: &ProcessPlan) -> Vec<i32> {
    let orphans: Vec<i32> = lock()
        .as_ref()
        .map(|s| s.orphans.iter().map(|(_, fd)| *fd).collect())
        .unwrap_or_default();
    plan.daemon_groups
        .iter()
        .map(|g: &DaemonGroup| g.launch.listener_fd)
        .chain(orphans)
        .chain(succession::wake_fds())
        .collect()
}
