//! Daemon-mode response handling switches: `WSGIErrorOverride` (Apache's
//! error documents replace the application's error bodies),
//! `WSGIEnableSendfile` (how `wsgi.file_wrapper` files are sent),
//! `WSGIIgnoreActivity` (requests that do not keep `inactivity-timeout`
//! from recycling a process), and the accepted-only `WSGISocketRotation`
//! and `WSGIServerMetrics`.

use std::time::{Duration, Instant};

use crate::common::referee_differs;
use crate::common::{apps::pattern, module, Module, Mpm, Server};
use crate::daemon::served_pid;

const ERROR_APP: &str = r#"
def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path == '/missing':
        start_response('404 Not Found', [('Content-Type', 'text/plain'), ('X-App', 'yes')])
        return [b'app-404-body']
    if path == '/broken':
        start_response('500 Internal Server Error', [('Content-Type', 'text/plain')])
        return [b'app-500-body']
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'app-200-body']
"#;

/// With `WSGIErrorOverride On`, a daemon application's 404 and 500 bodies
/// are replaced by the `ErrorDocument`s; a 200 is untouched. Off by
/// default, and without effect in embedded mode, as in mod_wsgi.
fn error_override(mpm: Mpm) {
    let s = Server::new(mpm)
        .file("app.wsgi", ERROR_APP)
        .conf(
            "ErrorDocument 404 \"custom-404-document\"\n\
             ErrorDocument 500 \"custom-500-document\"\n\
             WSGIDaemonProcess errors threads=2\n\
             WSGIScriptAlias /default {root}/app.wsgi process-group=errors\n\
             WSGIScriptAlias /override {root}/app.wsgi process-group=errors\n\
             WSGIScriptAlias /embedded {root}/app.wsgi\n\
             <Location /override>\n  WSGIErrorOverride On\n</Location>\n\
             <Location /embedded>\n  WSGIErrorOverride On\n</Location>\n",
        )
        .start();
    let check = |path: &str, status: u16, body: &str| {
        let r = s.get(path);
        assert_eq!(r.status, status, "{path}: {}\n{}", r.text(), s.error_log());
        assert_eq!(r.text(), body, "{path}");
        r
    };
    check("/default/missing", 404, "app-404-body");
    check("/default/broken", 500, "app-500-body");
    let r = check("/override/missing", 404, "custom-404-document");
    assert_eq!(r.header("X-App"), None, "the app's headers went out");
    check("/override/broken", 500, "custom-500-document");
    check("/override/fine", 200, "app-200-body");
    // The connection to the daemon stays usable after a dropped body.
    for _ in 0..3 {
        check("/override/missing", 404, "custom-404-document");
        check("/override/fine", 200, "app-200-body");
    }
    check("/embedded/missing", 404, "app-404-body");
}
per_mpm!(error_override);

const FILE_APP: &str = r#"
import os
def application(environ, start_response):
    f = open(environ['DATA_FILE'], 'rb')
    f.seek(1000)
    start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                              ('X-Pid', str(os.getpid()))])
    return environ['wsgi.file_wrapper'](f, 8192)
"#;

