//! WebSockets through Apache to ASGI applications in daemon groups: real
//! Starlette and FastAPI WebSocket endpoints from the test venv, driven by
//! tungstenite's client over a real TCP connection to Apache, under every
//! MPM, and by the venv's `websockets` client over TLS (mod_ssl). What is
//! checked: the subprotocol the application chose and its extra headers
//! reach the client in the 101, text and binary messages echo (large ones
//! too), a close from the application arrives with its code and reason,
//! the client's close code reaches the application (1006 when it
//! vanished), an application that raises closes with 1011 and logs its
//! traceback, several sockets stay open at once while plain HTTP requests
//! keep being served, a handshake the application refuses is a 403, a
//! malformed one a 400, a replaced process ends its open sockets while the
//! new one serves, `wss://` works with the scope saying so, and an upgrade
//! request to a WSGI application is an ordinary request, as under mod_wsgi.
//! Ours only (mod_wsgi has no ASGI), except the WSGI case.

use std::net::TcpStream;
use std::time::Duration;

use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

use crate::common::http::IO_TIMEOUT;
use crate::common::venv::venv;
use crate::common::{referee_differs, wait_for, Mpm, Running, Server};

/// The endpoints, the same in both frameworks: `/ws/echo` accepts with
/// the last subprotocol the client offers and an `x-echo` header, echoes
/// text as `echo:TEXT` and bytes as `echo:` + bytes, closes with 4001
/// "asked to" on the text `close-me`, and records the client's close code
/// in var/close-ID (ID from the query string); `/ws/refuse` closes before
/// accepting; `/ws/boom` raises once accepted; `/hello` is plain HTTP.
const HANDLERS: &str = r#"
import os

ROOT = "{root}"


def pick(offered):
    return offered[-1] if offered else None


async def echo_session(ws, disconnect_type):
    await ws.accept(subprotocol=pick(ws.scope["subprotocols"]), headers=[(b"x-echo", b"yes")])
    ident = ws.query_params.get("id", "0")
    while True:
        message = await ws.receive()
        if message["type"] == disconnect_type:
            with open(os.path.join(ROOT, "var", "close-" + ident), "w") as f:
                f.write(str(message.get("code")))
            return
        if message.get("text") is not None:
            text = message["text"]
            if text == "scheme":
                await ws.send_text("scheme:" + ws.scope["scheme"])
                continue
            if text == "close-me":
                await ws.close(code=4001, reason="asked to")
                return
            await ws.send_text("echo:" + text)
        else:
            await ws.send_bytes(b"echo:" + message["bytes"])


async def boom_session(ws):
    await ws.accept()
    raise RuntimeError("boom in a websocket")
"#;

/// The Starlette app.
const STARLETTE_APP: &str = r#"
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute

from handlers import boom_session, echo_session


async def echo(ws):
    await echo_session(ws, "websocket.disconnect")


async def boom(ws):
    await boom_session(ws)


async def refuse(ws):
    await ws.close()


async def hello(request):
    return PlainTextResponse("hello from starlette")


application = Starlette(routes=[
    Route("/hello", hello),
    WebSocketRoute("/ws/echo", echo),
    WebSocketRoute("/ws/refuse", refuse),
    WebSocketRoute("/ws/boom", boom),
])
"#;

/// The FastAPI app.
const FASTAPI_APP: &str = r#"
from fastapi import FastAPI, WebSocket
from fastapi.responses import PlainTextResponse

from handlers import boom_session, echo_session

application = FastAPI()


@application.websocket("/ws/boom")
async def boom(ws: WebSocket):
    await boom_session(ws)


@application.websocket("/ws/echo")
async def echo(ws: WebSocket):
    await echo_session(ws, "websocket.disconnect")


@application.websocket("/ws/refuse")
async def refuse(ws: WebSocket):
    await ws.close()


@application.get("/hello", response_class=PlainTextResponse)
async def hello():
    return "hello from fastapi"
"#;

/// A WSGI app that shows what it was given.
const WSGI_APP: &str = r#"
def application(environ, start_response):
    body = ("wsgi saw upgrade=%s" % environ.get("HTTP_UPGRADE")).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"#;

