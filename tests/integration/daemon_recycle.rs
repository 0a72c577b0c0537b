//! Recycling daemon processes: maximum-requests,
//! restart-interval and inactivity-timeout replace a process without
//! failing a request; graceful-timeout lets an in-flight request finish
//! across a recycle; shutdown-timeout bounds how long a running request can
//! hold up Apache's shutdown.

use std::time::{Duration, Instant};

use crate::common::{referee_differs, wait_for};
use crate::common::{Mpm, Running, Server};
use crate::daemon::{daemon_pids, served_pid, wait_daemons, PID_APP};

/// `PID_APP` that first leaves a mark in `var/` when it is asked to sleep,
/// so a test can wait until a slow request is running.
const MARKING_APP: &str = r#"
import os
_app = None
def application(environ, start_response):
    global _app
    if _app is None:
        scope = {}
        exec(open('{root}/pid_app.py').read(), scope)
        _app = scope['application']
    if environ.get('PATH_INFO', '').startswith('/sleep/'):
        open('{root}/var/sleeping-%d' % os.getpid(), 'w').close()
    return _app(environ, start_response)
"#;

/// Starts `server` with daemon group `group` (`options`) serving /app from
/// `pid.wsgi`.
fn with_group(server: Server, group: &str, options: &str) -> Running {
    server
        .conf(&format!(
            "WSGIDaemonProcess {group} {options} display-name=%{{GROUP}}\n\
             WSGIScriptAlias /app {{root}}/pid.wsgi process-group={group}\n"
        ))
        .start()
}

/// A daemon group serving `PID_APP`.
fn pid_server(mpm: Mpm, group: &str, options: &str) -> Running {
    with_group(Server::new(mpm).file("pid.wsgi", PID_APP), group, options)
}

/// A daemon group serving `MARKING_APP`, for tests that wait for a slow
/// request (the wrapper's first call is slower, so it is kept out of the
/// others).
fn marking_server(mpm: Mpm, group: &str, options: &str) -> Running {
    let server = Server::new(mpm)
        .file("pid_app.py", PID_APP)
        .file("pid.wsgi", MARKING_APP);
    with_group(server, group, options)
}

/// Waits until process `pid` is running a `/sleep/` request.
fn wait_sleeping(s: &Running, pid: u32) {
    let mark = s.path(&format!("var/sleeping-{pid}"));
    let running = wait_for(Duration::from_secs(30), || mark.exists().then_some(()));
    assert!(running.is_some(), "the slow request never started");
}

/// maximum-requests=5 with one process: sequential requests all succeed
/// and the process is replaced, never before its fifth request. Under
/// mod_wsgi after exactly five (the process stops, then its replacement
/// starts). Under ours without a template the process serves on past five
/// until its successor serves (see daemon_succession), and for the moment
/// its monitor takes to notice (a tick) both may answer: so each process
/// served at least five requests before its successor first answered
/// (daemon_template checks "exactly five" with a template, which forks
/// successors in time).
#[test]
fn maximum_requests_recycles_every_five() {
    let s = pid_server(
        Mpm::Event,
        "maxreq",
        "processes=1 threads=2 maximum-requests=5",
    );
    let mut pids: Vec<u32> = Vec::new();
    let mut order: Vec<u32> = Vec::new();
    let replaced = wait_for(Duration::from_secs(60), || {
        let r = s.get("/app");
        assert_eq!(r.status, 200, "request {}: {}", pids.len(), r.text());
        let pid = served_pid(&r);
        pids.push(pid);
        if !order.contains(&pid) {
            order.push(pid);
        }
        (order.len() >= 3).then_some(())
    });
    assert!(replaced.is_some(), "not replaced twice: {pids:?}");
    for pair in order.windows(2) {
        let next = pids.iter().position(|&p| p == pair[1]).unwrap();
        let served = pids[..next].iter().filter(|&&p| p == pair[0]).count();
        assert!(
            served >= 5,
            "{} answered after {} served only {served}: {pids:?}",
            pair[1],
            pair[0]
        );
    }
    if crate::common::module() == crate::common::Module::ModWsgi {
        let runs: Vec<&[u32]> = pids.chunk_by(|a, b| a == b).collect();
        for run in &runs[..runs.len() - 1] {
            assert_eq!(run.len(), 5, "{pids:?}");
        }
    }
}

