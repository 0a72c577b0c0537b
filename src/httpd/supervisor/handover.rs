//! What a restart of Apache (graceful, `apache2 -k graceful`, or not,
//! `apache2 -k restart`) does to the daemon groups: a rolling replacement
//! in which no connect fails and no request waits for Python to start.
//!
//! httpd clears its configuration pool on a restart and reads the
//! configuration again; the module stays loaded (`-z nodelete`), and so
//! does the supervisor. So:
//!
//! - each group's socket (`PREFIX.GROUP.sock`) stays open across the
//!   restart: the new generation's group with the same socket path takes
//!   the listener over ([`take_listener`]), so connecting never fails;
//! - pconf's cleanup *parks* the supervisor ([`park`]): the old
//!   generation's processes become *retiring* ones, and the next
//!   post_config *adopts* them ([`adopt`]), registering them with httpd
//!   again so their deaths are still reaped. They go on accepting on the
//!   shared listener, for old and new Apache children alike;
//! - the new generation starts its own processes at once, from the new
//!   configuration, changed or not: a graceful restart reloads the
//!   application, as mod_wsgi users expect of it;
//! - a retiring process is asked to stop (SIGTERM: it stops accepting,
//!   finishes what it runs, and exits) once every process of its group in
//!   the new generation is ready or has failed to start; one of a group
//!   the new configuration no longer has serves until no Apache child of
//!   an earlier generation is left, then stops, and its socket goes.
//!
//! The parent hears of a death at once, but httpd calls its monitor hook
//! only about every ten seconds. So a *watcher*, forked from the parent,
//! polls the shared health records and scoreboard and exits as soon as a
//! retiring process may stop; its death wakes the parent, which then
//! stops those processes ([`retire_due`]).

use std::ffi::c_int;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;
use std::time::Duration;

use super::tracked::{next_key, Registration, Tracked};
use super::{become_helper, create_listener, register, SocketError, Supervisor};
use crate::daemon::health::SlotState;
use crate::httpd::ffi;
use crate::httpd::plan::ProcessPlan;
use crate::metrics::{ProcessMetrics, Reason};

/// A process of an earlier generation, still serving.
pub(super) struct Retiring {
    /// The process (registered under a key of its own, from
    /// [`next_key`]).
    pub(super) process: Tracked,
    /// Its places on the metrics board (see `Slot::places`).
    places: Vec<ProcessMetrics>,
    /// It is a template (its processes count their own exits).
    template: bool,
    /// Its group's name, for the log.
    group: String,
    /// The socket it accepts on.
    socket: PathBuf,
    /// It was asked to stop.
    signalled: bool,
}

/// pconf is cleared for a restart: every live process becomes a retiring
/// one and every listener is kept for the next generation.
pub(super) fn park(sup: &mut Supervisor) {
    stop_watcher(sup);
    super::succession::stop_waker(sup);
    sup.parked = true;
    let plan = sup.plan.clone();
    let mut kept = 0;
    for mut slot in std::mem::take(&mut sup.slots) {
        let group = &plan.daemon_groups[slot.group];
        let mut leaving = Vec::new();
        // A successor being started retires with the process it was for.
        if let Some(heir) = slot.heir.take().filter(|h| h.process.alive()) {
            let places = slot.place(heir.record).into_iter().collect();
            leaving.push((heir.process, places));
        }
        if slot.process.alive() {
            let places = slot.process_places();
            leaving.push((slot.process, places));
        }
        // The places no retiring process keeps are free.
        for place in &slot.places {
            let kept = |held: &Vec<ProcessMetrics>| held.iter().any(|h| h.slot == place.slot);
            if !leaving.iter().any(|(_, held)| kept(held)) {
                place.release();
            }
        }
        for (process, places) in leaving {
            sup.retiring.push(Retiring {
                // Its registration went with pconf's subpools.
                process: process.rekeyed(next_key()),
                places,
                template: slot.template,
                group: group.launch.spec.name.clone(),
                socket: group.socket_path.clone(),
                signalled: false,
            });
            kept += 1;
        }
    }
    // So did those of processes retiring since an earlier restart.
    for r in &mut sup.retiring {
        r.process.forget_registration();
    }
    for g in &plan.daemon_groups {
        sup.orphans
            .push((g.socket_path.clone(), g.launch.listener_fd));
    }
    if kept > 0 {
        ::log::info!(
            "WSGIRS400: Apache restarts: {kept} daemon process(es) keep serving until the new generation's processes of their group are ready"
        );
    }
}

/// The listener an earlier generation kept for the socket at `path`.
pub(super) fn take_listener(
    sup: &mut MutexGuard<'_, Option<Supervisor>>,
    path: &Path,
) -> Option<i32> {
    let sup = sup.as_mut().filter(|s| s.parked)?;
    let at = sup.orphans.iter().position(|(p, _)| p == path)?;
    Some(sup.orphans.remove(at).1)
}

/// Applies this generation's backlog and owner to a kept listener; makes a
/// new one if its socket file is gone (someone removed it).
pub(super) fn refresh_listener(
    fd: i32,
    path: &Path,
    backlog: u32,
    owner: Option<(u32, u32)>,
) -> Result<i32, SocketError> {
    let present = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if !present {
        // SAFETY: closing our own listener, replaced below.
        unsafe { libc::close(fd) };
        return create_listener(path, backlog, owner);
    }
    if let Some((uid, gid)) = owner {
        let _ = std::os::unix::fs::lchown(path, Some(uid), Some(gid));
    }
    // SAFETY: listen on a listening socket we own only sets its backlog.
    unsafe { libc::listen(fd, backlog.max(1) as c_int) };
    Ok(fd)
}

