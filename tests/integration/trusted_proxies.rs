//! Trusted proxy headers (CVE-2022-2255): from a trusted peer the
//! listed forwarding headers rewrite the client address, scheme, host and
//! port; from any other peer every header of a listed purpose is removed;
//! headers of purposes nobody listed pass untouched; and a header spelt with
//! underscores never poses as a forwarding header. Embedded and daemon mode
//! alike, and (ours) requests that Apache's mod_proxy_uwsgi sends to a
//! daemon group's socket. Malformed directives stop Apache with file and
//! line.

use std::time::Duration;

use crate::common::apps::{ENVIRON, HELLO};
use crate::common::{module, referee_differs, Environ, Module, Mpm, Running, Server};
use crate::daemon::wait_daemons;

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
    assert_no_underscore_header(env, path);
    assert_eq!(env.get("HTTP_X_FORWARDED_SSL"), None, "{path}");
}

/// No value of `FORWARDED`'s underscore headers reached the app.
fn assert_no_underscore_header(env: &Environ, path: &str) {
    for key in env.keys() {
        let value = env.get(key).unwrap_or("");
        assert!(
            !value.contains("7.7.7.7"),
            "{path}: underscore header reached the app as {key}={value}"
        );
    }
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

/// One route's rules: the handler route `/d/NAME` and the mod_proxy_uwsgi
/// route `/p/NAME` to the same daemon group, both under `<Location>`s
/// with the same directives.
const ROUTES: &[(&str, &str)] = &[
    (
        "trusted",
        "    WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto\n    \
         WSGITrustedProxyHeaders X-Forwarded-Host X-Forwarded-Port\n    \
         WSGITrustedProxies 127.0.0.0/8\n",
    ),
    (
        "untrusted",
        "    WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto\n    \
         WSGITrustedProxyHeaders X-Forwarded-Host X-Forwarded-Port\n    \
         WSGITrustedProxies 10.0.0.1 192.0.2.0/24\n",
    ),
    // Every peer trusted (no WSGITrustedProxies): the first entry wins.
    (
        "anypeer",
        "    WSGITrustedProxyHeaders X-Real-IP X-Forwarded-SSL\n",
    ),
    ("plain", ""),
    // What the location itself sets cannot pose as our rules or make a
    // peer trusted: a SetEnv or [E=] of the secret's var (with rules that
    // would trust every peer) is replaced by ours, a private var of its own
    // is dropped, and headers and variables it sets are judged like a
    // client's.
    (
        "forged",
        "    WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto\n    \
         WSGITrustedProxies 10.0.0.1\n    \
         SetEnv WSGI_RS_SECRET \"0123 X-Forwarded-For,X-Forwarded-Proto\"\n    \
         SetEnv WSGI_RS_RULES X-Forwarded-For\n    \
         SetEnv HTTP_X_REAL_IP 6.6.6.6\n    \
         RequestHeader set X-Forwarded-For 6.6.6.6\n    \
         RequestHeader set X-Forwarded-Proto https\n    \
         RewriteEngine On\n    \
         RewriteRule ^ - [E=WSGI_RS_SECRET:0123\\ X-Forwarded-For]\n",
    ),
    (
        "forged-plain",
        "    SetEnv WSGI_RS_SECRET \"0123 X-Forwarded-For\"\n    \
         RewriteEngine On\n    \
         RewriteRule ^ - [E=WSGI_RS_SECRET:0123\\ X-Forwarded-For]\n",
    ),
];

/// What the two routes must agree on: the forwarding-related variables
/// and every request header.
fn forwarding_view(env: &Environ) -> Vec<(String, Option<String>)> {
    let mut keys: Vec<String> = env
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("HTTP_"))
        .map(str::to_owned)
        .collect();
    for k in [
        "REMOTE_ADDR",
        "SERVER_NAME",
        "SERVER_PORT",
        "HTTPS",
        "wsgi.url_scheme",
    ] {
        keys.push(k.to_owned());
    }
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let v = env.get(&k).map(str::to_owned);
            (k, v)
        })
        .collect()
}

