//! CPU time used so far (`getrusage`), by the process or the calling
//! thread, for the metrics and the request events.

/// Whose CPU time.
#[derive(Clone, Copy, Debug)]
pub enum Who {
    /// The whole process.
    Process,
    /// The calling thread.
    Thread,
}

/// (user, system) CPU seconds used by `who`, or `None` if the kernel
/// refused.
pub fn cpu_times(who: Who) -> Option<(f64, f64)> {
    let who = match who {
        Who::Process => libc::RUSAGE_SELF,
        Who::Thread => libc::RUSAGE_THREAD,
    };
    // SAFETY: rusage is plain data, zeroed here; getrusage only writes
    // into it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(who, &mut usage) != 0 {
            return None;
        }
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some((secs(usage.ru_utime), secs(usage.ru_stime)))
}
