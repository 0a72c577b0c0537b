//! The life of one daemon process, from just after fork to exit: privilege
//! drop, Python start-up, and worker threads serving connections (new ones
//! from the group socket, persistent ones as their next request arrives).
//! The main thread then becomes the [`monitor`](super::monitor).

use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rustix::net::SocketFlags;
use rustix::process::{Resource, Rlimit};

use super::connection::{self, After};
use super::health::SlotState;
use super::intake::{self, Conn, Intake, Scratch, Stage};
use super::monitor::{monitor, signal_set, succession_signal_set};
use super::poller::{Poller, Ready};
use super::privileges::become_identity;
use super::state::{now_secs, Daemon};
use super::succession::Link;
use super::DaemonLaunch;
use crate::interp::{self, ScriptCache, ScriptKey};
use crate::sys::{process, signals};
use crate::wsgi::log_script_error;

/// Runs process `slot` of its group, after waiting `hold_off` (the
/// supervisor's back-off); never returns. A start that fails leaves its
/// cause in the group's health records, for the Apache children to answer
/// with at once.
pub fn run(launch: DaemonLaunch, hold_off: Duration, slot: usize) -> ! {
    let name = launch.spec.name.clone();
    let health = launch.health.clone();
    let code = match start(launch, hold_off, slot) {
        Ok(()) => 0,
        Err(msg) => {
            health.fail(slot, &msg);
            log::error!(
                "WSGIRS330: daemon process (wsgi:{name}) pid {}: {msg}",
                std::process::id()
            );
            1
        }
    };
    process::exit_now(code)
}

/// Applies the group's resource limits and CPU priority.
fn apply_limits(launch: &DaemonLaunch) {
    let spec = &launch.spec;
    let set = |resource, value: u64| {
        let lim = Rlimit {
            current: Some(value),
            maximum: Some(value),
        };
        if let Err(e) = rustix::process::setrlimit(resource, lim) {
            log::warn!(
                "WSGIRS331: (wsgi:{}) setrlimit failed: {}",
                spec.name,
                std::io::Error::from(e)
            );
        }
    };
    if spec.memory_limit > 0 {
        set(Resource::Data, spec.memory_limit);
    }
    if spec.virtual_memory_limit > 0 {
        set(Resource::As, spec.virtual_memory_limit);
    }
    if !spec.cpu_time_limit.is_zero() {
        set(Resource::Cpu, spec.cpu_time_limit.as_secs().max(1));
    }
    if spec.cpu_priority != 0 {
        let _ = rustix::process::setpriority_process(None, spec.cpu_priority);
    }
}

/// Waits out the back-off before starting, as a process that is already
/// there: Apache stopping (SIGTERM from the supervisor) or dying (the
/// parent-death signal) ends the wait and the process at once.
fn hold_off_start(launch: &DaemonLaunch, hold_off: Duration) {
    if hold_off.is_zero() {
        return;
    }
    process::terminate_with_parent();
    if process::parent_pid() != launch.parent_pid {
        process::exit_now(0);
    }
    // The signals waited for are blocked (see prepare), so they stay
    // pending until taken here.
    if signals::wait(&signal_set(), hold_off).is_some() {
        // Nothing has started yet.
        process::exit_now(0)
    }
}

/// Sets the process up, starts its workers and becomes the monitor; returns only on a start-up failure.
fn start(launch: DaemonLaunch, hold_off: Duration, slot: usize) -> Result<(), String> {
    prepare(&launch, hold_off, &[slot])?;
    serve(launch, slot, ScriptCache::new(), false)
}

