//! The private server root of `wsgi-rs serve`: the directory (given, or a
//! temporary one removed when wsgi-rs ends) and writing the files that go
//! into it.

use std::ffi::CString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::failure::{Failure, Outcome};

/// The private directory holding the configuration, pid file, lock files
/// and daemon sockets. A temporary one is removed when wsgi-rs ends.
pub(super) struct ServerRoot {
    /// The directory.
    pub(super) path: PathBuf,
    /// We made it and remove it at the end.
    temporary: bool,
}

impl ServerRoot {
    /// The server root given, or a new temporary one.
    pub(super) fn prepare(given: Option<&Path>, keep: bool) -> Outcome<ServerRoot> {
        let cannot = |path: &Path, e: std::io::Error| {
            Failure::new(
                format!("cannot create the server root {}: {e}", path.display()),
                "pass --server-root a directory you can write to",
            )
        };
        let root = match given {
            Some(dir) => {
                let dir = std::path::absolute(dir).map_err(|e| cannot(dir, e))?;
                std::fs::create_dir_all(&dir).map_err(|e| cannot(&dir, e))?;
                ServerRoot {
                    path: dir,
                    temporary: false,
                }
            }
            None => {
                let template = std::env::temp_dir().join("wsgi-rs-XXXXXX");
                let path = make_temp_dir(&template).map_err(|e| cannot(&template, e))?;
                ServerRoot {
                    path,
                    temporary: !keep,
                }
            }
        };
        // Apache's children (www-data when started as root) read the
        // configuration's files from here.
        std::fs::set_permissions(&root.path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| cannot(&root.path, e))?;
        Ok(root)
    }
}

impl Drop for ServerRoot {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A fresh directory from a `mkdtemp` template.
fn make_temp_dir(template: &Path) -> std::io::Result<PathBuf> {
    let template = CString::new(template.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("temporary directory name contains a NUL"))?;
    let mut bytes = template.into_bytes_with_nul();
    // SAFETY: bytes is a writable NUL-terminated template ending in XXXXXX,
    // which mkdtemp fills in place.
    let made = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
    if made.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    bytes.pop();
    Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

/// Writes a file with the given mode.
pub(super) fn write_file(path: &Path, contents: &str, mode: u32) -> Outcome<()> {
    std::fs::write(path, contents)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)))
        .map_err(|e| {
            Failure::new(
                format!("cannot write {}: {e}", path.display()),
                "check the permissions of the server root",
            )
        })
}
