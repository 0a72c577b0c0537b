//! Signals as a daemon process takes them: blocked, then waited for
//! (`sigtimedwait`) or read from a descriptor (`signalfd`), never handled
//! asynchronously. A set is libc's `sigset_t`, plain data built here.

use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::Duration;

pub use libc::sigset_t as SignalSet;

/// The set holding exactly `signals`.
pub fn set_of(signals: &[libc::c_int]) -> SignalSet {
    // SAFETY: sigset_t is plain data; sigemptyset then makes it a valid
    // empty set, and sigaddset only writes into it (an invalid number is
    // refused with EINVAL, leaving the set as it was).
    unsafe {
        let mut set: SignalSet = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in signals {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// `set` plus `signal`.
pub fn with(mut set: SignalSet, signal: libc::c_int) -> SignalSet {
    // SAFETY: only writes into our valid set (see set_of).
    unsafe { libc::sigaddset(&mut set, signal) };
    set
}

/// Blocks exactly the signals of `set` (`sigprocmask(SIG_SETMASK)`), in
/// the calling thread and the threads it starts afterwards.
pub fn block_only(set: &SignalSet) {
    // SAFETY: reads the set we pass; the old mask is not asked for.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, set, std::ptr::null_mut()) };
}

/// Ignores `signal` in the whole process (SIGPIPE: a closed peer is an
/// EPIPE error, not a dead process).
pub fn ignore(signal: libc::c_int) {
    // SAFETY: SIG_IGN installs no code of ours; signal() only swaps the
    // disposition.
    unsafe { libc::signal(signal, libc::SIG_IGN) };
}

/// Gives `signal` its default disposition back (one inherited from Apache
/// could run Apache's handler in a process that is not Apache).
pub fn restore_default(signal: libc::c_int) {
    // SAFETY: as in ignore, with SIG_DFL.
    unsafe { libc::signal(signal, libc::SIG_DFL) };
}

/// Waits up to `limit` for one of the blocked signals of `set`: the
/// signal taken, or `None` when none came (or the wait was interrupted).
pub fn wait(set: &SignalSet, limit: Duration) -> Option<libc::c_int> {
    let limit = libc::timespec {
        tv_sec: limit.as_secs() as libc::time_t,
        tv_nsec: limit.subsec_nanos() as libc::c_long,
    };
    // SAFETY: reads the set and the timeout we pass; no siginfo is asked
    // for (null is allowed).
    let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &limit) };
    (sig > 0).then_some(sig)
}

/// A non-blocking, close-on-exec descriptor that reports the signals of
/// `set` (which the caller keeps blocked).
pub fn descriptor(set: &SignalSet) -> io::Result<OwnedFd> {
    // SAFETY: signalfd(-1) reads the set and returns a fresh descriptor or
    // -1.
    let fd = unsafe { libc::signalfd(-1, set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: signalfd returned a descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The next signal waiting on a [`descriptor`], if any (it never blocks).
pub fn next_reported(fd: impl AsFd) -> Option<u32> {
    let mut info = [0u8; size_of::<libc::signalfd_siginfo>()];
    let n = rustix::io::read(fd, &mut info).ok()?;
    if n != info.len() {
        return None;
    }
    // ssi_signo is the record's first field, a native-endian u32.
    let signo: [u8; 4] = info[..4].try_into().ok()?;
    Some(u32::from_ne_bytes(signo))
}
