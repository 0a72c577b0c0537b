//! Access control backed by Python: `WSGIAuthUserScript` as the
//! `wsgi` provider of Basic and Digest authentication, `WSGIAuthGroupScript`
//! behind `Require wsgi-group`, `WSGIGroupAuthoritative`, and
//! `WSGIAccessScript`, for applications in embedded and daemon mode (the
//! scripts themselves always run in the Apache child), and how failing
//! scripts are answered.

use base64::Engine;
use md5::{Digest, Md5};

use crate::common::apps::ENVIRON;
use crate::common::server::MODULES_DIR;
use crate::common::{module, Environ, Module, Mpm, Running, Server};

const AUTH_SCRIPT: &str = r#"
import hashlib

USERS = {'spy': 'secret', 'clerk': 'paper', 'grouperr': 'pw'}

def check_password(environ, user, password):
    # The environ must never hold the credentials themselves.
    assert 'HTTP_AUTHORIZATION' not in environ
    environ['wsgi.errors'].write('check_password for %s\n' % user)
    if user == 'boom':
        raise RuntimeError('user database is down')
    if user == 'alias':
        return 'canonical-user' if password == 'pw' else False
    if user == 'weird':
        return 42
    if user not in USERS:
        return None
    return USERS[user] == password

def get_realm_hash(environ, user, realm):
    if user == 'boom':
        raise RuntimeError('digest database is down')
    if user not in USERS:
        return None
    text = '%s:%s:%s' % (user, realm, USERS[user])
    return hashlib.md5(text.encode('utf-8')).hexdigest()

def groups_for_user(environ, user):
    if user == 'grouperr':
        raise KeyError('group database is down')
    return {'spy': ['secret-agents', 'staff'], 'clerk': ['staff']}.get(user, [])

def allow_access(environ, host):
    if environ.get('HTTP_X_ACCESS') == 'boom':
        raise ValueError('access database is down')
    if environ.get('HTTP_X_ACCESS') == 'dunno':
        return None
    return host == '127.0.0.1' and environ.get('HTTP_X_ACCESS') == 'yes'
"#;

/// The Apache modules authentication needs; the harness loads only the
/// authz ones.
fn auth_modules() -> String {
    ["auth_basic", "auth_digest", "authn_core", "authz_user"]
        .iter()
        .map(|m| format!("LoadModule {m}_module {MODULES_DIR}/mod_{m}.so\n"))
        .collect()
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

fn get_as(s: &Running, path: &str, auth: Option<&str>) -> crate::common::Response {
    match auth {
        Some(a) => s.request("GET", path, &[("Authorization", a)], b""),
        None => s.get(path),
    }
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The value of `name="..."` (or `name=token`) in a Digest challenge.
fn challenge_param(challenge: &str, name: &str) -> String {
    let start = challenge
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("no {name} in {challenge}"))
        + name.len()
        + 1;
    let rest = &challenge[start..];
    match rest.strip_prefix('"') {
        Some(quoted) => quoted[..quoted.find('"').unwrap()].to_owned(),
        None => rest.split([',', ' ']).next().unwrap().to_owned(),
    }
}

/// One Digest exchange: the 401 challenge, then the answer computed with
/// `password`.
fn digest_get(s: &Running, path: &str, user: &str, password: &str) -> crate::common::Response {
    let first = s.get(path);
    assert_eq!(first.status, 401, "{path}: {}", first.text());
    let challenge = first
        .header("WWW-Authenticate")
        .expect("no Digest challenge")
        .to_owned();
    assert!(challenge.starts_with("Digest "), "{challenge}");
    let realm = challenge_param(&challenge, "realm");
    let nonce = challenge_param(&challenge, "nonce");
    let (nc, cnonce) = ("00000001", "0a4f113b");
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("GET:{path}"));
    let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    let auth = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{path}\", \
         algorithm=MD5, response=\"{response}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\""
    );
    s.request("GET", path, &[("Authorization", &auth)], b"")
}

