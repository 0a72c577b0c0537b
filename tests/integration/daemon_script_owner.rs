//! `script-user=` and `script-group=` of `WSGIDaemonProcess`: a request
//! delegated to such a group is served only when its WSGI script file and
//! the directory holding it belong to that user (group) and nobody else may
//! write them; otherwise it is answered 403 Forbidden and the error log
//! says which file, whose it is and whose it should be. Both ways of naming
//! the owner (a name, `#id`) are tried.
//!
//! Giving files away takes root: without it the tests say so and stop.

use std::os::unix::fs::{chown, PermissionsExt};
use std::time::Duration;

use crate::common::deploy::is_root;
use crate::common::{module, referee_differs, wait_for, Module, Mpm, Running, Server};

const APP: &str = r#"
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'served']
"#;

/// (uid, gid) of `nobody` and `nogroup`.
fn nobody() -> (u32, u32) {
    let (user, group) = (c"nobody", c"nogroup");
    // SAFETY: getpwnam/getgrnam return static storage or null; the ids are
    // copied out at once and this test makes no other such calls meanwhile.
    unsafe {
        let pw = libc::getpwnam(user.as_ptr());
        let gr = libc::getgrnam(group.as_ptr());
        assert!(!pw.is_null() && !gr.is_null(), "no nobody/nogroup here");
        ((*pw).pw_uid, (*gr).gr_gid)
    }
}

/// Whether the test can give files away; says why not when it cannot.
fn can_chown() -> bool {
    if !is_root() {
        eprintln!("skipped: giving script files to another owner needs root");
        return false;
    }
    true
}

