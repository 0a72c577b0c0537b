//! Application failures: exceptions before and after the
//! response started, wrong body types, unsafe header values, broken scripts,
//! and selecting another callable.

use std::time::Duration;

use crate::common::{module, Module, Mpm, Server};

const FAILING: &str = r#"
def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/before':
        raise ValueError('boom-before-start-response')
    if path == '/after':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        def body():
            yield b'first chunk\n'
            raise ValueError('boom-after-first-chunk')
        return body()
    if path == '/after-list':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'first item\n', 'boom-not-bytes']
    if path == '/str':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return ['a str, not bytes']
    headers = {
        '/crlf': ('X-Evil', 'ok\r\nX-Injected: yes'),
        '/lf': ('X-Evil', 'ok\nX-Injected: yes'),
        '/ctl': ('X-Evil', 'bad\x01value'),
        '/nonlatin': ('X-Evil', 'euro \u20ac'),
        '/badname': ('X-Evil\r\nX-Injected', 'yes'),
    }
    start_response('200 OK', [('Content-Type', 'text/plain'), headers[path]])
    return [b'should not be sent']
"#;

fn failing_server() -> crate::common::Running {
    Server::new(Mpm::Event)
        .file("fail.wsgi", FAILING)
        .conf("WSGIScriptAlias /fail {root}/fail.wsgi\n")
        .start()
}

#[test]
fn exception_before_start_response_is_500_and_logged() {
    let s = failing_server();
    let r = s.get("/fail/before");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        !r.text().contains("boom-before-start-response"),
        "exception text leaked to the client"
    );
    assert!(
        s.wait_log("boom-before-start-response", Duration::from_secs(30)),
        "exception not logged"
    );
    assert!(
        s.error_log().contains("Traceback"),
        "no traceback in the log"
    );
}

/// Once the status line is out, a 500 is impossible: the only honest signal
/// left is to abort the connection so the client sees a truncated body
/// rather than a clean (and wrong) end of response.
#[test]
fn exception_after_first_chunk_truncates_response() {
    let s = failing_server();
    let r = s.get("/fail/after");
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("first chunk\n"), "{}", r.text());
    assert!(
        !r.complete,
        "response ended cleanly although the app failed mid-body"
    );
    assert!(
        s.wait_log("boom-after-first-chunk", Duration::from_secs(30)),
        "exception not logged"
    );
    // The same when what came before was a list item, which Apache holds
    // unflushed: it still reaches the client before the connection closes.
    let r = s.get("/fail/after-list");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().starts_with("first item\n"), "{}", r.text());
    assert!(!r.complete);
}

#[test]
fn yielding_str_is_500() {
    let s = failing_server();
    let r = s.get("/fail/str");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(!r.text().contains("a str, not bytes"));
}

/// A header value with CR/LF, another control character, or a character
/// outside latin-1 must fail the request (500), and nothing injected may reach
/// the client as a header.
#[test]
fn unsafe_header_values_are_500() {
    let s = failing_server();
    for path in ["/crlf", "/lf", "/ctl", "/nonlatin", "/badname"] {
        let r = s.get(&format!("/fail{path}"));
        assert_eq!(r.status, 500, "{path}: {:?} {}", r.headers, r.text());
        assert_eq!(r.header("X-Injected"), None, "{path}: header injected");
        assert_eq!(r.header("X-Evil"), None, "{path}: bad header sent");
        assert!(!r.text().contains("should not be sent"), "{path}");
    }
}

#[test]
fn syntax_error_script_is_500_and_logged() {
    let s = Server::new(Mpm::Event)
        .file(
            "broken.wsgi",
            "def application(environ, start_response)\n    return []\n",
        )
        .conf("WSGIScriptAlias /broken {root}/broken.wsgi\n")
        .start();
    let r = s.get("/broken");
    assert_eq!(r.status, 500, "{}", r.text());
    let script = s.path("broken.wsgi").display().to_string();
    assert!(
        s.wait_log("SyntaxError", Duration::from_secs(30)),
        "no SyntaxError in the log"
    );
    assert!(
        s.error_log().contains(&script),
        "the log does not name {script}"
    );
}

#[test]
fn script_without_application_is_500_and_logged() {
    let s = Server::new(Mpm::Event)
        .file(
            "noapp.wsgi",
            "def app(environ, start_response):\n    return []\n",
        )
        .conf("WSGIScriptAlias /noapp {root}/noapp.wsgi\n")
        .start();
    let r = s.get("/noapp");
    // A broken deployment is a server error. mod_wsgi 4.9.4 answers 404 here
    // ("does not contain WSGI application"), which hides the breakage from
    // monitoring that only alerts on 5xx.
    let expected = if module() == Module::ModWsgi {
        404
    } else {
        500
    };
    assert_eq!(r.status, expected, "{}", r.text());
    let script = s.path("noapp.wsgi").display().to_string();
    assert!(
        s.wait_log(&script, Duration::from_secs(30)),
        "the log does not name {script}"
    );
    let named = s
        .error_log()
        .lines()
        .any(|l| l.contains(&script) && l.contains("application"));
    assert!(named, "no log line names both the script and 'application'");
}

#[test]
fn callable_object_directive_and_option() {
    let two = r#"
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'from application ' + environ['mod_wsgi.callable_object'].encode()]

def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'from app ' + environ['mod_wsgi.callable_object'].encode()]
"#;
    let s = Server::new(Mpm::Event)
        .file("two.wsgi", two)
        .file("cb/two.wsgi", two)
        .conf(
            r#"WSGIScriptAlias /option {root}/two.wsgi callable-object=app
WSGIScriptAlias /default {root}/two.wsgi
WSGIScriptAlias /directive {root}/cb/two.wsgi
<Directory "{root}/cb">
    WSGICallableObject app
</Directory>
"#,
        )
        .start();
    for (url, want) in [
        ("/option", "from app app"),
        ("/default", "from application application"),
        ("/directive", "from app app"),
    ] {
        let r = s.get(url);
        assert_eq!((r.status, r.text().as_str()), (200, want), "{url}");
    }
}
