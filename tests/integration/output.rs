//! Response output: the write() callable, streaming without
//! buffering, close() on the iterable in every ending (normal, client gone,
//! iteration error), Content-Length, HEAD, and wsgi.file_wrapper.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::common::apps::{pattern, HELLO};
use crate::common::http::{arrival_of, build_request, parse_response, read_timed};
use crate::common::{Mpm, Server};

#[test]
fn write_callable() {
    let app = r#"
def application(environ, start_response):
    write = start_response('200 OK', [('Content-Type', 'text/plain')])
    write(b'hello ')
    write(b'')
    write(b'from write, ')
    return [b'then ', b'iterable']
"#;
    let s = Server::new(Mpm::Event)
        .file("w.wsgi", app)
        .conf("WSGIScriptAlias /w {root}/w.wsgi\n")
        .start();
    let r = s.get("/w");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.complete);
    assert_eq!(r.text(), "hello from write, then iterable");
}

const STREAM: &str = r#"
import time
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    def body():
        yield b'chunk1\n'
        time.sleep(0.5)
        yield b'chunk2\n'
        time.sleep(0.5)
        yield b'chunk3\n'
    return body()
"#;

/// Each yielded block must be sent as it is produced, not buffered until the
/// generator ends (server-sent events and long polls depend on it).
fn streaming_is_incremental(mpm: Mpm) {
    let s = Server::new(mpm)
        .file("stream.wsgi", STREAM)
        .conf("WSGIScriptAlias /stream {root}/stream.wsgi\n")
        .start();
    // Warm up, so loading the script does not count in the timing.
    assert_eq!(s.get("/stream").status, 200);
    let mut conn = s.connect();
    let start = Instant::now();
    conn.write_all(&build_request("GET", "/stream", s.port, &[], b""))
        .unwrap();
    let (arrivals, data, reset) = read_timed(&mut conn, start);
    let r = parse_response(&data, false, reset);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.complete, "stream did not end cleanly");
    assert_eq!(r.text(), "chunk1\nchunk2\nchunk3\n");
    let first = arrival_of(&arrivals, &data, b"chunk1").unwrap();
    let last = arrival_of(&arrivals, &data, b"chunk3").unwrap();
    assert!(
        last.saturating_sub(first) >= Duration::from_millis(700),
        "chunk1 arrived at {first:?} and chunk3 at {last:?}: the body was buffered, not streamed"
    );
}
per_mpm!(streaming_is_incremental);

/// An iterable whose close() records, in var/closed-<mode>, how many times
/// __next__ had been called. Modes: normal (3 parts), raise (fails after the
/// first part), endless (64 KiB every 50 ms, bounded at 200 parts ~ 10 s).
const CLOSING: &str = r#"
import os, time

class Body:
    def __init__(self, mode):
        self.mode = mode
        self.calls = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.calls += 1
        if self.mode == 'normal':
            if self.calls > 3:
                raise StopIteration
            return b'part%d\n' % self.calls
        if self.mode == 'raise':
            if self.calls == 1:
                return b'first\n'
            raise RuntimeError('iteration failed on purpose')
        if self.mode == 'endless':
            if self.calls > 200:
                raise StopIteration
            time.sleep(0.05)
            return b'x' * 65536
        raise StopIteration

    def close(self):
        with open(os.path.join('{root}', 'var', 'closed-' + self.mode), 'w') as f:
            f.write('%d\n' % self.calls)

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return Body(environ['QUERY_STRING'])
"#;

fn closing_server() -> crate::common::Running {
    Server::new(Mpm::Event)
        .file("close.wsgi", CLOSING)
        .conf("WSGIScriptAlias /close {root}/close.wsgi\n")
        .start()
}

#[test]
fn close_called_after_normal_completion() {
    let s = closing_server();
    let r = s.get("/close?normal");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "part1\npart2\npart3\n");
    assert!(r.complete);
    let calls = s.wait_file("var/closed-normal", Duration::from_secs(30));
    assert!(calls.is_some(), "close() was not called");
}

#[test]
fn close_called_when_client_disconnects() {
    let s = closing_server();
    let mut conn = s.connect();
    conn.write_all(&build_request("GET", "/close?endless", s.port, &[], b""))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = conn.read(&mut buf).unwrap();
    assert!(
        n > 0 && buf.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // Hang up with unread data: the server's next writes fail.
    drop(conn);
    let calls = s
        .wait_file("var/closed-endless", Duration::from_secs(30))
        .expect("close() was not called after the client disconnected");
    let calls: u32 = calls.trim().parse().unwrap();
    assert!(
        calls <= 200,
        "iteration went on to the end ({calls} calls) after the client left"
    );
}

#[test]
fn close_called_when_iteration_raises() {
    let s = closing_server();
    let r = s.get("/close?raise");
    assert_eq!(r.status, 200);
    let calls = s.wait_file("var/closed-raise", Duration::from_secs(30));
    assert_eq!(
        calls.as_deref().map(str::trim),
        Some("2"),
        "close() not called after the iterable raised"
    );
    assert!(
        s.wait_log("iteration failed on purpose", Duration::from_secs(30)),
        "error not logged"
    );
}

#[test]
fn content_length_from_app_is_used() {
    let app = r#"
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '5')])
    def body():
        yield b'he'
        yield b'llo'
    return body()
