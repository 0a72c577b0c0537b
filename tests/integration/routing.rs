//! URL mapping: WSGIScriptAlias at "/" and at a prefix, the
//! SCRIPT_NAME/PATH_INFO split, segment-boundary matching,
//! WSGIScriptAliasMatch with back-references, `SetHandler wsgi-script` with
//! and without `Options ExecCGI`, and a missing script.

use crate::common::apps::{ENVIRON, HELLO};
use crate::common::{Environ, Mpm, Server};

/// Hello world at a prefix and an environ dump at "/", under each MPM: the
/// most basic proof that the module loads and serves with every MPM.
fn hello_world(mpm: Mpm) {
    let s = Server::new(mpm)
        .file("hello.wsgi", HELLO)
        .file("env.wsgi", ENVIRON)
        // The more specific alias first: aliases are tried in order.
        .conf("WSGIScriptAlias /hello {root}/hello.wsgi\nWSGIScriptAlias / {root}/env.wsgi\n")
        .start();
    for _ in 0..3 {
        let r = s.get("/hello");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.body, b"Hello, World!");
        assert!(r.complete);
        assert_eq!(r.header("Content-Length"), Some("13"));
    }
    let r = s.get("/");
    assert_eq!(r.status, 200, "{}", r.text());
    let env = Environ::parse(&r.body);
    assert_eq!(env.str("SCRIPT_NAME"), "");
    assert_eq!(env.str("PATH_INFO"), "/");
}
per_mpm!(hello_world);

#[test]
fn script_name_and_path_info_at_prefix() {
    let s = Server::new(Mpm::Event)
        .file("env.wsgi", ENVIRON)
        .conf("WSGIScriptAlias /app {root}/env.wsgi\n")
        .start();
    let cases = [
        ("/app", "/app", ""),
        ("/app/", "/app", "/"),
        ("/app/x/y", "/app", "/x/y"),
        ("/app/x/y?q=1", "/app", "/x/y"),
    ];
    for (url, script_name, path_info) in cases {
        let r = s.get(url);
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        let env = Environ::parse(&r.body);
        assert_eq!(env.str("SCRIPT_NAME"), script_name, "SCRIPT_NAME for {url}");
        assert_eq!(env.get("PATH_INFO"), Some(path_info), "PATH_INFO for {url}");
    }
    // The alias matches whole path segments only: /application is not /app.
    let r = s.get("/application");
    assert_eq!(
        r.status,
        404,
        "/application must not be served by the /app alias: {}",
        r.text()
    );
}

#[test]
fn script_name_and_path_info_at_root() {
    let s = Server::new(Mpm::Event)
        .file("env.wsgi", ENVIRON)
        .conf("WSGIScriptAlias / {root}/env.wsgi\n")
        .start();
    for (url, path_info) in [("/", "/"), ("/foo/bar", "/foo/bar"), ("/foo/?x=1", "/foo/")] {
        let r = s.get(url);
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        let env = Environ::parse(&r.body);
        assert_eq!(env.str("SCRIPT_NAME"), "", "SCRIPT_NAME for {url}");
        assert_eq!(env.str("PATH_INFO"), path_info, "PATH_INFO for {url}");
    }
}

#[test]
fn script_alias_match_with_backreference() {
    let named = |name: &str| {
        format!(
            "def application(environ, start_response):\n    \
             body = ('{name} ' + environ['SCRIPT_NAME'] + ' ' + environ.get('PATH_INFO', '<none>')).encode()\n    \
             start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
             return [body]\n"
        )
    };
    let s = Server::new(Mpm::Event)
        .file("scripts/alpha.wsgi", &named("alpha"))
        .file("scripts/beta.wsgi", &named("beta"))
        .conf("WSGIScriptAliasMatch ^/m/([^/]+) {root}/scripts/$1.wsgi\n")
        .start();
    let r = s.get("/m/alpha");
    assert_eq!((r.status, r.text().as_str()), (200, "alpha /m/alpha "));
    let r = s.get("/m/beta/extra/path");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "beta /m/beta /extra/path")
    );
    // $1 names a script that does not exist.
    assert_eq!(s.get("/m/gamma").status, 404);
}

#[test]
fn set_handler_needs_exec_cgi() {
    let s = Server::new(Mpm::Event)
        .file("htdocs/cgi/hello.wsgi", HELLO)
        .file("htdocs/nocgi/hello.wsgi", HELLO)
        .conf(
            r#"<Directory "{root}/htdocs/cgi">
    Options ExecCGI
    SetHandler wsgi-script
</Directory>
<Directory "{root}/htdocs/nocgi">
    Options None
    SetHandler wsgi-script
</Directory>
"#,
        )
        .start();
    let r = s.get("/cgi/hello.wsgi");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"Hello, World!");
    // Without ExecCGI the handler must refuse to run code: 403, and certainly
    // not the script's source served as a file.
    let r = s.get("/nocgi/hello.wsgi");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(!r.text().contains("def application"));
}

#[test]
fn missing_script_is_404() {
    let s = Server::new(Mpm::Event)
        .conf("WSGIScriptAlias /missing {root}/does-not-exist.wsgi\n")
        .start();
    let r = s.get("/missing");
    assert_eq!(r.status, 404, "{}", r.text());
    let r = s.get("/missing/sub/path");
    assert_eq!(r.status, 404, "{}", r.text());
}
