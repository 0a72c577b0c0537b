//! Slow and idle clients never hold every daemon thread: a request takes a
//! daemon thread only once it is ready to run. Uploads that dribble in are
//! buffered by the Apache child (up to `request-buffer-size`) before the
//! daemon sees them; connections to the daemon socket that send nothing, or
//! a head in dribbles, wait in the daemon's epoll set and are closed after
//! `header-timeout`. Bodies above the limit still arrive intact, streamed.
//!
//! The tests hold the slow clients open until the other requests have been
//! answered, so "served while the slow ones are in progress" is a fact the
//! test arranges, not a race it measures.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::apps::pattern;
use crate::common::http::{build_request, chunked, find, read_to_eof};
use crate::common::{
    module, referee_differs, wait_for_count, Module, Mpm, Response, Running, Server,
};
use crate::daemon::{field, sha256_hex, uwsgi_packet, wait_daemons};

/// Answers a GET with `hello`, a POST with the length and SHA-256 of the
/// body it read.
const APP: &str = r#"
import hashlib
def application(environ, start_response):
    if environ['REQUEST_METHOD'] == 'POST':
        data = environ['wsgi.input'].read()
        body = ('len=%d\nsha=%s\n' % (len(data), hashlib.sha256(data).hexdigest())).encode()
    else:
        body = b'hello\n'
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
"#;

/// Slow uploads started at once.
const UPLOADS: usize = 16;
/// Each one's size: above the 64 KiB our client used to stream (holding a
/// daemon thread while it arrived), below the default request-buffer-size.
const UPLOAD: usize = 256 * 1024;
/// What each sends before the GETs start: well into its body.
const UNDER_WAY: usize = 8 * 1024;

/// The body of upload `i`: its own bytes, so a mix-up shows.
fn upload_body(i: usize) -> Vec<u8> {
    let mut body = pattern(UPLOAD);
    body[..8].copy_from_slice(&(i as u64).to_le_bytes());
    body
}

/// One slow upload: the head, then the body in 256-byte pieces every 20 ms
/// (about 12 KB/s, under Apache's `Timeout`), holding the last piece until
/// `release`; then the answer, checked.
fn slow_upload(s: &Running, i: usize, under_way: &AtomicUsize, release: &AtomicBool) {
    let body = upload_body(i);
    let mut c = s.connect();
    let head = build_request(
        "POST",
        "/app/upload",
        s.port,
        &[("Content-Length", &UPLOAD.to_string())],
        b"",
    );
    c.write_all(&head).unwrap();
    let mut sent = 0;
    let mut counted = false;
    while sent < UPLOAD - 256 && !release.load(Ordering::SeqCst) {
        c.write_all(&body[sent..sent + 256]).unwrap();
        sent += 256;
        if sent >= UNDER_WAY && !counted {
            counted = true;
            under_way.fetch_add(1, Ordering::SeqCst);
        }
        // Pacing the client, as a slow network would.
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        counted && sent < UPLOAD,
        "upload {i} ran out of body before the GETs were done"
    );
    c.write_all(&body[sent..]).unwrap();
    let (raw, _) = read_to_eof(&mut c);
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "upload {i}: {text}");
    let at = find(&raw, b"\r\n\r\n").expect("a response head") + 4;
    let answer = String::from_utf8_lossy(&raw[at..]).into_owned();
    assert_eq!(
        field(&answer, "len").as_deref(),
        Some(UPLOAD.to_string().as_str())
    );
    assert_eq!(field(&answer, "sha"), Some(sha256_hex(&body)), "upload {i}");
}

/// p50 and slowest of some durations.
fn p50_max(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[times.len() - 1])
}

