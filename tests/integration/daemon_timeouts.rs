//! Request timeouts that keep the process (`interrupt-timeout=`, mod_wsgi
//! 6): a request past `request-timeout` gets 504 and `mod_wsgi.RequestTimeout`
//! in its thread, the process keeps serving; only a thread that does not
//! unwind within the grace (blocked in one long C call) gets its process
//! replaced. And `response-socket-timeout=`: a response Apache stops
//! reading frees its daemon thread. Ours only: Debian's mod_wsgi 4.9.4 has
//! no interrupt-timeout and logs other words.
//!
//! The groups set `socket-timeout=60`, far from the 1 s request timeout, so
//! that the 504 a test expects cannot come from the socket timeout instead.

use std::io::Write;
use std::time::Duration;

use crate::common::{referee_differs, wait_for, Mpm, Running, Server};
use crate::daemon::{daemon_pids, served_pid, wait_daemons, wait_replaced};

/// `/spin` runs Python between short sleeps until interrupted (and notes
/// that it was, then re-raises); `/block` sleeps in one C call;
/// `/hold-gil` waits forever in C with the GIL held; `/big` streams 64 MiB;
/// anything else reports the pid.
const APP: &str = r#"
import os, time, mod_wsgi
def mark(name):
    open(os.path.join('{root}', 'var', name), 'w').close()
def spin_until_interrupted():
    while True:
        time.sleep(0.02)
def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path == '/spin':
        mark('spinning')
        try:
            spin_until_interrupted()
        except mod_wsgi.RequestTimeout:
            mark('unwound')
            raise
    if path == '/block':
        mark('blocking')
        time.sleep(120)
    if path == '/hold-gil':
        mark('holding')
        # PyDLL keeps the GIL across the call, and pause() never returns.
        import ctypes
        ctypes.PyDLL(None).pause()
    if path == '/big':
        mark('streaming')
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        chunk = b'x' * (1 << 20)
        return (chunk for _ in range(64))
    body = ('pid=%d\n' % os.getpid()).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

fn server(mpm: Mpm, group: &str, options: &str) -> Running {
    server_in(mpm, group, options, "")
}

/// `server` with more options for the alias (an application group).
fn server_in(mpm: Mpm, group: &str, options: &str, alias: &str) -> Running {
    Server::new(mpm)
        .file("app.wsgi", APP)
        .conf(&format!(
            "WSGIDaemonProcess {group} {options} display-name=%{{GROUP}}\n\
             WSGIScriptAlias /app {{root}}/app.wsgi process-group={group} {alias}\n"
        ))
        .start()
}

/// Waits for the app's marker file `var/NAME`.
fn wait_mark(s: &Running, name: &str) {
    assert!(
        wait_for(Duration::from_secs(30), || s
            .path(&format!("var/{name}"))
            .exists()
            .then_some(()))
        .is_some(),
        "the application never marked '{name}'"
    );
}

/// A request spinning in Python past request-timeout is answered 504, its
/// thread gets mod_wsgi.RequestTimeout and unwinds, and the same process
/// (same pid) serves the other thread's requests meanwhile and both
/// threads' requests afterwards: nothing is restarted. In the default
/// application group's sub-interpreter, and in the main one.
#[test]
fn interrupted_request_is_504_and_the_process_lives() {
    interrupted_request_in("");
}

#[test]
fn interrupted_request_in_the_main_interpreter() {
    interrupted_request_in("application-group=%{GLOBAL}");
}

fn interrupted_request_in(alias: &str) {
    if referee_differs("mod_wsgi 4.9.4 has no interrupt-timeout") {
        return;
    }
    let s = server_in(
        Mpm::Event,
        "keep",
        "processes=1 threads=2 request-timeout=1 interrupt-timeout=30 socket-timeout=60",
        alias,
    );
    let pid = served_pid(&s.get("/app"));
    let stuck = std::thread::scope(|scope| {
        let stuck = scope.spawn(|| s.get("/app/spin"));
        wait_mark(&s, "spinning");
        // The other thread serves while the first one spins.
        let r = s.get("/app/other");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(served_pid(&r), pid);
        stuck.join().unwrap()
    });
    assert_eq!(stuck.status, 504, "{}", stuck.text());
    wait_mark(&s, "unwound");
    assert!(
        s.wait_log("WSGIRS440", Duration::from_secs(30)),
        "the timeout is not logged"
    );
    let log = s.error_log();
    let line = log.lines().find(|l| l.contains("WSGIRS440")).unwrap();
    assert!(
        line.contains("'/app/spin'")
            && line.contains(&format!("pid {pid} thread "))
            && line.contains("mod_wsgi.RequestTimeout"),
        "{line}"
    );
    assert!(
        log.contains("spin_until_interrupted"),
        "the thread's Python stack is not logged"
    );
    // Both threads are free again: two requests at once, same process.
    let both = std::thread::scope(|scope| {
        let a = scope.spawn(|| s.get("/app/a"));
        let b = scope.spawn(|| s.get("/app/b"));
        [a.join().unwrap(), b.join().unwrap()]
    });
    for r in &both {
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(served_pid(r), pid);
    }
    assert_eq!(daemon_pids(&s, "keep"), [pid]);
    let log = s.error_log();
    assert!(
        !log.contains("will restart") && !log.contains("WSGIRS441"),
        "the process was to be replaced:\n{log}"
    );
}

