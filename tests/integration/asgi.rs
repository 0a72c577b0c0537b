//! ASGI applications (Starlette, FastAPI, Django's ASGI handler) served by
//! daemon groups from real apps in the test venv (`tests/framework-apps/asgi`).
//! Ours only: mod_wsgi does not run ASGI applications.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::deploy::{is_root, with_tree, REPO};
use crate::common::venv::venv;
use crate::common::{referee_differs, wait_for, wait_for_count, Mpm, Running, Server, StopOnDrop};
use crate::daemon::uwsgi_exchange;

/// Starts Apache with the ASGI test apps under {root}/asgi and `conf`
/// (where `{venv}` is the test venv) after a daemon group `api` of
/// `options`.
pub fn deploy(mpm: Mpm, options: &str, conf: &str) -> Running {
    let src = Path::new(REPO).join("tests/framework-apps/asgi");
    let venv = venv().display().to_string();
    let conf = format!(
        "WSGIDaemonProcess api {options} python-home={venv} python-path={{root}}/asgi\n{}",
        conf.replace("{venv}", &venv)
    );
    with_tree(Server::new(mpm), "asgi", &src)
        .conf(&conf)
        .start()
}

/// The Starlette app at /api in group `api`.
fn starlette(mpm: Mpm, options: &str) -> Running {
    deploy(
        mpm,
        options,
        "WSGIScriptAlias /api {root}/asgi/starlette_app.py process-group=api \
         application-group=%{GLOBAL}\n",
    )
}

/// The response's JSON body.
pub fn json(r: &crate::common::Response) -> Value {
    serde_json::from_str(&r.text()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()))
}

