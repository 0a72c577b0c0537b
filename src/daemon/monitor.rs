//! The monitor, a daemon process's main thread once it has started: it
//! applies signals, the request and deadlock timeouts and recycling.
//! Recycling is graceful: the process stops accepting, lets in-flight
//! requests finish within a time bound, and exits. For most reasons it
//! first serves on until its successor serves (started by its template, or
//! without one by the Apache parent: see [`succession`](super::succession));
//! a changed script, or no successor in time, and the parent starts a
//! replacement after it exits.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use super::active::AnswerState;
use super::inspect;
use super::state::{now_secs, Daemon};
use super::stop::StopReason;
use super::succession::Relay;
use crate::interp;
use crate::metrics::Reason;
use crate::sys::process;
use crate::sys::signals::{self, SignalSet};

/// The signals that ask a daemon process to stop. The supervisor keeps them
/// blocked across fork, so one sent before the process is ready waits for
/// it instead of running Apache's inherited handlers.
pub fn signal_set() -> SignalSet {
    signals::set_of(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1])
}

/// The signals a process forked from a template also waits for: SIGUSR2,
/// "your successor serves" (see [`succession`](super::succession)).
pub fn succession_signal_set() -> SignalSet {
    signals::with(signal_set(), libc::SIGUSR2)
}

/// How long a process whose replacement was asked for serves on while no
/// successor comes (the template could not start one); then it exits as a
/// process without a template does.
const HANDOVER_WAIT: Duration = Duration::from_secs(10);

/// How long a process without a template whose replacement was asked for
/// serves on while no successor serves (its turn in the group has not come,
/// or the successor is slow to start or failed): then it stops without one,
/// as a process did before successors (at least `startup-timeout`).
const SUCCESSION_WAIT: Duration = Duration::from_secs(60);

/// Its successor serves: this process stops taking work, finishes what it
/// runs and exits.
fn hand_over(daemon: &Arc<Daemon>, relay: &Relay) -> ! {
    if !daemon.restarting.load(Ordering::SeqCst) {
        // Asked ahead of maximum-requests, which is what it stops for.
        daemon.request_restart(StopReason::MaximumRequests(daemon.limit));
    }
    daemon.awaiting.store(false, Ordering::SeqCst);
    relay.vacate();
    let reason = daemon
        .restart_reason
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or(StopReason::ApacheStop);
    exit_process(daemon, daemon.launch.spec.graceful_timeout, &reason)
}

/// Requests not worth waiting for in a drain: past `request-timeout`
/// and, when they were interrupted, past `interrupt-timeout` too (one still
/// in its grace may yet unwind, so it is waited for).
fn stuck_requests(daemon: &Daemon) -> usize {
    let interrupting = !daemon.launch.spec.interrupt_timeout.is_zero();
    daemon
        .slots
        .iter()
        .filter(|slot| {
            slot.lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_some_and(|req| {
                    req.timed_out.load(Ordering::SeqCst)
                        && (!interrupting || req.abandoned.load(Ordering::SeqCst))
                })
        })
        .count()
}

/// Stops taking connections and waits up to `limit` for in-flight ones,
/// except those stuck past the request timeout (see [`stuck_requests`]):
/// waiting for them would only keep their replacement from starting. True
/// when nothing at all is left running. Request timeouts go on applying
/// meanwhile: a request may reach its fire point, or its interruption may
/// unwind or run out of grace, during the drain.
fn drain(daemon: &Arc<Daemon>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    {
        let mut gate = daemon.gate.lock().unwrap_or_else(|p| p.into_inner());
        gate.closing = true;
        daemon.poller.stop_listening();
    }
    loop {
        // Not under the gate's lock: this may wait (boundedly) for the
        // inspector, and workers take the lock as they finish.
        check_request_timeouts(daemon);
        let gate = daemon.gate.lock().unwrap_or_else(|p| p.into_inner());
        if gate.active == 0 {
            return true;
        }
        let now = Instant::now();
        if now >= deadline || gate.active <= stuck_requests(daemon) {
            return false;
        }
        // Woken when a request ends; the short bound notices timeouts.
        let wait = (deadline - now).min(Duration::from_millis(100));
        drop(daemon.idle.wait_timeout(gate, wait));
    }
}

