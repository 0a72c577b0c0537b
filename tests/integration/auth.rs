//! Credentials and header forgery: WSGIPassAuthorization and
//! the pass-authorization option, Proxy-Authorization never reaching the app,
//! and headers with underscores dropped so they cannot pose as HTTP_X_… vars.

use crate::common::apps::ENVIRON;
use crate::common::{Environ, Mpm, Running, Server};

const AUTH: &str = "Basic dXNlcjpwYXNz";

/// Sends credentials plus underscore headers and returns the environ.
fn environ_with_credentials(s: &Running, path: &str) -> Environ {
    let r = s.request(
        "GET",
        path,
        &[
            ("Authorization", AUTH),
            ("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0"),
            ("Foo_Bar", "underscore"),
            ("X_Forwarded_For", "6.6.6.6"),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    Environ::parse(&r.body)
}

/// Checks what must never be in the environ, whatever the configuration.
fn assert_no_forgeries(env: &Environ) {
    assert_eq!(
        env.get("HTTP_PROXY_AUTHORIZATION"),
        None,
        "Proxy-Authorization leaked"
    );
    assert_eq!(
        env.get("HTTP_FOO_BAR"),
        None,
        "Foo_Bar header became HTTP_FOO_BAR"
    );
    assert_eq!(
        env.get("HTTP_X_FORWARDED_FOR"),
        None,
        "X_Forwarded_For header forged HTTP_X_FORWARDED_FOR"
    );
}

#[test]
fn authorization_hidden_by_default() {
    let s = Server::new(Mpm::Event)
        .file("env.wsgi", ENVIRON)
        .conf("WSGIScriptAlias /app {root}/env.wsgi\n")
        .start();
    let env = environ_with_credentials(&s, "/app");
    assert_eq!(
        env.get("HTTP_AUTHORIZATION"),
        None,
        "Authorization passed without WSGIPassAuthorization"
    );
    assert_no_forgeries(&env);
}

#[test]
fn pass_authorization_directive() {
    let s = Server::new(Mpm::Event)
        .file("env.wsgi", ENVIRON)
        .conf("WSGIScriptAlias /app {root}/env.wsgi\nWSGIPassAuthorization On\n")
        .start();
    let env = environ_with_credentials(&s, "/app");
    assert_eq!(env.str("HTTP_AUTHORIZATION"), AUTH);
    assert_no_forgeries(&env);
}

#[test]
fn pass_authorization_alias_option() {
    let s = Server::new(Mpm::Event)
        .file("env.wsgi", ENVIRON)
        .conf(
            "WSGIScriptAlias /on {root}/env.wsgi pass-authorization=On\n\
             WSGIScriptAlias /off {root}/env.wsgi\n",
        )
        .start();
    let env = environ_with_credentials(&s, "/on");
    assert_eq!(env.str("HTTP_AUTHORIZATION"), AUTH);
    assert_no_forgeries(&env);
    let env = environ_with_credentials(&s, "/off");
    assert_eq!(
        env.get("HTTP_AUTHORIZATION"),
        None,
        "the option leaked to another alias"
    );
    assert_no_forgeries(&env);
}
