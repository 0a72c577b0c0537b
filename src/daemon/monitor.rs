//! The monitor, a daemon process's main thread once it has started: it
//! applies signals, the request and deadlock timeouts and recycling.
//! Recycling is graceful: the process stops accepting, lets in-flight
//! requests finish within a time bound, and exits; the Apache parent starts
//! a replacement.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use super::state::{now_secs, Daemon};
use crate::interp;
use crate::metrics::Reason;

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

/// Drains within `limit`, runs the application's atexit callbacks when that was clean, and exits.
fn exit_process(daemon: &Daemon, limit: Duration, why: &str) -> ! {
    // Counted as decided, not as done: the drain may take a while.
    if let Some(metrics) = &daemon.launch.metrics {
        if let Some(reason) = Reason::from_shutdown(shutdown_reason(why)) {
            metrics.restart(reason);
        }
    }
    let clean = drain(daemon, limit);
    if !(clean && gil_is_responsive(daemon)) {
        log::warn!(
            "daemon process (wsgi:{}) pid {}: exiting with requests still running (timed out, or longer than {}s)",
            daemon.group(),
            std::process::id(),
            limit.as_secs()
        );
    } else {
        // The application's shutdown callbacks, then (unless
        // WSGIDestroyInterpreter Off) its atexit callbacks, in every
        // interpreter, as mod_wsgi runs them.
        let destroy = !daemon.launch.python.skip_destroy;
        interp::process_stopping(shutdown_reason(why), destroy);
    }
    log::info!(
        "daemon process (wsgi:{}) pid {} exiting: {why}",
        daemon.group(),
        std::process::id()
    );
    // SAFETY: see run().
    unsafe { libc::_exit(0) }
}

/// mod_wsgi's name for why a process stops (`process_stopping`'s
/// `shutdown_reason`), from the reason this module logs.
fn shutdown_reason(why: &str) -> &'static str {
    const REASONS: [(&str, &str); 6] = [
        ("maximum requests", "maximum_requests"),
        ("request timeout", "request_timeout"),
        ("startup timeout", "startup_timeout"),
        ("restart interval", "restart_interval"),
        ("inactivity timeout", "inactivity_timeout"),
        ("script '", "script_reload"),
    ];
    REASONS
        .iter()
        .find(|(prefix, _)| why.starts_with(prefix))
        .map_or("shutdown_signal", |(_, reason)| reason)
}

/// Whether Python has been responsive lately: the monitor only takes the
/// GIL then, so a stuck GIL can never stall signals and timeouts.
fn gil_is_responsive(daemon: &Daemon) -> bool {
    now_secs().saturating_sub(daemon.heartbeat.load(Ordering::Relaxed)) <= 2
}

/// The Python stack of the thread `thread_id`, for the request-timeout log.
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

/// Answers 504 for requests running past `request-timeout`, logs their stack and asks for a restart.
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
            if let Some(metrics) = &daemon.launch.metrics {
                metrics.timeout();
            }
            for line in python_stack(daemon, thread_id) {
                log::error!("{line}");
            }
        }
    }
}

/// Logs, once per request, the Python stack of each request running past
/// `WSGISlowRequests`, with group, pid, thread and URL (mod_wsgi 6's slow
/// request report). The request carries on.
fn check_slow_requests(daemon: &Daemon) {
    let limit = daemon.launch.slow_requests;
    if limit.is_zero() {
        return;
    }
    for slot in &daemon.slots {
        let slow = {
            let guard = slot.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_ref() {
                Some(req)
                    if req.started.elapsed() > limit
                        && !req.reported_slow.swap(true, Ordering::SeqCst) =>
                {
                    Some((req.thread_id, req.started.elapsed(), req.uri.clone()))
                }
                _ => None,
            }
        };
        if let Some((thread_id, ran, uri)) = slow {
            log::warn!(
                "WSGIRS116: (wsgi:{}) slow request: pid {} thread {thread_id}: '{uri}' has run {:.1}s, longer than WSGISlowRequests {}s; Python stack:",
                daemon.group(),
                std::process::id(),
                ran.as_secs_f64(),
                limit.as_secs_f64()
            );
            for line in python_stack(daemon, thread_id) {
                log::warn!("{line}");
            }
        }
    }
}

/// The main thread's loop: signals, parent death, deadlock, timeouts and recycling.
pub(super) fn monitor(daemon: &Arc<Daemon>) -> ! {
    let spec = &daemon.launch.spec;
    let set = signal_set();
    let tick = libc::timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    let mut ticks: u32 = 0;
    loop {
        // The resident memory gauge, about once a second.
        if let Some(metrics) = &daemon.launch.metrics {
            if ticks % 10 == 0 {
                metrics.set_resident(crate::wsgi::memory().0);
            }
            ticks = ticks.wrapping_add(1);
        }
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
            if let Some(metrics) = &daemon.launch.metrics {
                metrics.restart(Reason::Deadlock);
            }
            // SAFETY: the GIL is stuck; nothing more can be run cleanly.
            unsafe { libc::_exit(1) }
        }
        check_request_timeouts(daemon);
        check_slow_requests(daemon);
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

#[cfg(test)]
mod tests {
    use super::shutdown_reason;

    #[test]
    fn shutdown_reasons_use_mod_wsgi_names() {
        for (why, reason) in [
            ("maximum requests (5) reached", "maximum_requests"),
            ("request timeout", "request_timeout"),
            (
                "startup timeout: the application did not load",
                "startup_timeout",
            ),
            ("restart interval reached", "restart_interval"),
            ("inactivity timeout reached", "inactivity_timeout"),
            ("script '/srv/app.wsgi' changed", "script_reload"),
            ("Apache asked daemon processes to stop", "shutdown_signal"),
        ] {
            assert_eq!(shutdown_reason(why), reason, "{why}");
        }
    }
}