/// Apache under `mpm` with `app` (Starlette or FastAPI source) at /app in
/// a daemon group of the venv.
fn start(mpm: Mpm, app: &str) -> Running {
    start_with(mpm, app, "")
}

/// [`start`] with more `WSGIDaemonProcess` options.
fn start_with(mpm: Mpm, app: &str, options: &str) -> Running {
    let venv = venv().display();
    Server::new(mpm)
        .file("app/handlers.py", HANDLERS)
        .file("app/app.py", app)
        .conf(&format!(
            "WSGIDaemonProcess ws processes=1 threads=4 python-home={venv} \
             python-path={{root}}/app {options}\n\
             WSGIProcessGroup ws\n\
             WSGIApplicationGroup %{{GLOBAL}}\n\
             WSGIScriptAlias /app {{root}}/app/app.py\n"
        ))
        .start()
}

/// A client WebSocket to `path`, offering `protocols`; panics with the
/// error log when the handshake fails.
fn connect(
    s: &Running,
    path: &str,
    protocols: &str,
) -> (
    WebSocket<TcpStream>,
    tungstenite::handshake::client::Response,
) {
    try_connect(s, path, protocols)
        .unwrap_or_else(|e| panic!("WebSocket handshake failed: {e}\n{}", s.error_log()))
}

/// Like [`connect`], returning the handshake's error.
fn try_connect(
    s: &Running,
    path: &str,
    protocols: &str,
) -> Result<
    (
        WebSocket<TcpStream>,
        tungstenite::handshake::client::Response,
    ),
    tungstenite::Error,
> {
    let mut request = format!("ws://127.0.0.1:{}{path}", s.port)
        .into_client_request()
        .unwrap();
    if !protocols.is_empty() {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocols.parse().unwrap());
    }
    let stream = s.connect();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    tungstenite::client(request, stream).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => {
            tungstenite::Error::Io(std::io::ErrorKind::WouldBlock.into())
        }
    })
}

/// The next data message (pings and pongs skipped).
fn next(ws: &mut WebSocket<TcpStream>) -> Message {
    loop {
        match ws.read().expect("reading the WebSocket") {
            Message::Ping(_) | Message::Pong(_) => continue,
            m => return m,
        }
    }
}