#[test]
fn starlette_json_get_and_scope() {
    if referee_differs("mod_wsgi does not run ASGI applications") {
        return;
    }
    let s = starlette(Mpm::Event, "threads=4");
    let r = s.request(
        "GET",
        "/api/info?a=1&b=%20x",
        &[("X-Custom", "Yes"), ("Host", "example.org")],
        b"",
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    let v = json(&r);
    assert_eq!(v["framework"], "starlette");
    assert_eq!(v["type"], "http");
    assert_eq!(v["asgi"]["version"], "3.0");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["scheme"], "http");
    assert_eq!(v["http_version"], "1.1");
    assert_eq!(v["path"], "/api/info");
    assert_eq!(v["raw_path"], "/api/info");
    assert_eq!(v["root_path"], "/api");
    assert_eq!(v["query_string"], "a=1&b=%20x");
    assert_eq!(v["state"], "hello from lifespan");
    assert_eq!(v["client"][0], "127.0.0.1");
    assert_eq!(v["url_for"], "http://example.org/api/items/7");
    assert_eq!(v["loop"], "uvloop", "uvloop is in the test venv");
    let headers = v["headers"].as_array().unwrap();
    assert!(
        headers.iter().any(|h| h[0] == "x-custom" && h[1] == "Yes"),
        "{}",
        r.text()
    );
    // The script is known to hold an ASGI application now: the same
    // request is handed over without the GIL, its scope built on the loop's
    // thread; it must be the same scope (but for the client's port).
    let again = s.request(
        "GET",
        "/api/info?a=1&b=%20x",
        &[("X-Custom", "Yes"), ("Host", "example.org")],
        b"",
    );
    assert_eq!(again.status, 200, "{}\n{}", again.text(), s.error_log());
    let (mut first, mut second) = (v.clone(), json(&again));
    first["client"][1] = Value::Null;
    second["client"][1] = Value::Null;
    assert_eq!(first, second);
    let item = s.get("/api/items/7");
    assert_eq!(item.status, 200);
    assert_eq!(item.text(), r#"{"id":7}"#);
    assert_eq!(item.header("X-Item"), Some("yes"));
    assert_eq!(s.get("/api/items/x").status, 404);
}

/// The three frameworks' apps in one group.
fn frameworks(mpm: Mpm) -> Running {
    deploy(
        mpm,
        "processes=1 threads=4",
        "WSGIApplicationGroup %{GLOBAL}\n\
         WSGIScriptAlias /api {root}/asgi/starlette_app.py process-group=api\n\
         WSGIScriptAlias /fast {root}/asgi/fastapi_app.py process-group=api\n\
         WSGIScriptAlias /dj {root}/asgi/django_asgi.py process-group=api\n",
    )
}

#[test]
fn fastapi_and_django_asgi_json() {
    if referee_differs("mod_wsgi does not run ASGI applications") {
        return;
    }
    let s = frameworks(Mpm::Worker);
    let r = s.get("/fast/items/5?q=x");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let v = json(&r);
    assert_eq!(v["id"], 5);
    assert_eq!(v["q"], "x");
    assert_eq!(v["framework"], "fastapi");
    // Validation by pydantic: a 422 from FastAPI itself.
    assert_eq!(s.get("/fast/items/five").status, 422);
    let r = s.request(
        "POST",
        "/fast/items",
        &[("Content-Type", "application/json")],
        br#"{"id": 3, "name": "caf\u00e9"}"#,
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    assert_eq!(json(&r)["created"]["name"], "café");
    let v = json(&s.get("/fast/state"));
    assert_eq!(v["db"], "connected", "lifespan state reaches request.state");
    assert_eq!(v["root_path"], "/fast");

    let r = s.get("/dj/items/7");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    let v = json(&r);
    assert_eq!(v["framework"], "django");
    assert_eq!(
        v["self"], "/dj/items/7",
        "reverse() includes the mount point"
    );
    assert_eq!(v["script_name"], "/dj");
    assert_eq!(v["path_info"], "/items/7");
    assert_eq!(s.get("/dj/nowhere").status, 404);
    // Django's handler refuses the lifespan scope: served without it.
    assert!(
        s.wait_log("WSGIRS511", Duration::from_secs(10)),
        "{}",
        s.error_log()
    );
    assert!(!s.error_log().contains("WSGIRS510"), "{}", s.error_log());
}

#[test]
fn streaming_upload_and_errors() {
    if referee_differs("mod_wsgi does not run ASGI applications") {
        return;
    }
    let s = starlette(Mpm::Event, "threads=2");
    let r = s.get("/api/stream?n=50");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    let expected: String = (0..50).map(|i| format!("part {i}\n")).collect();
    assert_eq!(r.text(), expected);
    // 10 MiB, read by the application as it arrives.
    let body: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let r = s.request(
        "POST",
        "/api/upload",
        &[("Content-Type", "application/octet-stream")],
        &body,
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    let v = json(&r);
    assert_eq!(v["size"], body.len());
    let digest: String = Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v["sha256"], digest);
    assert!(v["chunks"].as_u64().unwrap() > 1, "read in chunks: {v}");
    // The connection stays usable after both.
    assert_eq!(s.get("/api/items/1").status, 200);
    // An exception before the response starts: 500, traceback logged.
    let r = s.get("/api/fail");
    assert_eq!(r.status, 500);
    assert!(s.wait_log("asgi failure on purpose", Duration::from_secs(10)));
    let log = s.error_log();
    assert!(log.contains("WSGIRS502"), "{log}");
    assert!(log.contains("Traceback (most recent call last)"), "{log}");
}

#[test]
fn client_disconnect_is_seen_by_the_app() {
    if referee_differs("mod_wsgi does not run ASGI applications") {
        return;
    }
    let s = starlette(Mpm::Event, "threads=2");
    let mut conn = s.connect();
    conn.write_all(b"GET /api/forever?id=gone HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < 10_000 {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended early");
        got += n;
    }
    drop(conn);
    let seen = s.wait_file("var/disconnected-gone", Duration::from_secs(30));
    assert_eq!(
        seen.as_deref(),
        Some("http.disconnect\n"),
        "{}",
        s.error_log()
    );
    assert_eq!(s.get("/api/items/2").status, 200);
}

#[test]
fn many_awaiting_requests_share_four_threads() {
    if referee_differs("mod_wsgi does not run ASGI applications") {
        return;
    }
    // Apache itself holds a thread per request it relays: room for 200.
    let s = deploy(
        Mpm::Event,
        "processes=1 threads=4",
        "ServerLimit 2\nThreadLimit 128\nThreadsPerChild 128\nStartServers 2\n\
         MaxRequestWorkers 256\nMinSpareThreads 16\nMaxSpareThreads 256\n\
         WSGIScriptAlias /api {root}/asgi/starlette_app.py process-group=api \
         application-group=%{GLOBAL}\n",
    );
    assert_eq!(s.get("/api/items/1").status, 200, "{}", s.error_log());
    let began = std::time::Instant::now();
    let most = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..200)
            .map(|_| scope.spawn(|| s.get("/api/sleep?s=0.5&together=100")))
            .collect();
        let mut most = 0;
        for h in handles {
            let r = h.join().unwrap();
            assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
            most = most.max(json(&r)["most"].as_u64().unwrap());
        }
        most
    });
    eprintln!(
        "200 requests awaiting 0.5 s each: {:.2} s, {most} at once",
        began.elapsed().as_secs_f64()
    );
    // With a thread per awaiting request, at most 4 could overlap (and
    // each would wait out the 10 s for the others).
    assert!(most >= 100, "only {most} requests awaited at once");
}

