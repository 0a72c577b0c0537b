//! `WSGISlowRequests` (mod_wsgi 6's slow-request report): a daemon-mode
//! request running past the threshold has its Python stack logged once,
//! with group, pid, thread and URL, and carries on. Ours only: Debian's
//! mod_wsgi 4.9 predates the directive.

use std::time::Duration;

use crate::common::{referee_differs, Mpm, Server};
use crate::daemon::wait_daemons;

/// `/block` waits in `wait_for_release` (at most a minute) until the file
/// `var/release` exists.
const APP: &str = r#"
import os, time
def wait_for_release():
    release = os.path.join('{root}', 'var', 'release')
    for _ in range(6000):
        if os.path.exists(release):
            break
        time.sleep(0.01)
def application(environ, start_response):
    if environ.get('PATH_INFO', '') == '/block':
        wait_for_release()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'done\n']
"#;

#[test]
fn a_slow_daemon_request_has_its_stack_logged_once() {
    if referee_differs("mod_wsgi 4.9 has no WSGISlowRequests") {
        return;
    }
    let s = Server::new(Mpm::Event)
        .file("app.wsgi", APP)
        .conf(
            // The script is preloaded, so the quick request runs only the
            // application, well within a second even on a loaded machine.
            "WSGISlowRequests 1\n\
             WSGIDaemonProcess dg processes=1 threads=2 display-name=%{GROUP}\n\
             WSGIScriptAlias /dmn {root}/app.wsgi process-group=dg application-group=%{GLOBAL}\n",
        )
        .start();
    wait_daemons(&s, "dg", 1, Duration::from_secs(30));
    assert!(
        !s.error_log().contains("WSGIRS113"),
        "the not-implemented notice is gone"
    );
    // A quick request is not reported.
    assert_eq!(s.get("/dmn/").status, 200);
    std::thread::scope(|scope| {
        let blocked = scope.spawn(|| s.get("/dmn/block?q=1"));
        assert!(
            s.wait_log("WSGIRS116", Duration::from_secs(30)),
            "no slow-request report:\n{}",
            s.error_log()
        );
        // The stack follows the report line.
        assert!(
            s.wait_log("in wait_for_release", Duration::from_secs(30)),
            "{}",
            s.error_log()
        );
        let log = s.error_log();
        let line = log.lines().find(|l| l.contains("WSGIRS116")).unwrap();
        assert!(line.contains("(wsgi:dg) slow request: pid "), "{line}");
        assert!(line.contains(" thread "), "{line}");
        assert!(line.contains("'/dmn/block?q=1'"), "{line}");
        std::fs::write(s.path("var/release"), b"").unwrap();
        let r = blocked.join().unwrap();
        assert_eq!(r.status, 200, "a slow request carries on");
        assert_eq!(r.text(), "done\n");
    });
    // Once per request, and the quick request was never reported.
    let log = s.error_log();
    assert_eq!(log.matches("WSGIRS116").count(), 1, "{log}");
    assert!(!log.contains("'/dmn/' has run"), "{log}");
}

#[test]
fn slow_requests_refuses_a_bad_threshold() {
    if referee_differs("mod_wsgi 4.9 has no WSGISlowRequests") {
        return;
    }
    let (_, log) = Server::new(Mpm::Event)
        .conf("WSGISlowRequests soon\n")
        .start_expect_failure();
    assert!(
        log.contains(
            "WSGISlowRequests: invalid value 'soon': expected a non-negative number of seconds"
        ),
        "{log}"
    );
}