/// The next post_config: registers the retiring processes with httpd
/// again, and closes the listeners nobody uses any more.
pub(super) fn adopt(sup: &mut Supervisor) {
    for r in &mut sup.retiring {
        // SAFETY: post_config's live pconf.
        unsafe { register(&mut r.process, sup.pconf) };
    }
    let retiring = &sup.retiring;
    sup.orphans.retain(|(path, fd)| {
        let used = retiring.iter().any(|r| &r.socket == path);
        if !used {
            close_listener(path, *fd);
        }
        used
    });
}

/// Closes a listener no group uses and removes its socket.
fn close_listener(path: &Path, fd: i32) {
    // SAFETY: closing the parent's copy of the listener.
    unsafe { libc::close(fd) };
    let _ = std::fs::remove_file(path);
}

/// Whether `r` may stop now: its group's processes of this generation are
/// all ready (or failed to start), or, its group gone, no Apache child of
/// an earlier generation is left to send it a request.
fn may_stop(plan: &ProcessPlan, r: &Retiring) -> bool {
    match plan
        .daemon_groups
        .iter()
        .find(|g| g.socket_path == r.socket)
    {
        Some(g) => {
            (0..g.launch.health.len()).all(|m| g.launch.health.state(m) != SlotState::Starting)
        }
        None => {
            // SAFETY: reads httpd's scoreboard, shared with this process.
            let older = unsafe { ffi::wsgi_rs_older_children_alive() };
            older == 0
        }
    }
}

/// Asks the retiring processes whose time has come to stop, and watches
/// for the others.
pub(super) fn retire_due(sup: &mut Supervisor) {
    if sup.parked || sup.stopping {
        return;
    }
    let plan = sup.plan.clone();
    for r in sup.retiring.iter_mut().filter(|r| !r.signalled) {
        if !may_stop(&plan, r) {
            continue;
        }
        let why = if plan.daemon_groups.iter().any(|g| g.socket_path == r.socket) {
            "its group's new processes are ready"
        } else {
            "its group is no longer configured and no Apache child of an earlier generation is left"
        };
        ::log::info!(
            "WSGIRS401: daemon process (wsgi:{}) pid {} of an earlier generation stopping: {why}",
            r.group,
            r.process.pid()
        );
        r.process.signal(libc::SIGTERM);
        r.signalled = true;
    }
    if sup.watcher.is_none() && sup.retiring.iter().any(|r| !r.signalled) {
        start_watcher(sup);
    }
}

/// A retiring process or the watcher (`key`) died; returns the pool of
/// its registration, to unregister once the lock is released.
pub(super) fn process_died(
    sup: &mut Supervisor,
    key: usize,
    status: c_int,
) -> Option<Registration> {
    if sup.watcher.as_ref().is_some_and(|w| w.key() == key) {
        return sup.watcher.take()?.died();
    }
    let at = sup.retiring.iter().position(|r| r.process.key() == key)?;
    let mut r = sup.retiring.remove(at);
    ::log::info!(
        "WSGIRS402: daemon process (wsgi:{}) pid {} of an earlier generation exited (status {status})",
        r.group,
        r.process.pid()
    );
    // Asked to stop because its successors are ready: a graceful restart
    // of the process (unless it counted its own reason); died before: a
    // crash; Apache stopping it: no restart.
    let reason = match (sup.stopping, r.signalled) {
        (true, _) => None,
        (false, true) => Some(Reason::Graceful),
        (false, false) => Some(Reason::Crash),
    };
    for place in &r.places {
        place.gone(reason.filter(|_| !r.template));
        place.release();
    }
    let shared = sup.retiring.iter().any(|o| o.socket == r.socket);
    if !shared {
        if let Some(at) = sup.orphans.iter().position(|(p, _)| *p == r.socket) {
            let (path, fd) = sup.orphans.remove(at);
            close_listener(&path, fd);
        }
    }
    r.process.died()
}

/// Kills and reaps the watcher. Only called from pconf's cleanup, when its
/// registration is already gone.
pub(super) fn stop_watcher(sup: &mut Supervisor) {
    if let Some(w) = sup.watcher.take() {
        w.kill_and_reap();
    }
}

/// Forks the watcher: it exits as soon as a retiring process may stop (or
/// the parent is gone), which wakes the parent.
fn start_watcher(sup: &mut Supervisor) {
    // SAFETY: the Apache parent is single-threaded here, as for the daemons.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        // The monitor hook looks again in a while.
        return;
    }
    if pid == 0 {
        watch(sup);
    }
    let mut watcher = Tracked::new(next_key());
    watcher.started(pid);
    // SAFETY: live pconf (not parked).
    unsafe { register(&mut watcher, sup.pconf) };
    sup.watcher = Some(watcher);
}

/// The watcher's life (in the forked process; never returns).
fn watch(sup: &Supervisor) -> ! {
    let parent = become_helper(sup);
    let pending: Vec<&Retiring> = sup.retiring.iter().filter(|r| !r.signalled).collect();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        // SAFETY: getppid cannot fail.
        let orphaned = unsafe { libc::getppid() } != parent;
        if orphaned || pending.iter().any(|r| may_stop(&sup.plan, r)) {
            // SAFETY: leaving the forked watcher without Apache's exit code.
            unsafe { libc::_exit(0) }
        }
    }
}
