//! Reloading a daemon group's script under load: touching
//! the script replaces the group's processes, so every module is imported
//! afresh; requests in flight or arriving meanwhile are never lost, and
//! request bodies are never half-consumed by a process that then steps
//! aside.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::apps::pattern;
use crate::common::{referee_differs, wait_for, wait_for_count, StopOnDrop};
use crate::common::{Mpm, Running, Server};
use crate::daemon::{daemon_pids, field, sha256_hex, wait_daemons};

fn versioned_app(version: &str) -> String {
    format!(
        r#"
import os, hashlib
import reload_helper
VERSION = '{version}'
def application(environ, start_response):
    data = environ['wsgi.input'].read()
    body = ('version=%s\nhelper=%s\npid=%d\nlength=%d\nsha=%s\n' % (
        VERSION, reload_helper.VALUE, os.getpid(), len(data), hashlib.sha256(data).hexdigest(),
    )).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
"#
    )
}

fn helper(value: &str) -> String {
    format!("VALUE = '{value}'\n")
}

fn reload_server(mpm: Mpm, group: &str, processes: u32, threads: u32) -> Running {
    Server::new(mpm)
        .file("app.wsgi", &versioned_app("v1"))
        .file("lib/reload_helper.py", &helper("h1"))
        .conf(&format!(
            "WSGIDaemonProcess {group} processes={processes} threads={threads} \
             python-path={{root}}/lib display-name=%{{GROUP}}\n\
             WSGIScriptAlias /app {{root}}/app.wsgi process-group={group}\n"
        ))
        .start()
}

/// One client's view of a response.
struct Seen {
    started: Instant,
    status: u16,
    complete: bool,
    body: String,
}

/// Sends requests from `clients` threads until `during`, run meanwhile on
/// the calling thread with the count of responses so far, returns; `body`
/// gives the request body for client i's n-th request. Returns everything
/// seen.
fn hammer(
    s: &Running,
    clients: usize,
    body: impl Fn(usize, usize) -> Vec<u8> + Sync,
    during: impl FnOnce(&AtomicUsize),
) -> Vec<(Vec<u8>, Seen)> {
    let stop = AtomicBool::new(false);
    let stop = &stop;
    let answered = AtomicUsize::new(0);
    let answered = &answered;
    std::thread::scope(|scope| {
        let _stop = StopOnDrop(stop);
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let body = &body;
                scope.spawn(move || {
                    let mut seen = Vec::new();
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let data = body(i, n);
                        n += 1;
                        let started = Instant::now();
                        // The harness client panics on a 10 s silence, which
                        // is how a hang shows.
                        let r = if data.is_empty() {
                            s.get("/app")
                        } else {
                            s.request("POST", "/app", &[], &data)
                        };
                        answered.fetch_add(1, Ordering::SeqCst);
                        seen.push((
                            data,
                            Seen {
                                started,
                                status: r.status,
                                complete: r.complete,
                                body: r.text(),
                            },
                        ));
                    }
                    seen
                })
            })
            .collect();
        during(answered);
        stop.store(true, Ordering::SeqCst);
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a client thread panicked (hang?)"))
            .collect()
    })
}