/// The read system calls a process has made (`syscr` of /proc/PID/io):
/// `pread` counts one per block, `sendfile` one per call.
fn read_calls(pid: &str) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("/proc/PID/io");
    io.lines()
        .find_map(|l| l.strip_prefix("syscr: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("syscr in /proc/PID/io")
}

/// `wsgi.file_wrapper` delivers the file from its current position, whole
/// and exact, with sendfile on and off, in both modes.
#[test]
fn file_wrapper_with_and_without_sendfile() {
    let data = pattern(2 << 20);
    let s = Server::new(Mpm::Event)
        .single_process()
        .file("file.wsgi", FILE_APP)
        .file_bytes("data.bin", &data)
        .conf(
            "SetEnv DATA_FILE {root}/data.bin\n\
             EnableMMAP Off\n\
             WSGIDaemonProcess files processes=1 threads=2\n\
             WSGIScriptAlias /embedded-on {root}/file.wsgi\n\
             WSGIScriptAlias /embedded-off {root}/file.wsgi\n\
             WSGIScriptAlias /daemon-on {root}/file.wsgi process-group=files\n\
             WSGIScriptAlias /daemon-off {root}/file.wsgi process-group=files\n\
             <Location /embedded-on>\n  WSGIEnableSendfile On\n</Location>\n\
             <Location /daemon-on>\n  WSGIEnableSendfile On\n</Location>\n\
             <Location /embedded-off>\n  WSGIEnableSendfile Off\n</Location>\n",
        )
        .start();
    for path in ["/embedded-on", "/embedded-off", "/daemon-on", "/daemon-off"] {
        for _ in 0..2 {
            let r = s.get(path);
            assert_eq!(r.status, 200, "{path}: {}", s.error_log());
            assert_eq!(r.body.len(), data.len() - 1000, "{path}");
            assert!(r.body == data[1000..], "{path}: body differs");
        }
    }
    // The switch shows in the serving process's read system calls. In the
    // Apache child (EnableMMAP Off): one sendfile() when On, Apache reading
    // the file in 8 KB blocks when Off.
    let calls = |path: &str| {
        let pid = s.get(path).header("X-Pid").unwrap().to_owned();
        let before = read_calls(&pid);
        for _ in 0..3 {
            let r = s.get(path);
            assert_eq!(r.header("X-Pid"), Some(pid.as_str()), "one process serves");
            assert_eq!(r.body.len(), data.len() - 1000);
        }
        read_calls(&pid) - before
    };
    let (on, off) = (calls("/embedded-on"), calls("/embedded-off"));
    assert!(
        off >= on + 3 * 100,
        "embedded: reads with sendfile on: {on}, off: {off}"
    );
    if referee_differs("mod_wsgi's daemon mode sends files the same way either way") {
        return;
    }
    // In the daemon: one sendfile() when On, 64 KiB reads when Off.
    let (on, off) = (calls("/daemon-on"), calls("/daemon-off"));
    assert!(
        off >= on + 3 * 20,
        "daemon: reads with sendfile on: {on}, off: {off}"
    );
}

const PID_APP: &str = r#"
import os
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('pid=%d\n' % os.getpid()).encode()]
"#;

/// Requests under `WSGIIgnoreActivity On` do not reset inactivity-timeout:
/// a steady stream of them still sees the process replaced, while the same
/// stream elsewhere keeps it alive.
#[test]
fn ignore_activity_lets_an_idle_process_recycle() {
    let s = Server::new(Mpm::Worker)
        .file("pid.wsgi", PID_APP)
        .conf(
            "WSGIDaemonProcess idle processes=1 threads=2 inactivity-timeout=30\n\
             WSGIScriptAlias /health {root}/pid.wsgi process-group=idle\n\
             WSGIScriptAlias /app {root}/pid.wsgi process-group=idle\n\
             <Location /health>\n  WSGIIgnoreActivity On\n</Location>\n",
        )
        .start();
    let trickle = |path: &str, until: &dyn Fn(u32, u32) -> bool, limit: Duration| {
        let first = served_pid(&s.get(path));
        let start = Instant::now();
        while start.elapsed() < limit {
            let r = s.get(path);
            assert_eq!(r.status, 200, "{path}: {}\n{}", r.text(), s.error_log());
            if until(first, served_pid(&r)) {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    };
    // Counted requests every 200 ms keep the process for longer than the
    // timeout; the timeout (30 s) leaves a loaded machine's stalls room
    // between two requests before it would count as idle.
    let changed = trickle("/app", &|a, b| a != b, Duration::from_secs(35));
    assert_eq!(changed, None, "replaced although busy:\n{}", s.error_log());
    // Ignored ones do not: the process is replaced (condition, not a sleep).
    let changed = trickle("/health", &|a, b| a != b, Duration::from_secs(120));
    assert!(changed.is_some(), "never replaced:\n{}", s.error_log());
}

/// The compatibility switches start Apache and say once what they do (or
/// do not do) here.
#[test]
fn socket_rotation_and_server_metrics_are_accepted() {
    let s = Server::new(Mpm::Event)
        .file("pid.wsgi", PID_APP)
        .conf(
            "WSGISocketRotation On\n\
             WSGIServerMetrics On\n\
             WSGIDaemonProcess rot threads=1\n\
             WSGIScriptAlias /app {root}/pid.wsgi process-group=rot\n",
        )
        .start();
    assert_eq!(s.get("/app").status, 200, "{}", s.error_log());
    if module() == Module::ModWsgi {
        return;
    }
    let log = s.error_log();
    for needle in [
        "WSGIRS114: WSGISocketRotation On: accepted for compatibility, no effect",
        "WSGIRS115: WSGIServerMetrics On collects the metrics SetHandler wsgi-rs-metrics serves, \
         but mod_wsgi.server_metrics() still answers None",
    ] {
        assert_eq!(log.matches(needle).count(), 1, "{needle}:\n{log}");
    }
}