/// Drains within `limit`, runs the application's atexit callbacks when that was clean, and exits.
fn exit_process(daemon: &Arc<Daemon>, limit: Duration, why: &StopReason) -> ! {
    // Counted as decided, not as done: the drain may take a while. A
    // process forked from a template counted it when it asked to be
    // replaced.
    let counted = daemon.launch.succession.is_some() && daemon.restarting.load(Ordering::SeqCst);
    if let Some(metrics) = daemon.launch.metrics.as_ref().filter(|_| !counted) {
        if let Some(reason) = why.metric() {
            metrics.restart(reason);
        }
    }
    let clean = drain(daemon, limit);
    if !(clean && gil_is_responsive(daemon)) {
        log::warn!(
            "WSGIRS337: daemon process (wsgi:{}) pid {}: exiting with requests still running (timed out, or longer than {}s)",
            daemon.group(),
            std::process::id(),
            limit.as_secs()
        );
    } else {
        // The application's shutdown callbacks, then (unless
        // WSGIDestroyInterpreter Off) its atexit callbacks, in every
        // interpreter, as mod_wsgi runs them.
        let destroy = !daemon.launch.python.skip_destroy;
        interp::process_stopping(why.shutdown_name(), destroy);
    }
    log::info!(
        "WSGIRS338: daemon process (wsgi:{}) pid {} exiting: {why}",
        daemon.group(),
        std::process::id()
    );
    process::exit_now(0)
}

/// Whether Python has been responsive lately: the monitor only asks for
/// Python work then.
fn gil_is_responsive(daemon: &Daemon) -> bool {
    now_secs().saturating_sub(daemon.heartbeat.load(Ordering::Relaxed)) <= 2
}

/// How long the monitor waits for Python work done by the inspector.
const PATIENCE: Duration = Duration::from_secs(2);

