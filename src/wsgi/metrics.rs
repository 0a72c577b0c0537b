//! `mod_wsgi.process_metrics()`: what this process has served, with the
//! shape mod_wsgi 4.9 gives it. Per request this costs two clock reads and
//! a few relaxed atomic updates; the dict is built only when asked for.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// Requests this process has served.
static REQUESTS: AtomicU64 = AtomicU64::new(0);
/// Time spent serving them.
static BUSY_NANOS: AtomicU64 = AtomicU64::new(0);
/// Requests being served.
static ACTIVE: AtomicI64 = AtomicI64::new(0);
/// When the process started.
static STARTED: OnceLock<SystemTime> = OnceLock::new();

/// A thread that has served requests: its 1-based number and its count.
struct ThreadSlot {
    /// Its number, from 1.
    id: usize,
    /// Requests it served.
    requests: AtomicU64,
}

/// Every thread that has served a request.
fn threads() -> &'static Mutex<Vec<Arc<ThreadSlot>>> {
    static THREADS: OnceLock<Mutex<Vec<Arc<ThreadSlot>>>> = OnceLock::new();
    THREADS.get_or_init(Default::default)
}

thread_local! {
    static SLOT: Arc<ThreadSlot> = {
        let mut all = threads().lock().unwrap_or_else(|p| p.into_inner());
        let slot = Arc::new(ThreadSlot { id: all.len() + 1, requests: AtomicU64::new(0) });
        all.push(slot.clone());
        slot
    };
}

/// Marks the process start (when Python is set up), for `restart_time`.
pub fn mark_process_start() {
    let _ = STARTED.set(SystemTime::now());
}

/// This thread's request-thread number (1-based), as mod_wsgi numbers them.
pub fn thread_id() -> usize {
    SLOT.with(|s| s.id)
}

/// A request starts on this thread; hand the result to [`request_ended`].
pub(crate) fn request_begun() -> Instant {
    ACTIVE.fetch_add(1, Ordering::Relaxed);
    Instant::now()
}

/// Counts a request that began at `begun`.
pub(crate) fn request_ended(begun: Instant) {
    let nanos = begun.elapsed().as_nanos().min(u64::MAX as u128) as u64;
    BUSY_NANOS.fetch_add(nanos, Ordering::Relaxed);
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    ACTIVE.fetch_sub(1, Ordering::Relaxed);
    SLOT.with(|s| s.requests.fetch_add(1, Ordering::Relaxed));
}

/// Seconds since the epoch.
fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Current and peak resident memory in bytes.
pub fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (kib("VmRSS:"), kib("VmHWM:"))
}

/// Process CPU time so far, (user, system) seconds.
fn process_cpu() -> (f64, f64) {
    crate::sys::usage::cpu_times(crate::sys::usage::Who::Process).unwrap_or((0.0, 0.0))
}

/// `mod_wsgi.process_metrics()`.
pub fn process_metrics(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    let now = SystemTime::now();
    let started = *STARTED.get_or_init(SystemTime::now);
    let (rss, peak) = memory();
    let (user, system) = process_cpu();
    d.set_item("pid", std::process::id())?;
    d.set_item(
        "request_busy_time",
        BUSY_NANOS.load(Ordering::Relaxed) as f64 / 1e9,
    )?;
    d.set_item("request_count", REQUESTS.load(Ordering::Relaxed))?;
    d.set_item("memory_max_rss", peak)?;
    d.set_item("memory_rss", rss)?;
    d.set_item("cpu_user_time", user)?;
    d.set_item("cpu_system_time", system)?;
    d.set_item("restart_time", epoch_seconds(started))?;
    d.set_item("current_time", epoch_seconds(now))?;
    d.set_item(
        "running_time",
        now.duration_since(started).map_or(0, |d| d.as_secs()),
    )?;
    let slots: Vec<(usize, u64)> = threads()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|s| (s.id, s.requests.load(Ordering::Relaxed)))
        .collect();
    d.set_item("request_threads", slots.len())?;
    d.set_item("active_requests", ACTIVE.load(Ordering::Relaxed).max(0))?;
    let list = PyList::empty(py);
    for (id, requests) in slots {
        let t = PyDict::new(py);
        t.set_item("thread_id", id)?;
        t.set_item("request_count", requests)?;
        list.append(t)?;
    }
    d.set_item("threads", list)?;
    Ok(d)
}