/// 2 processes x 4 threads, 8 clients; once requests flow, the script and
/// a helper module it imports from `python-path` are both changed and the
/// script touched. No request may fail or hang; once a replacement process
/// is seen running, every request started from then on is answered by new
/// processes that see both changes (the helper too: the whole process
/// restarted, not just the script). The clients run until the replacement
/// is seen and 16 more answers came, however long a loaded machine takes.
fn touch_reloads_under_load(mpm: Mpm) {
    if referee_differs("mod_wsgi 4.9.4 holds requests for seconds while it reloads") {
        return;
    }
    let s = reload_server(mpm, "reload", 2, 4);
    let old = wait_daemons(&s, "reload", 2, Duration::from_secs(10));
    let mut touched = None;
    let mut replaced = None;
    let seen = hammer(
        &s,
        8,
        |_, _| Vec::new(),
        |answered| {
            // Changed once requests are flowing.
            wait_for_count(answered, 16, Duration::from_secs(30));
            s.write_file("lib/reload_helper.py", &helper("h2"));
            s.write_file("app.wsgi", &versioned_app("v2"));
            s.touch("app.wsgi");
            touched = Some(Instant::now());
            // The replacement is up: the group is whole again with a process
            // the touch made. However long that takes on a loaded machine,
            // requests started from then on must all be answered by v2.
            let up = wait_for(Duration::from_secs(60), || {
                let pids = daemon_pids(&s, "reload");
                (pids.len() == 2 && pids.iter().any(|p| !old.contains(p))).then_some(())
            });
            assert!(up.is_some(), "no replacement process after the touch");
            replaced = Some(Instant::now());
            // 16 answers from now: with 8 clients, at least 8 of them are
            // for requests started after the replacement was seen.
            let so_far = answered.load(Ordering::SeqCst);
            wait_for_count(answered, so_far + 16, Duration::from_secs(60));
        },
    );
    let touched = touched.unwrap();
    let replaced = replaced.unwrap();
    let failed: Vec<String> = seen
        .iter()
        .filter(|(_, r)| r.status != 200 || !r.complete)
        .map(|(_, r)| format!("{} {}", r.status, r.body))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the reload: {failed:?}",
        failed.len(),
        seen.len()
    );
    let late: Vec<&Seen> = seen
        .iter()
        .map(|(_, r)| r)
        .filter(|r| r.started > replaced)
        .collect();
    assert!(
        late.len() >= 8,
        "too few requests after the replacement ({} ms after the touch); requests started at (ms from the touch): {:?}",
        replaced.duration_since(touched).as_millis(),
        seen.iter()
            .map(|(_, r)| r.started.saturating_duration_since(touched).as_millis())
            .filter(|&ms| ms > 0)
            .collect::<Vec<_>>()
    );
    let mut late_pids = HashSet::new();
    for r in &late {
        assert_eq!(
            (
                field(&r.body, "version").as_deref(),
                field(&r.body, "helper").as_deref()
            ),
            (Some("v2"), Some("h2")),
            "stale answer after the replacement was up: {}",
            r.body
        );
        late_pids.insert(field(&r.body, "pid").unwrap().parse::<u32>().unwrap());
    }
    // A process that ran v1 must not serve again: it restarts to reload.
    // (One that had not loaded the script before the touch may serve v2,
    // as persistent connections can leave it without a request until then.)
    let ran_v1: HashSet<u32> = seen
        .iter()
        .filter(|(_, r)| field(&r.body, "version").as_deref() == Some("v1"))
        .map(|(_, r)| field(&r.body, "pid").unwrap().parse::<u32>().unwrap())
        .collect();
    assert!(
        !ran_v1.is_empty() && ran_v1.iter().all(|p| old.contains(p)),
        "v1 answers came from {ran_v1:?}, not from the first processes {old:?}"
    );
    assert!(
        late_pids.iter().all(|p| !ran_v1.contains(p)),
        "v2 served by a process that ran v1: {late_pids:?} vs {ran_v1:?}"
    );
    wait_daemons(&s, "reload", 2, Duration::from_secs(5));
}
per_mpm!(touch_reloads_under_load);

/// While the script is touched twice, concurrent 10 KiB (sent with the
/// request head), 100 KiB and 300 KiB (streamed after the daemon's go-ahead)
/// POST bodies all arrive whole, each at exactly one process.
#[test]
fn post_bodies_survive_reload() {
    let s = reload_server(Mpm::Event, "posts", 2, 2);
    wait_daemons(&s, "posts", 2, Duration::from_secs(10));
    let sizes = [10 * 1024, 100 * 1024, 300 * 1024];
    let base = pattern(300 * 1024 + 64);
    let seen = hammer(
        &s,
        6,
        |i, n| {
            // Different sizes and offsets per client and request, so a body
            // mixed with another's or shifted would show in the hash.
            let size = sizes[(i + n) % sizes.len()];
            let off = (i * 7 + n) % 64;
            base[off..off + size].to_vec()
        },
        |answered| {
            for v in ["v2", "v3"] {
                // Each change lands among requests of the previous version.
                let so_far = answered.load(Ordering::SeqCst);
                wait_for_count(answered, so_far + 6, Duration::from_secs(30));
                s.write_file("app.wsgi", &versioned_app(v));
                s.touch("app.wsgi");
            }
            // And the last version serves some too.
            let so_far = answered.load(Ordering::SeqCst);
            wait_for_count(answered, so_far + 6, Duration::from_secs(30));
        },
    );
    let mut versions = HashSet::new();
    for (data, r) in &seen {
        assert_eq!(
            (r.status, r.complete),
            (200, true),
            "POST of {} bytes failed: {}",
            data.len(),
            r.body
        );
        assert_eq!(
            field(&r.body, "length"),
            Some(data.len().to_string()),
            "{}",
            r.body
        );
        assert_eq!(
            field(&r.body, "sha"),
            Some(sha256_hex(data)),
            "a {} byte body arrived changed",
            data.len()
        );
        versions.insert(field(&r.body, "version").unwrap());
    }
    assert!(seen.len() >= 12, "only {} requests completed", seen.len());
    assert!(
        versions.contains("v3"),
        "the reloads never happened: {versions:?}"
    );
}
