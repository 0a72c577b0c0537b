//! Trusted proxy headers (CVE-2022-2255): from a trusted peer the
//! listed forwarding headers rewrite the client address, scheme, host and
//! port; from any other peer every header of a listed purpose is removed;
//! headers of purposes nobody listed pass untouched; and a header spelt with
//! underscores never poses as a forwarding header. Embedded and daemon mode
//! alike. Malformed directives stop Apache with file and line.

use crate::common::apps::{ENVIRON, HELLO};
use crate::common::{module, Environ, Module, Mpm, Running, Server};

const LISTED: &str = "WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto\n    \
     WSGITrustedProxyHeaders X-Forwarded-Host X-Forwarded-Port\n";

/// The test client connects from 127.0.0.1: trusted at `/X/trusted`
/// (127.0.0.0/8), not at `/X/untrusted`.
fn site(mpm: Mpm) -> Running {
    let mut conf = String::from("WSGIDaemonProcess proxied threads=2\n");
    for (prefix, options) in [("e", ""), ("d", " process-group=proxied")] {
        for (name, proxies) in [
            ("trusted", "127.0.0.0/8"),
            ("untrusted", "10.0.0.1 192.0.2.0/24"),
        ] {
            conf.push_str(&format!(
                "WSGIScriptAlias /{prefix}/{name} {{root}}/env.wsgi{options}\n\
                 <Location /{prefix}/{name}>\n    {LISTED}    WSGITrustedProxies {proxies}\n\
                 </Location>\n"
            ));
        }
        conf.push_str(&format!(
            "WSGIScriptAlias /{prefix}/plain {{root}}/env.wsgi{options}\n"
        ));
    }
    Server::new(mpm)
        .file("env.wsgi", ENVIRON)
        .conf(&conf)
        .start()
}