#[test]
fn lifespan_runs_once_per_process_and_shuts_down_at_a_graceful_stop() {
    if referee_differs("mod_wsgi does not run ASGI applications") {
        return;
    }
    let mut s = starlette(Mpm::Event, "processes=1 threads=2");
    // The alias names both groups, so the script loads with the process,
    // and its lifespan starts then, before any request.
    let started = wait_for(Duration::from_secs(30), || {
        std::fs::read_dir(s.path("var"))
            .ok()?
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("lifespan-"))
    });
    assert!(started.is_some(), "{}", s.error_log());
    let first = json(&s.get("/api/info"));
    assert_eq!(first["state"], "hello from lifespan");
    let pid = first["pid"].as_u64().unwrap();
    for _ in 0..3 {
        assert_eq!(json(&s.get("/api/info"))["pid"], pid);
    }
    let file = format!("var/lifespan-{pid}");
    assert_eq!(std::fs::read_to_string(s.path(&file)).unwrap(), "startup\n");
    s.graceful();
    let stopped = wait_for(Duration::from_secs(30), || {
        let text = std::fs::read_to_string(s.path(&file)).ok()?;
        (text == "startup\nshutdown\n").then_some(())
    });
    assert!(stopped.is_some(), "{}", s.error_log());
}

#[test]
fn request_timeout_cancels_the_task() {
    if referee_differs("mod_wsgi does not run ASGI applications") {
        return;
    }
    let s = starlette(Mpm::Event, "processes=1 threads=2 request-timeout=1");
    let first = json(&s.get("/api/info"))["pid"].clone();
    let r = s.get("/api/sleep?s=30");
    assert_eq!(r.status, 504, "{}", s.error_log());
    assert!(s.wait_log("WSGIRS504", Duration::from_secs(10)));
    // The process keeps serving.
    assert_eq!(json(&s.get("/api/info"))["pid"], first);
}

#[test]
fn maximum_requests_replaces_an_asgi_process() {
    if referee_differs("mod_wsgi does not run ASGI applications") {
        return;
    }
    let s = starlette(Mpm::Event, "processes=1 threads=2 maximum-requests=3");
    // A process past its limit serves on until its successor has imported
    // the application and serves (no template: a full start), so requests
    // keep coming until three processes have answered; every one succeeds.
    let mut pids = std::collections::BTreeSet::new();
    let mut served = 0;
    let replaced = wait_for(Duration::from_secs(120), || {
        let r = s.get("/api/info");
        assert_eq!(r.status, 200, "{}", s.error_log());
        pids.insert(json(&r)["pid"].as_u64().unwrap());
        served += 1;
        (pids.len() >= 3).then_some(())
    });
    assert!(
        replaced.is_some(),
        "maximum-requests=3 never replaced the process twice in {served} requests: {pids:?}\n{}",
        s.error_log()
    );
}

