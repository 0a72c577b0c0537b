//! The daemon protocol's private vars (`WSGI_RS_*`) are set by our client
//! only: environment variables of the same name (SetEnv, SetEnvIf from a
//! header) are not forwarded, so they cannot pick another script or group.

use crate::common::{module, Module, Mpm, Server};

const APP: &str = "def application(environ, start_response):\n    \
    start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
    leaked = sorted(k for k in environ if k.startswith('WSGI_RS'))\n    \
    return [('right script %s' % leaked).encode()]\n";

const OTHER: &str = "def application(environ, start_response):\n    \
    start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
    return [b'wrong script']\n";

#[test]
fn environment_cannot_forge_private_vars() {
    if module() == Module::ModWsgi {
        return; // our protocol's vars
    }
    let name = format!("pv{}", std::process::id());
    let s = Server::new(Mpm::Event)
        .file("app.wsgi", APP)
        .file("other.wsgi", OTHER)
        .conf(&format!(
            "WSGIDaemonProcess {name} threads=2\n\
             WSGIProcessGroup {name}\n\
             SetEnv WSGI_RS_SCRIPT {{root}}/other.wsgi\n\
             SetEnvIf X-Pick (.*) WSGI_RS_CALLABLE=$1\n\
             WSGIScriptAlias /a {{root}}/app.wsgi\n"
        ))
        .start();
    let r = s.request("GET", "/a", &[("X-Pick", "not_there")], b"");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "right script []"),
        "{}",
        s.error_log()
    );
}
