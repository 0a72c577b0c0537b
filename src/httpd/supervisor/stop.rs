//! Stopping the daemon processes when Apache stops: the first stop signal
//! asks every process to stop; pconf's cleanup then either parks the
//! supervisor for the next generation (a restart, see
//! [`handover`](super::handover)) or stops every process, current and
//! retiring, waits for them up to the longest shutdown-timeout, kills what
//! is left and removes the sockets.

use std::ffi::{c_int, c_void};
use std::time::{Duration, Instant};

use super::{handover, lock, Supervisor};
use crate::httpd::ffi;

/// Apache stops: asks every process to stop (once), without waiting;
/// pconf's cleanup ([`stop_processes`]) reaps them.
pub(super) fn signal_stop(sup: &mut Supervisor) {
    if std::mem::replace(&mut sup.stopping, true) {
        return;
    }
    for process in sup.daemons() {
        process.signal(libc::SIGTERM);
    }
}

/// Pool cleanup of pconf: on a restart, parks the supervisor for the next
/// generation (see [`handover`]); when Apache exits, stops every daemon
/// process and removes the sockets.
pub(super) unsafe extern "C" fn stop_all(_data: *mut c_void) -> ffi::apr_status_t {
    crate::httpd::boundary::guard("daemon shutdown", (), || {
        // SAFETY: plain query.
        let state = unsafe { ffi::ap_state_query(ffi::AP_SQ_MAIN_STATE as c_int) };
        let mut guard = lock();
        if state == ffi::AP_SQ_MS_DESTROY_CONFIG as c_int {
            if let Some(sup) = guard.as_mut() {
                handover::park(sup);
            }
            return;
        }
        let taken = guard.take();
        drop(guard);
        if let Some(sup) = taken {
            stop_processes(sup);
        }
    });
    ffi::APR_SUCCESS as ffi::apr_status_t
}

/// Stops every process of `sup`, current and retiring, waiting up to the
/// longest shutdown-timeout before killing, closes the listeners and
/// removes the sockets.
pub(super) fn stop_processes(mut sup: Supervisor) {
    sup.stopping = true;
    handover::stop_watcher(&mut sup);
    super::succession::stop_waker(&mut sup);
    for process in sup.daemons() {
        process.signal(libc::SIGTERM);
    }
    let mut waiting: Vec<i32> = sup.daemons().map(|p| p.pid()).collect();
    let limit = sup
        .plan
        .daemon_groups
        .iter()
        .map(|g| g.launch.spec.shutdown_timeout)
        .max()
        .unwrap_or_default()
        + Duration::from_secs(1);
    let deadline = Instant::now() + limit;
    // Left unreaped, they would outlive Apache (or, under `httpd -X`, the
    // supervisor process).
    while !waiting.is_empty() && Instant::now() < deadline {
        // SAFETY: reaping our own children without blocking.
        waiting
            .retain(|&pid| unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) } == 0);
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
    let listeners = sup
        .plan
        .daemon_groups
        .iter()
        .map(|g| (g.socket_path.clone(), g.launch.listener_fd))
        .chain(sup.orphans.drain(..));
    for (path, fd) in listeners {
        // SAFETY: closing the parent's copy of the listener.
        unsafe { libc::close(fd) };
        let _ = std::fs::remove_file(&path);
    }
}
