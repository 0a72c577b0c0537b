//! HTTP/2 through mod_http2 (`Protocols h2c http/1.1`, prior knowledge, as
//! `curl --http2-prior-knowledge` speaks it): a GET, a streamed response and
//! a request body without Content-Length (HTTP/2 has no chunked framing; the
//! body simply ends), in embedded and daemon mode.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::server::MODULES_DIR;
use crate::common::{module, Mode, Module, Mpm, Running, Server};

const APP: &str = r#"
import hashlib
def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return (('part %d\n' % i).encode() for i in range(500))
    if path == '/upload':
        data = environ['wsgi.input'].read()
        body = ('%d %s %s' % (len(data), hashlib.sha256(data).hexdigest(),
                              environ.get('CONTENT_LENGTH', ''))).encode()
    else:
        body = ('hello over %s' % environ['SERVER_PROTOCOL']).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
"#;

fn start(mode: Mode) -> Running {
    let daemon = match mode {
        Mode::Embedded => "",
        Mode::Daemon => "WSGIDaemonProcess h2 threads=4\nWSGIProcessGroup h2\n",
    };
    Server::new(Mpm::Event)
        .file("h2.wsgi", APP)
        .conf(&format!(
            "LoadModule http2_module {MODULES_DIR}/mod_http2.so\nProtocols h2c http/1.1\n"
        ))
        .conf(daemon)
        .conf("WSGIChunkedRequest On\nWSGIScriptAlias /h2 {root}/h2.wsgi\n")
        .start()
}

/// Runs curl over h2c with prior knowledge; returns (HTTP version, status,
/// body). `upload` is sent from stdin, which curl streams without a length.
fn curl(s: &Running, path: &str, upload: Option<&[u8]>) -> (String, String, Vec<u8>) {
    let url = format!("http://127.0.0.1:{}{path}", s.port);
    let mut cmd = Command::new("curl");
    cmd.args([
        "--silent",
        "--show-error",
        "--http2-prior-knowledge",
        "--max-time",
        "20",
        "--write-out",
        "\n%{http_version} %{http_code}",
    ]);
    if upload.is_some() {
        cmd.args(["-X", "POST", "-T", "-"]);
    }
    let mut child = cmd
        .arg(&url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run curl");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(data) = upload {
        stdin.write_all(data).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "curl {url}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.error_log()
    );
    let split = out.stdout.iter().rposition(|&b| b == b'\n').unwrap();
    let trailer = String::from_utf8_lossy(&out.stdout[split + 1..]).into_owned();
    let (version, status) = trailer.split_once(' ').unwrap();
    (
        version.to_owned(),
        status.to_owned(),
        out.stdout[..split].to_vec(),
    )
}

fn h2_requests(mode: Mode) {
    let s = start(mode);

    let (version, status, body) = curl(&s, "/h2/hello", None);
    assert_eq!(
        (version.as_str(), status.as_str()),
        ("2", "200"),
        "{mode:?}"
    );
    assert_eq!(String::from_utf8_lossy(&body), "hello over HTTP/2.0");

    let (version, status, body) = curl(&s, "/h2/stream", None);
    assert_eq!(
        (version.as_str(), status.as_str()),
        ("2", "200"),
        "{mode:?}"
    );
    let expected: String = (0..500).map(|i| format!("part {i}\n")).collect();
    assert!(
        body == expected.as_bytes(),
        "streamed body differs ({mode:?}): {} bytes",
        body.len()
    );

    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (version, status, body) = curl(&s, "/h2/upload", Some(&data));
    assert_eq!(
        (version.as_str(), status.as_str()),
        ("2", "200"),
        "{mode:?}"
    );
    let text = String::from_utf8_lossy(&body).into_owned();
    if module() == Module::ModWsgi && matches!(mode, Mode::Daemon) {
        // Ours only: Debian's mod_wsgi 4.9 hands a daemon an empty body
        // when the request declares no length (here "0 <empty digest>").
        return;
    }
    let digest = crate::daemon::sha256_hex(&data);
    // The app saw the whole body, and no length was declared for it.
    assert_eq!(text, format!("300000 {digest} "), "{mode:?}");
}

#[test]
fn h2_requests_embedded() {
    h2_requests(Mode::Embedded);
}

#[test]
fn h2_requests_daemon() {
    h2_requests(Mode::Daemon);
}