/// Gives `rel` (a file or directory under the root) to `owner` with `mode`.
fn give(s: &Running, rel: &str, owner: (u32, u32), mode: u32) {
    let path = s.path(rel);
    chown(&path, Some(owner.0), Some(owner.1)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Requests `url` and checks it is refused with 403 and a log line with
/// `ours` (our id, the script's path, then the facts) or, against
/// mod_wsgi, `referee` and the path.
fn assert_refused(s: &Running, url: &str, ours: &[&str], referee: &str) {
    let r = s.get(url);
    assert_eq!(r.status, 403, "{url}: {}", r.text());
    let needles: Vec<&str> = if module() == Module::ModWsgi {
        vec![referee, ours[1]]
    } else {
        ours.to_vec()
    };
    let found = wait_for(Duration::from_secs(10), || {
        let log = s.error_log();
        let line = log
            .lines()
            .find(|l| needles.iter().all(|n| l.contains(n)))?;
        Some(line.to_owned())
    });
    assert!(
        found.is_some(),
        "{url}: no line with all of {needles:?} in the log:\n{}",
        s.error_log()
    );
}

/// `script-user=nobody`: the script nobody owns, in a directory nobody
/// owns, is served; one owned by root is refused and the line names the
/// script, its owner (uid 0) and the user required; so is nobody's script
/// when its group may write it, and nobody's script in root's directory.
#[test]
fn script_user_by_name() {
    if !can_chown() {
        return;
    }
    let (uid, gid) = nobody();
    let s = Server::new(Mpm::Event)
        .file("own/app.wsgi", APP)
        .file("root/app.wsgi", APP)
        .file("writable/app.wsgi", APP)
        .file("borrowed/app.wsgi", APP)
        .conf(
            "WSGIDaemonProcess owned script-user=nobody threads=2\n\
             WSGIScriptAlias /own {root}/own/app.wsgi process-group=owned\n\
             WSGIScriptAlias /root {root}/root/app.wsgi process-group=owned\n\
             WSGIScriptAlias /writable {root}/writable/app.wsgi process-group=owned\n\
             WSGIScriptAlias /borrowed {root}/borrowed/app.wsgi process-group=owned\n",
        )
        .start();
    for dir in ["own", "writable"] {
        give(&s, dir, (uid, gid), 0o755);
    }
    give(&s, "own/app.wsgi", (uid, gid), 0o644);
    give(&s, "writable/app.wsgi", (uid, gid), 0o664);
    give(&s, "borrowed/app.wsgi", (uid, gid), 0o644);

    let r = s.get("/own");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "served");

    let root_script = s.path("root/app.wsgi").display().to_string();
    let required = format!("requires uid {uid}");
    assert_refused(
        &s,
        "/root",
        &[
            "WSGIRS601",
            &root_script,
            "owned by uid 0",
            "script-user=nobody",
            &required,
        ],
        "Owner of WSGI script file does not match required user for daemon process, user=root",
    );
    let writable = s.path("writable/app.wsgi").display().to_string();
    assert_refused(
        &s,
        "/writable",
        &["WSGIRS602", &writable, "writable by group"],
        "WSGI script file is writable to group",
    );
    let borrowed = s.path("borrowed/app.wsgi").display().to_string();
    assert_refused(
        &s,
        "/borrowed",
        &["WSGIRS603", &borrowed, "directory is owned by uid 0"],
        "Owner of parent directory of WSGI script file does not match required user for daemon process, user=root",
    );
}

/// `script-group=nogroup`: nogroup's script in nogroup's directory is
/// served, and the group may write them (the group is trusted); root's
/// script is refused, and so is nogroup's script when anyone may write it.
#[test]
fn script_group_by_name() {
    if !can_chown() {
        return;
    }
    let (_, gid) = nobody();
    let s = Server::new(Mpm::Event)
        .file("group/app.wsgi", APP)
        .file("root/app.wsgi", APP)
        .file("world/app.wsgi", APP)
        .conf(
            "WSGIDaemonProcess grouped script-group=nogroup threads=2\n\
             WSGIScriptAlias /group {root}/group/app.wsgi process-group=grouped\n\
             WSGIScriptAlias /root {root}/root/app.wsgi process-group=grouped\n\
             WSGIScriptAlias /world {root}/world/app.wsgi process-group=grouped\n",
        )
        .start();
    give(&s, "group", (0, gid), 0o775);
    give(&s, "group/app.wsgi", (0, gid), 0o664);
    give(&s, "world", (0, gid), 0o755);
    give(&s, "world/app.wsgi", (0, gid), 0o666);

    let r = s.get("/group");
    assert_eq!(r.status, 200, "{}", r.text());
    let rooted = s.path("root/app.wsgi").display().to_string();
    let required = format!("requires gid {gid}");
    assert_refused(
        &s,
        "/root",
        &[
            "WSGIRS601",
            &rooted,
            "owned by gid 0",
            "script-group=nogroup",
            &required,
        ],
        "Group of WSGI script file does not match required group for daemon process, group=root",
    );
    let world = s.path("world/app.wsgi").display().to_string();
    assert_refused(
        &s,
        "/world",
        &["WSGIRS602", &world, "writable by world"],
        "WSGI script file is writable to world",
    );
}

/// The owner named by id, `script-user=#UID` and `script-group=#GID`
/// (nobody's and nogroup's): their own scripts are served, root's refused.
#[test]
fn script_user_and_group_by_id() {
    if !can_chown() {
        return;
    }
    // mod_wsgi 4.9.4 keeps the name getpwuid()/getgrgid() gave for #ID,
    // which points into the C library's static entry that every later
    // lookup overwrites: the request's own lookup of the file's owner
    // then compares that entry with itself, so any owner passes.
    if referee_differs("script-user=#ID/script-group=#ID let any owner pass in mod_wsgi 4.9.4") {
        return;
    }
    let (uid, gid) = nobody();
    let s = Server::new(Mpm::Event)
        .file("user/app.wsgi", APP)
        .file("group/app.wsgi", APP)
        .file("root/app.wsgi", APP)
        .conf(&format!(
            "WSGIDaemonProcess byuid script-user=#{uid} threads=2\n\
             WSGIDaemonProcess bygid script-group=#{gid} threads=2\n\
             WSGIScriptAlias /user {{root}}/user/app.wsgi process-group=byuid\n\
             WSGIScriptAlias /root-user {{root}}/root/app.wsgi process-group=byuid\n\
             WSGIScriptAlias /group {{root}}/group/app.wsgi process-group=bygid\n\
             WSGIScriptAlias /root-group {{root}}/root/app.wsgi process-group=bygid\n",
        ))
        .start();
    give(&s, "user", (uid, gid), 0o755);
    give(&s, "user/app.wsgi", (uid, gid), 0o644);
    give(&s, "group", (0, gid), 0o755);
    give(&s, "group/app.wsgi", (0, gid), 0o644);

    for url in ["/user", "/group"] {
        let r = s.get(url);
        assert_eq!(r.status, 200, "{url}: {}", r.text());
    }
    let rooted = s.path("root/app.wsgi").display().to_string();
    let user_rule = format!("script-user=#{uid}");
    assert_refused(
        &s,
        "/root-user",
        &["WSGIRS601", &rooted, "owned by uid 0", &user_rule],
        "",
    );
    let group_rule = format!("script-group=#{gid}");
    let required = format!("requires gid {gid}");
    assert_refused(
        &s,
        "/root-group",
        &[
            "WSGIRS601",
            &rooted,
            "owned by gid 0",
            &group_rule,
            &required,
        ],
        "",
    );
}
