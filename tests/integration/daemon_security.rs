//! Daemon-mode security: dropping privileges to the group's user, home and
//! umask, and failing closed when that is impossible; the group
//! socket's ownership and mode, and the per-configuration secret that keeps
//! anyone but this Apache from running the application; and Apache's own
//! mod_proxy_uwsgi as a legitimate peer.
//!
//! These need a root Apache (so there is a user to switch to), which is how
//! the suite runs.

use std::ffi::CString;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::apps::pattern;
use crate::common::{module, Module, Mpm, Server};
use crate::daemon::{field, uwsgi_exchange, wait_daemons};

/// (uid, primary gid) of a user, from the system's user database.
fn user_ids(name: &str) -> (u32, u32) {
    let c = CString::new(name).unwrap();
    // SAFETY: getpwnam returns static storage or null; both fields are
    // copied out at once, and the tests make no other getpw* calls.
    unsafe {
        let pw = libc::getpwnam(c.as_ptr());
        assert!(!pw.is_null(), "no user {name} on this machine");
        ((*pw).pw_uid, (*pw).pw_gid)
    }
}

fn group_id(name: &str) -> u32 {
    let c = CString::new(name).unwrap();
    // SAFETY: as in user_ids.
    unsafe {
        let gr = libc::getgrnam(c.as_ptr());
        assert!(!gr.is_null(), "no group {name} on this machine");
        (*gr).gr_gid
    }
}

const IDENTITY_APP: &str = r#"
import os
def application(environ, start_response):
    mask = os.umask(0o022)
    os.umask(mask)
    path = '{root}/var/created-by-daemon'
    with open(path, 'w') as f:
        f.write('x')
    body = ('uid=%d\neuid=%d\ngid=%d\negid=%d\ngroups=%s\ncwd=%s\numask=%04o\nfile_mode=%04o\n' % (
        os.getuid(), os.geteuid(), os.getgid(), os.getegid(),
        ','.join(str(g) for g in sorted(os.getgroups())),
        os.getcwd(), mask, os.stat(path).st_mode & 0o777,
    )).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

/// `user=nobody group=nogroup home=… umask=0077`: the application runs as
/// that user and group only (real and effective, no supplementary root
/// groups), in that directory, and creates files 0600.
#[test]
fn daemon_runs_as_configured_user_home_and_umask() {
    let s = Server::new(Mpm::Event)
        .file("id.wsgi", IDENTITY_APP)
        .file("home/README", "the daemon's home\n")
        .conf(
            "WSGIDaemonProcess ident user=nobody group=nogroup home={root}/home umask=0077 \
             threads=2 display-name=%{GROUP}\n\
             WSGIScriptAlias /id {root}/id.wsgi process-group=ident\n",
        )
        .start();
    let r = s.get("/id");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.text();
    let (uid, _) = user_ids("nobody");
    let gid = group_id("nogroup");
    let get = |k: &str| field(&body, k).unwrap_or_else(|| panic!("no {k} in {body}"));
    assert_eq!(get("uid"), uid.to_string(), "{body}");
    assert_eq!(get("euid"), uid.to_string(), "{body}");
    assert_eq!(get("gid"), gid.to_string(), "{body}");
    assert_eq!(get("egid"), gid.to_string(), "{body}");
    assert!(
        !get("groups").split(',').any(|g| g == "0"),
        "the daemon kept root's group: {body}"
    );
    assert_eq!(get("cwd"), s.path("home").display().to_string());
    assert_eq!(get("umask"), "0077");
    assert_eq!(get("file_mode"), "0600");
    let created = std::fs::metadata(s.path("var/created-by-daemon")).unwrap();
    assert_eq!((created.uid(), created.gid()), (uid, gid));
    assert_eq!(created.permissions().mode() & 0o777, 0o600);
}

/// The script records every import and request, so a test can prove it
/// never ran.
const MARKER_APP: &str = r#"
import os
open('{root}/var/imported-%d' % os.getpid(), 'w').close()
def application(environ, start_response):
    open('{root}/var/ran-%s' % environ.get('QUERY_STRING', ''), 'w').close()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ran']