/// The Python stack of the thread `thread_id`, read in its interpreter
/// (where waiting for the GIL makes a busy thread yield it) by the
/// inspector, so the monitor never waits on the GIL for it.
fn python_stack(daemon: &Daemon, thread_id: u64, app_group: &str) -> Vec<String> {
    if !gil_is_responsive(daemon) {
        return vec!["(the GIL is held elsewhere; stack unavailable)".into()];
    }
    let group = app_group.to_owned();
    let read = inspect::run(PATIENCE, move || {
        interp::with_group(&group, |py| {
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
    });
    match read {
        Ok(Ok(lines)) => lines,
        Ok(Err(e)) => vec![format!("(stack unavailable: {e})")],
        Err(e) => vec![format!("(stack unavailable: {e})")],
    }
}

/// When a request counts as stuck: mod_wsgi 6 judges each thread by
/// itself against `request-timeout × (1 + ln threads)`, so a process with
/// more threads, which loses less to one stuck request, is more patient.
fn fire_point(request_timeout: Duration, threads: u32) -> Duration {
    request_timeout.mul_f64(1.0 + f64::from(threads.max(1)).ln())
}

/// A request the monitor found past its fire point.
struct Stuck {
    /// The worker's index.
    index: usize,
    /// Its thread, for the stack and the interruption.
    thread_id: u64,
    /// Its URI, for the log.
    uri: String,
    /// Its application group: where its thread is interrupted.
    app_group: String,
    /// Identifies the request (it may end meanwhile).
    answer: Arc<AnswerState>,
    /// The monitor answered it 504 (its response had not started).
    answered: bool,
}

/// Handles requests running past `request-timeout` (scaled, see
/// [`fire_point`]): 504 unless their response has started, their stack
/// logged once, then (mod_wsgi 6's two recoveries) either the process is
/// replaced at once (`interrupt-timeout=0`) or `mod_wsgi.RequestTimeout`
/// is raised in the thread and the process is replaced only if the request
/// is still running `interrupt-timeout` later.
fn check_request_timeouts(daemon: &Arc<Daemon>) {
    let spec = &daemon.launch.spec;
    if spec.request_timeout.is_zero() {
        return;
    }
    let fire = fire_point(spec.request_timeout, spec.threads);
    let grace = spec.interrupt_timeout;
    for (index, slot) in daemon.slots.iter().enumerate() {
        let (stuck, first, expired) = {
            let guard = slot.lock().unwrap_or_else(|p| p.into_inner());
            let Some(req) = guard.as_ref() else { continue };
            let ran = req.started.elapsed();
            let first = ran > fire && !req.timed_out.swap(true, Ordering::SeqCst);
            // Not raised yet (the GIL was busy): tried again every tick
            // until the grace ends.
            let pending = !first
                && !grace.is_zero()
                && req.timed_out.load(Ordering::SeqCst)
                && !req.interrupted.load(Ordering::SeqCst)
                && !req.abandoned.load(Ordering::SeqCst);
            let stuck = (first || pending).then(|| Stuck {
                index,
                thread_id: req.thread_id,
                uri: req.uri.clone(),
                app_group: req.app_group.clone(),
                answer: req.answer.clone(),
                answered: first && req.answer_timeout(),
            });
            let expired = !grace.is_zero()
                && ran > fire + grace
                && req.timed_out.load(Ordering::SeqCst)
                && !req.abandoned.swap(true, Ordering::SeqCst);
            (
                stuck,
                first,
                expired.then(|| (req.thread_id, req.uri.clone())),
            )
        };
        match stuck {
            Some(stuck) if first => request_timed_out(daemon, fire, &stuck),
            Some(stuck) => {
                interrupt(daemon, &stuck);
            }
            None => {}
        }
        if let Some((thread_id, uri)) = expired {
            log::error!(
                "WSGIRS441: (wsgi:{}) pid {} thread {thread_id}: '{uri}' did not unwind within interrupt-timeout ({}s) of mod_wsgi.RequestTimeout; replacing the process",
                daemon.group(),
                std::process::id(),
                grace.as_secs()
            );
            daemon.request_restart(StopReason::RequestDidNotUnwind);
        }
    }
}

/// Logs a request past its fire point with its stack, then recovers.
fn request_timed_out(daemon: &Arc<Daemon>, fire: Duration, stuck: &Stuck) {
    let grace = daemon.launch.spec.interrupt_timeout;
    let recovery = if grace.is_zero() {
        "replacing the process".to_owned()
    } else {
        format!(
            "raising mod_wsgi.RequestTimeout in its thread (interrupt-timeout {}s)",
            grace.as_secs()
        )
    };
    log::error!(
        "WSGIRS440: (wsgi:{}) request timeout: pid {} thread {}: '{}' has run longer than {:.1}s (request-timeout {}s for {} thread(s)){}; {recovery}; Python stack of the thread:",
        daemon.group(),
        std::process::id(),
        stuck.thread_id,
        stuck.uri,
        fire.as_secs_f64(),
        daemon.launch.spec.request_timeout.as_secs(),
        daemon.launch.spec.threads,
        if stuck.answered { ", answered 504" } else { "" }
    );
    if let Some(metrics) = &daemon.launch.metrics {
        metrics.timeout();
    }
    for line in python_stack(daemon, stuck.thread_id, &stuck.app_group) {
        log::error!("{line}");
    }
    if grace.is_zero() {
        daemon.request_restart(StopReason::RequestTimeout);
    } else if !interrupt(daemon, stuck) {
        log::debug!(
            "WSGIRS349: (wsgi:{}) thread {}: not interrupted yet (the GIL is busy, or the request ended); trying again",
            daemon.group(),
            stuck.thread_id
        );
    }
}

/// Raises `mod_wsgi.RequestTimeout` in the stuck request's thread, if the
/// request is still running; true when it was raised. Done by the
/// inspector under the GIL of the request's interpreter and its slot's
/// lock, as `active::Ending` ends it, so it reaches no other request. While
/// the GIL does not come, the monitor tries again each tick; a GIL held for
/// good is deadlock-timeout's, and meanwhile the grace runs out.
fn interrupt(daemon: &Arc<Daemon>, stuck: &Stuck) -> bool {
    if !gil_is_responsive(daemon) {
        return false;
    }
    let (d, index, group, answer) = (
        daemon.clone(),
        stuck.index,
        stuck.app_group.clone(),
        stuck.answer.clone(),
    );
    let raised = inspect::run(PATIENCE, move || {
        interp::with_group(&group, |py| {
            let guard = d.slots[index].lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_ref() {
                Some(req) if req.answers_with(&answer) => {
                    let raised = interp::interrupt_thread(py, req.thread_id);
                    req.interrupted.store(raised, Ordering::SeqCst);
                    raised
                }
                _ => false,
            }
        })
    });
    matches!(raised, Ok(Ok(true)))
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
                    Some((
                        req.thread_id,
                        req.started.elapsed(),
                        req.uri.clone(),
                        req.app_group.clone(),
                    ))
                }
                _ => None,
            }
        };
        if let Some((thread_id, ran, uri, app_group)) = slow {
            log::warn!(
                "WSGIRS116: (wsgi:{}) slow request: pid {} thread {thread_id}: '{uri}' has run {:.1}s, longer than WSGISlowRequests {}s; Python stack:",
                daemon.group(),
                std::process::id(),
                ran.as_secs_f64(),
                limit.as_secs_f64()
            );
            for line in python_stack(daemon, thread_id, &app_group) {
                log::warn!("{line}");
            }
        }
    }
}

