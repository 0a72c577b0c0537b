//! Who a process runs as: the account database (`getpwnam`, `getgrnam`)
//! and the credential changes of a privilege drop. These go through the C
//! library, not raw system calls: on Linux the kernel changes the calling
//! thread's credentials only, and glibc's `setuid` and friends apply the
//! change to every thread of the process.

use std::ffi::{CStr, CString};
use std::io;

/// An account, as the password database has it.
#[derive(Debug)]
pub struct User {
    /// Its user id.
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
    /// Its name.
    pub name: String,
    /// Its home directory.
    pub home: String,
}

/// The account named `name`, if any.
pub fn user_by_name(name: &CStr) -> Option<User> {
    // SAFETY: getpwnam takes a NUL-terminated name and returns null or a
    // pointer to static storage, read at once in `user` before any other
    // lookup could overwrite it. The lookups run while the process is
    // single-threaded (configuration time, or just after fork).
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    user(entry)
}

/// The account with user id `uid`, if any.
pub fn user_by_id(uid: u32) -> Option<User> {
    // SAFETY: as in user_by_name.
    let entry = unsafe { libc::getpwuid(uid) };
    user(entry)
}

/// An entry getpwnam or getpwuid returned, copied out.
fn user(entry: *mut libc::passwd) -> Option<User> {
    if entry.is_null() {
        return None;
    }
    // SAFETY: a non-null entry points to the C library's static passwd
    // record, whose name and home are NUL-terminated strings; everything
    // is copied before this returns.
    unsafe {
        let entry = &*entry;
        Some(User {
            uid: entry.pw_uid,
            gid: entry.pw_gid,
            name: CStr::from_ptr(entry.pw_name).to_string_lossy().into_owned(),
            home: CStr::from_ptr(entry.pw_dir).to_string_lossy().into_owned(),
        })
    }
}

/// The id of the group named `name`, if any.
pub fn group_by_name(name: &CStr) -> Option<u32> {
    // SAFETY: getgrnam takes a NUL-terminated name and returns null or a
    // pointer to static storage, whose gid is copied out at once (same
    // single-threaded rule as user_by_name).
    unsafe {
        let entry = libc::getgrnam(name.as_ptr());
        (!entry.is_null()).then(|| (*entry).gr_gid)
    }
}

/// A credentials call's `0` or `-1` as the `errno` error.
fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `setgid`: the process's real, effective and saved group ids.
pub fn set_gid(gid: u32) -> io::Result<()> {
    // SAFETY: a plain system call on an integer.
    check(unsafe { libc::setgid(gid) })
}

/// `initgroups`: the supplementary groups `user` belongs to, plus `gid`.
pub fn init_groups(user: &CString, gid: u32) -> io::Result<()> {
    // SAFETY: initgroups reads the NUL-terminated name, which outlives it.
    check(unsafe { libc::initgroups(user.as_ptr(), gid) })
}

/// `setgroups`: exactly these supplementary groups.
pub fn set_groups(groups: &[u32]) -> io::Result<()> {
    // SAFETY: setgroups reads `groups.len()` ids from the slice it is given.
    check(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) })
}

/// `setuid`: the process's real, effective and saved user ids.
pub fn set_uid(uid: u32) -> io::Result<()> {
    // SAFETY: a plain system call on an integer.
    check(unsafe { libc::setuid(uid) })
}
