//! The daemon groups' listening UNIX sockets: made by the Apache parent
//! (mode 0600, owned by Apache's child user or `socket-user=`), or after a
//! restart taken over from the previous generation (see `handover`).

use std::ffi::{c_int, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{handover, lock};

/// Why a group's socket could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The path does not fit a UNIX socket address.
    #[error("daemon socket path '{0}' is too long for a UNIX socket")]
    TooLong(String),
    /// A syscall failed.
    #[error("cannot create daemon socket '{path}': {call}: {err}")]
    Call {
        /// The socket path.
        path: String,
        /// The call.
        call: &'static str,
        /// The error.
        err: std::io::Error,
    },
}

/// The `sockaddr_un` for `path`, or None when the path is too long.
pub fn unix_addr(path: &Path) -> Option<libc::sockaddr_un> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; zeroed is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() {
        return None;
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Some(addr)
}

/// Creates the group's listener: only the Apache child user may connect.
pub fn create_listener(
    path: &Path,
    backlog: u32,
    owner: Option<(u32, u32)>,
) -> Result<i32, SocketError> {
    let shown = path.display().to_string();
    let fail = |call, err| SocketError::Call {
        path: shown.clone(),
        call,
        err,
    };
    let bytes = path.as_os_str().as_bytes();
    let Some(addr) = unix_addr(path) else {
        return Err(SocketError::TooLong(shown));
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::remove_file(path);
    let c_path = CString::new(bytes).map_err(|_| SocketError::TooLong(shown.clone()))?;
    // SAFETY: plain socket syscalls on a descriptor we own; the path and
    // address are valid for the calls.
    unsafe {
        // Close-on-exec: daemons inherit it by fork; nothing the parent
        // execs (piped loggers, RewriteMap programs) may accept on it.
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(fail("socket", std::io::Error::last_os_error()));
        }
        let close_with = |call, fd| {
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            Err(fail(call, err))
        };
        // Nobody may connect between bind and chmod/chown.
        let old_mask = libc::umask(0o177);
        let rc = libc::bind(
            fd,
            (&addr as *const libc::sockaddr_un).cast(),
            size_of::<libc::sockaddr_un>() as libc::socklen_t,
        );
        libc::umask(old_mask);
        if rc != 0 {
            return close_with("bind", fd);
        }
        if let Some((uid, gid)) = owner {
            if libc::lchown(c_path.as_ptr(), uid, gid) != 0 {
                return close_with("chown", fd);
            }
        }
        if libc::chmod(c_path.as_ptr(), 0o600) != 0 {
            return close_with("chmod", fd);
        }
        if libc::listen(fd, backlog.max(1) as c_int) != 0 {
            return close_with("listen", fd);
        }
        // Every process of the group polls the same listener; whoever
        // loses the race for a connection must not block in accept().
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        Ok(fd)
    }
}

/// The listening socket of a group at `path`: the one an earlier
/// generation's group of the same socket path had, kept open across the
/// restart so that connecting never fails (its backlog and owner set
/// again from this generation's configuration), or a new one.
pub fn listener(path: &Path, backlog: u32, owner: Option<(u32, u32)>) -> Result<i32, SocketError> {
    match handover::take_listener(&mut lock(), path) {
        Some(fd) => handover::refresh_listener(fd, path, backlog, owner),
        None => create_listener(path, backlog, owner),
    }
}
