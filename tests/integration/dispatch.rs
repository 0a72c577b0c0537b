//! Routing chosen per request (`WSGIDispatchScript`), named handler scripts
//! (`WSGIHandlerScript` with `AddHandler`/`SetHandler`), the groups a
//! context may select (`WSGIRestrictProcess`), and `WSGIRestrictSignal`.

use std::time::Duration;

use crate::common::referee_differs;
use crate::common::{module, Module, Mpm, Running, Server};

/// Reports where it ran: `key=value` lines.
const WHERE_APP: &str = r#"
import os
def report(environ, start_response, name):
    body = 'callable=%s\ngroup=%s\napp_group=%s\npid=%d\nfile=%s\npath=%s\n' % (
        name,
        environ.get('mod_wsgi.process_group'),
        environ.get('mod_wsgi.application_group'),
        os.getpid(),
        environ.get('SCRIPT_FILENAME'),
        environ.get('PATH_INFO'),
    )
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]

def application(environ, start_response):
    return report(environ, start_response, 'application')

def other(environ, start_response):
    return report(environ, start_response, 'other')

def handle_request(environ, start_response):
    return report(environ, start_response, 'handle_request')
"#;

const DISPATCH: &str = r#"
def process_group(environ):
    path = environ['PATH_INFO']
    if path.startswith('/two') or path.endswith('/two'):
        return 'two'
    if path.startswith('/embedded'):
        return '%{GLOBAL}'
    if path.startswith('/nope'):
        return 'nope'
    return None

def application_group(environ):
    first = environ['PATH_INFO'].strip('/').split('/')[0]
    if first == 'keep':
        return None
    return b'chosen-' + first.encode('latin-1')

def callable_object(environ):
    if environ['PATH_INFO'].endswith('/other'):
        return 'other'
    return None
"#;

fn field(body: &str, key: &str) -> String {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {body:?}"))
        .to_owned()
}

/// What mod_wsgi logs when a context selects the group `two`, which its
/// `WSGIRestrictProcess` leaves out.
const NOT_A_MEMBER: &str = "Daemon process called 'two' cannot be accessed by this WSGI application as not a member of allowed groups";

/// Asserts that a GET of `path` (with `headers`) is answered 500 and that
/// the error log then has each of `needles`.
fn assert_refused(s: &Running, path: &str, headers: &[(&str, &str)], needles: &[&str]) {
    let r = s.request("GET", path, headers, b"");
    assert_eq!(r.status, 500, "{path}: {}", r.text());
    for needle in needles {
        let logged = s.wait_log(needle, Duration::from_secs(30));
        assert!(logged, "{path}: no {needle:?} in:\n{}", s.error_log());
    }
}

fn dispatch_server(mpm: Mpm) -> Running {
    Server::new(mpm)
        .file("app.wsgi", WHERE_APP)
        .file("dispatch.py", DISPATCH)
        .conf(
            "WSGIDaemonProcess one threads=2\n\
             WSGIDaemonProcess two threads=2\n\
             WSGIScriptAlias /app {root}/app.wsgi process-group=one\n\
             WSGIDispatchScript {root}/dispatch.py\n\
             <Location /app/restricted>\n  WSGIRestrictProcess one\n</Location>\n",
        )
        .start()
}

/// The dispatch script's three functions each override the configured
/// choice, and returning None keeps it.
fn dispatch_script_chooses_groups_and_callable(mpm: Mpm) {
    let s = dispatch_server(mpm);
    let get = |path: &str| {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}: {}\n{}", r.text(), s.error_log());
        r.text()
    };
    let body = get("/app/keep");
    assert_eq!(field(&body, "group"), "one");
    assert_eq!(field(&body, "callable"), "application");
    assert!(field(&body, "app_group").ends_with("|/app"), "{body}");
    let body = get("/app/x");
    assert_eq!(field(&body, "group"), "one");
    assert_eq!(field(&body, "app_group"), "chosen-x");
    let body = get("/app/two/other");
    assert_eq!(field(&body, "group"), "two");
    assert_eq!(field(&body, "app_group"), "chosen-two");
    assert_eq!(field(&body, "callable"), "other");
    let body = get("/app/embedded");
    assert_eq!(field(&body, "group"), "");
    assert_eq!(field(&body, "app_group"), "chosen-embedded");
    // Two daemon groups and the Apache child: three different processes.
    let pids = [
        field(&get("/app/keep"), "pid"),
        field(&get("/app/two"), "pid"),
        field(&get("/app/embedded"), "pid"),
    ];
    assert!(
        pids[0] != pids[1] && pids[1] != pids[2] && pids[0] != pids[2],
        "{pids:?}"
    );
}
per_mpm!(dispatch_script_chooses_groups_and_callable);

