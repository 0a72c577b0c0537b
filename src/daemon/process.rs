//! The life of one daemon process, from just after fork to exit: privilege
//! drop, Python start-up, worker threads serving connections (new ones from
//! the group socket, persistent ones as their next request arrives), and
//! the monitor (the main thread) that applies signals, timeouts and
//! recycling. Recycling is graceful: the process stops accepting, lets
//! in-flight requests finish within a time bound, and exits; the Apache
//! parent starts a replacement.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;

use super::connection::{self, ActiveRequest, After, Scratch};
use super::poller::{Poller, Ready};
use super::privileges::become_identity;
use super::DaemonLaunch;
use crate::interp::{self, ScriptCache};

/// Whether requests may still be served, and how many are in flight.
#[derive(Default)]
struct Gate {
    closing: bool,
    active: usize,
}

/// State shared by the workers and the monitor of one daemon process.
pub struct Daemon {
    pub launch: DaemonLaunch,
    pub scripts: ScriptCache,
    gate: Mutex<Gate>,
    idle: Condvar,
    /// Set once the process should be replaced (script changed, limits):
    /// our client is then told to retry elsewhere.
    restart_reason: Mutex<Option<String>>,
    pub restarting: AtomicBool,
    /// An application has loaded in this process; until then failed loads
    /// count against `startup-timeout`.
    pub app_loaded: AtomicBool,
    pub load_failed: AtomicBool,
    served: AtomicU64,
    /// Open client connections, idle ones included.
    connections: AtomicUsize,
    poller: Poller,
    last_activity: AtomicU64,
    heartbeat: AtomicU64,
    pub slots: Vec<Mutex<Option<ActiveRequest>>>,
    started: Instant,
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Daemon {
    /// Asks for a graceful replacement of this process.
    pub fn request_restart(&self, reason: &str) {
        let mut r = self
            .restart_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            log::info!(
                "daemon process (wsgi:{}) pid {} will restart: {reason}",
                self.launch.spec.name,
                std::process::id()
            );
            *r = Some(reason.to_owned());
            self.restarting.store(true, Ordering::SeqCst);
        }
    }

    pub fn group(&self) -> &str {
        &self.launch.spec.name
    }