/// Everything up to a started Python, for a process of the group or its
/// template: signals, the back-off, limits, chroot, the user switch, the
/// locale and Python. `slots`: the health records this start tries for.
pub(super) fn prepare(
    launch: &DaemonLaunch,
    hold_off: Duration,
    slots: &[usize],
) -> Result<(), String> {
    // Signals become events the monitor waits for; a closed client must be an
    // EPIPE error, not a dead process.
    // Process-wide, while still single-threaded.
    signals::ignore(libc::SIGPIPE);
    signals::restore_default(libc::SIGCHLD);
    signals::block_only(&signal_set());
    hold_off_start(launch, hold_off);
    for &slot in slots {
        launch.health.begin_retry(slot);
    }
    apply_limits(launch);
    if let Some(root) = &launch.spec.chroot {
        let c = std::ffi::CString::new(root.as_str()).map_err(|_| "bad chroot path".to_string())?;
        let entered = rustix::process::chroot(&c)
            .map_err(std::io::Error::from)
            .and_then(|()| std::env::set_current_dir("/"));
        if let Err(e) = entered {
            return Err(format!("chroot({root}) failed: {e}"));
        }
    }
    become_identity(&launch.identity, launch.home.as_deref(), launch.spec.umask)
        .map_err(|e| format!("cannot switch to the configured user: {e}"))?;
    // Only now: a credential change clears the parent-death signal.
    process::terminate_with_parent();
    if process::parent_pid() != launch.parent_pid {
        return Err("the Apache parent exited during start-up".into());
    }
    if let Some(lang) = &launch.spec.lang {
        std::env::set_var("LANG", lang);
    }
    if let Some(locale) = &launch.spec.locale {
        std::env::set_var("LC_ALL", locale);
        if let Ok(c) = std::ffi::CString::new(locale.as_str()) {
            // Single-threaded still; a locale the C library lacks is left
            // to Python to complain about, as before.
            let _ = process::set_locale(&c);
        }
    }
    interp::initialize(&launch.python).map_err(|e| e.to_string())
}

/// Loads the group's start-up scripts into `scripts`: those whose
/// application group `wanted` accepts. False when one failed (logged with
/// its traceback).
pub(super) fn preload(
    launch: &DaemonLaunch,
    scripts: &ScriptCache,
    wanted: impl Fn(&str) -> bool,
) -> bool {
    let mut ok = true;
    let name = &launch.spec.name;
    for key in launch.preloads.iter().filter(|k| wanted(&k.group)) {
        // Each script loads in the interpreter of its application group.
        let loaded = interp::with_group(&key.group, |py| {
            scripts.module(py, key, None, false).map(drop).map_err(|e| {
                let message = format!("WSGIRS332: (wsgi:{name}) failed to preload script: {e}");
                log_script_error(py, &message, e.python_error(), |line| log::error!("{line}"));
            })
        });
        match loaded {
            Ok(Ok(())) => continue,
            Ok(Err(())) => {}
            Err(e) => log::error!("WSGIRS332: (wsgi:{name}) failed to preload script: {e}"),
        }
        ok = false;
    }
    ok
}

/// Serves as process `slot` of the group from a started Python: its
/// start-up scripts not yet in `scripts` are loaded (`load_failed`: one
/// already failed), its workers start, and the main thread becomes the
/// monitor. A successor forked by a template waits for the template's
/// signal before its workers take connections.
pub(super) fn serve(
    launch: DaemonLaunch,
    slot: usize,
    scripts: ScriptCache,
    load_failed: bool,
) -> Result<(), String> {
    let threads = launch.spec.threads as usize;
    let poller =
        Poller::new(launch.listener_fd).map_err(|e| format!("cannot create epoll set: {e}"))?;
    let daemon = Arc::new(Daemon::new(launch, poller, threads, scripts));
    if let Some(metrics) = &daemon.launch.metrics {
        metrics.set_threads(threads);
    }
    // Those a template loaded are in the cache already (it only loads the
    // main interpreter's: sub-interpreters do not survive a fork).
    let forked = daemon.launch.succession.is_some();
    let ok = preload(&daemon.launch, &daemon.scripts, |group| {
        !(forked && group.is_empty())
    });
    if load_failed || !ok {
        daemon.load_failed.store(true, Ordering::SeqCst);
    }
    // A successor loads what its predecessor serves before it takes work.
    if let Some((group, path)) = daemon.launch.relay.as_ref().and_then(|r| r.inherited()) {
        warm_up(&daemon, ScriptKey { group, path });
    }
    super::asgi::start_lifespans(&daemon);
    log::info!(
        "WSGIRS333: daemon process (wsgi:{}) pid {} started with {threads} thread(s)",
        daemon.group(),
        std::process::id()
    );

    spawn_heartbeat(&daemon);
    if let Some(link) = daemon.launch.succession.as_deref().filter(|l| l.standby) {
        wait_for_turn(&daemon, link);
    }
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
    // Requests that came meanwhile waited in the listen backlog, as they
    // would for a busy process; from now on none is refused.
    match &daemon.launch.relay {
        Some(relay) => {
            // Logged first: the parent may start the group's next
            // successor as soon as this one is marked ready.
            let old = relay.predecessor();
            if let Some(old) = old {
                log::info!(
                    "WSGIRS434: daemon process (wsgi:{}) pid {} serves in place of pid {old}",
                    daemon.group(),
                    std::process::id()
                );
            }
            relay.serving(old.is_some());
        }
        None => daemon.launch.health.set(slot, SlotState::Ready),
    }
    monitor(&daemon)
}