/// A changed dispatch script is re-imported on the next request, in every
/// Apache child (single process here, so one child sees both versions).
#[test]
fn dispatch_script_reloads_when_changed() {
    let s = Server::new(Mpm::Prefork)
        .single_process()
        .file("app.wsgi", WHERE_APP)
        .file(
            "route.py",
            "def application_group(environ):\n    return 'first'\n",
        )
        .conf(
            "WSGIScriptAlias /app {root}/app.wsgi\n\
             WSGIDispatchScript {root}/route.py\n",
        )
        .start();
    let group = || field(&s.get("/app").text(), "app_group");
    assert_eq!(group(), "first");
    s.write_file(
        "route.py",
        "def application_group(environ):\n    return 'second'\n",
    );
    s.touch("route.py");
    assert_eq!(group(), "second", "{}", s.error_log());
}

/// A dispatch naming a group the context may not select is refused as
/// `WSGIProcessGroup` would be: unknown group, or one `WSGIRestrictProcess`
/// leaves out.
#[test]
fn dispatch_to_a_forbidden_group_is_refused() {
    let s = dispatch_server(Mpm::Event);
    assert_refused(&s, "/app/nope", &[], &["aemon process called 'nope'"]);
    let allowed = s.get("/app/restricted");
    assert_eq!(allowed.status, 200, "{}\n{}", allowed.text(), s.error_log());
    assert_refused(&s, "/app/restricted/two", &[], &[NOT_A_MEMBER]);
}

/// A group another virtual host defines is not this one's to choose: the
/// dispatch naming it is refused, while its own virtual host may use it.
#[test]
fn dispatch_to_another_virtual_hosts_group_is_refused() {
    let vhost = |name: &str, group: &str| {
        format!(
            "<VirtualHost 127.0.0.1:{{port}}>\n  ServerName {name}\n{group}  \
             WSGIScriptAlias /app {{root}}/app.wsgi\n  \
             WSGIDispatchScript {{root}}/to_ga.py\n</VirtualHost>\n"
        )
    };
    let s = Server::new(Mpm::Event)
        .file("app.wsgi", WHERE_APP)
        .file("to_ga.py", "def process_group(environ):\n    return 'ga'\n")
        .conf(&vhost("a.example", "  WSGIDaemonProcess ga threads=2\n"))
        .conf(&vhost("b.example", ""))
        .start();
    let r = s.request("GET", "/app", &[("Host", "a.example")], b"");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    assert_eq!(field(&r.text(), "group"), "ga");
    assert_refused(
        &s,
        "/app",
        &[("Host", "b.example")],
        &["aemon process called 'ga'"],
    );
}

/// As in mod_wsgi, virtual hosts with the same `ServerName` (one site on
/// two ports, or here an alias) may use each other's daemon groups.
#[test]
fn virtual_hosts_of_one_server_name_share_daemon_groups() {
    let s = Server::new(Mpm::Worker)
        .file("app.wsgi", WHERE_APP)
        .conf(
            "<VirtualHost 127.0.0.1:{port}>\n  ServerName site.example\n  \
             WSGIDaemonProcess shared threads=2\n  \
             WSGIScriptAlias /app {root}/app.wsgi process-group=shared\n</VirtualHost>\n\
             <VirtualHost 127.0.0.1:{port}>\n  ServerName site.example\n  \
             ServerAlias alias.example\n  \
             WSGIScriptAlias /app {root}/app.wsgi process-group=shared\n</VirtualHost>\n\
             <VirtualHost 127.0.0.1:{port}>\n  ServerName other.example\n  \
             WSGIScriptAlias /app {root}/app.wsgi process-group=shared\n</VirtualHost>\n",
        )
        .start();
    for host in ["site.example", "alias.example"] {
        let r = s.request("GET", "/app", &[("Host", host)], b"");
        assert_eq!(r.status, 200, "{host}: {}\n{}", r.text(), s.error_log());
        assert_eq!(field(&r.text(), "group"), "shared", "{host}");
    }
    let r = s.request("GET", "/app", &[("Host", "other.example")], b"");
    assert_eq!(r.status, 500, "{}", r.text());
}

