//! Where each directive may be written: `.htaccess` files with the
//! directives mod_wsgi allows there, Apache's own refusal of a directive in
//! a context it is not declared for, and `<VirtualHost>` refusal of the
//! directives mod_wsgi keeps to the main server.

use std::time::Duration;

use crate::common::{module, Module, Mpm, Server};

/// What `.htaccess` may hold under `AllowOverride FileInfo AuthConfig`, as in
/// mod_wsgi (`OR_FILEINFO` / `OR_AUTHCFG` directives). Helpers adding such a
/// directive append its line here; the app below must still answer.
const HTACCESS_LINES: &[&str] = &[
    "WSGICallableObject htapp",
    "WSGIPassAuthorization On",
    "WSGIScriptReloading On",
    "WSGIChunkedRequest On",
    "WSGIMapHEADToGET On",
    "WSGIGroupAuthoritative On",
    "WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto",
    "WSGITrustedProxies 10.0.0.0/8 192.168.1.1",
    "WSGIErrorOverride Off",
    "WSGIEnableSendfile Off",
    "WSGIIgnoreActivity Off",
];

const APP: &str = r#"
def htapp(environ, start_response):
    body = '%s auth=%s' % (environ['REQUEST_METHOD'], environ.get('HTTP_AUTHORIZATION', '-'))
    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Method', environ['REQUEST_METHOD'])])
    return [body.encode()]
"#;

fn htaccess_site(lines: &[&str]) -> Server {
    let mut htaccess = lines.join("\n");
    htaccess.push('\n');
    Server::new(Mpm::Event)
        .file("site/app.wsgi", APP)
        .file("site/.htaccess", &htaccess)
        .conf(
            "Alias /site {root}/site\n\
             <Directory {root}/site>\n  Options +ExecCGI\n  AddHandler wsgi-script .wsgi\n  \
             AllowOverride FileInfo AuthConfig\n</Directory>\n",
        )
}

