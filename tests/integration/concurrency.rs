//! Concurrency: many requests from several client threads
//! all succeed with every MPM.

use crate::common::{Mpm, Server};

const APP: &str = r#"
def application(environ, start_response):
    body = ('ok %s' % environ['QUERY_STRING']).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#;

fn many_concurrent_requests(mpm: Mpm) {
    let s = Server::new(mpm)
        .file("c.wsgi", APP)
        .conf("WSGIScriptAlias /c {root}/c.wsgi\n")
        .start();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let s = &s;
                scope.spawn(move || {
                    let mut bad = Vec::new();
                    for i in 0..25 {
                        let q = format!("{t}-{i}");
                        let r = s.get(&format!("/c?{q}"));
                        if r.status != 200 || r.text() != format!("ok {q}") || !r.complete {
                            bad.push(format!("{q}: {} {:?}", r.status, r.text()));
                        }
                    }
                    bad
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of 200 requests failed: {failures:?}",
        failures.len()
    );
}
per_mpm!(many_concurrent_requests);