/// 16 uploads dribbling in against a group of 4 threads: GETs are answered
/// while every upload is still sending, and each upload arrives intact.
/// (Before, each upload above 64 KiB held a daemon thread while its body
/// arrived, and the GETs waited out the socket timeout.)
fn slow_uploads_leave_threads_for_others(mpm: Mpm) {
    if referee_differs("mod_wsgi gives an upload its daemon thread while the body arrives") {
        return;
    }
    let name = format!("slow{}", mpm.name());
    let s = Server::new(mpm)
        .file("app.wsgi", APP)
        .conf(&format!(
            "WSGIDaemonProcess {name} threads=4 display-name=%{{GROUP}}\n\
             WSGIScriptAlias /app {{root}}/app.wsgi process-group={name} application-group=%{{GLOBAL}}\n"
        ))
        .start();
    wait_daemons(&s, &name, 1, Duration::from_secs(20));
    assert_eq!(s.get("/app").status, 200);
    let s = Arc::new(s);
    let under_way = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let uploads: Vec<_> = (0..UPLOADS)
        .map(|i| {
            let (s, under_way, release, done) =
                (s.clone(), under_way.clone(), release.clone(), done.clone());
            std::thread::spawn(move || {
                slow_upload(&s, i, &under_way, &release);
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    wait_for_count(&under_way, UPLOADS, Duration::from_secs(60));
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let r = s.get("/app");
        times.push(t.elapsed());
        assert_eq!(r.status, 200, "a GET behind the slow uploads: {}", r.text());
        assert_eq!(r.text(), "hello\n");
    }
    assert_eq!(
        done.load(Ordering::SeqCst),
        0,
        "an upload finished before the GETs: they did not overlap"
    );
    let (p50, max) = p50_max(times);
    eprintln!("GET latency with {UPLOADS} slow uploads on threads=4: p50 {p50:?}, max {max:?}");
    release.store(true, Ordering::SeqCst);
    for u in uploads {
        u.join().expect("an upload failed");
    }
}
threaded_mpms!(slow_uploads_leave_threads_for_others);

/// 16 connections to the daemon socket that send nothing (12) or the first
/// bytes of a head (4), against 4 threads: GETs are still answered, and the
/// daemon closes the idle ones after `header-timeout`, logging it.
#[test]
fn idle_daemon_connections_hold_no_thread() {
    if module() == Module::ModWsgi {
        return; // mod_wsgi's socket speaks its own protocol
    }
    let s = Server::new(Mpm::Event)
        .file("app.wsgi", APP)
        .conf(
            "WSGISocketPrefix {root}/sock/wsgi\n\
             WSGIDaemonProcess idle threads=4 header-timeout=2 display-name=%{GROUP}\n\
             WSGIScriptAlias /app {root}/app.wsgi process-group=idle application-group=%{GLOBAL}\n",
        )
        .start();
    wait_daemons(&s, "idle", 1, Duration::from_secs(20));
    let socket = s.path("sock/wsgi.idle.sock");
    let partial = uwsgi_packet(&[("REQUEST_METHOD", "GET"), ("PATH_INFO", "/")]);
    let mut idle: Vec<UnixStream> = (0..16)
        .map(|i| {
            let mut c = UnixStream::connect(&socket).unwrap();
            if i % 4 == 0 {
                c.write_all(&partial[..3]).unwrap();
            }
            c
        })
        .collect();
    for _ in 0..10 {
        let r = s.get("/app");
        assert_eq!(r.status, 200, "a GET behind idle connections: {}", r.text());
        assert_eq!(r.text(), "hello\n");
    }
    // Every idle one is closed by the daemon, without an answer.
    for c in &mut idle {
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut buf = [0u8; 64];
        match c.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("an idle connection was not closed: {other:?}"),
        }
    }
    assert!(
        s.wait_log("WSGIRS460", Duration::from_secs(10)),
        "{}",
        s.error_log()
    );
    assert_eq!(s.get("/app").status, 200);
}

/// Bodies above `request-buffer-size` (default 1 MiB) are streamed to the
/// application, intact; a chunked body under it is buffered, intact; one of
/// exactly the limit too.
#[test]
fn bodies_around_the_buffer_size_arrive_intact() {
    let s = Server::new(Mpm::Event)
        .file("app.wsgi", APP)
        .conf(
            "WSGIChunkedRequest On\n\
             WSGIDaemonProcess bodies threads=2 display-name=%{GROUP}\n\
             WSGIScriptAlias /app {root}/app.wsgi process-group=bodies application-group=%{GLOBAL}\n",
        )
        .start();
    wait_daemons(&s, "bodies", 1, Duration::from_secs(20));
    for len in [1 << 20, (1 << 20) + 1, 3 << 20] {
        let data = pattern(len);
        let r = s.request("POST", "/app/up", &[], &data);
        assert_arrived(&r, &data, &format!("{len} bytes"));
    }
    // Chunked: under the limit (buffered) and above it (streamed).
    for (len, split) in [(200 * 1024, 70_000), (3 << 20, 1 << 20)] {
        let data = pattern(len);
        let body = chunked(&[&data[..split], &data[split..]]);
        let r = s.request(
            "POST",
            "/app/up",
            &[("Transfer-Encoding", "chunked")],
            &body,
        );
        assert_arrived(&r, &data, &format!("{len} bytes chunked"));
    }
}

/// Asserts that APP answered `r` with the length and SHA-256 of `data`.
fn assert_arrived(r: &Response, data: &[u8], what: &str) {
    let text = r.text();
    assert_eq!(r.status, 200, "{what}: {text}");
    assert_eq!(
        field(&text, "len"),
        Some(data.len().to_string()),
        "{what}: {text}"
    );
    assert_eq!(field(&text, "sha"), Some(sha256_hex(data)), "{what}");
}

/// `request-buffer-size=0` streams every body; a small limit streams what
/// is above it; both arrive intact, also through mod_proxy_uwsgi (whose
/// bodies the daemon buffers itself up to the limit).
#[test]
fn request_buffer_size_is_honoured() {
    if module() == Module::ModWsgi {
        return; // request-buffer-size= is ours
    }
    let s = Server::new(Mpm::Event)
        .file("app.wsgi", APP)
        .conf(
            "LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so\n\
             LoadModule proxy_uwsgi_module /usr/lib/apache2/modules/mod_proxy_uwsgi.so\n\
             WSGISocketPrefix {root}/sock/wsgi\n\
             WSGIDaemonProcess none threads=2 request-buffer-size=0 display-name=%{GROUP}\n\
             WSGIDaemonProcess small threads=2 request-buffer-size=10000 display-name=%{GROUP}\n\
             WSGIImportScript {root}/app.wsgi process-group=small application-group=%{GLOBAL}\n\
             WSGIScriptAlias /none {root}/app.wsgi process-group=none application-group=%{GLOBAL}\n\
             WSGIScriptAlias /small {root}/app.wsgi process-group=small application-group=%{GLOBAL}\n\
             ProxyPass /px unix:{root}/sock/wsgi.small.sock|uwsgi://localhost/\n",
        )
        .start();
    wait_daemons(&s, "none", 1, Duration::from_secs(20));
    wait_daemons(&s, "small", 1, Duration::from_secs(20));
    for path in ["/none/up", "/small/up", "/px/up"] {
        for len in [0, 1, 9_999, 10_000, 10_001, 300_000] {
            let data = pattern(len);
            let r = s.request("POST", path, &[], &data);
            assert_arrived(&r, &data, &format!("{path} {len}"));
        }
    }
}
