//! Checking `wsgi-rs serve`'s options before anything is written: paths
//! that can stand in a configuration file, the mount point, `--url-alias`,
//! the python home and path, and where `--interrupt-timeout` applies.

use std::path::{Path, PathBuf};

use crate::cli::ServeArgs;
use crate::failure::{Failure, Outcome};

/// Refuses what cannot be written into Apache's configuration or a Python
/// source: non-UTF-8 names and line breaks.
pub(super) fn plain_path(path: &Path, what: &str) -> Outcome<()> {
    match path.to_str() {
        Some(text) if !text.contains(['\n', '\r']) => Ok(()),
        _ => Err(Failure::new(
            format!(
                "the {what} path {} cannot be used in a configuration file",
                path.display()
            ),
            "use a path without line breaks that is valid UTF-8",
        )),
    }
}

/// A mount point: `/` or a path without a trailing slash.
pub(super) fn mount_point(given: &str) -> Outcome<String> {
    if !given.starts_with('/') || given.contains(char::is_whitespace) {
        return Err(Failure::new(
            format!("the mount point '{given}' is not a URL path"),
            "give --mount-point a path starting with /, such as /app",
        ));
    }
    let trimmed = given.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_owned())
}

/// `--url-alias URL PATH` pairs, paths made absolute.
pub(super) fn url_aliases(pairs: &[String], cwd: &Path) -> Outcome<Vec<(String, PathBuf)>> {
    pairs
        .chunks(2)
        .map(|pair| {
            let (url, path) = (&pair[0], cwd.join(&pair[1]));
            if !url.starts_with('/') || url.contains(char::is_whitespace) {
                return Err(Failure::new(
                    format!("the --url-alias URL '{url}' is not a URL path"),
                    "give a path starting with /, such as --url-alias /static ./static",
                ));
            }
            if !path.exists() {
                return Err(Failure::new(
                    format!("the --url-alias path {} does not exist", path.display()),
                    "give an existing directory or file",
                ));
            }
            plain_path(&path, "--url-alias")?;
            let path = std::path::absolute(&path).unwrap_or(path);
            Ok((url.trim_end_matches('/').to_owned(), path))
        })
        .collect()
}

/// `--python-home`, else the active virtualenv.
pub(super) fn python_home(args: &ServeArgs, cwd: &Path) -> Outcome<Option<PathBuf>> {
    let (home, source) = match (&args.python_home, std::env::var_os("VIRTUAL_ENV")) {
        (Some(home), _) => (cwd.join(home), "--python-home"),
        (None, Some(venv)) if !venv.is_empty() => (PathBuf::from(venv), "VIRTUAL_ENV"),
        _ => return Ok(None),
    };
    if !home.is_dir() {
        return Err(Failure::new(
            format!(
                "the python home {} ({source}) is not a directory",
                home.display()
            ),
            "pass --python-home a virtualenv or Python prefix, or deactivate the virtualenv",
        ));
    }
    plain_path(&home, "python home")?;
    if source == "VIRTUAL_ENV" {
        log::info!("using the active virtualenv {}", home.display());
    }
    Ok(Some(std::path::absolute(&home).unwrap_or(home)))
}

/// The `sys.path` entries to add, absolute.
pub(super) fn python_path(args: &ServeArgs, cwd: &Path) -> Outcome<Vec<PathBuf>> {
    args.python_path
        .iter()
        .map(|dir| {
            let dir = cwd.join(dir);
            if !dir.is_dir() {
                return Err(Failure::new(
                    format!(
                        "the --python-path directory {} does not exist",
                        dir.display()
                    ),
                    "give an existing directory",
                ));
            }
            plain_path(&dir, "--python-path")?;
            if dir.to_string_lossy().contains(':') {
                return Err(Failure::new(
                    format!("the --python-path directory {} contains ':'", dir.display()),
                    "Apache's python-path is colon-separated: use a directory without ':' \
                     (a symlink to it will do)",
                ));
            }
            Ok(std::path::absolute(&dir).unwrap_or(dir))
        })
        .collect()
}

/// Refuses `--interrupt-timeout` where it could do nothing: it changes
/// what a daemon process does when `--request-timeout` fires.
pub(super) fn interrupt_timeout_applies(args: &ServeArgs) -> Outcome<()> {
    if args.interrupt_timeout.is_none() {
        Ok(())
    } else if args.embedded {
        Err(Failure::new(
            "--interrupt-timeout applies to daemon processes, and --embedded runs none",
            "drop --interrupt-timeout, or --embedded (daemon mode is the default)",
        ))
    } else if args.request_timeout.is_none() {
        Err(Failure::new(
            "--interrupt-timeout acts when --request-timeout fires, and none is given",
            "add --request-timeout SECONDS",
        ))
    } else {
        Ok(())
    }
}