/// `WSGIRestrictProcess` refuses a `WSGIProcessGroup` outside its list with
/// mod_wsgi's message, and allows the ones in it (`%{GLOBAL}` included).
#[test]
fn restrict_process_refuses_unlisted_groups() {
    let s = Server::new(Mpm::Worker)
        .file("app.wsgi", WHERE_APP)
        .conf(
            "WSGIDaemonProcess one threads=2\n\
             WSGIDaemonProcess two threads=2\n\
             WSGIScriptAlias /one {root}/app.wsgi\n\
             WSGIScriptAlias /two {root}/app.wsgi\n\
             WSGIScriptAlias /embedded {root}/app.wsgi\n\
             WSGIRestrictProcess one %{GLOBAL}\n\
             <Location /one>\n  WSGIProcessGroup one\n</Location>\n\
             <Location /two>\n  WSGIProcessGroup two\n</Location>\n",
        )
        .start();
    let r = s.get("/one");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    assert_eq!(field(&r.text(), "group"), "one");
    let r = s.get("/embedded");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(field(&r.text(), "group"), "");
    assert_refused(&s, "/two", &[], &[NOT_A_MEMBER]);
}

/// A named handler serves requests `AddHandler` (by extension, no ExecCGI
/// needed) and `SetHandler` (any URL, no file needed) give it, through its
/// script's `handle_request`, in the groups its options name.
fn handler_script_via_add_handler_and_set_handler(mpm: Mpm) {
    let s = Server::new(mpm)
        .file("handler.wsgi", WHERE_APP)
        .file("files/page.myext", "not python")
        .file("files/plain.txt", "plain text\n")
        .conf(
            "WSGIDaemonProcess hs threads=2\n\
             WSGIHandlerScript my-handler {root}/handler.wsgi process-group=hs application-group=%{GLOBAL}\n\
             WSGIHandlerScript emb-handler {root}/handler.wsgi\n\
             Alias /files {root}/files\n\
             <Directory {root}/files>\n  AddHandler my-handler .myext\n</Directory>\n\
             <Location /virtual>\n  SetHandler emb-handler\n</Location>\n",
        )
        .start();
    let r = s.get("/files/page.myext/extra");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    let body = r.text();
    assert_eq!(field(&body, "callable"), "handle_request");
    assert_eq!(field(&body, "group"), "hs");
    assert_eq!(field(&body, "app_group"), "");
    assert!(
        field(&body, "file").ends_with("/files/page.myext"),
        "{body}"
    );
    assert_eq!(field(&body, "path"), "/extra");
    let r = s.get("/virtual/anything");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    assert_eq!(field(&r.text(), "callable"), "handle_request");
    assert_eq!(field(&r.text(), "group"), "");
    // Other files are Apache's as before.
    let r = s.get("/files/plain.txt");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "plain text\n");
}
per_mpm!(handler_script_via_add_handler_and_set_handler);

const DISPATCH_RAISES: &str = r#"
def process_group(environ):
    return 1 / 0
"#;

/// A dispatch function that raises, a script with a syntax error, a script
/// that does not exist, and a wrong return type: each a 500 with the cause
/// (and the traceback) in the error log.
#[test]
fn broken_dispatch_scripts_answer_500_with_the_traceback() {
    let s = Server::new(Mpm::Event)
        .file("app.wsgi", WHERE_APP)
        .file("raises.py", DISPATCH_RAISES)
        .file("syntax.py", "def process_group(environ)\n    return None\n")
        .file(
            "badtype.py",
            "def callable_object(environ):\n    return 42\n",
        )
        .conf(
            "WSGIScriptAlias /app {root}/app.wsgi\n\
             <Location /app/raises>\n  WSGIDispatchScript {root}/raises.py\n</Location>\n\
             <Location /app/syntax>\n  WSGIDispatchScript {root}/syntax.py\n</Location>\n\
             <Location /app/missing>\n  WSGIDispatchScript {root}/missing.py\n</Location>\n\
             <Location /app/badtype>\n  WSGIDispatchScript {root}/badtype.py\n</Location>\n",
        )
        .start();
    let refused = |path: &str, needles: &[&str]| assert_refused(&s, path, &[], needles);
    refused(
        "/app/raises",
        &["Traceback (most recent call last)", "ZeroDivisionError"],
    );
    refused("/app/badtype", &["TypeError"]);
    if referee_differs("mod_wsgi routes on when a dispatch script fails to load") {
        return;
    }
    refused("/app/syntax", &["SyntaxError"]);
    refused(
        "/app/missing",
        &["missing.py' cannot be loaded", "No such file"],
    );
    // A working request after all that.
    assert_eq!(s.get("/app/fine").status, 200);
}

