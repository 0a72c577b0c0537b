//! Daemon processes failing: crashing mid-request, never
//! starting or losing their socket, requests running too long or
//! waiting too long for a thread, and a process whose GIL is stuck.
//! Each failure must turn into a prompt, specific HTTP status and a log line,
//! and the group must recover by itself.

use std::time::{Duration, Instant};

use crate::common::{referee_differs, wait_for};
use crate::common::{Mpm, Running, Server};
use crate::daemon::{daemon_pids, served_pid, wait_daemons, wait_replaced, PID_APP};

const CRASH_APP: &str = r#"
import os, time
def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path == '/crash/exit':
        os._exit(1)
    if path == '/crash/kill':
        os.kill(os.getpid(), 9)
        time.sleep(5)
    if path == '/crash/segv':
        import ctypes
        ctypes.string_at(0)
    body = ('pid=%d\n' % os.getpid()).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

/// A request whose daemon process dies under it gets 502 at once (not after
/// socket-timeout, 60 s), the group keeps serving, and the dead process is
/// replaced (after the back-off of up to 2 s for a process that dies young).
fn crash_is_502_and_process_replaced(mpm: Mpm, how: &str) {
    if referee_differs("mod_wsgi 4.9.4 answers 500, not 502, for a daemon that died") {
        return;
    }
    let s = Server::new(mpm)
        .file("crash.wsgi", CRASH_APP)
        .conf(
            "WSGIDaemonProcess crashy processes=2 threads=2 socket-timeout=60 \
             display-name=%{GROUP}\n\
             WSGIScriptAlias /app {root}/crash.wsgi process-group=crashy\n",
        )
        .start();
    let before = wait_daemons(&s, "crashy", 2, Duration::from_secs(10));
    let start = Instant::now();
    let r = s.get(&format!("/app/crash/{how}"));
    let took = start.elapsed();
    assert_eq!(r.status, 502, "{how}: {}", r.text());
    // At once means before socket-timeout (60 s) would have answered; the
    // bound only tells the two apart.
    assert!(
        took < Duration::from_secs(30),
        "{how}: the 502 took {took:?}"
    );
    assert!(
        s.wait_log("closed the connection", Duration::from_secs(30)),
        "{how}: the log does not say the daemon went away"
    );
    // Served meanwhile, by the survivor or a replacement.
    for _ in 0..4 {
        let r = s.get("/app/ok");
        assert_eq!(r.status, 200, "{how}: after the crash: {}", r.text());
    }
    let died: Vec<u32> = before
        .iter()
        .copied()
        .filter(|&p| !daemon_pids(&s, "crashy").contains(&p))
        .collect();
    assert_eq!(
        died.len(),
        1,
        "{how}: expected one dead process of {before:?}"
    );
    let replaced = wait_for(Duration::from_secs(30), || {
        let now = daemon_pids(&s, "crashy");
        (now.len() == 2 && !now.contains(&died[0])).then_some(now)
    });
    assert!(
        replaced.is_some(),
        "{how}: pid {} not replaced within 30 s: {:?}",
        died[0],
        daemon_pids(&s, "crashy")
    );
}

#[test]
fn crash_by_os_exit() {
    crash_is_502_and_process_replaced(Mpm::Event, "exit");
}

#[test]
fn crash_by_sigkill() {
    crash_is_502_and_process_replaced(Mpm::Worker, "kill");
}

#[test]
fn crash_by_segfault() {
    crash_is_502_and_process_replaced(Mpm::Prefork, "segv");
}

/// A group whose processes die before they ever accept: its socket exists
/// and connect() succeeds into the listen backlog, so the request waits for
/// socket-timeout (504) or connect-timeout (503). Either way it is answered
/// within seconds, and the log says both why the daemon fails and what the
/// request got.
#[test]
fn group_that_cannot_start_answers_promptly() {
    let s = Server::new(Mpm::Event)
        .file("pid.wsgi", PID_APP)
        .conf(
            "WSGIDaemonProcess broken python-home=/nonexistent threads=1 \
             connect-timeout=1 socket-timeout=2 display-name=%{GROUP}\n\
             WSGIScriptAlias /app {root}/pid.wsgi process-group=broken\n",
        )
        .start();
    assert!(
        s.wait_log("/nonexistent", Duration::from_secs(30)),
        "the log does not say why the daemon fails"
    );
    let start = Instant::now();
    let r = s.get("/app");
    let took = start.elapsed();
    assert!([503, 504].contains(&r.status), "{} {}", r.status, r.text());
    // Within the connect/socket timeouts (1 s, 2 s), not Apache's Timeout
    // (60 s): the bound only tells those apart.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let log = s.error_log();
    assert!(
        log.contains("Timeout when reading response headers from daemon process 'broken'")
            || log.contains("Unable to connect to WSGI daemon process 'broken'")
            || log.contains("WSGI daemon process group 'broken' cannot start"),
        "no log line for the failed request"
    );
}