#[test]
fn touch_reload_under_load_fails_no_request() {
    if referee_differs("mod_wsgi does not run ASGI applications") {
        return;
    }
    let s = starlette(Mpm::Event, "processes=2 threads=4");
    let before = json(&s.get("/api/info"))["pid"].as_u64().unwrap();
    let stop = AtomicBool::new(false);
    let answered = AtomicUsize::new(0);
    let (served, pids) = std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        let clients: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let mut served = 0;
                    let mut pids = std::collections::BTreeSet::new();
                    while !stop.load(Ordering::SeqCst) {
                        let r = s.get("/api/sleep?s=0.05");
                        assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
                        pids.insert(json(&r)["pid"].as_u64().unwrap());
                        served += 1;
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    (served, pids)
                })
            })
            .collect();
        // The load is flowing before the script changes.
        wait_for_count(&answered, 8, Duration::from_secs(30));
        s.touch("asgi/starlette_app.py");
        // Load goes on until a replacement process has served.
        let replaced = wait_for(Duration::from_secs(60), || {
            let pid = json(&s.get("/api/info"))["pid"].as_u64().unwrap();
            (pid != before && !Path::new(&format!("/proc/{before}")).exists()).then_some(())
        });
        stop.store(true, Ordering::SeqCst);
        assert!(replaced.is_some(), "{}", s.error_log());
        clients.into_iter().map(|c| c.join().unwrap()).fold(
            (0, std::collections::BTreeSet::new()),
            |(n, mut all), (m, p)| {
                all.extend(p);
                (n + m, all)
            },
        )
    });
    assert!(served > 0);
    assert!(pids.len() >= 2, "{pids:?}");
}

#[test]
fn asgi_needs_a_daemon_group() {
    if referee_differs("mod_wsgi does not run ASGI applications") {
        return;
    }
    let src = Path::new(REPO).join("tests/framework-apps/asgi");
    let server = with_tree(Server::new(Mpm::Event), "asgi", &src)
        .conf("WSGIScriptAlias /api {root}/asgi/starlette_app.py interface=asgi\n");
    let (status, output) = server.start_expect_failure();
    assert!(!status.success());
    assert!(output.contains("WSGIScriptAlias"), "{output}");
    assert!(output.contains("interface=asgi"), "{output}");
    assert!(output.contains("WSGIRS500"), "{output}");
    assert!(output.contains("process-group="), "{output}");
    assert!(output.contains("line "), "{output}");
    // Detected in embedded mode: 500, and the log says what to do.
    let s = Server::new(Mpm::Event)
        .file(
            "app.py",
            "async def application(scope, receive, send):\n    raise RuntimeError('never')\n",
        )
        .conf("WSGIScriptAlias /e {root}/app.py\n")
        .start();
    assert_eq!(s.get("/e").status, 500);
    assert!(s.wait_log("WSGIRS501", Duration::from_secs(10)));
    assert!(s.error_log().contains("process-group=NAME"));
}

/// An ASGI application the detection cannot see (its `__call__` is a plain
/// function returning a coroutine), so only `interface=asgi` serves it.
const HIDDEN_ASGI: &str = r#"
class App:
    def __call__(self, scope, receive, send):
        return self.handle(scope, receive, send)

    async def handle(self, scope, receive, send):
        if scope['type'] != 'http':
            return
        await send({'type': 'http.response.start', 'status': 200,
                    'headers': [(b'content-type', b'text/plain')]})
        await send({'type': 'http.response.body', 'body': b'asgi by option'})

application = App()
"#;

#[test]
fn interface_option_overrides_detection() {
    if referee_differs("mod_wsgi does not run ASGI applications") {
        return;
    }
    let s = Server::new(Mpm::Event)
        .file("hidden.py", HIDDEN_ASGI)
        .file(
            "wsgi.py",
            "def application(environ, start_response):\n    \
             start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
             return [b'plain wsgi']\n",
        )
        .conf(
            "WSGIDaemonProcess api threads=2\n\
             WSGIScriptAlias /detected {root}/hidden.py process-group=api\n\
             WSGIScriptAlias /forced {root}/hidden.py process-group=api interface=asgi\n\
             WSGIScriptAlias /wsgi {root}/wsgi.py process-group=api interface=wsgi\n",
        )
        .start();
    let forced = s.get("/forced");
    assert_eq!(forced.status, 200, "{}", s.error_log());
    assert_eq!(forced.text(), "asgi by option");
    // The system Python has no uvloop: asyncio's own loop serves.
    assert!(
        s.wait_log("ASGI event loop (asyncio)", Duration::from_secs(10)),
        "{}",
        s.error_log()
    );
    // Without the option it is taken for WSGI, and fails as such.
    assert_eq!(s.get("/detected").status, 500);
    assert_eq!(s.get("/wsgi").text(), "plain wsgi");
}