/// A site with each mechanism at its own location, once for an embedded
/// application (`/e/...`) and once for a daemon-mode one (`/d/...`).
fn site(mpm: Mpm) -> Running {
    let mut conf = auth_modules();
    conf.push_str("WSGIDaemonProcess authsite threads=2\n");
    for (prefix, options) in [("e", ""), ("d", " process-group=authsite")] {
        conf.push_str(&format!(
            r#"WSGIScriptAlias /{prefix}/basic {{root}}/env.wsgi{options}
WSGIScriptAlias /{prefix}/digest {{root}}/env.wsgi{options}
WSGIScriptAlias /{prefix}/group {{root}}/env.wsgi{options}
WSGIScriptAlias /{prefix}/access {{root}}/env.wsgi{options}
<Location /{prefix}/basic>
    AuthType Basic
    AuthName "Top Secret"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {{root}}/auth.wsgi
    Require valid-user
</Location>
<Location /{prefix}/digest>
    AuthType Digest
    AuthName "Top Secret"
    AuthDigestProvider wsgi
    WSGIAuthUserScript {{root}}/auth.wsgi
    Require valid-user
</Location>
<Location /{prefix}/group>
    AuthType Basic
    AuthName "Agents"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {{root}}/auth.wsgi
    WSGIAuthGroupScript {{root}}/auth.wsgi
    Require wsgi-group secret-agents
</Location>
<Location /{prefix}/access>
    WSGIAccessScript {{root}}/auth.wsgi
</Location>
"#
        ));
    }
    Server::new(mpm)
        .file("env.wsgi", ENVIRON)
        .file("auth.wsgi", AUTH_SCRIPT)
        .conf(&conf)
        .start()
}

fn python_auth(mpm: Mpm) {
    let s = site(mpm);
    for prefix in ["e", "d"] {
        let path = format!("/{prefix}/basic");
        // Basic: no credentials, a wrong password, an unknown user.
        let r = get_as(&s, &path, None);
        assert_eq!(r.status, 401, "{path} without credentials");
        assert!(
            r.header("WWW-Authenticate")
                .is_some_and(|c| c.contains("Basic realm=\"Top Secret\"")),
            "{:?}",
            r.headers
        );
        for (user, password) in [("spy", "wrong"), ("nobody", "secret")] {
            let r = get_as(&s, &path, Some(&basic(user, password)));
            assert_eq!(r.status, 401, "{path} as {user}:{password}: {}", r.text());
        }
        let r = get_as(&s, &path, Some(&basic("spy", "secret")));
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let env = Environ::parse(&r.body);
        assert_eq!(env.str("REMOTE_USER"), "spy");
        assert_eq!(env.str("AUTH_TYPE"), "Basic");
        assert_eq!(env.get("HTTP_AUTHORIZATION"), None);

        // Digest, through get_realm_hash().
        let path = format!("/{prefix}/digest");
        let r = digest_get(&s, &path, "spy", "secret");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let env = Environ::parse(&r.body);
        assert_eq!(env.str("REMOTE_USER"), "spy");
        assert_eq!(env.str("AUTH_TYPE"), "Digest");
        for (user, password) in [("spy", "wrong"), ("nobody", "secret")] {
            let r = digest_get(&s, &path, user, password);
            assert_eq!(r.status, 401, "{path} as {user}:{password}: {}", r.text());
        }

        // Require wsgi-group: in the group, authenticated but not in it,
        // and no credentials at all.
        let path = format!("/{prefix}/group");
        let r = get_as(&s, &path, Some(&basic("spy", "secret")));
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(Environ::parse(&r.body).str("REMOTE_USER"), "spy");
        let r = get_as(&s, &path, Some(&basic("clerk", "paper")));
        assert_eq!(r.status, 401, "{path} as clerk: {}", r.text());
        assert_eq!(get_as(&s, &path, None).status, 401);

        // WSGIAccessScript: True lets in, False is 403, None leaves it to
        // the rest of the configuration (here: granted).
        let path = format!("/{prefix}/access");
        let access = |value: &str| s.request("GET", &path, &[("X-Access", value)], b"");
        assert_eq!(access("yes").status, 200, "{path}");
        assert_eq!(access("no").status, 403, "{path}");
        assert_eq!(s.get(&path).status, 403, "{path}");
        assert_eq!(access("dunno").status, 200, "{path}");
    }
    // wsgi.errors of the provider's environ logs against the request.
    assert!(
        s.error_log().contains("check_password for spy"),
        "{}",
        s.error_log()
    );
    if module() == Module::ModWsgi {
        return; // 4.9 does not accept a user name from check_password
    }
    // mod_wsgi 6: a string from check_password() is the user name.
    let r = get_as(&s, "/e/basic", Some(&basic("alias", "pw")));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(Environ::parse(&r.body).str("REMOTE_USER"), "canonical-user");
    let r = get_as(&s, "/d/basic", Some(&basic("alias", "pw")));
    assert_eq!(Environ::parse(&r.body).str("REMOTE_USER"), "canonical-user");
    assert_eq!(
        get_as(&s, "/e/basic", Some(&basic("alias", "no"))).status,
        401
    );
}
per_mpm!(python_auth);