#[test]
fn htaccess_accepts_the_directives_mod_wsgi_allows_there() {
    let s = htaccess_site(HTACCESS_LINES).start();
    // WSGICallableObject and WSGIPassAuthorization from .htaccess took effect.
    let r = s.request(
        "GET",
        "/site/app.wsgi",
        &[("Authorization", "Basic eDp5")],
        b"",
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    assert_eq!(r.text(), "GET auth=Basic eDp5");
    // So did WSGIMapHEADToGET On.
    let head = s.request("HEAD", "/site/app.wsgi", &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("X-Method"), Some("GET"));
}

/// Apache's own check, from the `command_rec` context: a directive not
/// declared for `.htaccess` there gives a 500 and "not allowed here".
#[test]
fn htaccess_refuses_server_level_directives() {
    for line in [
        "WSGIApplicationGroup %{GLOBAL}",
        "WSGIProcessGroup %{GLOBAL}",
        "WSGIScriptAlias /x /tmp/x.wsgi",
        "WSGIPythonPath /tmp",
    ] {
        let s = htaccess_site(&[line]).start();
        let r = s.get("/site/app.wsgi");
        assert_eq!(r.status, 500, "`{line}` in .htaccess was accepted");
        let directive = line.split(' ').next().unwrap();
        assert!(
            s.wait_log(
                &format!("{directive} not allowed here"),
                Duration::from_secs(30)
            ),
            "`{line}`: no \"not allowed here\" in:\n{}",
            s.error_log()
        );
    }
}

/// `apache2 -t` refuses a directive outside its declared contexts with
/// Apache's usual message, file and line.
#[test]
fn forbidden_contexts_stop_apache_with_apaches_message() {
    for (snippet, message) in [
        (
            "<Directory {root}>\nWSGIScriptAlias /x {root}/x.wsgi\n</Directory>\n",
            "WSGIScriptAlias not allowed in <Directory> context",
        ),
        (
            "<Location /x>\nWSGIDaemonProcess x\n</Location>\n",
            "WSGIDaemonProcess not allowed in <Location> context",
        ),
        (
            "<VirtualHost *:80>\nWSGIPythonHome /usr\n</VirtualHost>\n",
            "WSGIPythonHome cannot occur within <VirtualHost> section",
        ),
        (
            "<VirtualHost *:80>\nWSGISocketPrefix run/wsgi\n</VirtualHost>\n",
            "WSGISocketPrefix cannot occur within <VirtualHost> section",
        ),
        (
            "<VirtualHost *:80>\nWSGIPythonOptimize 1\n</VirtualHost>\n",
            "WSGIPythonOptimize cannot occur within <VirtualHost> section",
        ),
        (
            "<Location /x>\nWSGIPassApacheRequest On\n</Location>\nWSGIAcceptMutex default\n\
             <VirtualHost *:80>\nWSGIAcceptMutex default\n</VirtualHost>\n",
            "WSGIAcceptMutex cannot occur within <VirtualHost> section",
        ),
        // The access control scripts belong to directory sections
        // (mod_wsgi: OR_AUTHCFG only).
        (
            "WSGIAuthUserScript {root}/auth.wsgi\n",
            "WSGIAuthUserScript not allowed here",
        ),
        (
            "<VirtualHost *:80>\nWSGIAccessScript {root}/access.wsgi\n</VirtualHost>\n",
            "WSGIAccessScript not allowed in <VirtualHost> context",
        ),
    ] {
        let s = Server::new(Mpm::Event).conf(snippet);
        let (status, out) = s.start_expect_failure();
        assert!(!status.success(), "accepted:\n{snippet}\n{out}");
        assert!(out.contains(message), "`{snippet}`: {out}");
        assert!(out.contains("Syntax error on line"), "{out}");
        assert!(out.contains("httpd.conf"), "{out}");
    }
}

/// mod_wsgi 6's container is main-server only too (mod_wsgi 4.9 does not
/// know it: ours only).
#[test]
fn interpreter_options_container_is_main_server_only() {
    if module() == Module::ModWsgi {
        return;
    }
    let s = Server::new(Mpm::Event).conf(
        "<VirtualHost *:80>\n<WSGIInterpreterOptions>\nWSGISwitchInterval 0.01\n\
         </WSGIInterpreterOptions>\n</VirtualHost>\n",
    );
    let (status, out) = s.start_expect_failure();
    assert!(!status.success(), "{out}");
    assert!(
        out.contains("<WSGIInterpreterOptions> cannot occur within <VirtualHost> section"),
        "{out}"
    );
}

/// Where mod_wsgi allows a directive (bits of [`Entry::contexts`]).
const SERVER: u8 = 1;
/// Inside `<VirtualHost>` (not for mod_wsgi's main-server-only directives).
const VHOST: u8 = 2;
/// Inside `<Directory>` and `<Location>`.
const DIR: u8 = 4;
/// In `.htaccess` under `AllowOverride FileInfo AuthConfig`.
const HTACCESS: u8 = 8;

/// One directive as a configuration line, the contexts mod_wsgi allows it
/// in, and whether mod_wsgi 4.9 (the referee) has it. `{n}` becomes a
/// number unique to each placement (for names that must be unique).
struct Entry {
    line: &'static str,
    contexts: u8,
    in_mod_wsgi_4: bool,
}

const fn e(line: &'static str, contexts: u8) -> Entry {
    Entry {
        line,
        contexts,
        in_mod_wsgi_4: true,
    }
}

/// mod_wsgi 6 only.
const fn e6(line: &'static str, contexts: u8) -> Entry {
    Entry {
        line,
        contexts,
        in_mod_wsgi_4: false,
    }
}

/// Every directive of mod_wsgi this module accepts, each usable in every
/// context listed. Helpers adding a directive append it here (and to
/// HTACCESS_LINES when mod_wsgi allows it in .htaccess).
const ALL_DIRECTIVES: &[Entry] = &[
    e("WSGIScriptAlias /all{n} {root}/all.wsgi", SERVER | VHOST),
    e(
        "WSGIScriptAliasMatch ^/match{n}/ {root}/all.wsgi",
        SERVER | VHOST,
    ),
    e(
        "WSGICallableObject application",
        SERVER | VHOST | DIR | HTACCESS,
    ),
    e("WSGIPassAuthorization On", SERVER | VHOST | DIR | HTACCESS),
    e("WSGIScriptReloading On", SERVER | VHOST | DIR | HTACCESS),
    e("WSGIChunkedRequest On", SERVER | VHOST | DIR | HTACCESS),
    e("WSGIMapHEADToGET Auto", SERVER | VHOST | DIR | HTACCESS),
    e("WSGIApplicationGroup %{GLOBAL}", SERVER | VHOST | DIR),
    e("WSGIProcessGroup %{GLOBAL}", SERVER | VHOST | DIR),
    e("WSGIPassApacheRequest Off", SERVER | VHOST | DIR),
    e(
        "WSGIImportScript {root}/all.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}",
        SERVER | VHOST,
    ),
    e("WSGIDaemonProcess group{n} threads=1", SERVER | VHOST),
    e("WSGIPythonHome /usr", SERVER),
    e("WSGIPythonPath {root}/lib", SERVER),
    e("WSGIRestrictStdout Off", SERVER),
    e("WSGIRestrictStdin Off", SERVER),
    e("WSGIRestrictEmbedded Off", SERVER),
    e("WSGISocketPrefix run/wsgi", SERVER),
    e("WSGIPythonOptimize 0", SERVER),
    e("WSGIPythonWarnings default", SERVER),
    e("WSGIPythonHashSeed random", SERVER),
    e("WSGIDontWriteBytecode Off", SERVER),
    e("WSGIPythonEggs /tmp", SERVER),
    e("WSGIDestroyInterpreter On", SERVER),
    e("WSGIVerboseDebugging Off", SERVER),
    e6("WSGISwitchInterval 0.005", SERVER),
    e("WSGIAcceptMutex default", SERVER),
    e("WSGILazyInitialization On", SERVER),
    e("WSGICaseSensitivity On", SERVER),
    e("WSGINewRelicConfigFile /etc/newrelic.ini", SERVER),
    e("WSGINewRelicEnvironment production", SERVER),
    // Not a directive of mod_wsgi 4.9 or 6: accepted for old configurations.
    e6("WSGIApplicationWrapper wrapper:wrap", SERVER),
    e6("WSGIPerInterpreterGIL Off", SERVER),
    e6("WSGIFreeThreading Off", SERVER),
    e6(
        "<WSGIInterpreterOptions process-group=group{n}>\n  WSGISwitchInterval 0.01\n  \
         WSGIPythonPath {root}/lib\n</WSGIInterpreterOptions>",
        SERVER,
    ),
    e6(
        "WSGITelemetryService unix:/run/telemetry.sock interval=5",
        SERVER,
    ),
    e6("WSGITelemetryOptions +CaptureUserAgent", SERVER),
    e6("WSGISlowRequests 10", SERVER),
    e("WSGIAuthUserScript {root}/auth.wsgi", DIR | HTACCESS),
    e("WSGIAuthGroupScript {root}/auth.wsgi", DIR | HTACCESS),
    e("WSGIAccessScript {root}/auth.wsgi", DIR | HTACCESS),
    e("WSGIGroupAuthoritative On", DIR | HTACCESS),
    e(
        "WSGITrustedProxyHeaders X-Forwarded-For",
        SERVER | VHOST | DIR | HTACCESS,
    ),
    e(
        "WSGITrustedProxies 127.0.0.1",
        SERVER | VHOST | DIR | HTACCESS,
    ),
    e("WSGIDispatchScript {root}/auth.wsgi", SERVER | VHOST | DIR),
    e(
        "WSGIHandlerScript handler{n} {root}/all.wsgi",
        SERVER | VHOST | DIR,
    ),
    e("WSGIRestrictProcess %{GLOBAL} group1", SERVER | VHOST | DIR),
    e("WSGIRestrictSignal On", SERVER),
    e("WSGIErrorOverride Off", SERVER | VHOST | DIR | HTACCESS),
    e("WSGIEnableSendfile Off", SERVER | VHOST | DIR | HTACCESS),
    e("WSGIIgnoreActivity Off", SERVER | VHOST | DIR | HTACCESS),
    e("WSGISocketRotation On", SERVER),
    e("WSGIServerMetrics Off", SERVER),
];

/// The script the access-control and dispatch directives above name: lets
/// everyone in and leaves every choice to the configuration.
const AUTH: &str = r#"
def allow_access(environ, host):
    return True
def check_password(environ, user, password):
    return None
def groups_for_user(environ, user):
    return []
"#;

/// A site using every directive in every context mod_wsgi allows it: the
/// configuration passes `apache2 -t`, Apache starts and serves, and the
/// `.htaccess` lines are read (and accepted) on the first request.
#[test]
fn every_directive_in_every_allowed_context_loads_and_serves() {
    let entries: Vec<&Entry> = ALL_DIRECTIVES
        .iter()
        .filter(|e| e.in_mod_wsgi_4 || module() == Module::Ours)
        .collect();
    let mut n = 0;
    let mut place = |line: &str| {
        n += 1;
        line.replace("{n}", &n.to_string())
    };
    let mut top = String::new();
    let mut vhost = String::new();
    let mut dir = String::new();
    let mut htaccess = String::new();
    for entry in &entries {
        if entry.contexts & SERVER != 0 {
            top.push_str(&place(entry.line));
            top.push('\n');
        }
        if entry.contexts & VHOST != 0 {
            vhost.push_str(&format!("  {}\n", place(entry.line)));
        }
        if entry.contexts & DIR != 0 {
            dir.push_str(&format!("  {}\n", place(entry.line)));
        }
        if entry.contexts & HTACCESS != 0 {
            htaccess.push_str(&place(entry.line));
            htaccess.push('\n');
        }
    }
    let conf = format!(
        "{top}\
         <VirtualHost 127.0.0.1:{{port}}>\n  ServerName 127.0.0.1\n{vhost}</VirtualHost>\n\
         <Directory {{root}}/site>\n{dir}  Options +ExecCGI\n  AddHandler wsgi-script .wsgi\n  \
         AllowOverride FileInfo AuthConfig\n</Directory>\n\
         <Location /site>\n{dir}</Location>\n\
         Alias /site {{root}}/site\n"
    );
    let s = Server::new(Mpm::Event)
        .file("all.wsgi", crate::common::apps::HELLO)
        .file("auth.wsgi", AUTH)
        .file("site/app.wsgi", crate::common::apps::HELLO)
        .file("site/.htaccess", &htaccess)
        .file("lib/placeholder.txt", "")
        .conf(&conf);
    let (status, out) = s.start_expect_failure();
    assert!(
        status.success(),
        "apache2 -t refused:\n{out}\n{}",
        s.conf_text()
    );
    let s = s.start();
    for path in ["/all1", "/site/app.wsgi"] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}: {}\n{}", r.text(), s.error_log());
    }
}

