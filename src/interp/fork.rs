//! Forking a process in which Python runs, the way `os.fork()` does: the
//! interpreter's locks are taken before and reset after, so the child
//! starts from a consistent interpreter (used by a daemon group's template
//! process, which forks its daemon processes from a Python that has already
//! started and imported the application).
//!
//! Only the main interpreter survives a fork: CPython deletes every
//! sub-interpreter in the child, so a template must not make any.

use pyo3::ffi;
use pyo3::prelude::*;

/// Forks this process with the GIL held around the fork, running Python's
/// before/after-fork hooks (`os.register_at_fork` callbacks included).
/// Every object alive is first moved out of the garbage collector's sight
/// (`gc.freeze()`, as Python's documentation advises before forking), so
/// the child's collections do not write to the pages it shares with the
/// parent.
/// Returns the child's pid in the parent and 0 in the child, as `fork()`.
///
/// The calling thread must be the process's only thread: threads other
/// than the caller do not exist in the child.
pub fn fork() -> std::io::Result<i32> {
    super::thread::with_python(|py| {
        // Best effort: a failure only costs shared pages.
        if let Err(e) = py.import("gc").and_then(|gc| gc.call_method0("freeze")) {
            log::debug!("WSGIRS431: gc.freeze() before fork failed: {e}");
        }
        // SAFETY: attached (the GIL is held), as os.fork() holds it around
        // these calls; the caller is the process's only thread.
        unsafe {
            ffi::PyOS_BeforeFork();
            let pid = libc::fork();
            if pid == 0 {
                ffi::PyOS_AfterFork_Child();
            } else {
                ffi::PyOS_AfterFork_Parent();
            }
            if pid < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(pid)
            }
        }
    })
}