/// With the socket file gone, connect() fails outright: 503 once
/// connect-timeout (1 s) has passed, with a log line naming the socket.
///
/// No request goes to the group before the file is removed: an Apache
/// child keeps its connection to a daemon after a request, and a kept
/// connection goes on carrying requests to the live daemon whatever
/// happened to the file's name (by design: the process is healthy, and
/// failing its requests because a cleaner removed a path would help no
/// one). Only a new connection needs the file, and that is what this
/// checks.
#[test]
fn missing_socket_is_503_after_connect_timeout() {
    if referee_differs("mod_wsgi names its sockets wsgi.PID.N.N.sock") {
        return;
    }
    let s = Server::new(Mpm::Worker)
        .file("pid.wsgi", PID_APP)
        .conf(
            "WSGIDaemonProcess nosock threads=1 connect-timeout=1 socket-timeout=60 \
             display-name=%{GROUP}\n\
             WSGIScriptAlias /app {root}/pid.wsgi process-group=nosock\n",
        )
        .start();
    // The daemon is up, but no request has been sent: a request would leave
    // the Apache thread a kept connection, which needs no socket file.
    wait_daemons(&s, "nosock", 1, Duration::from_secs(30));
    let socket = s.path("run/wsgi_rs.nosock.sock");
    std::fs::remove_file(&socket).unwrap();
    let start = Instant::now();
    let r = s.get("/app");
    let took = start.elapsed();
    assert_eq!(r.status, 503, "{}", r.text());
    // At least connect-timeout; the upper bound only tells it from
    // socket-timeout (60 s).
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(30),
        "503 after {took:?}, expected about connect-timeout (1 s)"
    );
    assert!(
        s.wait_log(
            "Unable to connect to WSGI daemon process 'nosock'",
            Duration::from_secs(30)
        ),
        "no log line for the failed connect"
    );
    assert!(s.error_log().contains(&socket.display().to_string()));
}

const SLOW_APP: &str = r#"
import os, time
def slow_handler(environ, seconds):
    time.sleep(seconds)
def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    query = environ.get('QUERY_STRING', '')
    if query:
        open('{root}/var/ran-%s' % query, 'w').close()
    if path.startswith('/sleep/'):
        slow_handler(environ, float(path[len('/sleep/'):]))
    body = ('pid=%d\n' % os.getpid()).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

fn slow_server(mpm: Mpm, group: &str, options: &str) -> Running {
    Server::new(mpm)
        .file("slow.wsgi", SLOW_APP)
        .conf(&format!(
            "WSGIDaemonProcess {group} {options} display-name=%{{GROUP}}\n\
             WSGIScriptAlias /app {{root}}/slow.wsgi process-group={group}\n"
        ))
        .start()
}

/// request-timeout=2: a request stuck for 120 s is answered 504 after about
/// 2 s (not after socket-timeout, 60 s), the stack of the stuck thread is
/// logged, and the process is replaced (without waiting for the stuck
/// request to finish).
#[test]
fn request_timeout_is_504_with_stack_and_recycles() {
    if referee_differs("mod_wsgi 4.9.4 answers 500 to a request that timed out") {
        return;
    }
    let s = slow_server(
        Mpm::Event,
        "stuck",
        "processes=1 threads=2 request-timeout=2 socket-timeout=60",
    );
    let before = served_pid(&s.get("/app"));
    let start = Instant::now();
    let r = s.get("/app/sleep/120");
    let took = start.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(
        // request-timeout (2 s), not socket-timeout (60 s) nor the
        // request's own end (120 s).
        took >= Duration::from_millis(1900) && took < Duration::from_secs(30),
        "504 after {took:?}"
    );
    assert!(
        s.wait_log("slow_handler", Duration::from_secs(30)),
        "the stuck thread's Python stack is not in the log"
    );
    assert!(s.error_log().contains("request timeout"));
    let after = wait_replaced(&s, "stuck", before, Duration::from_secs(30));
    assert!(
        after.is_some(),
        "process {before} not replaced within 30 s of the timeout: {:?}",
        daemon_pids(&s, "stuck")
    );
    let r = s.get("/app");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(served_pid(&r), before);
}

