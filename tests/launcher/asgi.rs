//! `wsgi-rs serve module:app` with an ASGI application: served by a
//! daemon process's event loop with the same one command (lifespan,
//! streaming, concurrent awaiting requests), refused with `--embedded`.
//! The app is plain ASGI so the system Python serves it; the Starlette,
//! FastAPI and Django apps are tested under Apache in tests/integration/asgi.rs.

use crate::harness::*;

/// An ASGI 3 application in the style FastAPI and Starlette export (`app`).
const ASGI_APP: &str = r#"
import asyncio
import os

state = {}

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started_in"] = os.getpid()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"].endswith("/slow"):
        await asyncio.sleep(0.3)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    for part in (b"interface=asgi|",
                 b"root_path=%s|" % scope["root_path"].encode(),
                 b"path=%s|" % scope["path"].encode(),
                 b"started_in=%d|" % scope["state"]["started_in"]):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"pid=%d" % os.getpid()})
"#;

#[test]
fn serves_an_asgi_app_in_a_daemon_process() {
    let scratch = Scratch::new();
    scratch.write("asgiapp.py", ASGI_APP);
    let served = Served::start(
        &scratch,
        &["asgiapp:app", "--mount-point", "/api", "--threads", "2"],
    );
    let response = served.get("/api/items");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(field(&response.body, "interface"), "asgi");
    assert_eq!(field(&response.body, "root_path"), "/api");
    assert_eq!(field(&response.body, "path"), "/api/items");
    // Lifespan startup ran in the serving process before the request.
    assert_eq!(
        field(&response.body, "started_in"),
        field(&response.body, "pid")
    );
    // Concurrent awaiting requests do not queue behind the two threads.
    let port = served.port;
    let began = std::time::Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| scope.spawn(move || get(port, "/api/slow", "")))
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().status, 200);
        }
    });
    let elapsed = began.elapsed();
    let config = std::fs::read_to_string(served.root.join("httpd.conf")).unwrap();
    assert!(config.contains("WSGIDaemonProcess"), "{config}");
    let finished = stop_cleanly(served, libc::SIGINT);
    assert!(
        finished.stdout.contains("(daemon mode;"),
        "{}",
        finished.stdout
    );
    eprintln!("6 requests awaiting 0.3 s on 2 threads: {elapsed:?}");
}

#[test]
fn refuses_an_asgi_app_in_embedded_mode() {
    let scratch = Scratch::new();
    scratch.write("asgiapp.py", ASGI_APP);
    let line = refusal(&scratch, &["asgiapp:app", "--embedded"], |_| {});
    assert!(line.contains("ASGI application"), "{line}");
    assert!(line.contains("drop --embedded"), "{line}");
}

#[test]
fn refuses_an_asgi_app_with_debian_mod_wsgi() {
    let scratch = Scratch::new();
    scratch.write("asgiapp.py", ASGI_APP);
    let line = refusal(
        &scratch,
        &["asgiapp:app", "--module", DEBIAN_MOD_WSGI],
        |_| {},
    );
    assert!(line.contains("cannot serve"), "{line}");
    assert!(line.contains("leave out --module"), "{line}");
}
