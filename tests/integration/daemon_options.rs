//! `WSGIDaemonProcess` options that tune the connection between Apache's
//! children and a daemon group: `send-buffer-size=` and
//! `receive-buffer-size=` (the socket buffers of each connection the daemon
//! takes). They are accepted without a "no effect" notice, the connection
//! serving a request has them (as the application sees its own process's
//! sockets), and with buffers far smaller than the body, an 8 MiB upload
//! echoed back arrives whole in both directions. `header-buffer-size=`:
//! mod_wsgi's limit on the length of one response header line (32768
//! bytes when not given), past which the request is answered 500 and the
//! log says why.

use std::time::Duration;

use crate::common::apps::pattern;
use crate::common::{module, referee_differs, Module, Mpm, Server};

const ECHO_APP: &str = r#"
import os, socket

def connected_buffers():
    """(SO_SNDBUF, SO_RCVBUF) of each connected UNIX stream socket of this
    process: the daemon's connections from Apache's children."""
    found = set()
    for name in os.listdir('/proc/self/fd'):
        try:
            dup = os.dup(int(name))
        except OSError:
            continue  # the directory listing's own descriptor, closed since
        try:
            s = socket.socket(fileno=dup)
        except OSError:
            os.close(dup)
            continue
        with s:
            if s.family != socket.AF_UNIX or s.type != socket.SOCK_STREAM:
                continue
            try:
                s.getpeername()
            except OSError:
                continue
            found.add('%d %d' % (s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
                                 s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)))
    return found

def application(environ, start_response):
    if environ['PATH_INFO'] == '/buffers':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return ['\n'.join(sorted(connected_buffers())).encode()]
    body = environ['wsgi.input'].read()
    start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                              ('Content-Length', str(len(body)))])
    return [body]
"#;

/// Buffers of 4 KiB (8 KiB as Linux counts them) for an 8 MiB body.
#[test]
fn small_socket_buffers_carry_large_bodies_whole() {
    let s = Server::new(Mpm::Event)
        .file("echo.wsgi", ECHO_APP)
        .conf(
            "WSGIDaemonProcess tuned threads=2 send-buffer-size=4096 receive-buffer-size=4096\n\
             WSGIScriptAlias /echo {root}/echo.wsgi process-group=tuned\n",
        )
        .start();
    let body = pattern(8 << 20);
    let r = s.request(
        "POST",
        "/echo",
        &[("Content-Type", "application/octet-stream")],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == body, "the echoed body differs from the one sent");
    let log = s.error_log();
    assert!(
        !log.contains("buffer-size=: accepted for compatibility"),
        "a buffer size is said to have no effect:\n{log}"
    );
    // mod_wsgi sets them on the listening socket only, and Linux does not
    // pass a UNIX listener's sizes on to the sockets it accepts.
    if referee_differs("mod_wsgi's accepted connections keep the system's buffer sizes") {
        return;
    }
    // Linux doubles the size asked for (its bookkeeping overhead).
    let r = s.get("/echo/buffers");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        "8192 8192",
        "(SO_SNDBUF SO_RCVBUF) of the daemon's connections"
    );
}

const HEADER_APP: &str = r#"
def application(environ, start_response):
    size = int(environ['QUERY_STRING'])
    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Big', 'x' * size)])
    return [b'whole']
"#;

/// A 20000-byte header passes the default limit (32768) but not
/// `header-buffer-size=16384`; a 40000-byte one is refused by default
/// and passes `header-buffer-size=65536`.
#[test]
fn header_buffer_size_limits_one_response_header_line() {
    let s = Server::new(Mpm::Event)
        .file("h.wsgi", HEADER_APP)
        .conf(
            "WSGIDaemonProcess small threads=2 header-buffer-size=16384\n\
             WSGIDaemonProcess usual threads=2\n\
             WSGIDaemonProcess large threads=2 header-buffer-size=65536\n\
             WSGIScriptAlias /small {root}/h.wsgi process-group=small\n\
             WSGIScriptAlias /usual {root}/h.wsgi process-group=usual\n\
             WSGIScriptAlias /large {root}/h.wsgi process-group=large\n",
        )
        .start();
    for (url, wanted) in [
        ("/usual?20000", 200),
        ("/small?20000", 500),
        ("/usual?40000", 500),
        ("/large?40000", 200),
    ] {
        let r = s.get(url);
        assert_eq!(r.status, wanted, "{url}");
        if wanted == 200 {
            assert_eq!(r.text(), "whole", "{url}");
            let size: usize = url.split('?').nth(1).unwrap().parse().unwrap();
            assert_eq!(r.header("X-Big").map(str::len), Some(size), "{url}");
        }
    }
    let needle = if module() == Module::ModWsgi {
        "Truncated or oversized response headers received from daemon process 'small'"
    } else {
        "WSGIRS606: a response header line from daemon process 'small' takes 20009 bytes, \
         more than header-buffer-size=16384"
    };
    assert!(
        s.wait_log(needle, Duration::from_secs(10)),
        "no '{needle}' in:\n{}",
        s.error_log()
    );
    let log = s.error_log();
    assert!(
        !log.contains("header-buffer-size=: accepted for compatibility"),
        "header-buffer-size= is said to have no effect:\n{log}"
    );
}