/// Every way a script can fail is logged and answered, never a crash or an
/// open door.
#[test]
fn failing_scripts_are_logged_and_refused() {
    let mut conf = auth_modules();
    for (name, script) in [
        ("raises", "auth.wsgi"),
        ("missing", "no-such-file.wsgi"),
        ("syntax", "syntax.wsgi"),
        ("nofunc", "empty.wsgi"),
    ] {
        conf.push_str(&format!(
            r#"<Location /{name}>
    AuthType Basic
    AuthName "x"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {{root}}/{script}
    Require valid-user
</Location>
<Location /{name}-digest>
    AuthType Digest
    AuthName "x"
    AuthDigestProvider wsgi
    WSGIAuthUserScript {{root}}/{script}
    Require valid-user
</Location>
<Location /{name}-access>
    WSGIAccessScript {{root}}/{script}
</Location>
"#
        ));
    }
    conf.push_str(
        r#"<Location /grouperr>
    AuthType Basic
    AuthName "x"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {root}/auth.wsgi
    WSGIAuthGroupScript {root}/auth.wsgi
    Require wsgi-group staff
</Location>
"#,
    );
    let s = Server::new(Mpm::Event)
        .file("auth.wsgi", AUTH_SCRIPT)
        .file(
            "syntax.wsgi",
            "def check_password(environ, user, password)\n    return True\n",
        )
        .file("empty.wsgi", "VALUE = 1\n")
        .conf(&conf)
        .start();
    let ours = module() == Module::Ours;

    // A function that raises: 500, and its traceback in the error log.
    let r = get_as(&s, "/raises", Some(&basic("boom", "x")));
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        s.error_log()
            .contains("RuntimeError: user database is down"),
        "{}",
        s.error_log()
    );
    // A value check_password may not return: 500 as well.
    let r = get_as(&s, "/raises", Some(&basic("weird", "x")));
    assert_eq!(r.status, 500, "{}", r.text());
    let r = digest_get(&s, "/raises-digest", "boom", "x");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(s
        .error_log()
        .contains("RuntimeError: digest database is down"));

    for name in ["missing", "syntax", "nofunc"] {
        let r = get_as(&s, &format!("/{name}"), Some(&basic("spy", "secret")));
        assert_eq!(r.status, 500, "/{name}: {}", r.text());
        let r = digest_get(&s, &format!("/{name}-digest"), "spy", "secret");
        assert_eq!(r.status, 500, "/{name}-digest: {}", r.text());
    }
    let log = s.error_log();
    assert!(log.contains("SyntaxError"), "{log}");
    assert!(log.contains("no-such-file.wsgi"), "{log}");
    if !ours {
        return; // mod_wsgi answers a failing access or group script 403/401
    }
    assert!(
        log.contains("'check_password()' of WSGI access control script")
            && log.contains(
                "returned int; it must return True, False, None or a non-empty user name"
            ),
        "{log}"
    );
    assert!(
        log.contains("does not provide 'check_password()'")
            && log.contains("does not provide 'get_realm_hash()'"),
        "{log}"
    );
    for name in ["missing", "syntax", "nofunc"] {
        let r = s.get(&format!("/{name}-access"));
        assert_eq!(r.status, 500, "/{name}-access: {}", r.text());
    }
    assert!(s.error_log().contains("does not provide 'allow_access()'"));
    let r = s.request("GET", "/raises-access", &[("X-Access", "boom")], b"");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(s
        .error_log()
        .contains("ValueError: access database is down"));
    let r = get_as(&s, "/grouperr", Some(&basic("grouperr", "pw")));
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(s.error_log().contains("KeyError: 'group database is down'"));
}

