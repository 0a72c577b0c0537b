//! Becoming the daemon group's user. The order is setgid, supplementary
//! groups, setuid, then home and umask, and every failure is fatal before any
//! application code runs (mod_wsgi's CVE-2014-0240 and CVE-2014-8583 were
//! failures that were ignored).

use std::ffi::CString;
use std::path::Path;

use crate::sys::identity;

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

/// A credentials call's failure, named.
fn call(name: &'static str, result: std::io::Result<()>) -> Result<(), PrivilegeError> {
    result.map_err(|err| PrivilegeError::Call { call: name, err })
}

/// Looks a user up by name or `#uid`: (uid, primary gid, name, home).
pub fn lookup_user(name: &str) -> Result<(u32, u32, String, String), PrivilegeError> {
    let c = CString::new(name).map_err(|_| PrivilegeError::UnknownUser(name.into()))?;
    // Only called while the process is single-threaded (config time,
    // after fork): the C library's lookups share static storage.
    let user = match name.strip_prefix('#').map(str::parse::<u32>) {
        Some(Ok(uid)) => identity::user_by_id(uid),
        Some(Err(_)) => return Err(PrivilegeError::UnknownUser(name.into())),
        None => identity::user_by_name(&c),
    };
    let user = user.ok_or_else(|| PrivilegeError::UnknownUser(name.into()))?;
    Ok((user.uid, user.gid, user.name, user.home))
}

/// Looks a group up by name or `#gid`.
pub fn lookup_group(name: &str) -> Result<u32, PrivilegeError> {
    if let Some(id) = name.strip_prefix('#') {
        return id
            .parse()
            .map_err(|_| PrivilegeError::UnknownGroup(name.into()));
    }
    let c = CString::new(name).map_err(|_| PrivilegeError::UnknownGroup(name.into()))?;
    identity::group_by_name(&c).ok_or_else(|| PrivilegeError::UnknownGroup(name.into()))
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
        call("setgid", identity::set_gid(gid))?;
        if identity.supplementary.is_empty() {
            let name = identity.user_name.clone().unwrap_or_default();
            let c = CString::new(name).map_err(|_| PrivilegeError::UnknownUser(String::new()))?;
            call("initgroups", identity::init_groups(&c, gid))?;
        } else {
            call("setgroups", identity::set_groups(&identity.supplementary))?;
        }
        call("setuid", identity::set_uid(uid))?;
        // A process that can become root again has not dropped anything.
        if rustix::process::getuid().as_raw() != uid
            || rustix::process::geteuid().as_raw() != uid
            || identity::set_uid(0).is_ok()
        {
            return Err(PrivilegeError::Call {
                call: "setuid verification",
                err: std::io::Error::other("still able to regain root"),
            });
        }
    }
    if let Some(home) = home {
        std::env::set_current_dir(home).map_err(|err| PrivilegeError::Chdir {
            path: home.display().to_string(),
            err,
        })?;
    }
    if let Some(mask) = umask {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask));
    }
    Ok(())
}
