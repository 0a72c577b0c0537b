//! The Apache parent's side of daemon mode: one listening UNIX socket per
//! `WSGIDaemonProcess` group, the group's processes forked from the parent
//! (which never starts Python itself), and their supervision: a process that
//! dies is started again (with back-off when it keeps dying young), and
//! every process is stopped and reaped, and every socket removed, when
//! Apache stops or restarts.

use std::ffi::{c_int, c_void, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ffi;
use super::plan::{DaemonGroup, ProcessPlan};
use super::pool::pool_box;
use crate::daemon::health::SlotState;
use crate::daemon::succession::{restart_delay, YOUNG};

/// One daemon process's place in a group.
struct Slot {
    /// Its group, by index in the plan.
    group: usize,
    /// Its place among its group's processes: its health record.
    member: usize,
    /// The running process, or 0.
    pid: i32,
    /// The record httpd tracks it with.
    proc_: *mut ffi::apr_proc_t,
    /// When it was started.
    started: Instant,
    /// Consecutive deaths within [`YOUNG`] of starting.
    failures: u32,
    /// When a replacement is due, after a back-off.
    respawn_at: Option<Instant>,
    /// How long the next process of this slot waits before it starts: the
    /// back-off after young deaths. The process is forked at once and waits
    /// by itself, because the parent only gets the MPM's monitor hook about
    /// every ten seconds, which would stretch a 2 s back-off to 10.
    hold_off: Duration,
    /// The process is running.
    alive: bool,
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
    /// Processes signalled to stop but not yet reaped.
    stopped: Vec<i32>,
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

/// Why a group's socket could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The path does not fit a UNIX socket address.
    #[error("daemon socket path '{0}' is too long for a UNIX socket")]
    TooLong(String),
    /// A syscall failed.
    #[error("cannot create daemon socket '{path}': {call}: {err}")]
    Call {
        /// The socket path.
        path: String,
        /// The call.
        call: &'static str,
        /// The error.
        err: std::io::Error,
    },
}

/// The `sockaddr_un` for `path`, or None when the path is too long.
pub fn unix_addr(path: &Path) -> Option<libc::sockaddr_un> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; zeroed is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() {
        return None;
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Some(addr)
}

/// Creates the group's listener: only the Apache child user may connect.
pub fn create_listener(
    path: &Path,
    backlog: u32,
    owner: Option<(u32, u32)>,
) -> Result<i32, SocketError> {
    let shown = path.display().to_string();
    let fail = |call, err| SocketError::Call {
        path: shown.clone(),
        call,
        err,
    };
    let bytes = path.as_os_str().as_bytes();
    let Some(addr) = unix_addr(path) else {
        return Err(SocketError::TooLong(shown));
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::remove_file(path);
    let c_path = CString::new(bytes).map_err(|_| SocketError::TooLong(shown.clone()))?;
    // SAFETY: plain socket syscalls on a descriptor we own; the path and
    // address are valid for the calls.
    unsafe {
        // Close-on-exec: daemons inherit it by fork; nothing the parent
        // execs (piped loggers, RewriteMap programs) may accept on it.
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(fail("socket", std::io::Error::last_os_error()));
        }
        let close_with = |call, fd| {
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            Err(fail(call, err))
        };
        // Nobody may connect between bind and chmod/chown.
        let old_mask = libc::umask(0o177);
        let rc = libc::bind(
            fd,
            (&addr as *const libc::sockaddr_un).cast(),
            size_of::<libc::sockaddr_un>() as libc::socklen_t,
        );
        libc::umask(old_mask);
        if rc != 0 {
            return close_with("bind", fd);
        }
        if let Some((uid, gid)) = owner {
            if libc::lchown(c_path.as_ptr(), uid, gid) != 0 {
                return close_with("chown", fd);
            }
        }
        if libc::chmod(c_path.as_ptr(), 0o600) != 0 {
            return close_with("chmod", fd);
        }
        if libc::listen(fd, backlog.max(1) as c_int) != 0 {
            return close_with("listen", fd);
        }
        // Every process of the group polls the same listener; whoever
        // loses the race for a connection must not block in accept().
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        Ok(fd)
    }
}

/// Overwrites the process title (what `ps` shows) with `title`.
///
/// # Safety
/// `server` must be the live main server; the process must be a fork of the
/// Apache parent whose argv memory is still in place.
unsafe fn set_process_title(server: *mut ffi::server_rec, title: &str) {
    // SAFETY: caller's contract; argv strings are contiguous in the
    // process's initial stack area, which we only overwrite within bounds.
    unsafe {
        let process = (*server).process;
        if process.is_null() || (*process).argc < 1 {
            return;
        }
        let argv = (*process).argv;
        let argc = (*process).argc as usize;
        let start = *argv as *mut u8;
        let last = *argv.add(argc - 1);
        let end = (last as *mut u8).add(libc::strlen(last) + 1);
        let room = end.offset_from(start) as usize;
        if room < 2 {
            return;
        }
        std::ptr::write_bytes(start, 0, room);
        let n = title.len().min(room - 1);
        std::ptr::copy_nonoverlapping(title.as_ptr(), start, n);
        if let Ok(c) = CString::new(&title.as_bytes()[..title.len().min(15)]) {
            libc::prctl(libc::PR_SET_NAME, c.as_ptr());
        }
    }
}

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

/// The health records and board places a slot's process answers for: its
/// own, or every one of its group's for a template.
fn members_of(plan: &ProcessPlan, slot: &Slot) -> std::ops::Range<usize> {
    if slot.template {
        0..plan.daemon_groups[slot.group].launch.spec.processes as usize
    } else {
        slot.member..slot.member + 1
    }
}

/// Forks process `member` of `group` (its template when `template`), which
/// waits `hold_off` before it starts. Returns its pid (the child never
/// returns).
fn fork_process(
    sup: &Supervisor,
    group: usize,
    member: usize,
    template: bool,
    hold_off: Duration,
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
    }
    let mut launch = plan.daemon_groups[group].launch.clone();
    launch.metrics = super::metrics::daemon_process(group, member);
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
            let members = (0..launch.spec.processes as usize)
                .map(|m| super::metrics::daemon_process(group, m))
                .collect();
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

/// httpd's other-child callback: a daemon process died or Apache restarts.
unsafe extern "C" fn maintenance(reason: c_int, data: *mut c_void, status: c_int) {
    super::boundary::guard("daemon maintenance", (), || {
        let index = data as usize;
        let reason = reason as u32;
        // apr_proc_other_child_unregister calls back into this function
        // (with REASON_UNREGISTER), so it is only ever called with the
        // supervisor lock released.
        let unregister = {
            let mut guard = SUPERVISOR.lock().unwrap_or_else(|p| p.into_inner());
            let Some(sup) = guard.as_mut() else { return };
            let stopping = sup.stopping;
            let Some(slot) = sup.slots.get_mut(index) else {
                return;
            };
            match reason {
                ffi::APR_OC_REASON_DEATH | ffi::APR_OC_REASON_LOST => {
                    let was_alive = std::mem::replace(&mut slot.alive, false);
                    let members = members_of(&sup.plan, slot);
                    if let Some(board) = super::metrics::current() {
                        // Apache stopping it is no restart; a template's
                        // processes go with it (counted by their own).
                        for member in members.clone() {
                            board.process_gone(slot.group + 1, member, !stopping && !slot.template);
                        }
                    }
                    let name = &sup.plan.daemon_groups[slot.group].launch.spec.name;
                    ::log::info!(
                        "WSGIRS312: daemon process (wsgi:{name}) pid {} exited (status {status})",
                        slot.pid
                    );
                    if !stopping {
                        // A clean exit is a recycle (reload, maximum-requests…):
                        // replace it at once. Only crashes of young processes
                        // back off, so a broken app cannot fork-bomb the host.
                        let crashed = reason == ffi::APR_OC_REASON_LOST || status != 0;
                        slot.failures = if crashed && slot.started.elapsed() < YOUNG {
                            slot.failures + 1
                        } else {
                            0
                        };
                        // A process that had started serving and is lost
                        // (killed, a crash in a request) is replaced at once
                        // the first time: only its requests in flight fail.
                        // Young deaths in a row back off all the same.
                        let served = sup.plan.daemon_groups[slot.group]
                            .launch
                            .health
                            .state(slot.member)
                            == SlotState::Ready;
                        let delay = if slot.failures == 1 && served {
                            Duration::ZERO
                        } else {
                            restart_delay(slot.failures)
                        };
                        if !delay.is_zero() {
                            ::log::warn!(
                                "WSGIRS313: daemon process (wsgi:{name}) keeps dying at start-up; next start in {}s",
                                delay.as_secs()
                            );
                            // A process that died before it served failed
                            // to start: held off, the group's requests are
                            // answered 503 unless another process serves.
                            // One that failed cleanly said why; one killed
                            // by a signal is described here. A process that
                            // served and then crashed is an application
                            // fault: its replacement is waited for.
                            let health = &sup.plan.daemon_groups[slot.group].launch.health;
                            for member in members {
                                match health.state(member) {
                                    SlotState::Starting | SlotState::Retrying => health.fail(
                                        member,
                                        &format!(
                                            "daemon process pid {} died during start-up (status {status})",
                                            slot.pid
                                        ),
                                    ),
                                    SlotState::Ready => {
                                        health.set(member, SlotState::Starting);
                                    }
                                    SlotState::Failed | SlotState::Unknown => {}
                                }
                            }
                        }
                        slot.hold_off = delay;
                        slot.respawn_at = Some(Instant::now());
                    }
                    was_alive
                }
                // Apache is restarting or clearing pconf. (Our own unregister
                // of a dead process also lands here; it is no longer alive.)
                ffi::APR_OC_REASON_RESTART | ffi::APR_OC_REASON_UNREGISTER => {
                    let was_alive = std::mem::replace(&mut slot.alive, false);
                    if was_alive {
                        sup.stopping = true;
                        // SAFETY: signalling our own child; stop_all reaps it.
                        unsafe { libc::kill(slot.pid, libc::SIGTERM) };
                        sup.stopped.push(slot.pid);
                    }
                    reason == ffi::APR_OC_REASON_RESTART && was_alive
                }
                _ => false,
            }
        };
        if unregister {
            // SAFETY: data is the key this slot was registered with.
            unsafe { ffi::apr_proc_other_child_unregister(data) };
        }
        if matches!(reason, ffi::APR_OC_REASON_DEATH | ffi::APR_OC_REASON_LOST) {
            monitor_tick();
        }
    })
}

/// Forks the slot's process.
fn start_slot(sup: &mut Supervisor, index: usize) {
    let Slot {
        group,
        member,
        hold_off,
        template,
        ..
    } = sup.slots[index];
    if hold_off.is_zero() {
        // A start after a failure stays "failed" until its back-off ends.
        for member in members_of(&sup.plan, &sup.slots[index]) {
            sup.plan.daemon_groups[group]
                .launch
                .health
                .set(member, SlotState::Starting);
        }
    }
    let Some(pid) = fork_process(sup, group, member, template, hold_off) else {
        sup.slots[index].respawn_at = Some(Instant::now() + Duration::from_secs(1));
        return;
    };
    if let Some(board) = super::metrics::current().filter(|_| !template) {
        board.process_started(group + 1, member, pid as u32);
    }
    let slot = &mut sup.slots[index];
    slot.pid = pid;
    // Young means young since it stopped waiting and really started.
    slot.started = Instant::now() + hold_off;
    slot.hold_off = Duration::ZERO;
    slot.alive = true;
    slot.respawn_at = None;
    // SAFETY: proc_ is pconf memory owned by this slot; the registration
    // is tied to pconf, which outlives it.
    unsafe {
        (*slot.proc_).pid = pid;
        ffi::apr_proc_other_child_register(
            slot.proc_,
            Some(maintenance),
            index as *mut c_void,
            std::ptr::null_mut(),
            sup.pconf,
        );
    }
}

/// Starts the replacements whose back-off has passed.
fn respawn_due(sup: &mut Supervisor) {
    if sup.stopping {
        return;
    }
    let now = Instant::now();
    let due: Vec<usize> = sup
        .slots
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.alive && s.respawn_at.is_some_and(|t| t <= now))
        .map(|(i, _)| i)
        .collect();
    for index in due {
        start_slot(sup, index);
    }
}

