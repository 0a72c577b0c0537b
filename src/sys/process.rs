//! Leaving a process, and the process-wide C library state set before
//! Python starts.

use std::ffi::CStr;

/// Ends the process at once with `code`, without the atexit handlers and
/// stdio flushing inherited from the Apache parent, which are not ours to
/// run (a daemon or template process, after fork).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; it never returns.
    unsafe { libc::_exit(code) }
}

/// `setlocale(LC_ALL, locale)`, as `WSGIDaemonProcess lang=/locale=` ask,
/// before Python starts; whether the C library accepted it.
pub fn set_locale(locale: &CStr) -> bool {
    // SAFETY: called while the process is single-threaded (before Python
    // and the workers start); setlocale reads the NUL-terminated name.
    !unsafe { libc::setlocale(libc::LC_ALL, locale.as_ptr()) }.is_null()
}

/// The parent's pid: once the parent has died, the pid of whichever
/// process adopted us, so comparing it with the parent's tells whether the
/// parent is still there.
pub fn parent_pid() -> i32 {
    rustix::process::Pid::as_raw(rustix::process::getppid())
}

/// Asks the kernel to send SIGTERM to this process when its parent dies
/// (`PR_SET_PDEATHSIG`; cleared by a credential change, so set after one).
pub fn terminate_with_parent() {
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM));
}

/// Sends `signal` to our own child `pid` (an unreaped child, so the pid is
/// still its); a pid of 0 or less names no one child and is not signalled.
pub fn signal_child(pid: i32, signal: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Reaps one exited child without waiting: its pid and raw wait status.
pub fn reap_one() -> Option<(i32, i32)> {
    let (pid, status) =
        rustix::process::waitpid(None, rustix::process::WaitOptions::NOHANG).ok()??;
    Some((pid.as_raw_pid(), status.as_raw()))
}
