//! Log lines carry their stable `WSGIRSnnn` identifier (docs/messages.md):
//! a script that fails to load, an application that raises, a daemon group
//! that cannot start. The traceback follows the line with the id, and the
//! application's own output is logged as written. Ours only: mod_wsgi's
//! lines have no such ids.

use std::time::Duration;

use crate::common::{referee_differs, Mode, Mpm, Server};

const BROKEN: &str = "raise RuntimeError('marker-broken-at-import')\n";

const RAISES: &str = r#"
import sys
def application(environ, start_response):
    print('marker-app-output', file=sys.stderr)
    raise ValueError('marker-raised-by-app')
"#;

/// The message part of an error log line: what follows Apache's bracketed
/// prefixes (`[time] [module:level] [pid N:tid T] [client A:P] `).
fn message(line: &str) -> &str {
    let mut rest = line;
    while let Some(tail) = rest.strip_prefix('[') {
        match tail.find("] ") {
            Some(end) => rest = &tail[end + 2..],
            None => break,
        }
    }
    rest
}

/// The log lines from the first that contains `needle`, on.
fn lines_from<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = log.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle}:\n{log}"));
    lines[at..].to_vec()
}

fn failing_scripts_log_their_ids(mode: Mode) {
    if referee_differs("mod_wsgi's log lines carry no WSGIRS ids") {
        return;
    }
    let daemon = match mode {
        Mode::Embedded => "",
        Mode::Daemon => "WSGIDaemonProcess ids threads=2\nWSGIProcessGroup ids\n",
    };
    let s = Server::new(Mpm::Event)
        .file("broken.wsgi", BROKEN)
        .file("raises.wsgi", RAISES)
        .conf(daemon)
        .conf("WSGIScriptAlias /broken {root}/broken.wsgi\n")
        .conf("WSGIScriptAlias /raises {root}/raises.wsgi\n")
        .start();
    assert_eq!(s.get("/broken").status, 500);
    assert_eq!(s.get("/raises").status, 500);
    assert!(
        s.wait_log("marker-raised-by-app", Duration::from_secs(30)),
        "{}",
        s.error_log()
    );
    let log = s.error_log();
    for (id, script, raised) in [
        (
            "WSGIRS371: ",
            "Target WSGI script '",
            "RuntimeError: marker-broken-at-import",
        ),
        (
            "WSGIRS370: ",
            "Exception occurred processing WSGI script '",
            "ValueError: marker-raised-by-app",
        ),
    ] {
        let lines = lines_from(&log, script);
        let first = message(lines[0]);
        // The id comes first, before daemon mode's "(wsgi:GROUP) [client ...]".
        assert!(first.starts_with(id), "{first}\n{log}");
        assert!(lines[0].contains("[wsgi_rs:error]"), "{}", lines[0]);
        // Its traceback follows, as Python prints it, without ids.
        let traceback = lines
            .iter()
            .position(|l| l.contains("Traceback (most recent call last):"))
            .unwrap_or_else(|| panic!("no traceback after {id}:\n{log}"));
        let end = lines
            .iter()
            .position(|l| l.contains(raised))
            .unwrap_or_else(|| panic!("no '{raised}' after {id}:\n{log}"));
        assert!(traceback < end, "{log}");
        assert!(!lines[end].contains("WSGIRS"), "{}", lines[end]);
    }
    // What the application writes is its own: no id.
    let printed = lines_from(&log, "marker-app-output")[0];
    assert!(!printed.contains("WSGIRS"), "{printed}");
}

both_modes!(failing_scripts_log_their_ids);

/// A daemon group whose `home=` does not exist: each process logs why it
/// cannot start (WSGIRS330), a request is answered 503 with the cause
/// (WSGIRS586), and the supervisor says it backs off (WSGIRS313).
#[test]
fn a_daemon_group_that_cannot_start_logs_its_ids() {
    if referee_differs("mod_wsgi's log lines carry no WSGIRS ids") {
        return;
    }
    let s = Server::new(Mpm::Event)
        .file("app.wsgi", RAISES)
        .conf(
            "WSGIDaemonProcess homeless home={root}/missing threads=1 connect-timeout=15\n\
             WSGIScriptAlias /app {root}/app.wsgi process-group=homeless\n",
        )
        .start();
    assert!(
        s.wait_log("WSGIRS330: ", Duration::from_secs(30)),
        "{}",
        s.error_log()
    );
    assert_eq!(s.get("/app").status, 503);
    assert!(
        s.wait_log("WSGIRS586: ", Duration::from_secs(30)),
        "{}",
        s.error_log()
    );
    let log = s.error_log();
    let start = message(lines_from(&log, "WSGIRS330: ")[0]);
    assert!(
        start.starts_with("WSGIRS330: daemon process (wsgi:homeless) pid ")
            && start.contains("chdir to home directory"),
        "{start}"
    );
    let answered = message(lines_from(&log, "WSGIRS586: ")[0]);
    assert!(
        answered.starts_with("WSGIRS586: WSGI daemon process group 'homeless' cannot start"),
        "{answered}"
    );
    assert!(
        s.wait_log("WSGIRS313: ", Duration::from_secs(30)),
        "{}",
        s.error_log()
    );
}