/// A line of the text `field=value` lines, by name.
fn field(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value of the Prometheus sample `line_start` (name and labels as
/// written), 0 when absent.
fn sample(metrics: &str, line_start: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The group's default application is ASGI by `WSGIImportScript ...
/// interface=asgi`: Apache's mod_proxy_uwsgi gets it (plain uwsgi, body by
/// CONTENT_LENGTH, plain response); a request without this Apache's secret
/// is refused before any application runs; the metrics count the group's
/// ASGI requests.
#[test]
fn uwsgi_peers_secret_and_metrics() {
    if referee_differs("mod_wsgi does not run ASGI applications") {
        return;
    }
    let src = Path::new(REPO).join("tests/framework-apps/asgi");
    let venv = venv().display().to_string();
    let s = with_tree(Server::new(Mpm::Event), "asgi", &src)
        .conf(&format!(
            "LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so\n\
             LoadModule proxy_uwsgi_module /usr/lib/apache2/modules/mod_proxy_uwsgi.so\n\
             WSGISocketPrefix {{root}}/sock/wsgi\n\
             WSGIDaemonProcess api threads=2 python-home={venv}\n\
             WSGIImportScript {{root}}/asgi/peer_app.py process-group=api \
             application-group=%{{GLOBAL}} interface=asgi\n\
             WSGIScriptAlias /api {{root}}/asgi/peer_app.py process-group=api \
             application-group=%{{GLOBAL}} interface=asgi\n\
             ProxyPass /px unix:{{root}}/sock/wsgi.api.sock|uwsgi://localhost/\n\
             <Location /metrics>\n    SetHandler wsgi-rs-metrics\n</Location>\n"
        ))
        .start();
    // Through our own client.
    for i in 0..3 {
        let r = s.get(&format!("/api/ours?q{i}"));
        assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
        assert_eq!(field(&r.text(), "path").as_deref(), Some("/api/ours"));
        assert_eq!(field(&r.text(), "leaked").as_deref(), Some(""));
    }
    // Through mod_proxy_uwsgi: GET, then a 200 KiB POST read by length.
    let r = s.get("/px/some/where?x=1");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    assert_eq!(field(&r.text(), "query").as_deref(), Some("x=1"));
    assert_eq!(field(&r.text(), "leaked").as_deref(), Some(""));
    let data: Vec<u8> = (0..200 * 1024u32).map(|i| (i % 253) as u8).collect();
    let r = s.request(
        "POST",
        "/px/upload?big",
        &[("Content-Type", "application/octet-stream")],
        &data,
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    assert_eq!(field(&r.text(), "method").as_deref(), Some("POST"));
    assert_eq!(
        field(&r.text(), "length"),
        Some(data.len().to_string()),
        "{}",
        r.text()
    );
    let digest: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(field(&r.text(), "sha"), Some(digest));
    // Straight to the socket, naming the script but without the secret.
    let script = s.path("asgi/peer_app.py").display().to_string();
    let vars = [
        ("REQUEST_METHOD", "GET"),
        ("QUERY_STRING", "forged"),
        ("SCRIPT_NAME", "/api"),
        ("PATH_INFO", "/x"),
        ("REQUEST_URI", "/api/x?forged"),
        ("SERVER_NAME", "127.0.0.1"),
        ("SERVER_PORT", "80"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("WSGI_RS_SCRIPT", &script),
        ("WSGI_RS_INTERFACE", "asgi"),
    ];
    let answer = uwsgi_exchange(&s.path("sock/wsgi.api.sock"), &vars);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(!s.path("var/ran-forged").exists(), "the application ran");
    // The group's requests and their durations are counted.
    let counted = wait_for(Duration::from_secs(30), || {
        let m = s.get("/metrics").text();
        let requests = sample(&m, "wsgi_rs_requests_total{group=\"api\",code=\"200\"}");
        let timed = sample(&m, "wsgi_rs_request_duration_seconds_count{group=\"api\"}");
        (requests >= 3.0 && timed >= 5.0).then_some(())
    });
    assert!(counted.is_some(), "{}", s.get("/metrics").text());
}

#[test]
fn an_asgi_group_runs_as_its_user() {
    if referee_differs("mod_wsgi does not run ASGI applications") || !is_root() {
        return; // only root can switch users
    }
    let s = starlette(
        Mpm::Event,
        "threads=2 user=nobody group=nogroup home={root}",
    );
    let r = s.get("/api/info");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    let nobody = std::process::Command::new("id")
        .args(["-u", "nobody"])
        .output()
        .unwrap();
    let nobody: u64 = String::from_utf8_lossy(&nobody.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(json(&r)["uid"], nobody);
}

#[test]
fn failures_after_the_start_and_large_streamed_responses() {
    if referee_differs("mod_wsgi does not run ASGI applications") {
        return;
    }
    let s = starlette(Mpm::Worker, "threads=2");
    // An exception after the response started: the client sees it cut short.
    let r = s.get("/api/fail-midway");
    assert_eq!(r.status, 200);
    assert!(!r.complete, "an aborted response must not look complete");
    assert!(r.text().starts_with("first part\n"), "{}", r.text());
    assert!(s.wait_log(
        "asgi failure after the response started",
        Duration::from_secs(10)
    ));
    assert!(s.error_log().contains("after the response started"));
    // 32 MiB streamed through the daemon's flow control, intact.
    let r = s.get("/api/big?mb=32");
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert!(r.complete);
    assert_eq!(r.body.len(), 32 << 20);
    let part: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    assert!(r.body.chunks(1 << 20).all(|c| c == part.as_slice()));
    // HEAD: the head only.
    let r = s.request("HEAD", "/api/big?mb=2", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(s.get("/api/items/3").status, 200);
}

#[test]
fn a_failing_lifespan_startup_stops_the_process() {
    if referee_differs("mod_wsgi does not run ASGI applications") {
        return;
    }
    let s = deploy(
        Mpm::Event,
        "processes=1 threads=2",
        "WSGIScriptAlias /bad {root}/asgi/failing_lifespan.py process-group=api \
         application-group=%{GLOBAL}\n",
    );
    let r = s.get("/bad/");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(s.wait_log("WSGIRS510", Duration::from_secs(10)));
    assert!(s.wait_log("the database is not there", Duration::from_secs(10)));
    assert!(
        s.wait_log(
            "will restart: ASGI lifespan startup failed",
            Duration::from_secs(10)
        ),
        "{}",
        s.error_log()
    );
    let log = s.error_log();
    assert!(!log.contains("never served"));
    // Logged like a script that fails to import: the message, then the
    // traceback, each on its own line.
    let line = log.lines().find(|l| l.contains("WSGIRS510")).unwrap();
    assert!(line.ends_with("failed; the process stops."), "{line}");
    assert!(log.contains("Traceback (most recent call last)"), "{log}");
    assert!(
        log.contains("ConnectionError: the database is not there"),
        "{log}"
    );
}

#[test]
fn graceful_restart_under_load_fails_no_request() {
    if referee_differs("mod_wsgi does not run ASGI applications") {
        return;
    }
    let mut s = starlette(Mpm::Event, "processes=1 threads=2");
    let before = json(&s.get("/api/info"))["pid"].as_u64().unwrap();
    let stop = AtomicBool::new(false);
    let answered = AtomicUsize::new(0);
    let port = s.port;
    let served = std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        let clients: Vec<_> = (0..6)
            .map(|_| {
                let stop = &stop;
                let answered = &answered;
                scope.spawn(move || {
                    let mut served = 0;
                    while !stop.load(Ordering::SeqCst) {
                        // Each request is in flight on the loop for 0.2 s.
                        let req = crate::common::http::build_request(
                            "GET",
                            "/api/sleep?s=0.2",
                            port,
                            &[],
                            b"",
                        );
                        let (data, reset) = crate::common::http::exchange(port, &req);
                        let r = crate::common::http::parse_response(&data, false, reset);
                        assert_eq!(r.status, 200, "{}", r.text());
                        served += 1;
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    served
                })
            })
            .collect();
        // The load is flowing before the restart.
        wait_for_count(&answered, 6, Duration::from_secs(30));
        s.graceful();
        let replaced = wait_for(Duration::from_secs(60), || {
            let pid = json(&s.get("/api/info"))["pid"].as_u64().unwrap();
            (pid != before).then_some(())
        });
        stop.store(true, Ordering::SeqCst);
        assert!(replaced.is_some(), "{}", s.error_log());
        clients
            .into_iter()
            .map(|c| c.join().unwrap())
            .sum::<usize>()
    });
    assert!(served > 0);
}
