//! The WSGI environ: types, the wsgi.* keys, CGI variables,
//! the mod_wsgi.* compatibility keys, the default application group and
//! latin-1 decoding of header bytes.

use crate::common::apps::ENVIRON;
use crate::common::{Environ, Mpm, Server};

fn environ_basics(mpm: Mpm) {
    let s = Server::new(mpm)
        .file("env.wsgi", ENVIRON)
        .conf("WSGIScriptAlias /app {root}/env.wsgi\n")
        .start();
    let r = s.request(
        "POST",
        "/app/x?a=1&b=two",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Custom", "hello world"),
        ],
        b"k=v&w",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let env = Environ::parse(&r.body);

    // CGI variables (keys without a dot) are native str, never bytes.
    for key in env.keys() {
        if !key.contains('.') {
            assert_eq!(
                env.type_of(key),
                Some("str"),
                "environ[{key:?}] = {:?}",
                env.get(key)
            );
        }
    }
    assert_eq!(env.get("wsgi.version"), Some("(1, 0)"));
    assert_eq!(env.type_of("wsgi.version"), Some("tuple"));
    assert_eq!(env.str("wsgi.url_scheme"), "http");
    let threaded = if mpm.is_threaded() { "True" } else { "False" };
    assert_eq!(env.type_of("wsgi.multithread"), Some("bool"));
    assert_eq!(
        env.get("wsgi.multithread"),
        Some(threaded),
        "wsgi.multithread under {mpm:?}"
    );
    assert_eq!(env.get("wsgi.multiprocess"), Some("True"));
    assert_eq!(env.get("wsgi.run_once"), Some("False"));
    assert_eq!(env.get("wsgi.input_terminated"), Some("True"));
    for key in ["wsgi.input", "wsgi.errors", "wsgi.file_wrapper"] {
        assert!(env.get(key).is_some(), "environ has no {key}");
    }

    assert_eq!(env.str("REQUEST_METHOD"), "POST");
    assert_eq!(env.str("QUERY_STRING"), "a=1&b=two");
    assert_eq!(env.str("SERVER_NAME"), "127.0.0.1");
    assert_eq!(env.str("SERVER_PORT"), s.port.to_string());
    assert_eq!(env.str("SERVER_PROTOCOL"), "HTTP/1.1");
    assert_eq!(env.str("REMOTE_ADDR"), "127.0.0.1");
    assert_eq!(env.str("CONTENT_TYPE"), "application/x-www-form-urlencoded");
    assert_eq!(env.str("CONTENT_LENGTH"), "5");
    assert_eq!(env.str("HTTP_X_CUSTOM"), "hello world");
    assert_eq!(env.str("HTTP_HOST"), format!("127.0.0.1:{}", s.port));
    assert_eq!(env.str("SCRIPT_NAME"), "/app");
    assert_eq!(env.str("PATH_INFO"), "/x");
    assert_eq!(env.str("REQUEST_URI"), "/app/x?a=1&b=two");

    assert_eq!(env.str("mod_wsgi.process_group"), "");
    // %{RESOURCE}: host:port|SCRIPT_NAME.
    assert_eq!(
        env.str("mod_wsgi.application_group"),
        format!("127.0.0.1:{}|/app", s.port)
    );
    assert_eq!(env.str("mod_wsgi.callable_object"), "application");
    assert_eq!(env.str("mod_wsgi.script_reloading"), "1");
}
per_mpm!(environ_basics);

/// %{RESOURCE} leaves the port out when it is the scheme's default. The port
/// comes from the Host header (UseCanonicalName Off), so no privileged port
/// has to be bound to see it.
#[test]
fn default_application_group_omits_port_80_and_443() {
    let s = Server::new(Mpm::Event)
        .file("env.wsgi", ENVIRON)
        .conf("WSGIScriptAlias /app {root}/env.wsgi\n")
        .start();
    for host in ["127.0.0.1:80", "127.0.0.1:443"] {
        let r = s.request("GET", "/app", &[("Host", host)], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let env = Environ::parse(&r.body);
        assert_eq!(
            env.str("mod_wsgi.application_group"),
            "127.0.0.1|/app",
            "Host: {host}"
        );
    }
}

#[test]
fn global_application_group_is_empty_string() {
    let s = Server::new(Mpm::Event)
        .file("env.wsgi", ENVIRON)
        .conf("WSGIScriptAlias /app {root}/env.wsgi\nWSGIApplicationGroup %{GLOBAL}\n")
        .start();
    let r = s.get("/app");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        Environ::parse(&r.body).str("mod_wsgi.application_group"),
        ""
    );
}

/// HTTP header bytes are latin-1: byte 0xE9 must arrive as the str '\xe9'
/// (PEP 3333 "native strings"), not as bytes, mojibake or a decoding error.
#[test]
fn latin1_header_byte_decoded_as_str() {
    let s = Server::new(Mpm::Event)
        .file("env.wsgi", ENVIRON)
        .conf("WSGIScriptAlias /app {root}/env.wsgi\n")
        .start();
    let mut req = format!(
        "GET /app HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nX-Latin: caf",
        s.port
    )
    .into_bytes();
    req.extend_from_slice(b"\xe9\r\n\r\n");
    let r = s.raw_response(&req, false);
    assert_eq!(r.status, 200, "{}", r.text());
    let env = Environ::parse(&r.body);
    assert_eq!(env.str("HTTP_X_LATIN"), "caf\\xe9");
}

/// Server variables (SetEnv) named like the keys the module sets do not
/// replace them.
#[test]
fn server_variables_do_not_replace_wsgi_keys() {
    let s = Server::new(Mpm::Event)
        .file("env.wsgi", ENVIRON)
        .conf(
            "WSGIScriptAlias /app {root}/env.wsgi\n\
             SetEnv wsgi.run_once yes\n\
             SetEnv wsgi.multithread no\n\
             SetEnv mod_wsgi.version forged\n\
             SetEnv mod_wsgi.request_handler forged\n\
             SetEnv wsgi.url_scheme ftp\n",
        )
        .start();
    let r = s.get("/app");
    assert_eq!(r.status, 200, "{}", r.text());
    let env = Environ::parse(&r.body);
    assert_eq!(env.type_of("wsgi.run_once"), Some("bool"));
    assert_eq!(env.get("wsgi.run_once"), Some("False"));
    assert_eq!(env.get("wsgi.multithread"), Some("True"));
    assert_eq!(env.type_of("mod_wsgi.version"), Some("tuple"));
    assert_eq!(env.str("mod_wsgi.request_handler"), "wsgi-script");
    assert_eq!(env.str("wsgi.url_scheme"), "http");
}
