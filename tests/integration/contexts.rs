//! Where each directive may be written: `.htaccess` files with the
//! directives mod_wsgi allows there, Apache's own refusal of a directive in
//! a context it is not declared for, and `<VirtualHost>` refusal of the
//! directives mod_wsgi keeps to the main server.

use std::time::Duration;

use crate::common::{Mpm, Server};

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
                Duration::from_secs(5)
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