/// restart-interval=2: under a steady trickle of requests the process is
/// still replaced, and no request fails meanwhile.
#[test]
fn restart_interval_recycles_under_a_trickle() {
    if referee_differs("mod_wsgi 4.9.4 applies restart-interval only after about 8 s") {
        return;
    }
    let s = pid_server(
        Mpm::Worker,
        "interval",
        "processes=1 threads=2 restart-interval=2",
    );
    let first = wait_daemons(&s, "interval", 1, Duration::from_secs(10))[0];
    // Requests keep arriving (so inactivity cannot be the cause) until a
    // new process serves one; every one of them succeeds meanwhile. The
    // bound is generous: a loaded machine delays the monitor's tick, not
    // the outcome.
    let start = Instant::now();
    let replaced = wait_for(Duration::from_secs(30), || {
        let r = s.get("/app");
        assert_eq!(r.status, 200, "after {:?}: {}", start.elapsed(), r.text());
        (served_pid(&r) != first).then_some(())
    });
    assert!(
        replaced.is_some(),
        "the process was never replaced within 30 s of a 2 s restart-interval"
    );
}

/// inactivity-timeout=2: an idle process is replaced, and the next request
/// is served by its replacement.
#[test]
fn inactivity_timeout_recycles_idle_process() {
    if referee_differs("mod_wsgi 4.9.4 checks inactivity-timeout at a coarser interval") {
        return;
    }
    let s = pid_server(
        Mpm::Prefork,
        "idle",
        "processes=1 threads=2 inactivity-timeout=2",
    );
    let first = served_pid(&s.get("/app"));
    // Nothing is sent meanwhile: only the process list is read.
    let replaced = wait_for(Duration::from_secs(30), || {
        (!daemon_pids(&s, "idle").contains(&first)).then_some(())
    });
    assert!(
        replaced.is_some(),
        "process {first} still there after 30 s idle: {:?}",
        daemon_pids(&s, "idle")
    );
    let r = s.get("/app");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(served_pid(&r), first);
}

/// A request that is running when its process reaches maximum-requests
/// finishes normally (graceful-timeout, 60 s, is ample for its 1.5 s)
/// before the process exits.
#[test]
fn in_flight_request_survives_a_recycle() {
    if referee_differs("mod_wsgi 4.9.4 does not replace the process within 5 s") {
        return;
    }
    let s = marking_server(
        Mpm::Event,
        "graceful",
        "processes=1 threads=2 maximum-requests=3 graceful-timeout=60",
    );
    let first = served_pid(&s.get("/app"));
    let (slow, quick) = std::thread::scope(|scope| {
        let slow = scope.spawn(|| s.get("/app/sleep/1.5"));
        wait_sleeping(&s, first);
        // The third request of the process: the recycle starts as it is
        // taken, with the slow one still running.
        let quick = s.get("/app");
        (slow.join().unwrap(), quick)
    });
    assert_eq!(quick.status, 200, "{}", quick.text());
    assert_eq!(served_pid(&quick), first);
    assert_eq!(
        (slow.status, slow.complete),
        (200, true),
        "in-flight request cut by the recycle: {}",
        slow.text()
    );
    assert_eq!(served_pid(&slow), first);
    let replaced = wait_for(Duration::from_secs(30), || {
        let now = daemon_pids(&s, "graceful");
        (now.len() == 1 && now[0] != first).then_some(())
    });
    assert!(replaced.is_some(), "process {first} was not recycled");
    assert_eq!(s.get("/app").status, 200);
}

/// shutdown-timeout=1: a 10 s request in progress does not keep Apache from
/// stopping within about 3 s.
#[test]
fn shutdown_timeout_bounds_stop() {
    if referee_differs("Apache waits about 8 s for mod_wsgi 4.9.4's busy daemon") {
        return;
    }
    let s = marking_server(
        Mpm::Worker,
        "stopper",
        "processes=1 threads=2 shutdown-timeout=1",
    );
    assert_eq!(s.get("/app").status, 200);
    let mut stream = s.connect();
    let req = crate::common::http::build_request("GET", "/app/sleep/10", s.port, &[], b"");
    let slow = std::thread::spawn(move || {
        // The connection is cut by the stop; any outcome but a hang is fine
        // for the client.
        std::io::Write::write_all(&mut stream, &req).unwrap();
        let start = Instant::now();
        let _ = crate::common::http::read_to_eof(&mut stream);
        start.elapsed()
    });
    let pid = daemon_pids(&s, "stopper")[0];
    wait_sleeping(&s, pid);
    let (took, _escalated, log) = s.shutdown(Duration::from_secs(30));
    let client_waited = slow.join().unwrap();
    // Under the 9 s after which Apache kills what is left (and the 10 s
    // the request sleeps), with room for a loaded machine.
    assert!(
        took < Duration::from_secs(8),
        "Apache took {took:?} to stop:\n{}",
        log.lines().rev().take(15).collect::<Vec<_>>().join("\n")
    );
    assert!(client_waited < Duration::from_secs(9), "{client_waited:?}");
}