/// Called by the MPM about once a second in the parent: starts processes
/// whose back-off has passed.
pub fn monitor_tick() {
    let mut guard = SUPERVISOR.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(sup) = guard.as_mut() {
        respawn_due(sup);
    }
}

/// Pool cleanup: stops every daemon process.
unsafe extern "C" fn stop_all(_data: *mut c_void) -> ffi::apr_status_t {
    super::boundary::guard("daemon shutdown", (), || {
        let taken = SUPERVISOR.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut sup) = taken else { return };
        sup.stopping = true;
        let live: Vec<i32> = sup
            .slots
            .iter()
            .filter(|s| s.alive)
            .map(|s| s.pid)
            .collect();
        for &pid in &live {
            // SAFETY: signalling our own children.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let limit = sup
            .plan
            .daemon_groups
            .iter()
            .map(|g| g.launch.spec.shutdown_timeout)
            .max()
            .unwrap_or_default()
            + Duration::from_secs(1);
        let deadline = Instant::now() + limit;
        // Also those the other-child callbacks already signalled (pconf's
        // own cleanups run first): left unreaped, they would outlive this
        // generation and the MPM would find them as "long lost" children.
        let mut waiting = live;
        waiting.append(&mut sup.stopped);
        while !waiting.is_empty() && Instant::now() < deadline {
            // SAFETY: reaping our own children without blocking.
            waiting.retain(
                |&pid| unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) } == 0,
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in waiting {
            ::log::warn!("WSGIRS314: daemon process pid {pid} did not stop in time; killing it");
            // SAFETY: as above; blocking reap after SIGKILL is prompt.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        for group in &sup.plan.daemon_groups {
            // SAFETY: closing the parent's copy of the listener.
            unsafe { libc::close(group.launch.listener_fd) };
            let _ = std::fs::remove_file(&group.socket_path);
        }
    });
    ffi::APR_SUCCESS as ffi::apr_status_t
}

