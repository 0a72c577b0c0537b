//! Persistent connections between Apache children and daemon processes:
//! a connection outlives its request, no process keeps more of them than it
//! has threads, a replaced process's connections are never used, and a
//! request body's true length travels with it (an input filter may change
//! it, so `CONTENT_LENGTH` cannot say where it ends).

use std::io::Write;
use std::time::Duration;

use crate::common::{referee_differs, wait_for};
use crate::common::{Mpm, Server};
use crate::daemon::{served_pid, wait_daemons, PID_APP};

/// The sockets (listener and connections) a process holds open.
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// Requests from several clients leave open connections behind in the
/// daemon (before, each was closed with its response), never more than the
/// process has threads.
fn connections_persist_up_to_threads(mpm: Mpm) {
    if referee_differs("mod_wsgi opens a new daemon connection per request") {
        return;
    }
    let s = Server::new(mpm)
        .file("pid.wsgi", PID_APP)
        .conf(
            "WSGIDaemonProcess keep processes=1 threads=3 display-name=%{GROUP}\n\
             WSGIScriptAlias /app {root}/pid.wsgi process-group=keep\n",
        )
        .start();
    let pid = wait_daemons(&s, "keep", 1, Duration::from_secs(10))[0];
    let before = open_sockets(pid);
    // Eight clients at once reach several Apache threads (processes under
    // prefork), each wanting a connection of its own.
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..15 {
                    let r = s.get("/app");
                    assert_eq!(r.status, 200, "{}", r.text());
                    assert_eq!(served_pid(&r), pid);
                }
            });
        }
    });
    let kept = wait_for(Duration::from_secs(30), || {
        let n = open_sockets(pid).saturating_sub(before);
        (n <= 3).then_some(n)
    })
    .unwrap_or_else(|| {
        panic!(
            "daemon holds {} connections, more than its 3 threads",
            open_sockets(pid) - before
        )
    });
    assert!(kept >= 1, "no connection was kept open after 120 requests");
    // Kept connections carry later requests.
    for _ in 0..10 {
        assert_eq!(s.get("/app").status, 200);
    }
    // A worker closes a surplus connection just after its response has
    // gone out: wait for that, rather than count while it happens.
    let settled = wait_for(Duration::from_secs(30), || {
        (open_sockets(pid).saturating_sub(before) <= 3).then_some(())
    });
    assert!(
        settled.is_some(),
        "daemon holds {} connections, more than its 3 threads",
        open_sockets(pid).saturating_sub(before)
    );
}
per_mpm!(connections_persist_up_to_threads);

/// The daemon process is stopped and replaced while every Apache thread
/// holds a connection to it: requests keep succeeding, served by the new
/// process, none of them sent down a dead connection.
fn replaced_process_is_not_used(mpm: Mpm) {
    let s = Server::new(mpm)
        .file("pid.wsgi", PID_APP)
        .conf(
            "WSGIDaemonProcess swap processes=1 threads=4 display-name=%{GROUP}\n\
             WSGIScriptAlias /app {root}/pid.wsgi process-group=swap\n",
        )
        .start();
    let first = wait_daemons(&s, "swap", 1, Duration::from_secs(10))[0];
    let statuses = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..60 {
                    let r = s.get("/app");
                    statuses
                        .lock()
                        .unwrap()
                        .push((r.status, served_pid_or_zero(&r)));
                    std::thread::sleep(Duration::from_millis(10));
                }
            });
        }
        // Once every client has had answers (connections are held), not
        // after a guess at how long that takes.
        let flowing = wait_for(Duration::from_secs(30), || {
            (statuses.lock().unwrap().len() >= 8).then_some(())
        });
        assert!(flowing.is_some(), "no requests were answered");
        // SAFETY: signalling a process of this test's Apache.
        unsafe { libc::kill(first as i32, libc::SIGTERM) };
    });
    let statuses = statuses.into_inner().unwrap();
    let failed: Vec<_> = statuses.iter().filter(|(st, _)| *st != 200).collect();
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    assert!(
        statuses.iter().any(|&(_, pid)| pid != first),
        "no request reached the replacement process"
    );
    let r = s.get("/app");
    assert_eq!(r.status, 200);
    assert_ne!(served_pid(&r), first);
    assert!(
        !s.error_log().contains("it may have crashed"),
        "{}",
        s.error_log()
    );
}
per_mpm!(replaced_process_is_not_used);

fn served_pid_or_zero(r: &crate::common::Response) -> u32 {
    if r.status == 200 {
        served_pid(r)
    } else {
        0
    }
}

const LENGTH_APP: &str = r#"
def application(environ, start_response):
    data = environ['wsgi.input'].read()
    body = ('read=%d\nhead=%r\n' % (len(data), data[:12])).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    // Written from a thread: gzip's output fills its pipe meanwhile.
    let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// `SetInputFilter DEFLATE` inflates a gzip request body: the application
/// reads the whole inflated body in daemon mode as in embedded mode, though
/// `CONTENT_LENGTH` is the compressed size (before, the daemon stopped
/// reading at that size), small and large, and the connection then serves
/// the next request.
#[test]
fn inflated_body_arrives_whole() {
    let s = Server::new(Mpm::Event)
        .file("len.wsgi", LENGTH_APP)
        .conf(&format!(
            "LoadModule deflate_module {}/mod_deflate.so\n\
             WSGIDaemonProcess inflate processes=1 threads=2 display-name=%{{GROUP}}\n\
             WSGIScriptAlias /daemon {{root}}/len.wsgi process-group=inflate\n\
             WSGIScriptAlias /embedded {{root}}/len.wsgi\n\
             <Location />\n  SetInputFilter DEFLATE\n</Location>\n",
            crate::common::server::MODULES_DIR
        ))
        .start();
    for size in [50_000usize, 3 << 20] {
        // Letters from a small generator: compressible, but well under
        // mod_deflate's inflate ratio limit (200).
        let mut x: u32 = 1;
        let plain: Vec<u8> = (0..size)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                b'a' + ((x >> 16) % 16) as u8
            })
            .collect();
        let packed = gzip(&plain);
        assert!(packed.len() < size * 2 / 3, "{} of {size}", packed.len());
        for path in ["/embedded", "/daemon", "/daemon"] {
            let r = s.request("POST", path, &[("Content-Encoding", "gzip")], &packed);
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            assert!(
                r.text().contains(&format!("read={size}\n")),
                "{path} with {size} bytes: {}",
                r.text()
            );
        }
    }
    assert_eq!(s.get("/daemon").status, 200);
}