/// Compatibility settings that do nothing here are accepted, and each is
/// reported once per start with a stable id; settings that match what we
/// do anyway (WSGILazyInitialization On) are not.
#[test]
fn compatibility_settings_warn_once_per_start() {
    if module() == Module::ModWsgi {
        return; // ours only: the notices are ours
    }
    let mut s = Server::new(Mpm::Event)
        .file("all.wsgi", crate::common::apps::HELLO)
        .conf(
            "WSGIAcceptMutex flock\n\
             WSGILazyInitialization On\n\
             WSGIPerInterpreterGIL On\n\
             WSGITelemetryService unix:/run/t.sock\n\
             <WSGIInterpreterOptions application-group=%{GLOBAL}>\n  WSGIPerInterpreterGIL On\n\
             </WSGIInterpreterOptions>\n\
             WSGIDaemonProcess a threads=1 eviction-timeout=5 newrelic-environment=x\n\
             WSGIDaemonProcess b threads=1 eviction-timeout=5\n\
             WSGIScriptAlias / {root}/all.wsgi\n",
        )
        .start();
    assert_eq!(s.get("/").status, 200);
    let ids = [
        "WSGIRS102: WSGIAcceptMutex flock: accepted for compatibility, no effect",
        "WSGIRS108: WSGIPerInterpreterGIL On:",
        "WSGIRS111: WSGITelemetryService unix:/run/t.sock:",
        "WSGIRS110: <WSGIInterpreterOptions application-group=%{GLOBAL}>:",
        "WSGIRS223: WSGIDaemonProcess a eviction-timeout=:",
        "WSGIRS245: WSGIDaemonProcess a newrelic-environment=:",
    ];
    for id in ids {
        assert_eq!(
            s.error_log().matches(id).count(),
            1,
            "{id}:\n{}",
            s.error_log()
        );
    }
    assert!(
        !s.error_log().contains("WSGIRS103"),
        "LazyInitialization On is what we do"
    );
    assert!(
        !s.error_log()
            .contains("WSGIDaemonProcess b eviction-timeout"),
        "once per option"
    );
    // Once per start: a restart reports them again, once.
    s.restart();
    assert_eq!(s.get("/").status, 200);
    assert_eq!(
        s.error_log().matches(ids[0]).count(),
        2,
        "{}",
        s.error_log()
    );
}