/// queue-timeout=1 with one thread: a request that waited more than 1 s for
/// the busy thread is answered 504 without the application running.
#[test]
fn queue_timeout_is_504_without_running_the_app() {
    let s = slow_server(
        Mpm::Worker,
        "queued",
        "processes=1 threads=1 queue-timeout=1 socket-timeout=60",
    );
    // A request sent while the process still starts waits in the socket's
    // backlog, which counts as queueing: on a loaded machine a start of
    // more than 1 s gets it a 504. Wait until the group serves.
    assert!(
        wait_for(Duration::from_secs(30), || (s.get("/app").status == 200)
            .then_some(()))
        .is_some(),
        "the group never served"
    );
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| s.get("/app/sleep/4?first"));
        assert!(
            wait_for(Duration::from_secs(30), || s
                .path("var/ran-first")
                .exists()
                .then_some(()))
            .is_some(),
            "the first request did not start"
        );
        let second = scope.spawn(|| {
            let start = Instant::now();
            let r = s.get("/app?second");
            (r, start.elapsed())
        });
        (first.join().unwrap(), second.join().unwrap())
    });
    assert_eq!(first.status, 200, "{}", first.text());
    let (second, took) = second;
    assert_eq!(second.status, 504, "after {took:?}: {}", second.text());
    // Answered by the queue timeout once the thread is free (after the
    // first request's 4 s), not after socket-timeout (60 s).
    assert!(took < Duration::from_secs(30), "504 after {took:?}");
    assert!(
        !s.path("var/ran-second").exists(),
        "the application ran for a request that timed out in the queue"
    );
    assert!(
        wait_for(Duration::from_secs(30), || s
            .error_log()
            .to_lowercase()
            .contains("queue timeout")
            .then_some(()))
        .is_some(),
        "the queue timeout is not logged"
    );
    // The thread is free again.
    assert_eq!(s.get("/app?third").status, 200);
}

const GIL_APP: &str = r#"
import ctypes, os
def application(environ, start_response):
    if environ.get('PATH_INFO') == '/hold-gil':
        # PyDLL does not release the GIL around the call: no other Python
        # thread can run for 120 s.
        ctypes.PyDLL(None).sleep(120)
    body = ('pid=%d\n' % os.getpid()).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

/// deadlock-timeout=2: a process whose GIL is held for 120 s by a C call is
/// killed and replaced within about 5 s, and later requests succeed.
#[test]
fn deadlock_timeout_replaces_stuck_process() {
    if referee_differs("mod_wsgi 4.9.4 notices the deadlock only after about 8 s") {
        return;
    }
    let s = Server::new(Mpm::Prefork)
        .file("gil.wsgi", GIL_APP)
        .conf(
            "WSGIDaemonProcess gil processes=1 threads=2 deadlock-timeout=2 \
             display-name=%{GROUP}\n\
             WSGIScriptAlias /app {root}/gil.wsgi process-group=gil\n",
        )
        .start();
    let before = served_pid(&s.get("/app"));
    let start = Instant::now();
    let stuck = std::thread::scope(|scope| {
        let stuck = scope.spawn(|| s.get("/app/hold-gil"));
        // Replaced by the deadlock timeout, not freed by the end of the
        // 120 s C call: anything well under 120 s tells the two apart.
        let replaced = wait_replaced(&s, "gil", before, Duration::from_secs(60));
        assert!(
            replaced.is_some(),
            "stuck process {before} not replaced after {:?}",
            start.elapsed()
        );
        stuck.join().unwrap()
    });
    let took = start.elapsed();
    assert!(took < Duration::from_secs(60), "replaced after {took:?}");
    assert_eq!(stuck.status, 502, "{}", stuck.text());
    assert!(s.error_log().contains("deadlocked"));
    let r = s.get("/app");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(served_pid(&r), before);
}
