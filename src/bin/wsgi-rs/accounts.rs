//! Users, groups and file permissions: who Apache's children will run as,
//! and whether that user can read what the application needs.

use std::ffi::{CStr, CString};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A user account from the system's user database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The user's name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
}

/// Whether we run as root.
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs one of libc's reentrant database lookups (`getpwnam_r`,
/// `getgrnam_r`, `getgrgid_r`) with a buffer of `size` bytes: the entry,
/// and the buffer its strings point into, when one was found.
///
/// # Safety
/// An all-zero `E` must be a valid out-parameter for `call` (true of
/// `passwd` and `group`).
unsafe fn lookup<E>(
    size: usize,
    call: impl FnOnce(*mut E, *mut libc::c_char, usize, *mut *mut E) -> libc::c_int,
) -> Option<(E, Vec<libc::c_char>)> {
    // SAFETY: the caller's contract.
    let mut entry: E = unsafe { std::mem::zeroed() };
    let mut found: *mut E = std::ptr::null_mut();
    let mut buffer = vec![0 as libc::c_char; size];
    let rc = call(&mut entry, buffer.as_mut_ptr(), buffer.len(), &mut found);
    (rc == 0 && !found.is_null()).then_some((entry, buffer))
}

/// A string the entry points at, in its buffer.
///
/// # Safety
/// `text` must be a NUL-terminated string that lives as long as the call.
unsafe fn text(text: *const libc::c_char) -> String {
    // SAFETY: the caller's contract.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// A user by name.
pub fn lookup_user(name: &str) -> Option<Account> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: an all-zero passwd is a valid out-parameter; getpwnam_r gets
    // valid pointers and the buffer's length.
    let (entry, _buffer) = unsafe {
        lookup::<libc::passwd>(16 * 1024, |e, b, len, found| {
            libc::getpwnam_r(c_name.as_ptr(), e, b, len, found)
        })
    }?;
    Some(Account {
        // SAFETY: on success pw_name is a C string in `_buffer`, still alive.
        name: unsafe { text(entry.pw_name) },
        uid: entry.pw_uid,
        gid: entry.pw_gid,
    })
}

/// A group by name.
pub fn lookup_group(name: &str) -> Option<u32> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: as in lookup_user, for a group entry.
    let (entry, _buffer) = unsafe {
        lookup::<libc::group>(64 * 1024, |e, b, len, found| {
            libc::getgrnam_r(c_name.as_ptr(), e, b, len, found)
        })
    }?;
    Some(entry.gr_gid)
}

/// A group's name.
pub fn group_name(gid: u32) -> Option<String> {
    // SAFETY: as in lookup_user, for a group entry.
    let (entry, _buffer) = unsafe {
        lookup::<libc::group>(64 * 1024, |e, b, len, found| {
            libc::getgrgid_r(gid, e, b, len, found)
        })
    }?;
    // SAFETY: on success gr_name is a C string in `_buffer`, still alive.
    Some(unsafe { text(entry.gr_name) })
}

/// Permission bit: read.
const READ: u32 = 4;
/// Permission bit: execute (search, for a directory).
const EXECUTE: u32 = 1;

/// Whether the permission bits of a file grant `wanted` to the account.
/// Supplementary groups are not considered, so this can only err towards
/// a warning that was not needed.
fn grants(meta: &std::fs::Metadata, uid: u32, gid: u32, wanted: u32) -> bool {
    if uid == 0 {
        return true;
    }
    let mode = meta.mode();
    let bits = if meta.uid() == uid {
        mode >> 6
    } else if meta.gid() == gid {
        mode >> 3
    } else {
        mode
    };
    bits & wanted == wanted
}

/// The first path that keeps `uid`/`gid` from reading `path` (a directory
/// it cannot enter or list, or a file it cannot read), if any.
pub fn unreadable_part(path: &Path, uid: u32, gid: u32) -> Option<PathBuf> {
    for ancestor in path.ancestors().skip(1) {
        if ancestor.as_os_str().is_empty() {
            continue;
        }
        let meta = std::fs::metadata(ancestor).ok()?;
        if !grants(&meta, uid, gid, EXECUTE) {
            return Some(ancestor.to_path_buf());
        }
    }
    let meta = std::fs::metadata(path).ok()?;
    let wanted = if meta.is_dir() { READ | EXECUTE } else { READ };
    (!grants(&meta, uid, gid, wanted)).then(|| path.to_path_buf())
}

/// Changes the owner of a file the application's processes must be able to
/// modify.
pub fn chown(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}