/// Malformed values of the new directives stop Apache with the directive,
/// the value, the file and the line.
#[test]
fn malformed_values_stop_apache_with_directive_value_file_and_line() {
    // The last field: whether mod_wsgi 4.9 refuses it too (it takes any
    // WSGIPythonOptimize number, any warnings filter, any value of a
    // New Relic option).
    for (snippet, value, refereed) in [
        ("WSGIPythonOptimize 3", "'3'", false),
        ("WSGIPythonHashSeed lots", "'lots'", true),
        ("WSGIPythonWarnings explode::Warning", "explode", false),
        ("WSGISwitchInterval -1", "'-1'", true),
        ("WSGIAcceptMutex spin", "'spin'", true),
        ("WSGITelemetryOptions +Bogus", "+Bogus", true),
        (
            "WSGIDaemonProcess d newrelic-environment=",
            "newrelic-environment",
            false,
        ),
        (
            "<WSGIInterpreterOptions process-group=a>\n  WSGIScriptAlias / /x.wsgi\n</WSGIInterpreterOptions>",
            "WSGIScriptAlias",
            true,
        ),
        (
            "<WSGIInterpreterOptions user=a>\n</WSGIInterpreterOptions>",
            "user",
            true,
        ),
    ] {
        if module() == Module::ModWsgi && !refereed {
            continue;
        }
        let s = Server::new(Mpm::Event).conf(&format!("{snippet}\n"));
        let (status, out) = s.start_expect_failure();
        assert!(!status.success(), "`{snippet}` was accepted:\n{out}");
        let first = snippet.lines().next().unwrap();
        let line = s
            .conf_text()
            .lines()
            .position(|l| l == first)
            .expect("snippet in httpd.conf")
            + 1;
        assert!(
            out.contains(&format!("Syntax error on line {line} of")),
            "`{snippet}`: line {line}: {out}"
        );
        assert!(out.contains("httpd.conf"), "{out}");
        if module() == Module::Ours {
            let directive = first.split(' ').next().unwrap();
            assert!(out.contains(directive), "`{snippet}`: {out}");
            assert!(out.contains(value), "`{snippet}` does not show {value}: {out}");
        }
    }
}
