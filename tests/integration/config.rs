//! Loading and configuration: `apache2 -t` accepts the
//! directives, rejects malformed ones with a message that points at the
//! directive, the bad value, the file and the line, and (ours only, for now)
//! refuses daemon-mode directives.

use crate::common::apps::HELLO;
use crate::common::{module, Module, Mpm, Server};

#[test]
fn config_test_accepts_wsgi_directives() {
    let s = Server::new(Mpm::Event)
        .file("app.wsgi", HELLO)
        .file("scripts/one.wsgi", HELLO)
        .conf(
            r#"WSGIScriptAlias /app {root}/app.wsgi
WSGIScriptAlias /opts {root}/app.wsgi application-group=%{GLOBAL} callable-object=application pass-authorization=On
WSGIScriptAliasMatch ^/m/([^/]+) {root}/scripts/$1.wsgi
WSGIApplicationGroup %{GLOBAL}
WSGIPassAuthorization On
WSGIScriptReloading On
WSGIChunkedRequest On
WSGICallableObject application
"#,
        );
    let (status, out) = s.start_expect_failure();
    assert!(
        status.success(),
        "apache2 -t rejected a valid configuration:\n{out}"
    );
    assert!(out.contains("Syntax OK"), "{out}");
}

/// Runs `apache2 -t` on `snippet` (one line) and checks it is rejected with a
/// message naming the config file and the line; for our module also the
/// directive and the offending value.
fn assert_rejected(snippet: &str, directive: &str, bad_value: &str) {
    let s = Server::new(Mpm::Event)
        .file("a.wsgi", HELLO)
        // Filler so the bad line is not at a trivially guessable position.
        .conf("WSGIScriptAlias /ok {root}/a.wsgi\n")
        .conf(snippet);
    let (status, out) = s.start_expect_failure();
    assert!(!status.success(), "apache2 -t accepted `{snippet}`:\n{out}");
    let wanted = snippet.replace("{root}", &s.root().display().to_string());
    let conf = s.conf_text();
    let line = conf
        .lines()
        .position(|l| l.trim() == wanted.trim())
        .expect("snippet not found in the generated httpd.conf")
        + 1;
    let conf_path = s.conf_path().display().to_string();
    // Apache itself reports "Syntax error on line N of FILE:" for any module
    // whose directive handler returns an error.
    assert!(
        out.contains(&format!("line {line} ")),
        "no line {line} in:\n{out}"
    );
    assert!(out.contains(&conf_path), "no {conf_path} in:\n{out}");
    if module() == Module::ModWsgi {
        return; // the wording below is ours; mod_wsgi's messages differ
    }
    assert!(
        out.contains(directive),
        "message does not name {directive}:\n{out}"
    );
    assert!(
        out.contains(bad_value),
        "message does not show the bad value {bad_value:?}:\n{out}"
    );
}

#[test]
fn rejects_bad_pass_authorization_flag() {
    assert_rejected(
        "WSGIPassAuthorization maybe",
        "WSGIPassAuthorization",
        "maybe",
    );
}

#[test]
fn rejects_unknown_script_alias_option() {
    assert_rejected(
        "WSGIScriptAlias /x {root}/a.wsgi bogus=1",
        "WSGIScriptAlias",
        "bogus",
    );
}

#[test]
fn rejects_unknown_application_group_variable() {
    if module() == Module::ModWsgi {
        // mod_wsgi 4.9.4 accepts any %{...} here and uses it literally as the
        // group name ("%{BOGUS}"); ours catches the typo at config time.
        return;
    }
    assert_rejected(
        "WSGIApplicationGroup %{BOGUS}",
        "WSGIApplicationGroup",
        "%{BOGUS}",
    );
}

/// A bad `WSGIDaemonProcess` stops Apache at start-up with the directive,
/// the offending value, the file and the line (an unknown option, a bad
/// value, a duplicate group name, an unknown user or group).
#[test]
fn daemon_process_errors_name_directive_value_file_and_line() {
    if module() == Module::ModWsgi {
        return; // ours only: the exact wording is ours
    }
    for (snippet, value) in [
        (
            "WSGIDaemonProcess app threads=2 bogus-option=1",
            "bogus-option",
        ),
        ("WSGIDaemonProcess app threads=many", "many"),
        ("WSGIDaemonProcess app maximum-requests=-5", "-5"),
        ("WSGIDaemonProcess app header-timeout=soon", "soon"),
        ("WSGIDaemonProcess app request-buffer-size=1G", "1G"),
        (
            "WSGIDaemonProcess app maximum-memory=512M",
            "maximum-memory=512M",
        ),
        (
            "WSGIDaemonProcess app maximum-memory=1000",
            "at least 1048576 bytes",
        ),
        (
            "WSGIDaemonProcess app\nWSGIDaemonProcess app threads=1",
            "app",
        ),
        (
            "WSGIDaemonProcess app user=no-such-user-here",
            "no-such-user-here",
        ),
        (
            "WSGIDaemonProcess app group=no-such-group-here",
            "no-such-group-here",
        ),
        (
            "WSGIDaemonProcess app script-user=no-such-user-here",
            "script-user=no-such-user-here",
        ),
        (
            "WSGIDaemonProcess app script-group=no-such-group-here",
            "script-group=no-such-group-here",
        ),
        (
            "WSGIDaemonProcess app socket-user=no-such-user-here",
            "socket-user=no-such-user-here",
        ),
    ] {
        let snippet = snippet.replace("\\n", "\n");
        let s = Server::new(Mpm::Event).conf(&snippet);
        let (status, out) = s.start_expect_failure();
        assert!(!status.success(), "`{snippet}` was accepted:\n{out}");
        assert!(out.contains("WSGIDaemonProcess"), "`{snippet}`:\n{out}");
        assert!(
            out.contains(value),
            "`{snippet}` does not name {value}:\n{out}"
        );
        assert!(
            out.contains("httpd.conf"),
            "`{snippet}` does not name the file:\n{out}"
        );
        assert!(
            out.contains("line"),
            "`{snippet}` does not name the line:\n{out}"
        );
    }
}

/// mod_wsgi loaded beside ours: both answer the same directives, so httpd
/// would hand each one to whichever module it finds first. Ours refuses to
/// start, before the configuration is even checked, with its id and the fix.
#[test]
fn refuses_to_start_beside_mod_wsgi() {
    if module() == Module::ModWsgi {
        return; // the referee loads mod_wsgi alone; the check is ours
    }
    let s = Server::new(Mpm::Event)
        .file("app.wsgi", HELLO)
        .conf(&format!(
            "LoadModule wsgi_module {}\nWSGIScriptAlias /app {{root}}/app.wsgi\n",
            Module::ModWsgi.so_path().display()
        ));
    let (status, out) = s.start_expect_failure();
    assert!(
        !status.success(),
        "apache2 -t accepted both modules:\n{out}"
    );
    assert!(out.contains("WSGIRS392"), "no WSGIRS392 in:\n{out}");
    assert!(out.contains("a2dismod wsgi"), "no remedy in:\n{out}");
}