/// The close code the application recorded for connection `id`.
fn recorded_close(s: &Running, id: &str) -> String {
    s.wait_file(&format!("var/close-{id}"), Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the app never saw connection {id} close\n{}", s.error_log()))
}

/// Everything one framework's endpoints must do, under `mpm`.
fn check_framework(mpm: Mpm, app: &str, framework: &str) {
    if referee_differs("mod_wsgi does not serve ASGI applications") {
        return;
    }
    let s = start(mpm, app);

    // Echo, with the subprotocol and header the app chose.
    let (mut ws, response) = connect(&s, "/app/ws/echo?id=1", "chat, superchat");
    assert_eq!(response.status(), 101);
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "superchat"
    );
    assert_eq!(response.headers().get("x-echo").unwrap(), "yes");
    ws.send(Message::text("hi")).unwrap();
    assert_eq!(next(&mut ws), Message::text("echo:hi"), "{framework}");
    ws.send(Message::binary(vec![0u8, 1, 255])).unwrap();
    assert_eq!(
        next(&mut ws),
        Message::binary(b"echo:\x00\x01\xff".to_vec())
    );
    // Larger than any one read on either side of the tunnel.
    let big: String = "0123456789abcdef".repeat(20_000);
    ws.send(Message::text(big.clone())).unwrap();
    assert_eq!(next(&mut ws), Message::text(format!("echo:{big}")));

    // The app closes, with a code and reason the client sees.
    ws.send(Message::text("close-me")).unwrap();
    match next(&mut ws) {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 4001);
            assert_eq!(frame.reason.as_str(), "asked to");
        }
        other => panic!("expected the app's close frame, got {other:?}"),
    }

    // Several sockets at once; plain HTTP keeps being served meanwhile;
    // each client's close code reaches the app.
    let mut open: Vec<_> = (0..4)
        .map(|i| connect(&s, &format!("/app/ws/echo?id=c{i}"), "").0)
        .collect();
    let r = s.get("/app/hello");
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert_eq!(r.text(), format!("hello from {framework}"));
    for (i, ws) in open.iter_mut().enumerate() {
        ws.send(Message::text(format!("socket {i}"))).unwrap();
    }
    for (i, ws) in open.iter_mut().enumerate() {
        assert_eq!(next(ws), Message::text(format!("echo:socket {i}")));
    }
    for (i, ws) in open.iter_mut().enumerate() {
        ws.close(Some(CloseFrame {
            code: CloseCode::from(4100 + i as u16),
            reason: "bye".into(),
        }))
        .unwrap();
        // The server answers the close, then ends the connection.
        loop {
            match ws.read() {
                Ok(_) => continue,
                Err(tungstenite::Error::ConnectionClosed) => break,
                Err(e) => panic!("closing socket {i}: {e}\n{}", s.error_log()),
            }
        }
    }
    for i in 0..4 {
        assert_eq!(
            recorded_close(&s, &format!("c{i}")),
            format!("{}", 4100 + i)
        );
    }

    // Closing before accepting refuses the handshake: 403.
    match try_connect(&s, "/app/ws/refuse", "") {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected a 403 refusal, got {:?}", other.map(|r| r.1)),
    }
    // An app that raises: the client gets 1011, the log the traceback.
    let (mut ws, _) = connect(&s, "/app/ws/boom", "");
    match next(&mut ws) {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1011),
        other => panic!("expected a 1011 close, got {other:?}"),
    }
    assert!(
        wait_for(Duration::from_secs(10), || {
            let log = s.error_log();
            (log.contains("WSGIRS544") && log.contains("boom in a websocket")).then_some(())
        })
        .is_some(),
        "{}",
        s.error_log()
    );
    // A client that vanishes without a close frame: the app sees 1006.
    let (ws, _) = connect(&s, "/app/ws/echo?id=gone", "");
    drop(ws);
    assert_eq!(recorded_close(&s, "gone"), "1006");
}

/// Starlette's WebSocket endpoints.
fn starlette(mpm: Mpm) {
    check_framework(mpm, STARLETTE_APP, "starlette");
}
per_mpm!(starlette);

/// FastAPI's WebSocket endpoints.
fn fastapi(mpm: Mpm) {
    check_framework(mpm, FASTAPI_APP, "fastapi");
}
per_mpm!(fastapi);

/// A touched script replaces the process: the new one serves at once
/// while the old one drains, and an open WebSocket of the old one ends by
/// graceful-timeout (the client sees the connection go).
#[test]
fn open_socket_is_ended_by_a_replacement() {
    if referee_differs("mod_wsgi does not serve ASGI applications") {
        return;
    }
    let s = start_with(Mpm::Event, STARLETTE_APP, "graceful-timeout=2");
    let (mut ws, _) = connect(&s, "/app/ws/echo?id=old", "");
    ws.send(Message::text("before")).unwrap();
    assert_eq!(next(&mut ws), Message::text("echo:before"));
    s.touch("app/app.py");
    let r = s.get("/app/hello");
    assert_eq!(r.status, 200, "{}", s.error_log());
    let began = std::time::Instant::now();
    let ended = loop {
        match ws.read() {
            Ok(Message::Close(_) | Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(other) => panic!("unexpected message {other:?}"),
            Err(e) => break e,
        }
    };
    // Ended by graceful-timeout (2 s), not by Apache's Timeout or the
    // client's read timeout (60 s each): the bound only tells those apart.
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "the old process's socket lasted {:?} ({ended})",
        began.elapsed()
    );
    // The new process serves WebSockets too.
    let (mut ws, _) = connect(&s, "/app/ws/echo?id=new", "");
    ws.send(Message::text("after")).unwrap();
    assert_eq!(next(&mut ws), Message::text("echo:after"));
}

