//! The smaller embedded-mode directives and `start_response` details:
//! WSGIRestrictStdout/Stdin, WSGIMapHEADToGET, WSGIImportScript preloading,
//! AddHandler, and the exc_info protocol.

use std::time::Duration;

use crate::common::{module, Module, Mpm, Server};

const STDIO: &str = r#"
import sys
def application(environ, start_response):
    which = environ['PATH_INFO'].strip('/')
    try:
        if which == 'out':
            print('printed-line-from-app')
        else:
            sys.stdin.read()
        outcome = 'allowed'
    except OSError as e:
        outcome = 'refused: %s' % e
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [outcome.encode()]
"#;

#[test]
fn stdout_and_stdin_follow_restrict_directives() {
    let open = Server::new(Mpm::Event)
        .file("io.wsgi", STDIO)
        .conf("WSGIScriptAlias /io {root}/io.wsgi\n")
        .start();
    assert_eq!(open.get("/io/out").text(), "allowed");
    assert!(open.wait_log("printed-line-from-app", Duration::from_secs(30)));
    drop(open);

    let closed = Server::new(Mpm::Event)
        .file("io.wsgi", STDIO)
        .conf("WSGIRestrictStdout On\nWSGIRestrictStdin On\nWSGIScriptAlias /io {root}/io.wsgi\n")
        .start();
    let out = closed.get("/io/out").text();
    assert!(out.starts_with("refused"), "{out}");
    assert!(out.contains("sys.stdout access restricted"), "{out}");
    let inp = closed.get("/io/in").text();
    assert!(inp.contains("sys.stdin access restricted"), "{inp}");
}

const METHOD: &str = r#"
def application(environ, start_response):
    body = environ['REQUEST_METHOD'].encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Method', environ['REQUEST_METHOD'])])
    return [body]
"#;

#[test]
fn map_head_to_get() {
    for (setting, expected) in [("On", "GET"), ("Off", "HEAD"), ("Auto", "HEAD")] {
        let s = Server::new(Mpm::Event)
            .file("m.wsgi", METHOD)
            .conf(&format!(
                "WSGIMapHEADToGET {setting}\nWSGIScriptAlias /m {{root}}/m.wsgi\n"
            ))
            .start();
        let r = s.request("HEAD", "/m", &[], b"");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("X-Method"),
            Some(expected),
            "WSGIMapHEADToGET {setting}"
        );
        assert!(r.body.is_empty(), "HEAD must have no body");
    }
}

#[test]
fn map_head_to_get_auto_with_an_output_filter() {
    if module() == Module::ModWsgi {
        return; // mod_wsgi's Auto checks a different filter set
    }
    let s = Server::new(Mpm::Event)
        .file("m.wsgi", METHOD)
        .conf(
            "LoadModule filter_module /usr/lib/apache2/modules/mod_filter.so\n\
             LoadModule substitute_module /usr/lib/apache2/modules/mod_substitute.so\n\
             WSGIScriptAlias /m {root}/m.wsgi\n\
             <Location /m>\n  AddOutputFilterByType SUBSTITUTE text/plain\n  Substitute s/GET/got/\n</Location>\n",
        )
        .start();
    let r = s.request("HEAD", "/m", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("X-Method"),
        Some("GET"),
        "a content filter is present"
    );
}

const PRELOADED: &str = r#"
import os
with open(os.path.join(os.path.dirname(__file__), 'var', 'preloaded-%d' % os.getpid()), 'w') as f:
    f.write('yes')
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
"#;

#[test]
fn import_script_preloads_in_every_child() {
    let s = Server::new(Mpm::Prefork)
        .file("pre.wsgi", PRELOADED)
        .file("var/.keep", "")
        .conf("WSGIImportScript {root}/pre.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}\n")
        .start();
    // No request has been made: the script ran when the children started.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let markers = std::fs::read_dir(s.path("var"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .map(|e| e.file_name().to_string_lossy().starts_with("preloaded-"))
                    .unwrap_or(false)
            })
            .count();
        if markers >= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "script was not preloaded:\n{}",
            s.error_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn add_handler_runs_wsgi_files_with_exec_cgi() {
    let s = Server::new(Mpm::Event)
        .file("htdocs/app.wsgi", METHOD)
        .conf(
            "Alias /h {root}/htdocs\n\
             <Directory {root}/htdocs>\n  Options +ExecCGI\n  AddHandler wsgi-script .wsgi\n</Directory>\n",
        )
        .start();
    let r = s.get("/h/app.wsgi");
    assert_eq!((r.status, r.text().as_str()), (200, "GET"));
}

const EXC_INFO: &str = r#"
import sys
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    try:
        raise ValueError('replaced')
    except ValueError:
        start_response('503 Service Unavailable', [('Content-Type', 'text/plain'), ('X-Replaced', '1')], sys.exc_info())
    if environ['PATH_INFO'] == '/twice':
        start_response('200 OK', [])
    return [b'sorry']
"#;

const EXC_INFO_LATE: &str = r#"
import sys
def application(environ, start_response):
    write = start_response('200 OK', [('Content-Type', 'text/plain')])
    write(b'partial output ')
    try:
        raise KeyError('late failure')
    except KeyError:
        start_response('500 Internal Server Error', [], sys.exc_info())
    return [b'never']
"#;

#[test]
fn start_response_exc_info_protocol() {
    let s = Server::new(Mpm::Event)
        .file("e.wsgi", EXC_INFO)
        .file("late.wsgi", EXC_INFO_LATE)
        .conf("WSGIScriptAlias /e {root}/e.wsgi\nWSGIScriptAlias /late {root}/late.wsgi\n")
        .start();
    // Before output: exc_info replaces status and headers.
    let r = s.get("/e");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("X-Replaced"), Some("1"));
    assert_eq!(r.text(), "sorry");
    // A second call without exc_info is an error: 500.
    assert_eq!(s.get("/e/twice").status, 500);
    // After output: exc_info re-raises, the response is cut short.
    let r = s.get("/late");
    assert_eq!(r.status, 200);
    assert!(!r.complete, "a failed response must not look complete");
    assert!(s.wait_log("late failure", Duration::from_secs(30)));
}

const LATIN1_HEADER: &str = "def application(environ, start_response):\n    \
    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Latin', 'caf\\u00e9')])\n    \
    return [b'ok']\n";

/// PEP 3333 header values are latin-1 strings: 'é' must be the byte E9 on
/// the wire, in both modes (not its UTF-8 encoding C3 A9).
#[test]
fn header_values_are_sent_as_latin1_bytes() {
    let s = Server::new(Mpm::Event)
        .file("l.wsgi", LATIN1_HEADER)
        .conf(
            "WSGIScriptAlias /embedded {root}/l.wsgi\n\
             WSGIDaemonProcess latin1hdr threads=2\n\
             WSGIScriptAlias /daemon {root}/l.wsgi process-group=latin1hdr\n",
        )
        .start();
    for path in ["/embedded", "/daemon"] {
        let raw = s.raw(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        let needle = b"X-Latin: caf\xe9\r\n";
        assert!(
            raw.windows(needle.len()).any(|w| w == needle),
            "{path}: {}",
            String::from_utf8_lossy(&raw)
        );
    }
}
