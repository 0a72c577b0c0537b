//! Daemon groups under `httpd -X` (single-process debug mode).
//!
//! There the process that ran post_config goes on to serve requests
//! itself, on threads, with no MPM main loop: nothing reaps or replaces a
//! daemon process that exits (a touch-reload or maximum-requests left the
//! group without it, a zombie), and nothing stops the group or removes its
//! socket when the server stops. So post_config forks a supervisor process
//! of its own, before any thread exists, which forks the group's processes,
//! reaps and replaces them as the Apache parent would, and when the `-X`
//! process is gone stops them and removes the sockets.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{lock, process_died, respawn_due, stop_processes, Supervisor};
use crate::httpd::ffi;

/// Whether Apache runs as a single process: `-X` defines DEBUG, which the
/// MPMs take as ONE_PROCESS, which can also be defined by itself.
pub(super) fn active() -> bool {
    [c"DEBUG", c"ONE_PROCESS"].iter().any(|name| {
        // SAFETY: plain query of httpd's -D list.
        unsafe { ffi::ap_exists_config_define(name.as_ptr()) != 0 }
    })
}

/// Forks the supervisor process, which takes `sup` over.
pub(super) fn spawn(sup: Supervisor) {
    // SAFETY: called from post_config, while the process is single-threaded.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        ::log::error!(
            "WSGIRS403: cannot fork the daemon supervisor for httpd -X: {}",
            std::io::Error::last_os_error()
        );
        return;
    }
    if pid > 0 {
        return;
    }
    // SAFETY: in the forked supervisor: its own process group (a terminal's
    // Ctrl-C stops the -X process, not this one, which then stops the
    // group cleanly), a title of its own, SIGTERM and SIGINT noted (it
    // then stops the group too), no Apache listeners.
    let server = unsafe {
        libc::setpgid(0, 0);
        super::set_process_title(sup.server, "wsgi-rs-supervisor (httpd -X)");
        for sig in [libc::SIGHUP, libc::SIGUSR1, libc::SIGWINCH] {
            libc::signal(sig, libc::SIG_IGN);
        }
        for sig in [libc::SIGTERM, libc::SIGINT] {
            libc::signal(sig, on_stop as *const () as libc::sighandler_t);
        }
        ffi::ap_close_listeners();
        libc::getppid()
    };
    ::log::info!(
        "WSGIRS404: httpd -X: daemon supervisor pid {} started for {} daemon process(es)",
        std::process::id(),
        sup.slots.len()
    );
    *lock() = Some(sup);
    loop {
        reap();
        let mut guard = lock();
        // SAFETY: getppid cannot fail.
        if unsafe { libc::getppid() } != server || STOP.load(Ordering::SeqCst) {
            if let Some(sup) = guard.take() {
                stop_processes(sup);
            }
            // SAFETY: leaving the forked supervisor without Apache's exit code.
            unsafe { libc::_exit(0) }
        }
        if let Some(sup) = guard.as_mut() {
            respawn_due(sup);
        }
        drop(guard);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Set when the supervisor is asked to stop.
static STOP: AtomicBool = AtomicBool::new(false);

/// SIGTERM/SIGINT handler of the supervisor process.
// No guard: a signal handler, where logging a panic is not
// async-signal-safe; storing an atomic cannot panic.
extern "C" fn on_stop(_sig: c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Reaps the daemon processes that exited and hands each death to the
/// supervisor, as httpd's other-child callback does in the parent.
fn reap() {
    loop {
        let mut status: c_int = 0;
        // SAFETY: reaping this process's own children without blocking.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        // As httpd reports it: the exit code, or the signal that ended it.
        let (lost, code) = if libc::WIFSIGNALED(status) {
            (true, libc::WTERMSIG(status))
        } else {
            (false, libc::WEXITSTATUS(status))
        };
        let mut guard = lock();
        if let Some(sup) = guard.as_mut() {
            let key = sup.daemons().find(|p| p.pid() == pid).map(|p| p.key());
            if let Some(key) = key {
                process_died(sup, key, lost, code);
            }
        }
    }
}
