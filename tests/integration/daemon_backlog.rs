//! `connect-timeout` when the group's listen backlog is full: Apache's
//! threads must not block in connect() beyond the timeout; they answer 503.

use std::time::{Duration, Instant};

use crate::common::{module, Module, Mpm, Server};

const SLOW: &str = "import time\n\
def application(environ, start_response):\n    \
    time.sleep(6)\n    \
    start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
    return [b'slow']\n";

#[test]
fn full_backlog_is_503_after_connect_timeout() {
    if module() == Module::ModWsgi {
        return; // mod_wsgi's connect handling differs
    }
    let name = format!("bl{}", std::process::id());
    let s = Server::new(Mpm::Event)
        .file("slow.wsgi", SLOW)
        .conf(&format!(
            "WSGIDaemonProcess {name} threads=1 listen-backlog=1 connect-timeout=1\n\
             WSGIScriptAlias /slow {{root}}/slow.wsgi process-group={name}\n"
        ))
        .start();
    let s = std::sync::Arc::new(s);
    let started = Instant::now();
    let answers: Vec<(u16, Duration)> = (0..8)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                let r = s.get("/slow");
                (r.status, t.elapsed())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        // Requests queued behind the 6 s one may outlast the client timeout.
        .map(|h| h.join().unwrap_or((0, Duration::from_secs(99))))
        .collect();
    let quick_503 = answers
        .iter()
        // Refused after connect-timeout (1 s), not after waiting out the
        // 6 s request: under 5 s tells the two apart on a loaded machine.
        .filter(|(status, took)| *status == 503 && *took < Duration::from_secs(5))
        .count();
    assert!(
        quick_503 >= 1,
        "no request was refused within connect-timeout: {answers:?} after {:?}",
        started.elapsed()
    );
}
