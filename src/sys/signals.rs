//! Signals as a daemon process takes them: blocked, then waited for
//! (`sigtimedwait`) or read from a descriptor (`signalfd`), never handled
//! asynchronously. A set is libc's `sigset_t`, plain data built here.

use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

pub use libc::sigset_t as SignalSet;

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