/// A thread blocked in one long C call (time.sleep(120)) cannot see the
/// exception: once interrupt-timeout passes, the process is replaced
/// (without waiting for the stuck request), and the replacement serves.
#[test]
fn thread_blocked_in_c_gets_its_process_replaced() {
    if referee_differs("mod_wsgi 4.9.4 has no interrupt-timeout") {
        return;
    }
    let s = server(
        Mpm::Worker,
        "blocked",
        "processes=1 threads=1 request-timeout=1 interrupt-timeout=1 socket-timeout=60",
    );
    let before = served_pid(&s.get("/app"));
    let r = s.get("/app/block");
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(
        s.wait_log("WSGIRS441", Duration::from_secs(30)),
        "the grace's end is not logged"
    );
    let after = wait_replaced(&s, "blocked", before, Duration::from_secs(30));
    assert!(
        after.is_some(),
        "process {before} not replaced: {:?}",
        daemon_pids(&s, "blocked")
    );
    let r = s.get("/app");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(served_pid(&r), before);
    assert!(!s.path("var/unwound").exists());
}

/// The request timeout goes on while a process drains for a restart: the
/// request that reached maximum-requests blocks in C, is answered 504 and
/// interrupted during the drain, and once its grace is over the process
/// exits without waiting out graceful-timeout (60 s).
#[test]
fn request_timeout_applies_while_draining() {
    if referee_differs("mod_wsgi 4.9.4 has no interrupt-timeout") {
        return;
    }
    let s = server(
        Mpm::Worker,
        "draining",
        "processes=1 threads=2 maximum-requests=2 graceful-timeout=60 \
         request-timeout=1 interrupt-timeout=2 socket-timeout=60",
    );
    let before = served_pid(&s.get("/app"));
    // The second request reaches maximum-requests: the process drains.
    let r = s.get("/app/block");
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(
        s.wait_log("WSGIRS441", Duration::from_secs(30)),
        "the grace's end is not logged:\n{}",
        s.error_log()
    );
    let log = s.error_log();
    assert!(
        log.lines()
            .any(|l| l.contains("WSGIRS440") && l.contains("'/app/block'")),
        "{log}"
    );
    let after = wait_replaced(&s, "draining", before, Duration::from_secs(30));
    assert!(
        after.is_some(),
        "process {before} still draining: {:?}",
        daemon_pids(&s, "draining")
    );
    let r = s.get("/app");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(served_pid(&r), before);
}

/// A request holding the GIL in C for ever, past request-timeout: no
/// exception can reach it and no stack can be read, yet the monitor, which
/// never waits for the GIL itself, goes on and deadlock-timeout replaces
/// the process.
#[test]
fn gil_held_in_c_past_request_timeout_is_found_by_deadlock_timeout() {
    if referee_differs("mod_wsgi 4.9.4 has no interrupt-timeout") {
        return;
    }
    let s = server(
        Mpm::Prefork,
        "held",
        "processes=1 threads=2 request-timeout=1 interrupt-timeout=30 deadlock-timeout=3",
    );
    let before = served_pid(&s.get("/app"));
    let stuck = std::thread::scope(|scope| {
        let stuck = scope.spawn(|| s.get("/app/hold-gil"));
        wait_mark(&s, "holding");
        let after = wait_replaced(&s, "held", before, Duration::from_secs(60));
        assert!(
            after.is_some(),
            "process {before} holding the GIL not replaced: {:?}\n{}",
            daemon_pids(&s, "held"),
            s.error_log()
        );
        stuck.join().unwrap()
    });
    // 504 from the request timeout, or 502 if the process died first.
    assert!([502, 504].contains(&stuck.status), "{}", stuck.text());
    assert!(s.error_log().contains("deadlocked"), "{}", s.error_log());
    let r = s.get("/app");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(served_pid(&r), before);
}

/// response-socket-timeout=1: a client that stops reading a 64 MiB
/// response holds its daemon thread only until a write to Apache has
/// blocked that long; the one thread then serves the next request while
/// the first client is still connected.
#[test]
fn response_socket_timeout_frees_the_thread() {
    if referee_differs("mod_wsgi 4.9.4 logs a different message") {
        return;
    }
    let s = server(
        Mpm::Event,
        "writes",
        "processes=1 threads=1 socket-timeout=60 response-socket-timeout=1",
    );
    wait_daemons(&s, "writes", 1, Duration::from_secs(30));
    let mut reader = s.connect();
    reader
        .write_all(b"GET /app/big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    wait_mark(&s, "streaming");
    assert!(
        s.wait_log("WSGIRS445", Duration::from_secs(30)),
        "the blocked write is not logged"
    );
    let r = s.get("/app");
    assert_eq!(r.status, 200, "{}", r.text());
    drop(reader);
}