    /// Counts a request as it is taken; false when this process must not
    /// serve it (it is restarting, or maximum-requests is reached). Counted
    /// when taken, not when finished: the client's next request may arrive
    /// before this one's worker has finished its bookkeeping, and must
    /// already see the restart (maximum-requests is exact).
    pub fn admit(&self) -> bool {
        let n = self.served.fetch_add(1, Ordering::SeqCst) + 1;
        let max = self.launch.spec.maximum_requests;
        let admitted = !self.restarting.load(Ordering::SeqCst) && (max == 0 || n <= max);
        if max > 0 && n == max {
            self.request_restart(&format!("maximum requests ({max}) reached"));
        }
        admitted
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Runs a daemon process, after waiting `hold_off` (the supervisor's
/// back-off); never returns.
pub fn run(launch: DaemonLaunch, hold_off: Duration) -> ! {
    let name = launch.spec.name.clone();
    let code = match start(launch, hold_off) {
        Ok(()) => 0,
        Err(msg) => {
            log::error!(
                "daemon process (wsgi:{name}) pid {}: {msg}",
                std::process::id()
            );
            1
        }
    };
    // SAFETY: _exit skips atexit handlers and stdio flushing inherited from
    // the Apache parent, which are not ours to run.
    unsafe { libc::_exit(code) }
}

/// The signals that ask a daemon process to stop. The supervisor keeps them
/// blocked across fork, so one sent before the process is ready waits for
/// it instead of running Apache's inherited handlers.
pub fn signal_set() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local value.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

fn apply_limits(launch: &DaemonLaunch) {
    let spec = &launch.spec;
    let set = |resource, value: u64| {
        let lim = libc::rlimit {
            rlim_cur: value as libc::rlim_t,
            rlim_max: value as libc::rlim_t,
        };
        // SAFETY: setrlimit reads the struct we pass.
        if unsafe { libc::setrlimit(resource, &lim) } != 0 {
            log::warn!(
                "(wsgi:{}) setrlimit failed: {}",
                spec.name,
                std::io::Error::last_os_error()
            );
        }
    };
    if spec.memory_limit > 0 {
        set(libc::RLIMIT_DATA, spec.memory_limit);
    }
    if spec.virtual_memory_limit > 0 {
        set(libc::RLIMIT_AS, spec.virtual_memory_limit);
    }
    if !spec.cpu_time_limit.is_zero() {
        set(libc::RLIMIT_CPU, spec.cpu_time_limit.as_secs().max(1));
    }
    if spec.cpu_priority != 0 {
        // SAFETY: plain syscall.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, spec.cpu_priority) };
    }
}

/// Waits out the back-off before starting, as a process that is already
/// there: Apache stopping (SIGTERM from the supervisor) or dying (the
/// parent-death signal) ends the wait and the process at once.
fn hold_off_start(launch: &DaemonLaunch, hold_off: Duration) {
    if hold_off.is_zero() {
        return;
    }
    let set = signal_set();
    let wait = libc::timespec {
        tv_sec: hold_off.as_secs() as libc::time_t,
        tv_nsec: hold_off.subsec_nanos() as libc::c_long,
    };
    // SAFETY: prctl with integer arguments; getppid cannot fail; the
    // signals waited for are blocked (see start), so they stay pending.
    let sig = unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if libc::getppid() != launch.parent_pid {
            libc::_exit(0);
        }
        libc::sigtimedwait(&set, std::ptr::null_mut(), &wait)
    };
    if sig > 0 {
        // SAFETY: nothing has started yet; see run().
        unsafe { libc::_exit(0) }
    }
}

fn start(launch: DaemonLaunch, hold_off: Duration) -> Result<(), String> {
    // Signals become events the monitor waits for; a closed client must be an
    // EPIPE error, not a dead process.
    // SAFETY: process-wide signal set-up while still single-threaded.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        let set = signal_set();
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
    hold_off_start(&launch, hold_off);
    apply_limits(&launch);
    if let Some(root) = &launch.spec.chroot {
        let c = std::ffi::CString::new(root.as_str()).map_err(|_| "bad chroot path".to_string())?;
        // SAFETY: plain syscalls with a NUL-terminated path.
        if unsafe { libc::chroot(c.as_ptr()) } != 0 || std::env::set_current_dir("/").is_err() {
            return Err(format!(
                "chroot({root}) failed: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    become_identity(&launch.identity, launch.home.as_deref(), launch.spec.umask)
        .map_err(|e| format!("cannot switch to the configured user: {e}"))?;
    // Only now: a credential change clears the parent-death signal.
    // SAFETY: prctl with integer arguments; getppid cannot fail.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if libc::getppid() != launch.parent_pid {
            return Err("the Apache parent exited during start-up".into());
        }
    }
    if let Some(lang) = &launch.spec.lang {
        std::env::set_var("LANG", lang);
    }
    if let Some(locale) = &launch.spec.locale {
        std::env::set_var("LC_ALL", locale);
        if let Ok(c) = std::ffi::CString::new(locale.as_str()) {
            // SAFETY: single-threaded; setlocale copies the name.
            unsafe { libc::setlocale(libc::LC_ALL, c.as_ptr()) };
        }
    }
    if let Some(eggs) = &launch.spec.python_eggs {
        std::env::set_var("PYTHON_EGG_CACHE", eggs);
    }

    interp::initialize(&launch.python).map_err(|e| e.to_string())?;
    let threads = launch.spec.threads as usize;
    let poller =
        Poller::new(launch.listener_fd).map_err(|e| format!("cannot create epoll set: {e}"))?;
    let daemon = Arc::new(Daemon {
        scripts: ScriptCache::new(),
        gate: Mutex::new(Gate::default()),
        idle: Condvar::new(),
        restart_reason: Mutex::new(None),
        restarting: AtomicBool::new(false),
        app_loaded: AtomicBool::new(false),
        load_failed: AtomicBool::new(false),
        served: AtomicU64::new(0),
        connections: AtomicUsize::new(0),
        poller,
        last_activity: AtomicU64::new(now_secs()),
        heartbeat: AtomicU64::new(now_secs()),
        slots: (0..threads).map(|_| Mutex::new(None)).collect(),
        started: Instant::now(),
        launch,
    });
    interp::with_python(|py| {
        if let Some(interval) = daemon.launch.spec.switch_interval {
            let _ = py
                .import("sys")
                .and_then(|sys| sys.call_method1("setswitchinterval", (interval,)));
        }
        for key in &daemon.launch.preloads {
            if let Err(e) = daemon.scripts.module(py, key, None, false) {
                daemon.load_failed.store(true, Ordering::SeqCst);
                log::error!("(wsgi:{}) failed to preload script: {e}", daemon.group());
                if let Some(err) = e.python_error() {
                    for line in crate::wsgi::format_exception(py, err) {
                        log::error!("{line}");
                    }
                }
            }
        }
    });
    log::info!(
        "daemon process (wsgi:{}) pid {} started with {threads} thread(s)",
        daemon.group(),
        std::process::id()
    );

    spawn_heartbeat(&daemon);
    for index in 0..threads {
        let d = daemon.clone();
        let mut builder = std::thread::Builder::new().name(format!("wsgi-{index}"));
        if daemon.launch.spec.stack_size > 0 {
            builder = builder.stack_size(daemon.launch.spec.stack_size as usize);
        }
        builder
            .spawn(move || worker(&d, index))
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
    }
    monitor(&daemon)
}

/// A Python-side tick: when it stops advancing, the GIL is stuck.
fn spawn_heartbeat(daemon: &Arc<Daemon>) {
    let d = daemon.clone();
    let spawned = std::thread::Builder::new()
        .name("wsgi-heartbeat".into())
        .spawn(move || loop {
            interp::with_python(|_py| d.heartbeat.store(now_secs(), Ordering::Relaxed));
            std::thread::sleep(Duration::from_secs(1));
        });
    if let Err(e) = spawned {
        log::error!(
            "(wsgi:{}) cannot start the heartbeat thread: {e}",
            daemon.group()
        );
    }
}

fn worker(daemon: &Arc<Daemon>, index: usize) {
    let mut scratch = Scratch::default();
    loop {
        let Some(event) = daemon.poller.wait(1000) else {
            continue;
        };
        // Taking work and counting it happen under the lock drain() closes,
        // so it never sees "idle" while a connection is half-accepted.
        let mut gate = daemon.gate.lock().unwrap_or_else(|p| p.into_inner());
        let accepting = !gate.closing;
        let (conn, known) = match event {
            Ready::Listener => {
                if !accepting {
                    continue;
                }
                // SAFETY: accept4 on the inherited listener; it is
                // non-blocking, so EAGAIN (another process won) returns at once.
                let fd = unsafe {
                    libc::accept4(
                        daemon.launch.listener_fd,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        libc::SOCK_CLOEXEC,
                    )
                };
                let err = std::io::Error::last_os_error();
                daemon.poller.rearm_listener();
                if fd < 0 {
                    drop(gate);
                    if err.kind() != std::io::ErrorKind::WouldBlock {
                        // EMFILE and friends: the listener stays readable.
                        log::warn!("(wsgi:{}) accept failed: {err}", daemon.group());
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    continue;
                }
                daemon.connections.fetch_add(1, Ordering::SeqCst);
                // SAFETY: accept4 returned a fresh descriptor we now own.
                (unsafe { OwnedFd::from_raw_fd(fd) }, false)
            }
            // SAFETY: parked connections belong to the epoll set until their
            // one-shot event hands them to exactly one worker: this one.
            // While closing, its request is answered "retry elsewhere".
            Ready::Connection(fd) => (unsafe { OwnedFd::from_raw_fd(fd) }, true),
        };
        gate.active += 1;
        drop(gate);
        let mut stream = UnixStream::from(conn);
        if !known {
            let timeout = Some(daemon.launch.socket_timeout).filter(|t| !t.is_zero());
            let _ = stream.set_read_timeout(timeout);
            let _ = stream.set_write_timeout(timeout);
        }
        daemon.last_activity.store(now_secs(), Ordering::Relaxed);
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            connection::serve(daemon, index, &mut stream, &mut scratch, accepting)
        }));
        let after = served.unwrap_or_else(|_| {
            log::error!(
                "(wsgi:{}) internal error while serving a request",
                daemon.group()
            );
            After::Close
        });
        // Before the descriptor is closed or parked: the slot refers to it.
        *daemon.slots[index]
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        daemon.last_activity.store(now_secs(), Ordering::Relaxed);
        let mut gate = daemon.gate.lock().unwrap_or_else(|p| p.into_inner());
        // A process on its way out closes rather than parks: the client sees
        // that before its next request, instead of a reset after it.
        let parked = after == After::Keep
            && !gate.closing
            && daemon.poller.park(stream.into(), known).is_ok();
        if !parked {
            daemon.connections.fetch_sub(1, Ordering::SeqCst);
        }
        gate.active -= 1;
        daemon.idle.notify_all();
    }
}

/// Requests the monitor has already answered 504 for running too long.
fn timed_out_requests(daemon: &Daemon) -> usize {
    daemon
        .slots
        .iter()
        .filter(|slot| {
            slot.lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_some_and(|req| req.timed_out.load(Ordering::SeqCst))
        })
        .count()
}

/// Stops taking connections and waits up to `limit` for in-flight ones,
/// except those already answered 504 by the request timeout: they are
/// stuck, and waiting for them would only keep their replacement from
/// starting. True when nothing at all is left running.
fn drain(daemon: &Daemon, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut gate = daemon.gate.lock().unwrap_or_else(|p| p.into_inner());
    gate.closing = true;
    daemon.poller.stop_listening();
    while gate.active > 0 {
        let now = Instant::now();
        if now >= deadline || gate.active <= timed_out_requests(daemon) {
            return false;
        }
        // Woken when a request ends; the short bound notices timeouts.
        let wait = (deadline - now).min(Duration::from_millis(100));
        gate = daemon
            .idle
            .wait_timeout(gate, wait)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    true
}

fn exit_process(daemon: &Daemon, limit: Duration, why: &str) -> ! {
    let clean = drain(daemon, limit);
    if clean && gil_is_responsive(daemon) {
        // atexit callbacks of the application, as mod_wsgi runs them.
        interp::with_python(|py| {
            if let Err(e) = py
                .import("atexit")
                .and_then(|m| m.call_method0("_run_exitfuncs"))
            {
                log::error!("(wsgi:{}) atexit callback failed: {e}", daemon.group());
            }
        });
    } else {
        log::warn!(
            "daemon process (wsgi:{}) pid {}: exiting with requests still running (timed out, or longer than {}s)",
            daemon.group(),
            std::process::id(),
            limit.as_secs()
        );
    }
    log::info!(
        "daemon process (wsgi:{}) pid {} exiting: {why}",
        daemon.group(),
        std::process::id()
    );
    // SAFETY: see run().
    unsafe { libc::_exit(0) }
}

/// Whether Python has been responsive lately: the monitor only takes the
/// GIL then, so a stuck GIL can never stall signals and timeouts.
fn gil_is_responsive(daemon: &Daemon) -> bool {
    now_secs().saturating_sub(daemon.heartbeat.load(Ordering::Relaxed)) <= 2
}

fn python_stack(daemon: &Daemon, thread_id: u64) -> Vec<String> {
    if !gil_is_responsive(daemon) {
        return vec!["(the GIL is held elsewhere; stack unavailable)".into()];
    }
    interp::with_python(|py| {
        let run = || -> PyResult<Vec<String>> {
            let frames = py.import("sys")?.call_method0("_current_frames")?;
            let Some(frame) = frames.get_item(thread_id).ok() else {
                return Ok(vec!["(no Python frame for the thread)".into()]);
            };
            let lines: Vec<String> = py
                .import("traceback")?
                .call_method1("format_stack", (frame,))?
                .extract()?;
            Ok(lines
                .iter()
                .flat_map(|l| {
                    l.trim_end()
                        .split('\n')
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .collect())
        };
        run().unwrap_or_else(|e| vec![format!("(stack unavailable: {e})")])
    })
}

fn check_request_timeouts(daemon: &Daemon) {
    let limit = daemon.launch.spec.request_timeout;
    if limit.is_zero() {
        return;
    }
    for slot in &daemon.slots {
        let stuck = {
            let guard = slot.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_ref() {
                Some(req)
                    if req.started.elapsed() > limit && !req.timed_out.load(Ordering::SeqCst) =>
                {
                    req.timed_out.store(true, Ordering::SeqCst);
                    Some((req.thread_id, req.answer_timeout(), req.uri.clone()))
                }
                _ => None,
            }
        };
        if let Some((thread_id, answered, uri)) = stuck {
            log::error!(
                "(wsgi:{}) request timeout: '{uri}' has run longer than {}s{}; Python stack of the stuck thread:",
                daemon.group(),
                limit.as_secs(),
                if answered { ", answered 504" } else { "" }
            );
            daemon.request_restart("request timeout");
            for line in python_stack(daemon, thread_id) {
                log::error!("{line}");
            }
        }
    }
}

fn monitor(daemon: &Arc<Daemon>) -> ! {
    let spec = &daemon.launch.spec;
    let set = signal_set();
    let tick = libc::timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    loop {
        // SAFETY: waits for one of our blocked signals, or the tick.
        let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &tick) };
        if sig > 0 {
            exit_process(
                daemon,
                spec.shutdown_timeout,
                "Apache asked daemon processes to stop",
            );
        }
        // SAFETY: getppid cannot fail.
        if unsafe { libc::getppid() } != daemon.launch.parent_pid {
            exit_process(daemon, spec.shutdown_timeout, "the Apache parent has gone");
        }
        let now = now_secs();
        if !spec.deadlock_timeout.is_zero()
            && now.saturating_sub(daemon.heartbeat.load(Ordering::Relaxed))
                > spec.deadlock_timeout.as_secs()
        {
            log::error!(
                "daemon process (wsgi:{}) pid {}: Python interpreter deadlocked for more than {}s, restarting",
                daemon.group(),
                std::process::id(),
                spec.deadlock_timeout.as_secs()
            );
            // SAFETY: the GIL is stuck; nothing more can be run cleanly.
            unsafe { libc::_exit(1) }
        }
        check_request_timeouts(daemon);
        // A process whose application keeps failing to load is replaced
        // after startup-timeout, in case the cause was passing (mod_wsgi).
        if !spec.startup_timeout.is_zero()
            && daemon.load_failed.load(Ordering::SeqCst)
            && !daemon.app_loaded.load(Ordering::SeqCst)
            && daemon.started.elapsed() > spec.startup_timeout
        {
            daemon.request_restart("startup timeout: the application did not load");
        }
        if !spec.restart_interval.is_zero() && daemon.started.elapsed() > spec.restart_interval {
            daemon.request_restart("restart interval reached");
        }
        if !spec.inactivity_timeout.is_zero() {
            let active = daemon.gate.lock().unwrap_or_else(|p| p.into_inner()).active;
            let idle_for = now.saturating_sub(daemon.last_activity.load(Ordering::Relaxed));
            if active == 0 && idle_for > spec.inactivity_timeout.as_secs() {
                daemon.request_restart("inactivity timeout reached");
            }
        }
        if daemon.restarting.load(Ordering::SeqCst) {
            let reason = daemon
                .restart_reason
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default();
            exit_process(daemon, spec.graceful_timeout, &reason);
        }
    }
}

/// Answer states shared between a request's backend and the monitor, so a
/// timed-out request gets exactly one response.
pub const ANSWER_NONE: u8 = 0;
pub const ANSWER_APP: u8 = 1;
pub const ANSWER_MONITOR: u8 = 2;
/// The response ended and the connection stays open for the next request.
pub const ANSWER_KEPT: u8 = 3;

pub type AnswerState = Arc<AtomicU8>;