/// The Python client of the test venv (`websockets`), run by the system
/// Python the venv was made from.
const TLS_CLIENT: &str = r#"
import ssl, sys
sys.path.insert(0, sys.argv[1])
from websockets.sync.client import connect

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
url = "wss://127.0.0.1:%s/app/ws/echo?id=tls" % sys.argv[2]
with connect(url, ssl=ctx, subprotocols=["chat"], open_timeout=10, close_timeout=10) as ws:
    print("subprotocol", ws.subprotocol)
    ws.send("scheme")
    print(ws.recv(timeout=10))
    ws.send(b"\x00\x01" * 40000)
    print(len(ws.recv(timeout=10)))
    ws.close(code=4444, reason="tls bye")
"#;

/// `wss://` through mod_ssl: the tunnel goes through the connection's
/// filters, so TLS is undone and redone by Apache; the scope says `wss`.
/// The client is the `websockets` package of the test venv.
#[test]
fn tls_through_mod_ssl() {
    if referee_differs("mod_wsgi does not serve ASGI applications") {
        return;
    }
    let venv = venv();
    let server = Server::new(Mpm::Event)
        .file("app/handlers.py", HANDLERS)
        .file("app/app.py", STARLETTE_APP);
    let root = server.root().to_path_buf();
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(root.join("conf/key.pem"))
        .arg("-out")
        .arg(root.join("conf/cert.pem"))
        .output()
        .expect("openssl (installed with ca-certificates) makes the test certificate");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let s = server
        .conf(&format!(
            "LoadModule ssl_module {}/mod_ssl.so
             SSLEngine on
             SSLCertificateFile {{root}}/conf/cert.pem
             SSLCertificateKeyFile {{root}}/conf/key.pem
             WSGIDaemonProcess ws processes=1 threads=4 python-home={} \
             python-path={{root}}/app
             WSGIProcessGroup ws
             WSGIApplicationGroup %{{GLOBAL}}
             WSGIScriptAlias /app {{root}}/app/app.py
",
            crate::common::server::MODULES_DIR,
            venv.display()
        ))
        .start();
    let site = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|d| d.path().join("site-packages"))
        .find(|p| p.is_dir())
        .expect("the venv's site-packages");
    let out = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(TLS_CLIENT)
        .arg(&site)
        .arg(s.port.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.error_log()
    );
    assert_eq!(stdout, "subprotocol chat\nscheme:wss\n80005\n");
    assert_eq!(recorded_close(&s, "tls"), "4444");
}

/// A handshake without a valid key never reaches the application: 400.
#[test]
fn malformed_handshake_is_refused() {
    if referee_differs("mod_wsgi does not serve ASGI applications") {
        return;
    }
    let s = start(Mpm::Event, STARLETTE_APP);
    let raw = s.raw(
        b"GET /app/ws/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with("HTTP/1.1 400"),
        "{text}\n{}",
        s.error_log()
    );
    assert!(wait_for(Duration::from_secs(5), || s
        .error_log()
        .contains("WSGIRS543")
        .then_some(()))
    .is_some());
}

/// An upgrade request to a WSGI application is an ordinary request, as
/// under mod_wsgi: the application sees the Upgrade header and its answer
/// goes back as is (the client's handshake fails with its 200).
fn wsgi_mount(mode: crate::common::Mode) {
    let daemon = match mode {
        crate::common::Mode::Embedded => "",
        crate::common::Mode::Daemon => {
            "WSGIDaemonProcess plain threads=2\nWSGIProcessGroup plain\n"
        }
    };
    let s = Server::new(Mpm::Event)
        .file("app/app.wsgi", WSGI_APP)
        .conf(&format!(
            "{daemon}WSGIScriptAlias /app {{root}}/app/app.wsgi\n"
        ))
        .start();
    let r = s.raw_response(
        b"GET /app/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
          Connection: Upgrade, close\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Version: 13\r\n\r\n",
        false,
    );
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert_eq!(r.text(), "wsgi saw upgrade=websocket");
}
both_modes!(wsgi_mount);