"#;

fn var_entries(s: &crate::common::Running) -> Vec<String> {
    std::fs::read_dir(s.path("var"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// A daemon whose `home=` does not exist must never run application code
/// (it would run in the wrong directory, mod_wsgi's CVE-2014-8583 class):
/// the log says why, and requests get an error promptly instead of hanging.
#[test]
fn missing_home_fails_closed() {
    let s = Server::new(Mpm::Event)
        .file("m.wsgi", MARKER_APP)
        .conf(
            "WSGIDaemonProcess nohome home={root}/does-not-exist threads=1 \
             connect-timeout=1 socket-timeout=2 display-name=%{GROUP}\n\
             WSGIScriptAlias /m {root}/m.wsgi process-group=nohome\n",
        )
        .start();
    let home = s.path("does-not-exist").display().to_string();
    assert!(
        s.wait_log(&home, Duration::from_secs(30)),
        "no log line names the missing home {home}"
    );
    let log = s.error_log();
    let line = log.lines().find(|l| l.contains(&home)).unwrap();
    // "chdir to home directory …" (ours), "Unable to change working
    // directory to …" (mod_wsgi).
    assert!(
        line.contains("chdir") || line.contains("working directory"),
        "the log line does not say what failed: {line}"
    );
    for i in 0..2 {
        let start = Instant::now();
        let r = s.get(&format!("/m?{i}"));
        let took = start.elapsed();
        // 503 when the client cannot get in; 504 when connect() lands in the
        // listen backlog and nobody ever answers (no process survives start).
        assert!(
            [502, 503, 504].contains(&r.status),
            "request {i} got {} {}",
            r.status,
            r.text()
        );
        // Within the connect/socket timeouts (1 s, 2 s), not Apache's
        // Timeout (60 s): the bound only tells those apart.
        assert!(took < Duration::from_secs(30), "request {i} took {took:?}");
    }
    assert!(
        var_entries(&s).is_empty(),
        "application code ran without its home: {:?}",
        var_entries(&s)
    );
    // The failing group is between attempts, a replacement waiting out its
    // back-off: stopping Apache must not wait for that.
    let (took, escalated, _log) = s.shutdown(Duration::from_secs(30));
    assert!(!escalated, "Apache had to kill a child to stop");
    // Not held up until Apache kills what is left (9 s).
    assert!(took < Duration::from_secs(8), "stop took {took:?}");
}

fn runuser_connect(user: &str, socket: &str) -> (bool, String) {
    let out = Command::new("runuser")
        .args(["-u", user, "--", "python3", "-c"])
        .arg(
            "import socket, sys\n\
             s = socket.socket(socket.AF_UNIX)\n\
             s.connect(sys.argv[1])\n\
             print('connected')",
        )
        .arg(socket)
        .output()
        .expect("cannot run runuser");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The group socket is `{DefaultRuntimeDir}/wsgi_rs.NAME.sock`, a socket of
/// mode 0600 owned by the Apache child user: www-data may connect, nobody
/// else (here `nobody`) may.
#[test]
fn socket_is_private_to_the_apache_user() {
    if module() == Module::ModWsgi {
        return; // mod_wsgi names its sockets differently (wsgi.PID.N.N.sock)
    }
    let s = Server::new(Mpm::Event)
        .file("m.wsgi", MARKER_APP)
        .conf(
            "WSGIDaemonProcess sec threads=2 display-name=%{GROUP}\n\
             WSGIScriptAlias /m {root}/m.wsgi process-group=sec\n",
        )
        .start();
    wait_daemons(&s, "sec", 1, Duration::from_secs(10));
    let socket = s.path("run/wsgi_rs.sec.sock");
    let meta = std::fs::metadata(&socket)
        .unwrap_or_else(|e| panic!("no socket at {}: {e}", socket.display()));
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let (www_uid, www_gid) = user_ids("www-data");
    assert_eq!((meta.uid(), meta.gid()), (www_uid, www_gid));

    let path = socket.display().to_string();
    let (ok, out) = runuser_connect("nobody", &path);
    assert!(!ok, "nobody could connect to the daemon socket: {out}");
    assert!(out.contains("PermissionError"), "{out}");
    // The control: the same path is reachable for the Apache user, so the
    // refusal above is the socket's mode, not the directories.
    let (ok, out) = runuser_connect("www-data", &path);
    assert!(ok, "www-data could not connect: {out}");
    assert_eq!(s.get("/m?ok").status, 200);
}

/// `socket-user=nobody` gives the group's socket to nobody in place of
/// Apache's User (for MPMs whose children serve as other users), still
/// private to its owner: nobody may connect to it now. Found through
/// `WSGISocketPrefix`, which both modules honour.
#[test]
fn socket_user_owns_the_socket() {
    if !crate::common::deploy::is_root() {
        eprintln!("skipped: giving the socket to another user needs a root Apache");
        return;
    }
    let s = Server::new(Mpm::Event)
        .file("m.wsgi", MARKER_APP)
        .file("sock/README", "the daemon sockets\n")
        .conf(
            "WSGISocketPrefix {root}/sock/wsgi\n\
             WSGIDaemonProcess sec threads=2 socket-user=nobody display-name=%{GROUP}\n\
             WSGIScriptAlias /m {root}/m.wsgi process-group=sec\n",
        )
        .start();
    wait_daemons(&s, "sec", 1, Duration::from_secs(10));
    let sockets: Vec<_> = std::fs::read_dir(s.path("sock"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .collect();
    let [socket] = sockets.as_slice() else {
        panic!(
            "not one socket in {}: {sockets:?}",
            s.path("sock").display()
        );
    };
    let meta = std::fs::metadata(socket).unwrap();
    assert!(meta.file_type().is_socket());
    // 0600 here, 0700 under mod_wsgi: the owner's alone either way.
    assert_eq!(meta.permissions().mode() & 0o077, 0, "{socket:?}");
    assert_eq!(meta.uid(), user_ids("nobody").0, "{}", socket.display());
    let (ok, out) = runuser_connect("nobody", &socket.display().to_string());
    assert!(ok, "nobody could not connect to its socket: {out}");
}

/// Root can connect to anything, so the socket's mode is not the only
/// guard: a request without this Apache's secret is answered 403 and the
/// application does not run, whatever the request names.
#[test]
fn request_without_the_secret_is_refused() {
    if module() == Module::ModWsgi {
        return; // the secret is ours
    }
    let s = Server::new(Mpm::Event)
        .file("m.wsgi", MARKER_APP)
        .conf(
            "WSGIDaemonProcess secret threads=2 display-name=%{GROUP}\n\
             WSGIImportScript {root}/m.wsgi process-group=secret application-group=%{GLOBAL}\n\
             WSGIScriptAlias /m {root}/m.wsgi process-group=secret application-group=%{GLOBAL}\n",
        )
        .start();
    wait_daemons(&s, "secret", 1, Duration::from_secs(10));
    let script = s.path("m.wsgi").display().to_string();
    let socket = s.path("run/wsgi_rs.secret.sock");
    for (tag, secret) in [("missing", None), ("wrong", Some("0123456789abcdef"))] {
        let mut vars = vec![
            ("REQUEST_METHOD", "GET"),
            ("QUERY_STRING", tag),
            ("PATH_INFO", ""),
            ("SCRIPT_NAME", "/m"),
            ("REQUEST_URI", "/m"),
            ("SERVER_NAME", "127.0.0.1"),
            ("SERVER_PORT", "80"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("WSGI_RS_SCRIPT", &script),
            ("WSGI_RS_APPLICATION_GROUP", ""),
        ];
        if let Some(secret) = secret {
            vars.push(("WSGI_RS_SECRET", secret));
        }
        let answer = uwsgi_exchange(&socket, &vars);
        assert!(
            answer.starts_with("HTTP/1.1 403"),
            "{tag} secret: daemon answered {answer:?}"
        );
        assert!(
            !s.path(&format!("var/ran-{tag}")).exists(),
            "the application ran for a request with a {tag} secret"
        );
    }
    assert!(
        s.wait_log("refused a request", Duration::from_secs(30)),
        "the refusal is not logged"
    );
    // The proper route still works and runs the app.
    let r = s.get("/m?proper");
    assert_eq!((r.status, r.text().as_str()), (200, "ran"));
    assert!(s.path("var/ran-proper").exists());
}

const PEER_APP: &str = r#"
import hashlib
def application(environ, start_response):
    data = environ['wsgi.input'].read()
    leaked = sorted(k for k in environ if 'WSGI_RS' in k or 'SECRET' in k)
    body = ('method=%s\nquery=%s\npath=%s\nlength=%d\nsha=%s\nleaked=%s\n' % (
        environ['REQUEST_METHOD'], environ.get('QUERY_STRING', ''),
        environ.get('PATH_INFO', ''), len(data), hashlib.sha256(data).hexdigest(),
        ','.join(leaked),
    )).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

/// Apache's own mod_proxy_uwsgi talking to a daemon group's socket (named
/// by `WSGISocketPrefix`), through `ProxyPass` and through `SetHandler`:
/// GET and a 200 KiB POST are served by the group's `WSGIImportScript`, and
/// the secret our fixups hook adds for it never reaches the application.
fn mod_proxy_uwsgi_is_a_peer(mpm: Mpm) {
    if module() == Module::ModWsgi {
        return; // mod_wsgi's daemons speak their own protocol, not uwsgi
    }
    let s = Server::new(mpm)
        .file("peer.wsgi", PEER_APP)
        .conf(
            "LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so\n\
             LoadModule proxy_uwsgi_module /usr/lib/apache2/modules/mod_proxy_uwsgi.so\n\
             WSGISocketPrefix {root}/sock/wsgi\n\
             WSGIDaemonProcess peer threads=2 display-name=%{GROUP}\n\
             WSGIImportScript {root}/peer.wsgi process-group=peer application-group=%{GLOBAL}\n\
             ProxyPass /px unix:{root}/sock/wsgi.peer.sock|uwsgi://localhost/\n\
             <Location /sh>\n\
             \x20   SetHandler \"proxy:unix:{root}/sock/wsgi.peer.sock|uwsgi://localhost/\"\n\
             </Location>\n",
        )
        .start();
    wait_daemons(&s, "peer", 1, Duration::from_secs(10));
    assert!(s.path("sock/wsgi.peer.sock").exists());
    let r = s.get("/px/some/where?x=1&y=two");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.text();
    assert_eq!(field(&body, "method").as_deref(), Some("GET"), "{body}");
    assert_eq!(
        field(&body, "query").as_deref(),
        Some("x=1&y=two"),
        "{body}"
    );
    assert!(
        field(&body, "path").is_some_and(|p| p.ends_with("/some/where")),
        "{body}"
    );
    assert_eq!(field(&body, "leaked").as_deref(), Some(""), "{body}");
    // The SetHandler form of the same proxying.
    let r = s.get("/sh/other?z=3");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(field(&r.text(), "query").as_deref(), Some("z=3"));
    assert_eq!(field(&r.text(), "leaked").as_deref(), Some(""));

    let data = pattern(200 * 1024);
    let r = s.request(
        "POST",
        "/px/upload?kind=big",
        &[("Content-Type", "application/octet-stream")],
        &data,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.text();
    assert_eq!(field(&body, "method").as_deref(), Some("POST"));
    assert_eq!(field(&body, "query").as_deref(), Some("kind=big"));
    assert_eq!(
        field(&body, "length").as_deref(),
        Some(data.len().to_string().as_str()),
        "{body}"
    );
    assert_eq!(
        field(&body, "sha").unwrap(),
        crate::daemon::sha256_hex(&data),
        "the body arrived changed"
    );
    assert_eq!(field(&body, "leaked").as_deref(), Some(""), "{body}");
}
per_mpm!(mod_proxy_uwsgi_is_a_peer);