const FORWARDED: &[(&str, &str)] = &[
    ("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 127.0.0.9"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Host", "www.example.org"),
    ("X-Forwarded-Port", "8443"),
    // Same purpose as X-Forwarded-For, not listed.
    ("X-Real-IP", "6.6.6.6"),
    ("X-Client-IP", "6.6.6.6"),
    // Same purpose as X-Forwarded-Proto, not listed.
    ("X-Forwarded-SSL", "on"),
    // A purpose nobody listed.
    ("X-Forwarded-Server", "front.example.org"),
    // Spoofing attempts: Apache drops names with underscores.
    ("X_Forwarded_For", "7.7.7.7"),
    ("X-Forwarded_Proto", "https"),
];

fn environ(s: &Running, path: &str, headers: &[(&str, &str)]) -> Environ {
    let r = s.request("GET", path, headers, b"");
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    Environ::parse(&r.body)
}

fn assert_no_spoofing(env: &Environ, path: &str) {
    for key in env.keys() {
        let value = env.get(key).unwrap_or("");
        assert!(
            !value.contains("7.7.7.7"),
            "{path}: underscore header reached the app as {key}={value}"
        );
    }
    assert_eq!(env.get("HTTP_X_FORWARDED_SSL"), None, "{path}");
}

fn forwarding_headers(mpm: Mpm) {
    let s = site(mpm);
    let ours = module() == Module::Ours;
    for prefix in ["e", "d"] {
        // Trusted peer: the address is the entry left of the trusted
        // proxies at the end of X-Forwarded-For, the rest is rewritten.
        let path = format!("/{prefix}/trusted");
        let env = environ(&s, &path, FORWARDED);
        assert_eq!(env.str("REMOTE_ADDR"), "203.0.113.7", "{path}");
        assert_eq!(
            env.str("HTTP_X_FORWARDED_FOR"),
            "203.0.113.7, 127.0.0.9",
            "{path}"
        );
        assert_eq!(env.str("wsgi.url_scheme"), "https", "{path}");
        assert_eq!(env.str("HTTP_HOST"), "www.example.org", "{path}");
        assert_eq!(env.str("SERVER_PORT"), "8443", "{path}");
        assert_eq!(env.get("HTTP_X_REAL_IP"), None, "{path}");
        assert_eq!(env.get("HTTP_X_CLIENT_IP"), None, "{path}");
        assert_eq!(
            env.str("HTTP_X_FORWARDED_SERVER"),
            "front.example.org",
            "{path}"
        );
        if ours {
            assert_eq!(env.str("HTTPS"), "1", "{path}");
        }
        assert_no_spoofing(&env, &path);

        // A trusted proxy saying the client spoke plain http.
        let env = environ(&s, &path, &[("X-Forwarded-Proto", "http")]);
        assert_eq!(env.str("wsgi.url_scheme"), "http", "{path}");
        assert_eq!(env.get("HTTPS"), None, "{path}");

        // Untrusted peer: nothing is believed, the listed purposes' headers
        // are gone, the unlisted purpose passes.
        let path = format!("/{prefix}/untrusted");
        let env = environ(&s, &path, FORWARDED);
        assert_eq!(env.str("REMOTE_ADDR"), "127.0.0.1", "{path}");
        assert_eq!(env.str("wsgi.url_scheme"), "http", "{path}");
        assert_eq!(env.get("HTTPS"), None, "{path}");
        assert_ne!(env.get("HTTP_HOST"), Some("www.example.org"), "{path}");
        assert_ne!(env.str("SERVER_PORT"), "8443", "{path}");
        for gone in [
            "HTTP_X_FORWARDED_FOR",
            "HTTP_X_REAL_IP",
            "HTTP_X_CLIENT_IP",
            "HTTP_X_FORWARDED_PROTO",
            "HTTP_X_FORWARDED_HOST",
        ] {
            assert_eq!(env.get(gone), None, "{path}: {gone} reached the app");
        }
        if ours {
            // mod_wsgi 6 guards the port too; 4.9 passes it on.
            assert_eq!(env.get("HTTP_X_FORWARDED_PORT"), None, "{path}");
        }
        assert_eq!(
            env.str("HTTP_X_FORWARDED_SERVER"),
            "front.example.org",
            "{path}"
        );
        assert_no_spoofing(&env, &path);

        // Without the directives the headers are plain request headers,
        // and still no underscore header passes for one.
        let path = format!("/{prefix}/plain");
        let env = environ(&s, &path, FORWARDED);
        assert_eq!(env.str("REMOTE_ADDR"), "127.0.0.1", "{path}");
        assert_eq!(env.str("wsgi.url_scheme"), "http", "{path}");
        assert_eq!(env.str("HTTP_X_REAL_IP"), "6.6.6.6", "{path}");
        for key in env.keys() {
            assert!(!env.get(key).unwrap_or("").contains("7.7.7.7"), "{key}");
        }
    }
}
per_mpm!(forwarding_headers);

/// `apache2 -t` on one bad line (in a `<Location>`): refused, naming the file, the line and
/// (ours) the directive and the value.
fn assert_refused(line: &str, value: &str, referee_refuses_too: bool) {
    if module() == Module::ModWsgi && !referee_refuses_too {
        return; // mod_wsgi accepts this line and ignores it
    }
    let s = Server::new(Mpm::Event)
        .file("a.wsgi", HELLO)
        .conf("WSGIScriptAlias /ok {root}/a.wsgi\n<Location /ok>\n")
        .conf(&format!("{line}\n"))
        .conf("</Location>\n");
    let (status, out) = s.start_expect_failure();
    assert!(!status.success(), "apache2 -t accepted `{line}`:\n{out}");
    let number = s
        .conf_text()
        .lines()
        .position(|l| l.trim() == line)
        .expect("line not in httpd.conf")
        + 1;
    assert!(out.contains(&format!("line {number} ")), "{out}");
    assert!(out.contains(&s.conf_path().display().to_string()), "{out}");
    if module() == Module::Ours {
        let directive = line.split_whitespace().next().unwrap();
        assert!(out.contains(directive) && out.contains(value), "{out}");
    }
}

#[test]
fn malformed_proxy_directives_stop_apache() {
    assert_refused("WSGITrustedProxies 10.0.0.0/33", "10.0.0.0/33", true);
    assert_refused(
        "WSGITrustedProxies 10.0.0.1 proxy.example",
        "proxy.example",
        true,
    );
    assert_refused(
        "WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Fro",
        "X-Forwarded-Fro",
        false,
    );
    assert_refused(
        "WSGIAuthUserScript /srv/auth.wsgi process-group=site",
        "process-group=site",
        true,
    );
}

/// A trusted `X-Script-Name` rewrites the application's `SCRIPT_NAME`, but
/// the application group (`%{RESOURCE}`, the default) is decided from the
/// mount point Apache matched, as mod_wsgi decides it: a forwarded name
/// neither moves the application to another interpreter nor makes a new
/// interpreter for every value a client sends. Both modes.
#[test]
fn script_name_header_does_not_choose_the_interpreter() {
    let s = Server::new(Mpm::Event)
        .file("env.wsgi", ENVIRON)
        .conf(
            "WSGIDaemonProcess named threads=2\n\
             WSGIScriptAlias /e/mounted {root}/env.wsgi\n\
             WSGIScriptAlias /d/mounted {root}/env.wsgi process-group=named\n\
             <LocationMatch ^/[ed]/mounted>\n    WSGITrustedProxyHeaders X-Script-Name\n\
             </LocationMatch>\n",
        )
        .start();
    for path in ["/e/mounted", "/d/mounted"] {
        let plain = environ(&s, path, &[]);
        let group = plain
            .get("mod_wsgi.application_group")
            .expect("mod_wsgi.application_group")
            .to_owned();
        assert!(group.ends_with(&format!("|{path}")), "{path}: {group}");
        let moved = environ(&s, path, &[("X-Script-Name", "/elsewhere")]);
        assert_eq!(moved.get("SCRIPT_NAME"), Some("/elsewhere"), "{path}");
        assert_eq!(
            moved.get("mod_wsgi.application_group"),
            Some(group.as_str()),
            "{path}: the forwarded SCRIPT_NAME chose the interpreter"
        );
    }
}
