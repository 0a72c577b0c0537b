//! Becoming the daemon group's user. The order is setgid, supplementary
//! groups, setuid, then home and umask, and every failure is fatal before any
//! application code runs (mod_wsgi's CVE-2014-0240 and CVE-2014-8583 were
//! failures that were ignored).

use std::ffi::{CStr, CString};
use std::path::Path;

/// A resolved user to run as.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// None when Apache does not run as root: the process keeps its user.
    pub uid: Option<u32>,
    /// The group to switch to.
    pub gid: Option<u32>,
    /// The user's name, for initgroups.
    pub user_name: Option<String>,
    /// Extra groups; empty means "the user's groups" (initgroups).
    pub supplementary: Vec<u32>,
}

/// Why the process could not become its user.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// No such user.
    #[error("unknown user '{0}'")]
    UnknownUser(String),
    /// No such group.
    #[error("unknown group '{0}'")]
    UnknownGroup(String),
    /// The group would run as root.
    #[error("refusing to run a daemon process as root (uid 0)")]
    Root,
    /// The home directory could not be entered.
    #[error("chdir to home directory '{path}' failed: {err}")]
    Chdir {
        /// The directory.
        path: String,
        /// The error.
        err: std::io::Error,
    },
    /// A credentials call failed.
    #[error("{call} failed: {err}")]
    Call {
        /// The call.
        call: &'static str,
        /// The error.
        err: std::io::Error,
    },
}

/// A credentials syscall's failure, named.
fn call(name: &'static str, rc: i32) -> Result<(), PrivilegeError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(PrivilegeError::Call {
            call: name,
            err: std::io::Error::last_os_error(),
        })
    }
}

/// Looks a user up by name or `#uid`: (uid, primary gid, name, home).
pub fn lookup_user(name: &str) -> Result<(u32, u32, String, String), PrivilegeError> {
    let c = CString::new(name).map_err(|_| PrivilegeError::UnknownUser(name.into()))?;
    // SAFETY: getpwnam/getpwuid return a pointer to static storage or null;
    // we copy what we need before any other call could overwrite it. Only
    // called while the process is single-threaded (config time, after fork).
    unsafe {
        let pw = match name.strip_prefix('#').map(str::parse::<u32>) {
            Some(Ok(uid)) => libc::getpwuid(uid),
            Some(Err(_)) => return Err(PrivilegeError::UnknownUser(name.into())),
            None => libc::getpwnam(c.as_ptr()),
        };
        if pw.is_null() {
            return Err(PrivilegeError::UnknownUser(name.into()));
        }
        let pw = &*pw;
        Ok((
            pw.pw_uid,
            pw.pw_gid,
            CStr::from_ptr(pw.pw_name).to_string_lossy().into_owned(),
            CStr::from_ptr(pw.pw_dir).to_string_lossy().into_owned(),
        ))
    }
}

/// Looks a group up by name or `#gid`.
pub fn lookup_group(name: &str) -> Result<u32, PrivilegeError> {
    if let Some(id) = name.strip_prefix('#') {
        return id
            .parse()
            .map_err(|_| PrivilegeError::UnknownGroup(name.into()));
    }
    let c = CString::new(name).map_err(|_| PrivilegeError::UnknownGroup(name.into()))?;
    // SAFETY: getgrnam returns static storage or null; gr_gid is copied out.
    unsafe {
        let gr = libc::getgrnam(c.as_ptr());
        if gr.is_null() {
            return Err(PrivilegeError::UnknownGroup(name.into()));
        }
        Ok((*gr).gr_gid)
    }
}

/// Drops to `identity`, then enters `home` and sets `umask`.
pub fn become_identity(
    identity: &Identity,
    home: Option<&Path>,
    umask: Option<u32>,
) -> Result<(), PrivilegeError> {
    if let (Some(uid), Some(gid)) = (identity.uid, identity.gid) {
        if uid == 0 {
            return Err(PrivilegeError::Root);
        }
        // SAFETY: plain syscalls on integers and a NUL-terminated name.
        unsafe {
            call("setgid", libc::setgid(gid))?;
            if identity.supplementary.is_empty() {
                let name = identity.user_name.clone().unwrap_or_default();
                let c =
                    CString::new(name).map_err(|_| PrivilegeError::UnknownUser(String::new()))?;
                call("initgroups", libc::initgroups(c.as_ptr(), gid))?;
            } else {
                call(
                    "setgroups",
                    libc::setgroups(
                        identity.supplementary.len(),
                        identity.supplementary.as_ptr(),
                    ),
                )?;
            }
            call("setuid", libc::setuid(uid))?;
            // A process that can become root again has not dropped anything.
            if libc::getuid() != uid || libc::geteuid() != uid || libc::setuid(0) == 0 {
                return Err(PrivilegeError::Call {
                    call: "setuid verification",
                    err: std::io::Error::other("still able to regain root"),
                });
            }
        }
    }
    if let Some(home) = home {
        std::env::set_current_dir(home).map_err(|err| PrivilegeError::Chdir {
            path: home.display().to_string(),
            err,
        })?;
    }
    if let Some(mask) = umask {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    Ok(())
}
