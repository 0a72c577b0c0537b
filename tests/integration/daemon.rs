//! Helpers shared by the daemon-mode tests (the `daemon_*.rs` files): finding
//! a group's daemon processes in /proc, a WSGI app that reports which
//! process served it, hand-built uwsgi packets and SHA-256 in hex.
//!
//! Every daemon group in these tests uses `display-name=%{GROUP}`, so its
//! processes show as `(wsgi:NAME)` in /proc/PID/cmdline (and, cut to 15
//! bytes, in /proc/PID/comm): that is how a test tells a daemon from an
//! Apache child, and one test's daemons from another's.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::common::{wait_for, Running};

/// Reports the serving process's pid and a few facts, one `key=value` a line.
/// `/sleep/N` sleeps N seconds first.
pub const PID_APP: &str = r#"
import os, time
def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path.startswith('/sleep/'):
        time.sleep(float(path[len('/sleep/'):]))
    body = ('pid=%d\ngroup=%s\nmultithread=%s\nmultiprocess=%s\n' % (
        os.getpid(),
        environ.get('mod_wsgi.process_group'),
        environ.get('wsgi.multithread'),
        environ.get('wsgi.multiprocess'),
    )).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
"#;

/// The value of `key` in a `key=value` per line body.
pub fn field(body: &str, key: &str) -> Option<String> {
    body.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
}

/// The `pid=` a `PID_APP` response reports; panics with the response if none.
pub fn served_pid(resp: &crate::common::Response) -> u32 {
    field(&resp.text(), "pid")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no pid in the response (status {}): {:?}",
                resp.status,
                resp.text()
            )
        })
}

/// The process title a `display-name=%{GROUP}` daemon of `group` has.
pub fn title(group: &str) -> String {
    format!("(wsgi:{group})")
}

fn cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// State letter from /proc/PID/stat (R, S, Z …).
fn state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Live (not zombie) processes anywhere on the machine whose command line
/// contains `needle`.
pub fn pids_with_cmdline(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if cmdline(pid).is_some_and(|c| c.contains(needle)) && state(pid) != Some('Z') {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// The live daemon processes of `group`: children of the Apache parent whose
/// command line is the group's title.
pub fn daemon_pids(s: &Running, group: &str) -> Vec<u32> {
    let t = title(group);
    s.child_pids()
        .into_iter()
        .filter(|&pid| cmdline(pid).is_some_and(|c| c.starts_with(&t)))
        .collect()
}

/// Waits until `group`'s only live daemon process is another than
/// `before` (it was replaced); returns the new one's pid.
pub fn wait_replaced(s: &Running, group: &str, before: u32, timeout: Duration) -> Option<u32> {
    wait_for(timeout, || {
        let now = daemon_pids(s, group);
        (now.len() == 1 && now[0] != before).then(|| now[0])
    })
}

/// Waits until `group` has exactly `n` live daemon processes; returns them.
pub fn wait_daemons(s: &Running, group: &str, n: usize, timeout: Duration) -> Vec<u32> {
    wait_for(timeout, || {
        let pids = daemon_pids(s, group);
        (pids.len() == n).then_some(pids)
    })
    .unwrap_or_else(|| {
        panic!(
            "group {group} does not have {n} daemon process(es) after {timeout:?}: {:?}",
            daemon_pids(s, group)
        )
    })
}

/// The peak resident set size (VmHWM) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A uwsgi request packet as a plain peer sends it: modifier1 0, the vars
/// block size as u16 LE, modifier2 0, then `u16 LE len, key, u16 LE len,
/// value` pairs. Built by hand so the tests do not trust the module's
/// encoder to describe the format.
pub fn uwsgi_packet(vars: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (k, v) in vars {
        block.extend_from_slice(&(k.len() as u16).to_le_bytes());
        block.extend_from_slice(k.as_bytes());
        block.extend_from_slice(&(v.len() as u16).to_le_bytes());
        block.extend_from_slice(v.as_bytes());
    }
    let mut packet = vec![0u8];
    packet.extend_from_slice(&(block.len() as u16).to_le_bytes());
    packet.push(0);
    packet.extend_from_slice(&block);
    packet
}

/// Sends `vars` as one uwsgi request straight to the daemon socket at
/// `socket` (as a peer that bypasses Apache would) and returns what the
/// daemon answers, read until it closes (10 s at most).
pub fn uwsgi_exchange(socket: &Path, vars: &[(&str, &str)]) -> String {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(&uwsgi_packet(vars)).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Lower-case hex SHA-256 of `data`, as Python's `hexdigest()` gives it.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(data))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
