//! A daemon group that cannot run is answered at once: its socket belongs
//! to the Apache parent, so a request would otherwise wait in the listen
//! backlog for the whole socket-timeout. A group merely slow to start is
//! still waited for, and a group that recovers serves again.

use std::time::{Duration, Instant};

use crate::common::{referee_differs, wait_for, Mpm, Server};
use crate::daemon::PID_APP;

/// socket-timeout, set long so that waiting for it cannot pass for an answer.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(60);

/// `home=` missing: no process of the group lives. A request gets 503 well
/// before socket-timeout, and the log line names the group and the cause of
/// the last failed start; once the directory exists, a later start (after
/// the supervisor's back-off) serves.
fn missing_home_is_503_then_recovers(mpm: Mpm) {
    if referee_differs("mod_wsgi 4.9.4 leaves the request in the backlog: 504 after socket-timeout")
    {
        return;
    }
    let s = Server::new(mpm)
        .file("pid.wsgi", PID_APP)
        .conf(&format!(
            "WSGIDaemonProcess homeless home={{root}}/later processes=2 threads=1 \
             connect-timeout=15 socket-timeout={} display-name=%{{GROUP}}\n\
             WSGIScriptAlias /app {{root}}/pid.wsgi process-group=homeless\n",
            SOCKET_TIMEOUT.as_secs()
        ))
        .start();
    let home = s.path("later").display().to_string();
    assert!(
        s.wait_log("chdir to home directory", Duration::from_secs(30)),
        "the daemon's own failure is not logged"
    );
    for i in 0..3 {
        let start = Instant::now();
        let r = s.get(&format!("/app?{i}"));
        let took = start.elapsed();
        assert_eq!(r.status, 503, "request {i}: {}", r.text());
        assert!(
            took < SOCKET_TIMEOUT / 2,
            "request {i}: 503 after {took:?}, not within connect-timeout"
        );
    }
    let log = s.error_log();
    let line = log
        .lines()
        .find(|l| l.contains("WSGI daemon process group 'homeless' cannot start"))
        .unwrap_or_else(|| panic!("no log line names the group:\n{log}"));
    assert!(
        line.contains(&home) && line.contains("chdir"),
        "the log line does not give the cause: {line}"
    );
    std::fs::create_dir(s.path("later")).unwrap();
    // The next try comes after the back-off (2 s, doubling, at most 30 s).
    let served = wait_for(Duration::from_secs(90), || {
        let r = s.get("/app");
        (r.status == 200).then_some(r)
    });
    assert!(
        served.is_some(),
        "the group did not recover:\n{}",
        s.error_log()
    );
}

per_mpm!(missing_home_is_503_then_recovers);

/// A start in progress is not a failure: a request that comes while the
/// group's start-up import still runs waits for it and is served.
#[test]
fn slow_start_is_waited_for() {
    let s = Server::new(Mpm::Event)
        .file("pid.wsgi", PID_APP)
        .file(
            "slow.py",
            "import os, time\n\
             open('{root}/var/starting', 'w').close()\n\
             deadline = time.time() + 60\n\
             while not os.path.exists('{root}/var/go') and time.time() < deadline:\n\
             \x20   time.sleep(0.05)\n",
        )
        .conf(&format!(
            "WSGIDaemonProcess slow threads=1 connect-timeout=1 socket-timeout={} \
             display-name=%{{GROUP}}\n\
             WSGIImportScript {{root}}/slow.py process-group=slow application-group=%{{GLOBAL}}\n\
             WSGIScriptAlias /app {{root}}/pid.wsgi process-group=slow application-group=%{{GLOBAL}}\n",
            SOCKET_TIMEOUT.as_secs()
        ))
        .start();
    assert!(
        wait_for(Duration::from_secs(20), || s
            .path("var/starting")
            .exists()
            .then_some(()))
        .is_some(),
        "the start-up import never ran"
    );
    let request = std::thread::scope(|scope| {
        let request = scope.spawn(|| s.get("/app"));
        // The request is sent while the import holds the start-up; it must
        // not be answered before the start ends (the harness's own read
        // timeout, 10 s, is far longer than this wait).
        let waited = wait_for(Duration::from_secs(2), || {
            request.is_finished().then_some(())
        });
        assert!(waited.is_none(), "answered while the group was starting");
        std::fs::write(s.path("var/go"), b"").unwrap();
        request.join().unwrap()
    });
    assert_eq!(request.status, 200, "{}", request.text());
}
