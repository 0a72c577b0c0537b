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

/// A user by name.
pub fn lookup_user(name: &str) -> Option<Account> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: an all-zero passwd is a valid out-parameter for getpwnam_r.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: every pointer is valid for the call and the buffer's length is
    // passed; the strings in `entry` point into `buffer`, used only below.
    let rc = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return None;
    }
    // SAFETY: on success pw_name is a NUL-terminated string in `buffer`.
    let name = unsafe { CStr::from_ptr(entry.pw_name) }
        .to_string_lossy()
        .into_owned();
    Some(Account {
        name,
        uid: entry.pw_uid,
        gid: entry.pw_gid,
    })
}

/// A group by name.
pub fn lookup_group(name: &str) -> Option<u32> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: an all-zero group is a valid out-parameter for getgrnam_r.
    let mut entry: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    let mut buffer = vec![0 as libc::c_char; 64 * 1024];
    // SAFETY: as in lookup_user.
    let rc = unsafe {
        libc::getgrnam_r(
            c_name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then_some(entry.gr_gid)
}

/// A group's name.
pub fn group_name(gid: u32) -> Option<String> {
    // SAFETY: as in lookup_group.
    let mut entry: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    let mut buffer = vec![0 as libc::c_char; 64 * 1024];
    // SAFETY: as in lookup_user.
    let rc = unsafe {
        libc::getgrgid_r(
            gid,
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return None;
    }
    // SAFETY: on success gr_name is a NUL-terminated string in `buffer`.
    Some(
        unsafe { CStr::from_ptr(entry.gr_name) }
            .to_string_lossy()
            .into_owned(),
    )
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
