//! Descriptors a process knows only by number: the group's listening
//! socket inherited across fork, and the descriptor of an application's
//! open file (`wsgi.file_wrapper`). Rust's I/O safety wants an owner or a
//! lifetime for each; these functions state, once, why each use is sound.

use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

/// A descriptor inherited across fork that the process never closes, so
/// open for as long as it lives: the group's listening socket
/// (`DaemonLaunch::listener_fd`), a template's message socket
/// (`succession::Link`), the Apache parent's wake pipe
/// (`succession::Relay`). Only for those; `None` for a negative number,
/// which names no descriptor.
pub fn inherited(fd: RawFd) -> Option<BorrowedFd<'static>> {
    // SAFETY: the callers pass one of the descriptors above, which the
    // process inherited and nothing in it closes, so each stays open for
    // the rest of the process ('static). A negative number is refused
    // above borrow_raw, which must not be given -1.
    (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
}

/// The size of the regular file an application's file object has open as
/// `fd`; `None` when `fd` is not an open regular file.
///
/// The caller holds the file object (and the GIL) across the call, so the
/// descriptor cannot be closed under it.
pub fn regular_file_size(fd: RawFd) -> Option<u64> {
    let fd = borrow_while_held(fd)?;
    let st = rustix::fs::fstat(fd).ok()?;
    (rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile)
        .then_some(st.st_size as u64)
}

/// A close-on-exec duplicate of the application's `fd`, which its owner may
/// then close without pulling it out from under us; the same holding rule
/// as [`regular_file_size`].
pub fn duplicate(fd: RawFd) -> Option<OwnedFd> {
    rustix::io::fcntl_dupfd_cloexec(borrow_while_held(fd)?, 0).ok()
}

/// `fd` borrowed for one call while its owner holds it open.
fn borrow_while_held<'a>(fd: RawFd) -> Option<BorrowedFd<'a>> {
    // SAFETY: both callers use the borrow for one system call while the
    // application's file object, which owns the descriptor, is held by
    // them with the GIL (no Python code can close it meanwhile); a
    // negative number is refused above borrow_raw, which must not be
    // given -1.
    (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
}
