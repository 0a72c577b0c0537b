//! The metrics (`SetHandler wsgi-rs-metrics`) across graceful restarts of
//! Apache. Like Apache's own scoreboard (mod_status' totals keep counting),
//! the table outlives the restart: counters go on from where they were,
//! the requests that processes of the earlier generation finish (an Apache
//! child finishing its request, a daemon process serving until its group's
//! new processes are ready) are counted, and so is such a daemon process's
//! exit, as a restart for reason `graceful`. Groups are matched by name, so
//! a group the new configuration drops, adds or resizes keeps its own
//! figures. Ours only: mod_wsgi has no such handler.

use std::time::Duration;

use crate::common::http::{build_request, exchange, parse_response};
use crate::common::{referee_differs, wait_for, Mpm, Response, Running};
use crate::metrics::{metrics, server, value, wait_value};

/// Waits for `needle` in the error log, which must come.
fn wait_log(s: &Running, needle: &str) {
    assert!(
        s.wait_log(needle, Duration::from_secs(60)),
        "no {needle} in the error log:\n{}",
        s.error_log()
    );
}

/// How many times `needle` is in the error log.
fn log_count(s: &Running, needle: &str) -> usize {
    s.error_log().matches(needle).count()
}

/// Sends GET `path` on a thread of its own (a request held by the app
/// while the test restarts Apache).
fn get_in_background(s: &Running, path: &str) -> std::thread::JoinHandle<Response> {
    let request = build_request("GET", path, s.port, &[], b"");
    let port = s.port;
    std::thread::spawn(move || {
        let (data, reset) = exchange(port, &request);
        parse_response(&data, false, reset)
    })
}

/// Waits until GET `path` answers 200: the first requests after a graceful
/// restart may still reach an Apache child of the earlier generation, whose
/// configuration may not have `path` (a 404 the module does not count).
fn wait_served(s: &Running, path: &str) {
    let served = wait_for(Duration::from_secs(30), || {
        (s.get(path).status == 200).then_some(())
    });
    assert!(served.is_some(), "{path} is never served");
}

/// A graceful restart keeps the table: the counters go on from where they
/// were (they used to start again from zero, read by Prometheus as a
/// counter reset; Apache's scoreboard, and so mod_status' totals, survive a
/// graceful restart, and so does this table now), the new generation's
/// process is counted, and the old one's exit counts as one `graceful`
/// restart, no crash.
#[test]
fn a_graceful_restart_keeps_counting() {
    if referee_differs("mod_wsgi has no wsgi-rs-metrics handler") {
        return;
    }
    let mut s = server(Mpm::Event, "processes=1 threads=2", "");
    for path in ["/emb/", "/dmn/"] {
        assert_eq!(s.get(path).status, 200);
    }
    let m = metrics(&s);
    assert_eq!(
        value(&m, "wsgi_rs_requests_total", "code=200,group=dg"),
        1.0
    );
    s.graceful();
    wait_log(&s, "WSGIRS402");
    let m = wait_value(&s, "wsgi_rs_threads", "group=dg,state=idle", 2.0);
    assert_eq!(
        value(&m, "wsgi_rs_requests_total", "code=200,group=dg"),
        1.0,
        "the counters went back to zero"
    );
    assert_eq!(
        value(&m, "wsgi_rs_requests_total", "code=200,group=embedded"),
        1.0
    );
    assert_eq!(value(&m, "wsgi_rs_processes", "group=dg"), 1.0);
    assert_eq!(
        value(
            &m,
            "wsgi_rs_process_restarts_total",
            "group=dg,reason=graceful"
        ),
        1.0,
        "{m:#?}"
    );
    assert_eq!(
        value(
            &m,
            "wsgi_rs_process_restarts_total",
            "group=dg,reason=crash"
        ),
        0.0,
        "Apache retiring the old generation's daemon is no crash"
    );
    assert_eq!(s.get("/dmn/").status, 200);
    wait_value(&s, "wsgi_rs_requests_total", "code=200,group=dg", 2.0);
}