/// `WSGIGroupAuthoritative` is accepted for old configurations; under
/// Apache 2.4 `<RequireAny>`/`<RequireAll>` decide whether another `Require`
/// line may grant what `Require wsgi-group` refused. And the provider works
/// under an `<AuthnProviderAlias>` name.
#[test]
fn group_authoritative_require_containers_and_provider_alias() {
    let mut conf = auth_modules();
    for (path, authoritative, container) in
        [("/any", "Off", "RequireAny"), ("/all", "On", "RequireAll")]
    {
        conf.push_str(&format!(
            r#"WSGIScriptAlias {path} {{root}}/env.wsgi
<Location {path}>
    AuthType Basic
    AuthName "x"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {{root}}/auth.wsgi
    WSGIAuthGroupScript {{root}}/auth.wsgi
    WSGIGroupAuthoritative {authoritative}
    <{container}>
        Require wsgi-group secret-agents
        Require user clerk spy
    </{container}>
</Location>
"#
        ));
    }
    // The provider under another name, as mod_wsgi's documentation shows.
    conf.push_str(
        r#"<AuthnProviderAlias wsgi agents>
    WSGIAuthUserScript {root}/auth.wsgi
</AuthnProviderAlias>
WSGIScriptAlias /aliased {root}/env.wsgi
<Location /aliased>
    AuthType Basic
    AuthName "x"
    AuthBasicProvider agents
    Require valid-user
</Location>
"#,
    );
    let s = Server::new(Mpm::Event)
        .file("env.wsgi", ENVIRON)
        .file("auth.wsgi", AUTH_SCRIPT)
        .conf(&conf)
        .start();
    let status = |path: &str, user: &str, password: &str| {
        get_as(&s, path, Some(&basic(user, password))).status
    };
    // Not in the group, but another Require line of <RequireAny> grants.
    assert_eq!(status("/any", "clerk", "paper"), 200);
    assert_eq!(status("/any", "spy", "secret"), 200);
    // <RequireAll>: the group refusal stands.
    assert_eq!(status("/all", "clerk", "paper"), 401);
    assert_eq!(status("/all", "spy", "secret"), 200);
    assert_eq!(status("/aliased", "spy", "secret"), 200);
    assert_eq!(status("/aliased", "spy", "wrong"), 401);
    if module() == Module::Ours {
        // A failing group script is an error, not a refusal another line
        // could overrule (mod_wsgi refuses, and the other line decides).
        assert_eq!(status("/any", "grouperr", "pw"), 500);
        assert!(
            s.error_log().contains(
                "WSGIRS117: WSGIGroupAuthoritative: accepted for compatibility, no effect"
            ),
            "{}",
            s.error_log()
        );
    }
}

const GROUP_AUTH: &str = r#"
import builtins

def check_password(environ, user, password):
    builtins.auth_ran_in = environ['mod_wsgi.application_group']
    return password == 'pw'
"#;

const GROUP_APP: &str = r#"
import builtins

def application(environ, start_response):
    body = ('%s|%s' % (environ['REMOTE_USER'], getattr(builtins, 'auth_ran_in', '-'))).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

/// `application-group=` puts the script in that application group's
/// interpreter, the one the application of that group runs in, as in
/// mod_wsgi; another group's interpreter does not see it.
#[test]
fn auth_script_runs_in_its_application_group() {
    let mut conf = auth_modules();
    for (path, group) in [("/shared", "shared"), ("/other", "other")] {
        conf.push_str(&format!(
            r#"WSGIScriptAlias {path} {{root}}/app.wsgi
<Location {path}>
    WSGIApplicationGroup {group}
    AuthType Basic
    AuthName "x"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {{root}}/auth.wsgi application-group=shared
    Require valid-user
</Location>
"#
        ));
    }
    let s = Server::new(Mpm::Event)
        .single_process()
        .file("app.wsgi", GROUP_APP)
        .file("auth.wsgi", GROUP_AUTH)
        .conf(&conf)
        .start();
    let r = get_as(&s, "/shared", Some(&basic("ann", "pw")));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "ann|shared");
    let r = get_as(&s, "/other", Some(&basic("ann", "pw")));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "ann|-");
    assert_eq!(get_as(&s, "/other", Some(&basic("ann", "no"))).status, 401);
}

/// An edited auth script is reloaded on its next use, as WSGI scripts are
/// (`WSGIScriptReloading On`, the default), in every child.
#[test]
fn edited_auth_script_is_reloaded() {
    let script = |password: &str| {
        format!(
            "def check_password(environ, user, password):\n    return password == '{password}'\n"
        )
    };
    let mut conf = auth_modules();
    conf.push_str(
        r#"WSGIScriptAlias /r {root}/env.wsgi
<Location /r>
    AuthType Basic
    AuthName "x"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {root}/auth.wsgi
    Require valid-user
</Location>
"#,
    );
    let s = Server::new(Mpm::Event)
        .file("env.wsgi", ENVIRON)
        .file("auth.wsgi", &script("one"))
        .conf(&conf)
        .start();
    // Several requests, so every child has loaded the first version.
    for _ in 0..6 {
        assert_eq!(get_as(&s, "/r", Some(&basic("u", "one"))).status, 200);
    }
    s.write_file("auth.wsgi", &script("two"));
    s.touch("auth.wsgi");
    for _ in 0..6 {
        assert_eq!(get_as(&s, "/r", Some(&basic("u", "one"))).status, 401);
        assert_eq!(get_as(&s, "/r", Some(&basic("u", "two"))).status, 200);
    }
}
