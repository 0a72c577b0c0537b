//! Application groups (issue bullet 11): the same script mounted in different
//! groups is loaded separately (its module globals are not shared), while
//! mounts in the same group, including %{GLOBAL}, share one loaded copy.

use crate::common::{module, Module, Mpm, Running, Server};

/// A module-global counter, reported with the request's application group.
const COUNTER: &str = r#"
counter = 0
def application(environ, start_response):
    global counter
    counter += 1
    body = ('%s %d' % (environ['mod_wsgi.application_group'], counter)).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

fn hit(s: &Running, path: &str) -> String {
    let r = s.get(path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.text()
}

#[test]
fn named_groups_do_not_share_module_globals() {
    // One process, so counts are not spread over several.
    let s = Server::new(Mpm::Event)
        .single_process()
        .file("counter.wsgi", COUNTER)
        .conf(
            r#"WSGIScriptAlias /a {root}/counter.wsgi application-group=group-a
WSGIScriptAlias /b {root}/counter.wsgi application-group=group-b
WSGIScriptAlias /c {root}/counter.wsgi
<Location /c>
    WSGIApplicationGroup group-c
</Location>
"#,
        )
        .start();
    assert_eq!(hit(&s, "/a"), "group-a 1");
    assert_eq!(hit(&s, "/a"), "group-a 2");
    assert_eq!(hit(&s, "/a"), "group-a 3");
    assert_eq!(
        hit(&s, "/b"),
        "group-b 1",
        "group-b shares group-a's module"
    );
    assert_eq!(
        hit(&s, "/c"),
        "group-c 1",
        "WSGIApplicationGroup in <Location> not applied"
    );
    assert_eq!(hit(&s, "/a"), "group-a 4");
    assert_eq!(hit(&s, "/b"), "group-b 2");
}

#[test]
fn global_group_mounts_share_one_copy() {
    let s = Server::new(Mpm::Event)
        .single_process()
        .file("counter.wsgi", COUNTER)
        .conf(
            "WSGIScriptAlias /g1 {root}/counter.wsgi application-group=%{GLOBAL}\n\
             WSGIScriptAlias /g2 {root}/counter.wsgi\n\
             <Location /g2>\n    WSGIApplicationGroup %{GLOBAL}\n</Location>\n",
        )
        .start();
    // %{GLOBAL} is the empty group name.
    assert_eq!(hit(&s, "/g1"), " 1");
    assert_eq!(
        hit(&s, "/g2"),
        " 2",
        "two %{{GLOBAL}} mounts of one script do not share it"
    );
    assert_eq!(hit(&s, "/g1"), " 3");
}

/// %{GLOBAL} and named groups served by the same worker threads, interleaved:
/// every request must run in its own group's copy of the script.
fn global_and_named_groups_stay_apart(mpm: Mpm) {
    if module() == Module::ModWsgi && mpm.is_threaded() {
        // Debian's mod_wsgi 4.9.4 (Python 3.11), event MPM: a %{GLOBAL}
        // request on a worker thread that had served group-a ran in group-a's
        // sub-interpreter (environ said group '' but sys and the counter were
        // group-a's). Ours must not copy that.
        return;
    }
    let s = Server::new(mpm)
        .single_process()
        .file("counter.wsgi", COUNTER)
        .conf(
            "WSGIScriptAlias /a {root}/counter.wsgi application-group=group-a\n\
             WSGIScriptAlias /g {root}/counter.wsgi application-group=%{GLOBAL}\n",
        )
        .start();
    for i in 1..=12 {
        assert_eq!(hit(&s, "/a"), format!("group-a {i}"));
        assert_eq!(
            hit(&s, "/g"),
            format!(" {i}"),
            "%{{GLOBAL}} request ran in another group"
        );
    }
}
per_mpm!(global_and_named_groups_stay_apart);