"#;
    let s = Server::new(Mpm::Event)
        .file("cl.wsgi", app)
        .conf("WSGIScriptAlias /cl {root}/cl.wsgi\n")
        .start();
    let r = s.get("/cl");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Content-Length"), Some("5"));
    assert_eq!(
        r.header("Transfer-Encoding"),
        None,
        "a known length must not be chunked"
    );
    assert_eq!(r.text(), "hello");
    assert!(r.complete);
}

#[test]
fn head_has_headers_and_no_body() {
    let s = Server::new(Mpm::Event)
        .file("hello.wsgi", HELLO)
        .conf("WSGIScriptAlias /hello {root}/hello.wsgi\n")
        .start();
    let raw = s.raw(&build_request("HEAD", "/hello", s.port, &[], b""));
    let end = crate::common::http::find(&raw, b"\r\n\r\n").expect("no header block") + 4;
    let r = parse_response(&raw, true, false);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    assert_eq!(r.header("Content-Length"), Some("13"));
    assert_eq!(&raw[end..], b"", "HEAD response carried a body");
}

const FILES: &str = r#"
import io
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    if environ['PATH_INFO'] == '/real':
        return environ['wsgi.file_wrapper'](open('{root}/data/blob.bin', 'rb'), 65536)
    return environ['wsgi.file_wrapper'](io.BytesIO(b'from bytesio ' * 10000))
"#;

#[test]
fn file_wrapper_real_file() {
    let blob = pattern(1 << 20);
    let s = Server::new(Mpm::Event)
        .file("files.wsgi", FILES)
        .file_bytes("data/blob.bin", &blob)
        .conf("WSGIScriptAlias /files {root}/files.wsgi\n")
        .start();
    for _ in 0..2 {
        let r = s.get("/files/real");
        assert_eq!(r.status, 200, "{}", r.reason);
        assert!(r.complete);
        assert_eq!(r.body.len(), blob.len());
        assert!(r.body == blob, "file_wrapper body differs from the file");
    }
}

#[test]
fn file_wrapper_bytesio() {
    let s = Server::new(Mpm::Event)
        .file("files.wsgi", FILES)
        .conf("WSGIScriptAlias /files {root}/files.wsgi\n")
        .start();
    let r = s.get("/files/bytesio");
    assert_eq!(r.status, 200, "{}", r.reason);
    assert!(r.complete);
    assert!(
        r.body == b"from bytesio ".repeat(10000),
        "got {} bytes",
        r.body.len()
    );
}

const SIZED_FILES: &str = r#"
class Untold:
    """A regular file read from position 1000 by an object that cannot
    tell() where it is."""
    def __init__(self, f):
        self.f = f
    def fileno(self):
        return self.f.fileno()
    def tell(self):
        raise OSError('no position')
    def read(self, n):
        return self.f.read(n)
    def close(self):
        self.f.close()

def application(environ, start_response):
    f = open('{root}/data/blob.bin', 'rb')
    f.seek(1000)
    headers = [('Content-Type', 'application/octet-stream')]
    if environ['PATH_INFO'] == '/declared':
        headers.append(('Content-Length', '5000'))
    start_response('200 OK', headers)
    if environ['PATH_INFO'] == '/untold':
        return environ['wsgi.file_wrapper'](Untold(f))
    return environ['wsgi.file_wrapper'](f)
"#;

/// mod_wsgi's rule for a file_wrapper over a real file: without a declared
/// length the response carries Content-Length = what remains from the
/// file's position (not chunked); with one, exactly that many bytes go out.
/// An object whose position cannot be told is read like any iterable.
fn file_wrapper_content_length(daemon: bool) {
    let blob = pattern(300_000);
    let mut s = Server::new(Mpm::Event)
        .file("sized.wsgi", SIZED_FILES)
        .file_bytes("data/blob.bin", &blob);
    if daemon {
        s = s.conf("WSGIDaemonProcess files threads=2\nWSGIProcessGroup files\n");
    }
    let s = s.conf("WSGIScriptAlias /sized {root}/sized.wsgi\n").start();
    let r = s.get("/sized/remaining");
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert!(r.complete);
    assert_eq!(
        r.header("Content-Length"),
        Some((blob.len() - 1000).to_string().as_str()),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("Transfer-Encoding"), None);
    assert!(r.body == blob[1000..], "body differs from the file's rest");

    let r = s.get("/sized/declared");
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert!(r.complete);
    assert_eq!(r.header("Content-Length"), Some("5000"));
    assert!(r.body == blob[1000..6000], "got {} bytes", r.body.len());

    let r = s.get("/sized/untold");
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert!(r.complete);
    assert_eq!(r.header("Content-Length"), None, "{:?}", r.headers);
    assert!(
        r.body == blob[1000..],
        "got {} bytes, not the {} read() gives",
        r.body.len(),
        blob.len() - 1000
    );

    let raw = s.raw(&build_request("HEAD", "/sized/remaining", s.port, &[], b""));
    let r = parse_response(&raw, true, false);
    assert_eq!(
        r.header("Content-Length"),
        Some((blob.len() - 1000).to_string().as_str())
    );
}

#[test]
fn file_wrapper_content_length_embedded() {
    file_wrapper_content_length(false);
}

#[test]
fn file_wrapper_content_length_daemon() {
    file_wrapper_content_length(true);
}
