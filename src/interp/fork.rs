//! Forking a process in which Python runs, the way `os.fork()` does: the
//! interpreter's locks are taken before and reset after, so the child
//! starts from a consistent interpreter (used by a daemon group's template
//! process, which forks its daemon processes from a Python that has already
//! started and imported the application).
//!
//! Only the main interpreter survives a fork: CPython deletes every
//! sub-interpreter in the child, so a template must not make any.

use pyo3::ffi;

/// Forks this process with the GIL held around the fork, running Python's
/// before/after-fork hooks (`os.register_at_fork` callbacks included).
/// Returns the child's pid in the parent and 0 in the child, as `fork()`.
///
/// The calling thread must be the process's only thread: threads other
/// than the caller do not exist in the child.
pub fn fork() -> std::io::Result<i32> {
    super::thread::with_python(|_py| {
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