/// Updates the resident memory gauge and replaces, gracefully, a process
/// whose resident memory passed `maximum-memory`.
fn check_memory(daemon: &Daemon) {
    let limit = daemon.launch.spec.maximum_memory;
    let metrics = daemon.launch.metrics.as_ref();
    if limit == 0 && metrics.is_none() {
        return;
    }
    let resident = crate::wsgi::memory().0;
    if let Some(metrics) = metrics {
        metrics.set_resident(resident);
    }
    if limit > 0 && resident > limit && !daemon.restarting.load(Ordering::SeqCst) {
        log::warn!(
            "WSGIRS442: daemon process (wsgi:{}) pid {}: resident memory {} bytes ({:.1} MiB) passed maximum-memory {} bytes; replacing the process gracefully",
            daemon.group(),
            std::process::id(),
            resident,
            resident as f64 / 1048576.0,
            limit
        );
        daemon.request_restart(StopReason::MaximumMemory { limit, resident });
    }
}

/// The main thread's loop: signals, parent death, deadlock, timeouts and recycling.
pub(super) fn monitor(daemon: &Arc<Daemon>) -> ! {
    let spec = &daemon.launch.spec;
    let link = daemon.launch.succession.as_deref();
    let relay = daemon.launch.relay.as_ref();
    let succession_wait = SUCCESSION_WAIT.max(spec.startup_timeout);
    let set = if link.is_some() {
        succession_signal_set()
    } else {
        signal_set()
    };
    let mut restart_seen: Option<Instant> = None;
    let tick = Duration::from_millis(100);
    let mut ticks: u32 = 0;
    loop {
        // Resident memory, about once a second: the gauge and maximum-memory.
        if ticks % 10 == 0 {
            check_memory(daemon);
        }
        ticks = ticks.wrapping_add(1);
        // One of our blocked signals, or the tick.
        let sig = signals::wait(&set, tick);
        if let (Some(libc::SIGUSR2), Some(link)) = (sig, link) {
            link.handed_over.store(true, Ordering::SeqCst);
            daemon.request_restart(StopReason::ReplacedBySuccessor);
        } else if sig.is_some() {
            exit_process(daemon, spec.shutdown_timeout, &StopReason::ApacheStop);
        }
        if process::parent_pid() != daemon.launch.parent_pid {
            exit_process(daemon, spec.shutdown_timeout, &StopReason::ParentGone);
        }
        let now = now_secs();
        if !spec.deadlock_timeout.is_zero()
            && now.saturating_sub(daemon.heartbeat.load(Ordering::Relaxed))
                > spec.deadlock_timeout.as_secs()
        {
            log::error!(
                "WSGIRS340: daemon process (wsgi:{}) pid {}: Python interpreter deadlocked for more than {}s, restarting",
                daemon.group(),
                std::process::id(),
                spec.deadlock_timeout.as_secs()
            );
            if let Some(metrics) = &daemon.launch.metrics {
                metrics.restart(Reason::Deadlock);
            }
            // The GIL is stuck; nothing more can be run cleanly.
            process::exit_now(1)
        }
        check_request_timeouts(daemon);
        check_slow_requests(daemon);
        daemon.close_stalled();
        // A process whose application keeps failing to load is replaced
        // after startup-timeout, in case the cause was passing (mod_wsgi).
        if !spec.startup_timeout.is_zero()
            && daemon.load_failed.load(Ordering::SeqCst)
            && !daemon.app_loaded.load(Ordering::SeqCst)
            && daemon.started.elapsed() > spec.startup_timeout
        {
            daemon.request_restart(StopReason::StartupTimeout);
        }
        if !spec.restart_interval.is_zero() && daemon.started.elapsed() > spec.restart_interval {
            daemon.request_restart(StopReason::RestartInterval);
        }
        if !spec.inactivity_timeout.is_zero() {
            let active = daemon.gate.lock().unwrap_or_else(|p| p.into_inner()).active;
            let idle_for = now.saturating_sub(daemon.last_activity.load(Ordering::Relaxed));
            if active == 0 && idle_for > spec.inactivity_timeout.as_secs() {
                daemon.request_restart(StopReason::InactivityTimeout);
            }
        }
        // Without a template: once the successor serves, hand over.
        if let Some(relay) = relay.filter(|r| r.asked()) {
            let waiting =
                daemon.awaiting.load(Ordering::SeqCst) || !daemon.restarting.load(Ordering::SeqCst);
            if waiting && relay.heir_serving().is_some() {
                hand_over(daemon, relay);
            }
        }
        if daemon.restarting.load(Ordering::SeqCst) {
            // Forked from a template: serve on until the successor does.
            let since = *restart_seen.get_or_insert_with(Instant::now);
            if link.is_some_and(|l| !l.handed_over.load(Ordering::SeqCst))
                && since.elapsed() < HANDOVER_WAIT
            {
                continue;
            }
            if daemon.awaiting.load(Ordering::SeqCst) {
                if since.elapsed() < succession_wait {
                    continue;
                }
                log::warn!(
                    "WSGIRS433: daemon process (wsgi:{}) pid {}: no successor served within {}s; stopping without one",
                    daemon.group(),
                    std::process::id(),
                    succession_wait.as_secs()
                );
                daemon.awaiting.store(false, Ordering::SeqCst);
            }
            let reason = daemon
                .restart_reason
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                // Set before `restarting`, so always there.
                .unwrap_or(StopReason::ApacheStop);
            exit_process(daemon, spec.graceful_timeout, &reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fire_point;
    use std::time::Duration;

    #[test]
    fn request_timeout_scales_with_threads_as_mod_wsgi_6() {
        let t = Duration::from_secs(10);
        assert_eq!(fire_point(t, 1), t);
        assert_eq!(fire_point(t, 0), t);
        let ten = fire_point(t, 10).as_secs_f64();
        assert!((ten - 33.03).abs() < 0.01, "{ten}");
        let many = fire_point(t, 25).as_secs_f64();
        assert!((many - 42.19).abs() < 0.01, "{many}");
    }
}