/// Malformed values stop Apache with the directive, the value, the file and
/// the line.
#[test]
fn malformed_routing_directives_stop_apache() {
    if module() == Module::ModWsgi {
        eprintln!("not checked against mod_wsgi: our messages");
        return;
    }
    for (line, message) in [
        (
            "WSGIDispatchScript /d.py process-group=x",
            "WSGIDispatchScript: unknown option 'process-group=x' (expected application-group=)",
        ),
        (
            "WSGIHandlerScript only-a-name",
            "WSGIHandlerScript: wrong number of arguments ('only-a-name')",
        ),
        (
            "WSGIHandlerScript h /h.wsgi pass-authorization=maybe",
            "WSGIHandlerScript: invalid value 'pass-authorization=maybe': expected On or Off",
        ),
        (
            "WSGIRestrictProcess %{ENV:X}",
            "WSGIRestrictProcess: invalid value '%{ENV:X}'",
        ),
        (
            "WSGIRestrictSignal sometimes",
            "WSGIRestrictSignal: invalid value 'sometimes': expected On or Off",
        ),
        (
            "WSGIErrorOverride 1",
            "WSGIErrorOverride: invalid value '1': expected On or Off",
        ),
        (
            "WSGIEnableSendfile yes",
            "WSGIEnableSendfile: invalid value 'yes'",
        ),
        (
            "WSGIIgnoreActivity",
            "WSGIIgnoreActivity: wrong number of arguments (none)",
        ),
        (
            "WSGISocketRotation maybe",
            "WSGISocketRotation: invalid value 'maybe'",
        ),
        (
            "<VirtualHost *:80>\nWSGIServerMetrics On\n</VirtualHost>",
            "WSGIServerMetrics cannot occur within <VirtualHost> section",
        ),
    ] {
        let s = Server::new(Mpm::Event).conf(&format!("\n{line}\n"));
        let (status, out) = s.start_expect_failure();
        assert!(!status.success(), "accepted: {line}\n{out}");
        assert!(out.contains(message), "`{line}`: {out}");
        assert!(out.contains("Syntax error on line"), "{out}");
        assert!(out.contains("httpd.conf"), "{out}");
    }
}

const SIGNAL_APP: &str = r#"
import signal
def application(environ, start_response):
    def handler(*args):
        pass
    try:
        returned = signal.signal(signal.SIGUSR2, handler)
        result = 'returned-handler' if returned is handler else 'registered'
    except ValueError:
        result = 'ValueError'
    current = signal.getsignal(signal.SIGUSR2)
    body = '%s current=%s' % (result, 'handler' if current is handler else 'unchanged')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

/// By default an application's `signal.signal()` is ignored with a warning,
/// in embedded and daemon mode; `WSGIRestrictSignal Off` lets it through.
fn restrict_signal(mpm: Mpm) {
    for (setting, restricted) in [("", true), ("WSGIRestrictSignal Off\n", false)] {
        let s = Server::new(mpm)
            .file("signal.wsgi", SIGNAL_APP)
            .conf(&format!(
                "{setting}WSGIDaemonProcess sig threads=2\n\
                 WSGIScriptAlias /embedded {{root}}/signal.wsgi\n\
                 WSGIScriptAlias /daemon {{root}}/signal.wsgi process-group=sig\n"
            ))
            .start();
        for path in ["/embedded", "/daemon"] {
            let r = s.get(path);
            assert_eq!(r.status, 200, "{path}: {}\n{}", r.text(), s.error_log());
            if restricted {
                assert_eq!(r.text(), "returned-handler current=unchanged", "{path}");
            } else {
                assert_ne!(r.text(), "returned-handler current=unchanged", "{path}");
            }
        }
        let needle = "Callback registration for signal 12 ignored";
        if restricted {
            assert!(
                s.wait_log(needle, Duration::from_secs(30)),
                "{}",
                s.error_log()
            );
        } else {
            // Logged before the response, had it been.
            assert!(!s.error_log().contains(needle), "{}", s.error_log());
        }
    }
}
per_mpm!(restrict_signal);