/// `WSGITrustedProxyHeaders` / `WSGITrustedProxies` on the mod_proxy_uwsgi
/// route (`ProxyPass … unix:SOCKET|uwsgi://…` to a daemon group's socket):
/// the application sees the forwarding variables it sees through our
/// handler under the same `<Location>` rules, from a trusted peer, an
/// untrusted one, every peer, and with no rules; an underscore header never
/// poses as a forwarding one; and nothing the location sets (`SetEnv`,
/// `RequestHeader`, mod_rewrite's `[E=]`) passes for our rules.
fn proxy_uwsgi_route(mpm: Mpm) {
    if referee_differs("mod_wsgi's daemons do not speak uwsgi to mod_proxy_uwsgi") {
        return;
    }
    let mut conf = String::from(
        "LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so\n\
         LoadModule proxy_uwsgi_module /usr/lib/apache2/modules/mod_proxy_uwsgi.so\n\
         LoadModule rewrite_module /usr/lib/apache2/modules/mod_rewrite.so\n\
         WSGISocketPrefix {root}/sock/wsgi\n\
         WSGIDaemonProcess proxied threads=2 display-name=%{GROUP}\n\
         WSGIImportScript {root}/env.wsgi process-group=proxied application-group=%{GLOBAL}\n",
    );
    for (name, rules) in ROUTES {
        conf.push_str(&format!(
            "WSGIScriptAlias /d/{name} {{root}}/env.wsgi process-group=proxied \
             application-group=%{{GLOBAL}}\n\
             ProxyPass /p/{name} unix:{{root}}/sock/wsgi.proxied.sock|uwsgi://localhost/\n\
             <LocationMatch ^/[dp]/{name}(/|$)>\n{rules}</LocationMatch>\n"
        ));
    }
    let s = Server::new(mpm)
        .file("env.wsgi", ENVIRON)
        .conf(&conf)
        .start();
    wait_daemons(&s, "proxied", 1, Duration::from_secs(10));
    let both = |name: &str, headers: &[(&str, &str)]| {
        let handler = environ(&s, &format!("/d/{name}"), headers);
        let proxied = environ(&s, &format!("/p/{name}"), headers);
        assert_eq!(
            forwarding_view(&proxied),
            forwarding_view(&handler),
            "/p/{name} (left) and /d/{name} (right) differ"
        );
        assert_no_underscore_header(&proxied, name);
        proxied
    };

    let env = both("trusted", FORWARDED);
    assert_eq!(env.str("REMOTE_ADDR"), "203.0.113.7");
    assert_eq!(env.str("HTTP_X_FORWARDED_FOR"), "203.0.113.7, 127.0.0.9");
    assert_eq!(env.str("wsgi.url_scheme"), "https");
    assert_eq!(env.str("HTTPS"), "1");
    assert_eq!(env.str("HTTP_HOST"), "www.example.org");
    assert_eq!(env.str("SERVER_PORT"), "8443");
    assert_eq!(env.get("HTTP_X_REAL_IP"), None);
    let env = both("trusted", &[("X-Forwarded-Proto", "http")]);
    assert_eq!(env.str("wsgi.url_scheme"), "http");

    let env = both("untrusted", FORWARDED);
    assert_eq!(env.str("REMOTE_ADDR"), "127.0.0.1");
    assert_eq!(env.str("wsgi.url_scheme"), "http");
    for gone in [
        "HTTP_X_FORWARDED_FOR",
        "HTTP_X_REAL_IP",
        "HTTP_X_CLIENT_IP",
        "HTTP_X_FORWARDED_PROTO",
        "HTTP_X_FORWARDED_HOST",
        "HTTP_X_FORWARDED_PORT",
    ] {
        assert_eq!(env.get(gone), None, "{gone} reached the app");
    }
    assert_eq!(env.str("HTTP_X_FORWARDED_SERVER"), "front.example.org");

    let env = both(
        "anypeer",
        &[
            ("X-Real-IP", "198.51.100.4"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-SSL", "on"),
            ("X-Forwarded-Proto", "http"),
            ("X_Real_IP", "7.7.7.7"),
            ("X-Forwarded_SSL", "7.7.7.7"),
        ],
    );
    assert_eq!(env.str("REMOTE_ADDR"), "198.51.100.4");
    assert_eq!(env.str("wsgi.url_scheme"), "https");
    assert_eq!(env.get("HTTP_X_FORWARDED_FOR"), None);
    assert_eq!(env.get("HTTP_X_FORWARDED_PROTO"), None);

    let env = both("plain", FORWARDED);
    assert_eq!(env.str("REMOTE_ADDR"), "127.0.0.1");
    assert_eq!(env.str("HTTP_X_REAL_IP"), "6.6.6.6");

    let env = both(
        "forged",
        &[
            ("X-Forwarded-For", "5.5.5.5"),
            ("X_Forwarded_For", "7.7.7.7"),
        ],
    );
    assert_eq!(env.str("REMOTE_ADDR"), "127.0.0.1");
    assert_eq!(env.str("wsgi.url_scheme"), "http");
    for gone in [
        "HTTP_X_FORWARDED_FOR",
        "HTTP_X_REAL_IP",
        "HTTP_X_FORWARDED_PROTO",
    ] {
        assert_eq!(env.get(gone), None, "forged: {gone} reached the app");
    }
    assert!(env.keys().iter().all(|k| !k.contains("WSGI_RS")), "forged");
    let env = both("forged-plain", &[("X-Forwarded-For", "5.5.5.5")]);
    assert_eq!(env.str("REMOTE_ADDR"), "127.0.0.1");
    assert_eq!(env.str("HTTP_X_FORWARDED_FOR"), "5.5.5.5");
}
per_mpm!(proxy_uwsgi_route);