/// SIGCHLD's handler in the Apache parent: it does nothing; being caught
/// is what matters (see [`wake_on_child_exit`]). Nothing in it can panic.
extern "C" fn child_exited(_signal: c_int) {}

/// Makes the parent notice a daemon's death at once. The MPM's main loop
/// reaps children (and calls our other-child callback, which starts the
/// replacement) between sleeps of one second, and SIGCHLD, ignored by
/// default, does not end a sleep: a replacement then came up to a second
/// late. A handler ends the sleep (`select()` is never restarted), and with
/// `SA_RESTART` the parent's other blocking calls carry on as before.
/// Apache's children put the default back (`reset_child_exit_signal`).
fn wake_on_child_exit() {
    // SAFETY: installs a handler that does nothing, on the parent's main
    // thread during post_config; the library stays mapped (-z nodelete),
    // so the handler outlives any unload.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = child_exited as *const () as usize;
        action.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGCHLD, &action, std::ptr::null_mut());
    }
}

/// In an Apache child: SIGCHLD back to its default, as Apache left it, so
/// the parent's handler (see [`wake_on_child_exit`]) changes nothing there.
pub fn reset_child_exit_signal() {
    // SAFETY: restores the default disposition.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
}

/// Starts every daemon process of the plan and ties their lifetime to `pconf`.
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
        let processes = if template {
            1
        } else {
            g.launch.spec.processes as usize
        };
        for member in 0..processes {
            // SAFETY: pconf is live (caller's contract).
            let proc_ = unsafe { pool_box(pconf, std::mem::zeroed::<ffi::apr_proc_t>()) };
            slots.push(Slot {
                group,
                member,
                pid: 0,
                proc_,
                started: Instant::now(),
                failures: 0,
                respawn_at: Some(Instant::now()),
                hold_off: Duration::ZERO,
                alive: false,
                template,
            });
        }
    }
    if !slots.is_empty() {
        wake_on_child_exit();
    }
    let mut guard = SUPERVISOR.lock().unwrap_or_else(|p| p.into_inner());
    *guard = Some(Supervisor {
        plan,
        pconf,
        server,
        slots,
        stopping: false,
        stopped: Vec::new(),
    });
    // SAFETY: registered before the children, so it runs after APR's own
    // other-child cleanups (LIFO) and reaps what they signalled.
    unsafe {
        ffi::apr_pool_cleanup_register(
            pconf,
            std::ptr::null(),
            Some(stop_all),
            Some(ffi::apr_pool_cleanup_null),
        );
    }
    if let Some(sup) = guard.as_mut() {
        respawn_due(sup);
    }
}

/// The groups' listener fds, for Apache children to close.
pub fn listener_fds(plan: &ProcessPlan) -> Vec<i32> {
    plan.daemon_groups
        .iter()
        .map(|g: &DaemonGroup| g.launch.listener_fd)
        .collect()
}