/// A request an old-generation daemon process takes before a graceful
/// restart and finishes after it (through an old-generation Apache child)
/// is counted in what the new generation serves: its request (counted by
/// the Apache child), its application time (counted by the daemon), and the
/// daemon's exit once done, as a `graceful` restart.
#[test]
fn old_generation_daemons_count_after_a_graceful_restart() {
    if referee_differs("mod_wsgi has no wsgi-rs-metrics handler") {
        return;
    }
    // shutdown-timeout: the old process, asked to stop, has a minute to
    // finish the held request.
    let mut s = server(Mpm::Event, "processes=1 threads=2 shutdown-timeout=60", "");
    assert_eq!(s.get("/dmn/").status, 200);
    let held = get_in_background(&s, "/dmn/block");
    wait_value(&s, "wsgi_rs_threads", "group=dg,state=busy", 1.0);
    s.graceful();
    // The new generation's process is ready: the old one is asked to stop
    // and finishes the held request.
    wait_log(&s, "WSGIRS401");
    assert_eq!(log_count(&s, "WSGIRS402"), 0, "{}", s.error_log());
    assert_eq!(s.get("/dmn/").status, 200);
    std::fs::write(s.path("var/release"), b"").unwrap();
    let r = held.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    wait_log(&s, "WSGIRS402");
    let m = wait_value(&s, "wsgi_rs_requests_total", "code=200,group=dg", 3.0);
    let v = |name: &str, labels: &str| value(&m, name, labels);
    assert_eq!(
        v("wsgi_rs_request_duration_seconds_count", "group=dg"),
        3.0,
        "{m:#?}"
    );
    assert_eq!(
        v("wsgi_rs_process_restarts_total", "group=dg,reason=graceful"),
        1.0,
        "{m:#?}"
    );
    assert_eq!(
        v("wsgi_rs_process_restarts_total", "group=dg,reason=crash"),
        0.0
    );
    assert_eq!(v("wsgi_rs_processes", "group=dg"), 1.0);
    assert_eq!(v("wsgi_rs_threads", "group=dg,state=busy"), 0.0);
}

/// Graceful restarts that drop a group, add one, and change a group's
/// processes and threads: every group keeps its own figures by name (a
/// dropped one its counters, and its old process's exit), the gauges
/// follow the new sizes, and a group that comes back goes on counting
/// where it was. No process writes outside the table (Apache and the
/// daemons carry on, nothing logs an internal error).
#[test]
fn groups_keep_their_figures_when_the_group_set_changes() {
    if referee_differs("mod_wsgi has no wsgi-rs-metrics handler") {
        return;
    }
    let mut s = server(
        Mpm::Event,
        "processes=1 threads=2",
        "WSGIDaemonProcess gone processes=1 threads=1 display-name=%{GROUP}\n\
         WSGIScriptAlias /gone {root}/app.wsgi process-group=gone\n",
    );
    for path in ["/dmn/", "/gone/"] {
        assert_eq!(s.get(path).status, 200);
    }
    let conf = s.conf_path().to_path_buf();
    let first = std::fs::read_to_string(&conf).unwrap();
    // "gone" goes, "added" comes, dg grows to 2 processes of 3 threads.
    let second = first.replace("gone", "added").replace(
        "WSGIDaemonProcess dg processes=1 threads=2",
        "WSGIDaemonProcess dg processes=2 threads=3",
    );
    assert_ne!(second, first);
    std::fs::write(&conf, &second).unwrap();
    s.graceful();
    for path in ["/dmn/", "/dmn/"] {
        assert_eq!(s.get(path).status, 200);
    }
    wait_served(&s, "/added/");
    // Both old processes retire (gone's once no older Apache child is
    // left).
    wait_value(
        &s,
        "wsgi_rs_process_restarts_total",
        "group=gone,reason=graceful",
        1.0,
    );
    wait_value(
        &s,
        "wsgi_rs_process_restarts_total",
        "group=dg,reason=graceful",
        1.0,
    );
    let m = wait_value(&s, "wsgi_rs_threads", "group=dg,state=idle", 6.0);
    let v = |name: &str, labels: &str| value(&m, name, labels);
    assert_eq!(v("wsgi_rs_processes", "group=dg"), 2.0, "{m:#?}");
    assert_eq!(v("wsgi_rs_requests_total", "code=200,group=dg"), 3.0);
    assert_eq!(v("wsgi_rs_requests_total", "code=200,group=added"), 1.0);
    assert_eq!(v("wsgi_rs_requests_total", "code=200,group=gone"), 1.0);
    assert_eq!(v("wsgi_rs_processes", "group=gone"), 0.0);
    assert_eq!(v("wsgi_rs_processes", "group=added"), 1.0);

    // Back to the first configuration: "gone" comes back, "added" goes,
    // dg shrinks.
    std::fs::write(&conf, &first).unwrap();
    s.graceful();
    wait_served(&s, "/gone/");
    wait_value(
        &s,
        "wsgi_rs_process_restarts_total",
        "group=added,reason=graceful",
        1.0,
    );
    let m = wait_value(&s, "wsgi_rs_processes", "group=dg", 1.0);
    let v = |name: &str, labels: &str| value(&m, name, labels);
    assert_eq!(v("wsgi_rs_requests_total", "code=200,group=gone"), 2.0);
    assert_eq!(v("wsgi_rs_requests_total", "code=200,group=dg"), 3.0);
    assert_eq!(v("wsgi_rs_requests_total", "code=200,group=added"), 1.0);
    assert_eq!(v("wsgi_rs_processes", "group=gone"), 1.0);
    for needle in ["WSGIRS311", "panicked", "Segmentation fault"] {
        assert!(!s.error_log().contains(needle), "{}", s.error_log());
    }
}
