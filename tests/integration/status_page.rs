//! `SetHandler wsgi-rs-status` (issue 13): the page, its data answers, and
//! the page rendered in a real headless Chromium: its charts draw from live
//! metrics and its table lists a request blocked in a daemon process. Ours
//! only: mod_wsgi has no such handler.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{referee_differs, wait_for, Running, Server, StopOnDrop};
use crate::daemon::wait_daemons;

/// How long the blocked request may wait, its group's socket-timeout and
/// the client's patience: past two Chromium runs of at most 120 s each
/// (`chromium`), however slow a loaded machine makes them.
const PATIENCE: Duration = Duration::from_secs(300);

/// `/block` waits (at most 300 s, `PATIENCE`, by the clock: a loaded
/// machine's sleeps overshoot) until the file `var/release` exists.
const APP: &str = r#"
import os, time
def application(environ, start_response):
    if environ.get('PATH_INFO', '') == '/block':
        release = os.path.join('{root}', 'var', 'release')
        deadline = time.monotonic() + 300
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.01)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok\n']
"#;

/// Embedded mode at /emb, daemon group `dg` at /dmn, the page at /status.
/// The group's socket-timeout (`PATIENCE`) outlasts Chromium's runs on a
/// loaded machine, which the blocked request waits through.
fn server() -> Running {
    Server::new(crate::common::Mpm::Event)
        .file("app.wsgi", APP)
        .conf(
            "WSGIDaemonProcess dg processes=1 threads=2 socket-timeout=300 display-name=%{GROUP}\n\
             WSGIScriptAlias /emb {root}/app.wsgi\n\
             WSGIScriptAlias /dmn {root}/app.wsgi process-group=dg\n\
             <Location /status>\n    SetHandler wsgi-rs-status\n    Require ip 127.0.0.1\n</Location>\n",
        )
        .start()
}

/// Runs headless Chromium on `url` with `args`; its stdout.
fn chromium(url: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,900",
            "--virtual-time-budget=6000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .env("HOME", profile.path())
        .output()
        .expect("chromium is not installed (scripts/setup-debian.sh installs it)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of attribute `name` on the first element whose opening tag
/// contains `marker`, in a dumped DOM.
fn attribute(dom: &str, marker: &str, name: &str) -> Option<u64> {
    let at = dom.find(marker)?;
    let start = dom[..=at].rfind('<')?;
    let tag = &dom[start..start + dom[start..].find('>')?];
    let v = tag.split(&format!("{name}=\"")).nth(1)?;
    v[..v.find('"')?].parse().ok()
}

/// The page and its data answers; then Chromium renders the page while a
/// request is blocked: the charts drew points from several polls, and the
/// running-requests table lists the blocked request.
#[test]
fn status_page_draws_live_metrics_in_chromium() {
    if referee_differs("mod_wsgi has no wsgi-rs-status handler") {
        return;
    }
    let s = server();
    wait_daemons(&s, "dg", 1, Duration::from_secs(30));

    let page = s.get("/status");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.text().contains("<canvas") || page.text().contains("canvas"));
    let metrics = s.get("/status?format=prometheus");
    assert_eq!(
        metrics.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(metrics.text().contains("wsgi_rs_threads{group=\"dg\""));
    assert_eq!(s.request("POST", "/status", &[], b"").status, 405);

    for _ in 0..3 {
        assert_eq!(s.get("/emb/").status, 200);
        assert_eq!(s.get("/dmn/").status, 200);
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let blocked = scope.spawn(|| s.get_patiently("/dmn/block?who=%3Cme%3E", PATIENCE));
        let listed = wait_for(Duration::from_secs(30), || {
            let r = s.get("/status?format=running");
            let text = r.text();
            // Listed by the Apache child as soon as it takes the request,
            // with its group once it is on its way to the daemon.
            (text.contains("GET /dmn/block?who=%3Cme%3E") && text.contains("\"group\":\"dg\""))
                .then_some((r, text))
        });
        let (r, text) = listed.expect("the blocked request never showed as running");
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert!(text.contains("\"group\":\"dg\""), "{text}");
        assert!(
            !text.contains("/status"),
            "finished requests are not listed: {text}"
        );

        // Traffic while Chromium watches, so the charts have rates to draw
        // (its answers are not what is asserted: a stalled machine may make
        // them late). It stops when the test ends, even by a failed assertion.
        let _stop = StopOnDrop(&stop);
        let load = scope.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                s.get_patiently("/dmn/", PATIENCE);
                s.get_patiently("/emb/", PATIENCE);
            }
        });
        let dom = chromium(
            &format!("http://127.0.0.1:{}/status", s.port),
            &["--dump-dom"],
        );
        let polls = attribute(&dom, "<body", "data-polls").unwrap_or(0);
        assert!(polls >= 2, "the page polled {polls} times:\n{dom}");
        assert!(
            dom.contains("id=\"g-dg\"") && dom.contains("id=\"g-embedded\""),
            "{dom}"
        );
        let dg = &dom[dom.find("id=\"g-dg\"").unwrap()..];
        for chart in ["c-rps", "c-busy", "c-restarts"] {
            let points = attribute(dg, &format!("class=\"{chart}\""), "data-points").unwrap_or(0);
            assert!(points >= 1, "chart {chart} drew {points} points:\n{dom}");
        }
        assert!(
            attribute(dg, "class=\"c-busy\"", "data-points").unwrap_or(0) >= 2,
            "{dom}"
        );
        // The blocked request, and perhaps some of the load's in flight.
        let rows = attribute(&dom, "id=\"running\"", "data-rows").unwrap_or(0);
        assert!((1..=3).contains(&rows), "{rows} rows:\n{dom}");
        assert!(dom.contains("GET /dmn/block?who=%3Cme%3E"), "{dom}");

        let shot = s.path("status.png");
        chromium(
            &format!("http://127.0.0.1:{}/status", s.port),
            &[&format!("--screenshot={}", shot.display())],
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        load.join().unwrap();
        check_png(&shot);
        if let Some(keep) = std::env::var_os("WSGI_TEST_STATUS_SCREENSHOT") {
            std::fs::copy(&shot, keep).unwrap();
        }

        std::fs::write(s.path("var/release"), b"").unwrap();
        assert_eq!(blocked.join().unwrap().status, 200);
    });
    let empty = wait_for(Duration::from_secs(30), || {
        let text = s.get("/status?format=running").text();
        (text == "{\"running\":[]}\n").then_some(())
    });
    assert!(empty.is_some(), "a finished request stayed listed");
}

/// `path` is a PNG of the window's size.
fn check_png(path: &Path) {
    let png = std::fs::read(path).expect("chromium wrote no screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 900));
}
