//! Helpers for tests that deploy whole applications and site files as a
//! system administrator would: copying an app's directory into the server
//! root, the context a Debian `sites-available` file expects, a virtual
//! host's own log files, and the daemon processes Apache started.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{Running, Server};

/// The repository's root, where apache-conf/ and examples/ live.
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// What a Debian Apache gives a `sites-available` file: the variables of
/// /etc/apache2/envvars (here pointing into the test's server root, which
/// also is the harness's DefaultRuntimeDir) and apache2.conf's `combined`
/// log format. mod_log_config is compiled into Debian's apache2.
pub const DEBIAN_CONTEXT: &str = "Define APACHE_LOG_DIR {root}/logs\n\
     Define APACHE_RUN_DIR {root}/run\n\
     LogFormat \"%h %l %u %t \\\"%r\\\" %>s %O \\\"%{Referer}i\\\" \\\"%{User-Agent}i\\\"\" combined\n";

/// Copies every file under `src` (a directory of the repository) to `rel`
/// under the server root, byte for byte, skipping Python caches.
pub fn with_tree(mut server: Server, rel: &str, src: &Path) -> Server {
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            fs::read_dir(&dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name == "__pycache__" || name.ends_with(".pyc") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let inside = path.strip_prefix(src).unwrap().display().to_string();
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            server = server.file_bytes(&format!("{rel}/{inside}"), &bytes);
        }
    }
    server
}

/// A log file under the server's logs/ (a virtual host's ErrorLog or
/// CustomLog), or "" when it does not exist yet.
pub fn log_file(s: &Running, name: &str) -> String {
    let bytes = fs::read(s.path(&format!("logs/{name}"))).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Polls a log under logs/ for `needle` (lines may be written after the
/// response was sent) and returns the first line holding it. Panics with
/// the log when it never shows.
pub fn wait_log_line(s: &Running, name: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = log_file(s, name);
        if let Some(line) = log.lines().find(|l| l.contains(needle)) {
            return line.to_string();
        }
        if Instant::now() > deadline {
            panic!(
                "{needle:?} not in logs/{name}:\n{log}\n--- main error_log ---\n{}",
                s.error_log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The Apache parent's children whose process title is `title` (what
/// `display-name=` sets), as (pid, effective uid).
pub fn daemon_processes(s: &Running, title: &str) -> Vec<(u32, u32)> {
    s.child_pids()
        .into_iter()
        .filter_map(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            if !cmdline.starts_with(title.as_bytes()) {
                return None;
            }
            let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            // "Uid:\treal\teffective\tsaved\tfs"
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, uid))
        })
        .collect()
}

/// Waits until exactly `count` daemon processes titled `title` run, and
/// returns them.
pub fn wait_daemon_processes(s: &Running, title: &str, count: usize) -> Vec<(u32, u32)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let procs = daemon_processes(s, title);
        if procs.len() == count {
            return procs;
        }
        if Instant::now() > deadline {
            panic!(
                "expected {count} processes titled {title:?}, found {procs:?}; children: {:?}",
                s.child_pids()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The user the sample sites' daemon groups run as, as `user=… group=…`:
/// www-data (Apache's own User in the harness) when the tests run as root,
/// nothing otherwise (an unprivileged Apache cannot switch users).
pub fn daemon_account(user: &str, group: &str) -> String {
    if is_root() {
        format!("user={user} group={group}")
    } else {
        String::new()
    }
}

/// Whether the tests run as root (then Apache's children are www-data and
/// daemon groups may switch to other users).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
