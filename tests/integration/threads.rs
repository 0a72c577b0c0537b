//! Threading under the threaded MPMs: requests run
//! concurrently with the GIL released while the app blocks, and each Apache
//! worker thread keeps one Python thread state, so threading.local() survives
//! between the requests a thread serves.

use std::time::{Duration, Instant};

use crate::common::{Mpm, Server};

const APP: &str = r#"
import threading, time
local = threading.local()
def application(environ, start_response):
    if environ['PATH_INFO'] == '/sleep':
        time.sleep(1.0)
        body = b'slept'
    else:
        already = getattr(local, 'marker', None) is not None
        local.marker = threading.get_ident()
        body = ('%d %s' % (threading.get_ident(), 'already set' if already else 'fresh')).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

fn concurrent_sleeps_overlap(mpm: Mpm) {
    let s = Server::new(mpm)
        .file("t.wsgi", APP)
        .conf("WSGIScriptAlias /t {root}/t.wsgi\n")
        .start();
    // Warm up so script loading is not part of the timing (which process
    // serves these is up to Apache; loading is quick anyway).
    for _ in 0..4 {
        assert_eq!(s.get("/t/local").status, 200);
    }
    let start = Instant::now();
    let results: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(|| {
                    let r = s.get("/t/sleep");
                    (r.status, r.text())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let took = start.elapsed();
    for (status, body) in &results {
        assert_eq!((*status, body.as_str()), (200, "slept"));
    }
    // Serialised they take 16 s; overlapping, about 2 s (16 threads). The
    // bound tells the two apart with room for a loaded machine.
    assert!(
        took < Duration::from_secs(12),
        "16 concurrent 1 s requests took {took:?}: requests are serialised (GIL held while sleeping?)"
    );
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
