//! `SetHandler wsgi-rs-metrics` (issue 13): the Prometheus text it serves
//! is read with the `prometheus_client` parser of the test venv, and its
//! figures are checked against the requests sent, over two Apache children
//! (prefork) and two daemon processes; a blocked request shows in the busy
//! gauges; restarts are counted by reason (across Apache's restarts:
//! `metrics_restarts.rs`). Ours only: mod_wsgi has no such
//! handler.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::venv::venv;
use crate::common::{referee_differs, wait_for, Mpm, Running, Server};
use crate::daemon::wait_daemons;

/// Reports its pid; `/block` first waits (at most a minute) until the file
/// `var/release` exists, `/missing` answers 404, and a request body is read
/// and its length reported.
pub(crate) const APP: &str = r#"
import os, time
def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path == '/block':
        release = os.path.join('{root}', 'var', 'release')
        for _ in range(6000):
            if os.path.exists(release):
                break
            time.sleep(0.01)
    data = environ['wsgi.input'].read()
    body = ('pid=%d\nread=%d\n' % (os.getpid(), len(data))).encode()
    status = '404 Not Found' if path == '/missing' else '200 OK'
    start_response(status, [('Content-Type', 'text/plain'),
                            ('Content-Length', str(len(body)))])
    return [body]
"#;

/// One sample: the metric name and its labels, sorted, as `k=v,k=v`.
pub(crate) type Key = (String, String);

/// Parses the exposition with `prometheus_client`'s parser (which fails on
/// anything malformed) into its samples.
fn parse(text: &str) -> BTreeMap<Key, f64> {
    let script = "import sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        for family in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in family.samples:\n\
        \x20       labels = ','.join('%s=%s' % kv for kv in sorted(s.labels.items()))\n\
        \x20       print('%s\\t%s\\t%r' % (s.name, labels, s.value))\n";
    let mut child = Command::new(venv().join("bin/python"))
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the test venv's python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut parts = l.split('\t');
            let name = parts.next().unwrap().to_owned();
            let labels = parts.next().unwrap().to_owned();
            let value = parts.next().unwrap().parse().unwrap();
            ((name, labels), value)
        })
        .collect()
}