/// A successor started by the Apache parent loads the script its
/// predecessor loaded first before it says it serves, so the requests it
/// then takes do not wait for the application's imports (its predecessor
/// serves meanwhile); not when it replaces an idle process
/// (inactivity-timeout, whose point is to free that memory). A failure is
/// only noted: requests report it as usual.
fn warm_up(daemon: &Daemon, key: ScriptKey) {
    let loaded = interp::with_group(&key.group, |py| {
        daemon
            .scripts
            .module(py, &key, None, false)
            .map(drop)
            .map_err(|e| e.to_string())
    });
    match loaded {
        Ok(Ok(())) => daemon.loaded(&key),
        Ok(Err(e)) => log::debug!(
            "WSGIRS437: (wsgi:{}) successor pid {}: could not load '{}' ahead of serving: {e}",
            daemon.group(),
            std::process::id(),
            key.path.display()
        ),
        Err(e) => log::debug!(
            "WSGIRS437: (wsgi:{}) successor pid {}: could not load '{}' ahead of serving: {e}",
            daemon.group(),
            std::process::id(),
            key.path.display()
        ),
    }
}

/// A successor tells its template it is ready and waits for the signal to
/// serve; a stop signal, or the template going away, ends it instead.
fn wait_for_turn(daemon: &Daemon, link: &Link) {
    link.standing_by();
    let set = succession_signal_set();
    loop {
        let sig = signals::wait(&set, Duration::from_secs(1));
        if sig == Some(libc::SIGUSR2) {
            return;
        }
        if sig.is_some() || process::parent_pid() != daemon.launch.parent_pid {
            // Nothing has been served.
            process::exit_now(0)
        }
    }
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
            "WSGIRS334: (wsgi:{}) cannot start the heartbeat thread: {e}",
            daemon.group()
        );
    }
}

/// A worker thread: takes connections with data waiting (new or parked),
/// receives what has arrived, and serves the request once it is complete.
fn worker(daemon: &Arc<Daemon>, index: usize) {
    let mut scratch = Scratch::default();
    let limits = daemon.intake_limits();
    loop {
        let Some(event) = daemon.poller.wait(1000) else {
            // Idle: sweep too, for while the monitor is busy draining.
            daemon.close_stalled();
            continue;
        };
        // Taking work and counting it happen under the lock drain() closes,
        // so it never sees "idle" while a connection is half-accepted.
        let mut gate = daemon.gate.lock().unwrap_or_else(|p| p.into_inner());
        let accepting = !gate.closing;
        let mut conn = match event {
            Ready::Listener => {
                if !accepting {
                    continue;
                }
                match accept(daemon) {
                    Ok(stream) => Conn::accepted(stream, &limits),
                    Err(pause) => {
                        drop(gate);
                        if pause {
                            // EMFILE and friends: the listener stays readable.
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        continue;
                    }
                }
            }
            Ready::Connection(conn) => {
                if !conn.receiving() && !accepting {
                    // Closing: a kept connection is closed with its request
                    // unread, which our client sees as a stale kept
                    // connection and retries at once elsewhere. Reading it
                    // to answer "retry elsewhere" would race the exit: a
                    // request read just before it would be lost (502). One
                    // already receiving a request counts as in flight, so
                    // the drain waits for it to be answered.
                    if conn.counted {
                        daemon.connections.fetch_sub(1, Ordering::SeqCst);
                    }
                    continue;
                }
                if conn.receiving() {
                    // Counted since its request began arriving.
                    gate.active -= 1;
                }
                conn
            }
        };
        gate.active += 1;
        drop(gate);
        let head = match intake::receive(&mut conn, &mut scratch, &limits) {
            Intake::Ready(head) => head,
            Intake::More => {
                put_back(daemon, conn);
                continue;
            }
            Intake::Closed(why) => {
                match why {
                    None => {}
                    Some(e) if conn.stage() == Stage::Body => log::debug!(
                        "WSGIRS346: (wsgi:{}) unreadable request body: {e}",
                        daemon.group()
                    ),
                    Some(e) => log::debug!(
                        "WSGIRS342: (wsgi:{}) unreadable request: {e}",
                        daemon.group()
                    ),
                }
                close(daemon, conn);
                continue;
            }
        };
        if !conn.counted {
            conn.counted = true;
            daemon.connections.fetch_add(1, Ordering::SeqCst);
        }
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            connection::serve(daemon, index, &mut conn.stream, head, &scratch, accepting)
        }));
        scratch.relax();
        let after = served.unwrap_or_else(|_| {
            log::error!(
                "WSGIRS336: (wsgi:{}) internal error while serving a request",
                daemon.group()
            );
            After::Close
        });
        // Before the descriptor is closed or parked: the slot refers to it.
        *daemon.slots[index]
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        match after {
            After::Keep => {
                conn.rest();
                put_back(daemon, conn);
            }
            After::Close => close(daemon, conn),
            After::Handed => {
                // The ASGI hand-over owns the descriptor now (daemon::asgi),
                // and parks or closes it when its loop is done.
                let _ = conn.stream.into_raw_fd();
                let mut gate = daemon.gate.lock().unwrap_or_else(|p| p.into_inner());
                gate.active -= 1;
                daemon.idle.notify_all();
            }
        }
    }
}

