//! `connect-timeout` when the group's listen backlog is full: Apache's
//! threads must not block in connect() beyond the timeout; they answer 503.

use std::sync::mpsc;
use std::time::Duration;

use crate::common::{module, Module, Mpm, Server};

/// Holds its one thread until the test writes `var/release` (at most
/// 120 s), so that the group's backlog stays full meanwhile.
const SLOW: &str = "import os, time\n\
def application(environ, start_response):\n    \
    deadline = time.time() + 120\n    \
    while not os.path.exists('{root}/var/release') and time.time() < deadline:\n        \
        time.sleep(0.05)\n    \
    start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
    return [b'slow']\n";

/// With the one thread held and the backlog full, a request is answered
/// 503 while the held request is still running: after connect-timeout,
/// not by waiting for the thread (ordered by the release, not by a clock).
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
    let (answered, answers) = mpsc::channel();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (s, answered) = (s.clone(), answered.clone());
            std::thread::spawn(move || {
                let _ = answered.send(s.get("/slow").status);
            })
        })
        .collect();
    drop(answered);
    // Nothing can answer 200 before the release: the first answer is the
    // refusal (or none within the client's patience).
    let first = answers.recv_timeout(Duration::from_secs(60));
    std::fs::write(s.path("var/release"), b"").unwrap();
    for client in clients {
        // A client queued behind the others may give up; that is not
        // what this test checks.
        let _ = client.join();
    }
    let rest: Vec<u16> = answers.try_iter().collect();
    assert_eq!(
        first,
        Ok(503),
        "the first answer, while the thread was held, was not a refusal; then: {rest:?}"
    );
}