/// The metrics as served at `/metrics`, parsed.
pub(crate) fn metrics(s: &Running) -> BTreeMap<Key, f64> {
    let r = s.get("/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse(&r.text())
}

/// The value of sample `name{labels}` (0 when absent).
pub(crate) fn value(m: &BTreeMap<Key, f64>, name: &str, labels: &str) -> f64 {
    m.get(&(name.to_owned(), labels.to_owned()))
        .copied()
        .unwrap_or(0.0)
}

/// Waits until sample `name{labels}` reads `want`; panics with the metrics
/// if it never does.
pub(crate) fn wait_value(s: &Running, name: &str, labels: &str, want: f64) -> BTreeMap<Key, f64> {
    let mut last = BTreeMap::new();
    wait_for(Duration::from_secs(30), || {
        last = metrics(s);
        (value(&last, name, labels) == want).then(|| last.clone())
    })
    .unwrap_or_else(|| panic!("{name}{{{labels}}} never reached {want}: {last:#?}"))
}

/// The server: embedded mode at /emb, daemon group `dg` (two processes of
/// one thread) at /dmn, the metrics at /metrics.
pub(crate) fn server(mpm: Mpm, daemon_options: &str, extra: &str) -> Running {
    Server::new(mpm)
        .file("app.wsgi", APP)
        .conf(&format!(
            "WSGIDaemonProcess dg {daemon_options} display-name=%{{GROUP}}\n\
             WSGIScriptAlias /emb {{root}}/app.wsgi\n\
             WSGIScriptAlias /dmn {{root}}/app.wsgi process-group=dg\n\
             <Location /metrics>\n    SetHandler wsgi-rs-metrics\n    Require ip 127.0.0.1\n</Location>\n\
             {extra}"
        ))
        .start()
}

/// The pid a response of APP reports.
fn pid_of(r: &crate::common::Response) -> String {
    r.text().lines().next().unwrap_or_default().to_owned()
}

/// Counters match the requests sent, in embedded mode over two Apache
/// children and in a daemon group of two processes; the histograms count
/// every request; a request blocked in each mode shows as one busy thread.
#[test]
fn counters_and_gauges_follow_the_requests() {
    if referee_differs("mod_wsgi has no wsgi-rs-metrics handler") {
        return;
    }
    let s = server(Mpm::Prefork, "processes=2 threads=1", "");
    wait_daemons(&s, "dg", 2, Duration::from_secs(30));
    // Each process says how many threads it runs once it has started them.
    let m = wait_value(&s, "wsgi_rs_threads", "group=dg,state=idle", 2.0);
    assert_eq!(value(&m, "wsgi_rs_processes", "group=dg"), 2.0);
    assert!(
        value(&m, "wsgi_rs_processes", "group=embedded") >= 2.0,
        "{m:#?}"
    );

    let body = vec![b'x'; 1000];
    let mut out_bytes = BTreeMap::<&str, usize>::new();
    let mut emb_pids = Vec::new();
    std::thread::scope(|scope| {
        // One request blocks in each mode: its Apache child (prefork: one
        // request per child) and its daemon process (one thread) are busy,
        // so the other requests go to the other child and process.
        let emb = scope.spawn(|| s.get("/emb/block"));
        let dmn = scope.spawn(|| s.get("/dmn/block"));
        wait_value(&s, "wsgi_rs_threads", "group=embedded,state=busy", 1.0);
        let m = wait_value(&s, "wsgi_rs_threads", "group=dg,state=busy", 1.0);
        assert_eq!(value(&m, "wsgi_rs_threads", "group=dg,state=idle"), 1.0);
        for _ in 0..5 {
            let r = s.get("/emb/");
            assert_eq!(r.status, 200, "{}", r.text());
            emb_pids.push(pid_of(&r));
            *out_bytes.entry("embedded").or_default() += r.body.len();
        }
        for _ in 0..2 {
            let r = s.get("/emb/missing");
            assert_eq!(r.status, 404, "{}", r.text());
            *out_bytes.entry("embedded").or_default() += r.body.len();
        }
        for _ in 0..4 {
            let r = s.request("POST", "/dmn/", &[], &body);
            assert_eq!(r.status, 200, "{}", r.text());
            assert!(r.text().contains("read=1000"), "{}", r.text());
            *out_bytes.entry("dg").or_default() += r.body.len();
        }
        std::fs::write(s.path("var/release"), b"").unwrap();
        for (group, handle) in [("embedded", emb), ("dg", dmn)] {
            let r = handle.join().unwrap();
            assert_eq!(r.status, 200, "{}", r.text());
            *out_bytes.entry(group).or_default() += r.body.len();
            if group == "embedded" {
                emb_pids.push(pid_of(&r));
            }
        }
    });
    emb_pids.sort();
    emb_pids.dedup();
    assert!(
        emb_pids.len() >= 2,
        "one Apache child served all: {emb_pids:?}"
    );

    let m = wait_value(&s, "wsgi_rs_threads", "group=dg,state=busy", 0.0);
    let v = |name: &str, labels: &str| value(&m, name, labels);
    assert_eq!(v("wsgi_rs_requests_total", "code=200,group=embedded"), 6.0);
    assert_eq!(v("wsgi_rs_requests_total", "code=404,group=embedded"), 2.0);
    assert_eq!(v("wsgi_rs_requests_total", "code=200,group=dg"), 5.0);
    assert_eq!(v("wsgi_rs_threads", "group=embedded,state=busy"), 0.0);
    let count = "wsgi_rs_request_duration_seconds_count";
    assert_eq!(v(count, "group=embedded"), 8.0);
    assert_eq!(v(count, "group=dg"), 5.0);
    assert_eq!(v("wsgi_rs_queue_wait_seconds_count", "group=dg"), 5.0);
    assert_eq!(
        v(
            "wsgi_rs_request_duration_seconds_bucket",
            "group=dg,le=+Inf"
        ),
        5.0
    );
    // The blocked requests took longer than the others: their bucket shows.
    assert!(
        v(
            "wsgi_rs_request_duration_seconds_bucket",
            "group=dg,le=0.001"
        ) < 5.0
    );
    assert!(v("wsgi_rs_request_duration_seconds_sum", "group=dg") > 0.0);
    assert_eq!(v("wsgi_rs_request_body_bytes_total", "group=dg"), 4000.0);
    assert_eq!(v("wsgi_rs_request_body_bytes_total", "group=embedded"), 0.0);
    for group in ["embedded", "dg"] {
        assert_eq!(
            v(
                "wsgi_rs_response_body_bytes_total",
                &format!("group={group}")
            ),
            out_bytes[group] as f64,
            "{group}"
        );
    }
    assert!(
        v("wsgi_rs_process_resident_bytes", "group=dg") > 1e6,
        "{m:#?}"
    );
    assert_eq!(v("wsgi_rs_request_timeouts_total", "group=dg"), 0.0);
    assert_eq!(
        v("wsgi_rs_process_restarts_total", "group=dg,reason=crash"),
        0.0
    );
}

/// maximum-requests=2 then 3 requests: one restart for maximum-requests; a
/// daemon killed behind Apache's back: one crash; request-timeout: one
/// timeout and one restart for it.
#[test]
fn restarts_are_counted_by_reason() {
    if referee_differs("mod_wsgi has no wsgi-rs-metrics handler") {
        return;
    }
    let s = server(
        Mpm::Event,
        "processes=1 threads=2 maximum-requests=2",
        "WSGIDaemonProcess slow processes=1 threads=1 request-timeout=1 display-name=%{GROUP}\n\
         WSGIScriptAlias /slow {root}/app.wsgi process-group=slow\n",
    );
    for _ in 0..3 {
        assert_eq!(s.get("/dmn/").status, 200);
    }
    let labels = "group=dg,reason=maximum-requests";
    let m = wait_value(&s, "wsgi_rs_process_restarts_total", labels, 1.0);
    assert_eq!(
        value(
            &m,
            "wsgi_rs_process_restarts_total",
            "group=dg,reason=crash"
        ),
        0.0
    );

    let pid = wait_daemons(&s, "slow", 1, Duration::from_secs(30))[0];
    // SAFETY: killing the daemon process this test's Apache started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    wait_value(
        &s,
        "wsgi_rs_process_restarts_total",
        "group=slow,reason=crash",
        1.0,
    );

    // Blocks until released: past request-timeout, the monitor answers 504
    // and replaces the process.
    let r = s.get("/slow/block");
    std::fs::write(s.path("var/release"), b"").unwrap();
    assert_eq!(r.status, 504, "{}", r.text());
    let m = wait_value(
        &s,
        "wsgi_rs_process_restarts_total",
        "group=slow,reason=timeout",
        1.0,
    );
    assert_eq!(
        value(&m, "wsgi_rs_request_timeouts_total", "group=slow"),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "wsgi_rs_process_restarts_total",
            "group=slow,reason=crash"
        ),
        1.0
    );
}

/// `WSGIServerMetrics Off` wins over the handler: it answers a valid
/// exposition without samples (as mod_status answers without
/// ExtendedStatus), only to GET and HEAD, and requests are served as ever.
#[test]
fn off_answers_without_samples() {
    if referee_differs("mod_wsgi has no wsgi-rs-metrics handler") {
        return;
    }
    let s = server(
        Mpm::Worker,
        "processes=1 threads=2",
        "WSGIServerMetrics Off\n",
    );
    assert_eq!(s.get("/emb/").status, 200);
    assert_eq!(s.get("/dmn/").status, 200);
    let m = metrics(&s);
    assert!(m.is_empty(), "{m:#?}");
    assert_eq!(s.request("POST", "/metrics", &[], b"x").status, 405);
    assert!(!s.error_log().contains("WSGIRS115"), "{}", s.error_log());
}
