//! Threading under the threaded MPMs: requests run
//! concurrently with the GIL released while the app blocks, and each Apache
//! worker thread keeps one Python thread state, so threading.local() survives
//! between the requests a thread serves.

use std::time::Duration;

use crate::common::{Mpm, Server};

/// `/together` marks its arrival in `var/inside` and then waits, blocked
/// in Python (a sleep releases the GIL), until `TOGETHER` requests have
/// arrived (at most 60 s by the clock): it answers `together` when they
/// all were inside the application at once, `alone` when it gave up.
const APP: &str = r#"
import os, threading, time
local = threading.local()
def application(environ, start_response):
    if environ['PATH_INFO'] == '/together':
        inside = os.path.join('{root}', 'var', 'inside')
        with open(inside, 'a') as f:
            f.write('.')
        deadline = time.monotonic() + 60
        body = b'alone'
        while time.monotonic() < deadline:
            with open(inside) as f:
                if len(f.read()) >= {together}:
                    body = b'together'
                    break
            time.sleep(0.01)
    else:
        already = getattr(local, 'marker', None) is not None
        local.marker = threading.get_ident()
        body = ('%d %s' % (threading.get_ident(), 'already set' if already else 'fresh')).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

/// How many requests must be inside the application at once (the app's
/// `{together}`); the MPMs' sizing has 16 worker threads from the start.
const TOGETHER: usize = 8;

/// Requests that block in the application overlap: `TOGETHER` of them are
/// inside it at the same time, each waiting until all have arrived. Were
/// they serialised (the GIL held while blocked, one worker thread), the
/// first would wait alone until it gave up. A condition, not a stopwatch:
/// a loaded machine only makes them arrive later.
fn concurrent_sleeps_overlap(mpm: Mpm) {
    let s = Server::new(mpm)
        .file("t.wsgi", &APP.replace("{together}", &TOGETHER.to_string()))
        .conf("WSGIScriptAlias /t {root}/t.wsgi\n")
        .start();
    let results: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..TOGETHER)
            .map(|_| {
                scope.spawn(|| {
                    let r = s.get_patiently("/t/together", Duration::from_secs(90));
                    (r.status, r.text())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, body) in &results {
        assert_eq!(
            (*status, body.as_str()),
            (200, "together"),
            "{TOGETHER} blocked requests were never inside the application at once: \
             requests are serialised (GIL held while blocked?)"
        );
    }
}
threaded_mpms!(concurrent_sleeps_overlap);

fn thread_local_survives_between_requests(mpm: Mpm) {
    let s = Server::new(mpm)
        .file("t.wsgi", APP)
        .conf("WSGIScriptAlias /t {root}/t.wsgi\n")
        .start();
    let mut already = 0;
    for _ in 0..50 {
        let r = s.get("/t/local");
        assert_eq!(r.status, 200, "{}", r.text());
        if r.text().ends_with("already set") {
            already += 1;
        }
    }
    // At most 32 worker threads exist, so some thread served two of the 50
    // requests; it must have found its threading.local still set.
    assert!(
        already > 0,
        "threading.local() was reset between requests on the same thread"
    );
}
threaded_mpms!(thread_local_survives_between_requests);