/// Accepts a connecting client, with the socket timeout set; `Err(false)`
/// when another process won it, `Err(true)` when accept failed (logged) and
/// the caller should pause before trying again.
fn accept(daemon: &Daemon) -> Result<UnixStream, bool> {
    // The listener is non-blocking, so EAGAIN (another process won)
    // returns at once.
    let accepted = rustix::net::accept_with(daemon.poller.listener(), SocketFlags::CLOEXEC);
    daemon.poller.rearm_listener();
    let stream = match accepted {
        Ok(fd) => UnixStream::from(fd),
        Err(e) => {
            let err = std::io::Error::from(e);
            let failed = err.kind() != std::io::ErrorKind::WouldBlock;
            if failed {
                log::warn!("WSGIRS335: (wsgi:{}) accept failed: {err}", daemon.group());
            }
            return Err(failed);
        }
    };
    let timeout = |t: Duration| Some(t).filter(|t| !t.is_zero());
    let _ = stream.set_read_timeout(timeout(daemon.launch.socket_timeout));
    // Writes here are the response (and our small control bytes).
    let _ = stream.set_write_timeout(timeout(daemon.launch.response_timeout));
    set_buffer_sizes(daemon, &stream);
    Ok(stream)
}

/// `send-buffer-size=` and `receive-buffer-size=` on a connection just
/// accepted (one call each, only when given). mod_wsgi sets them on the
/// listening socket, but Linux gives an accepted UNIX socket the system's
/// sizes, not its listener's: here they go on the socket that carries the
/// response (send) and the request (receive). A refusal is said once per
/// process; the connection keeps the system's size.
fn set_buffer_sizes(daemon: &Daemon, stream: &UnixStream) {
    use rustix::net::sockopt::{set_socket_recv_buffer_size, set_socket_send_buffer_size};
    use std::sync::atomic::AtomicBool;
    static WARNED: AtomicBool = AtomicBool::new(false);
    let spec = &daemon.launch.spec;
    let sizes = [
        (
            "send",
            spec.send_buffer_size,
            set_socket_send_buffer_size as fn(_, _) -> _,
        ),
        (
            "receive",
            spec.receive_buffer_size,
            set_socket_recv_buffer_size,
        ),
    ];
    for (which, size, set) in sizes {
        if size == 0 {
            continue;
        }
        if let Err(e) = set(stream, size as usize) {
            if !WARNED.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "WSGIRS605: (wsgi:{}) cannot set {which}-buffer-size={size} on a daemon connection, \
                     the system's size is used: {e}",
                    daemon.group()
                );
            }
        }
    }
}

/// Hands a connection back to the epoll set until more arrives. One
/// receiving a request stays counted as in flight; an idle kept one does
/// not, and a process on its way out closes it instead, so the client sees
/// that before its next request rather than a reset after it.
fn put_back(daemon: &Daemon, mut conn: Conn) {
    let receiving = conn.receiving();
    let known = std::mem::replace(&mut conn.known, true);
    let mut gate = daemon.gate.lock().unwrap_or_else(|p| p.into_inner());
    let refused = if gate.closing && !receiving {
        Some(conn)
    } else {
        daemon.poller.park(conn, known).err()
    };
    if let Some(conn) = refused {
        if conn.counted {
            daemon.connections.fetch_sub(1, Ordering::SeqCst);
        }
        gate.active -= 1;
    } else if !receiving {
        gate.active -= 1;
    }
    daemon.idle.notify_all();
}

/// Closes a connection the worker holds.
fn close(daemon: &Daemon, conn: Conn) {
    if conn.counted {
        daemon.connections.fetch_sub(1, Ordering::SeqCst);
    }
    drop(conn);
    let mut gate = daemon.gate.lock().unwrap_or_else(|p| p.into_inner());
    gate.active -= 1;
    daemon.idle.notify_all();
}
