//! Application groups: the same script mounted in different
//! groups is loaded separately (its module globals are not shared), while
//! mounts in the same group, including %{GLOBAL}, share one loaded copy.

use crate::common::{module, wait_for, Module, Mpm, Running, Server};

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

/// A site as Django deploys one: its directory first on `sys.path`, its
/// settings named in `os.environ` (with `setdefault`, as Django's generated
/// wsgi.py does), then `import siteconf` (each site has a `siteconf.py` of
/// its own). The response says what the site sees.
const SITE: &str = r#"
import os, sys
here = os.path.dirname(__file__)
sys.path.insert(0, here)
os.environ['SITE_NAME'] = os.path.basename(here)
os.environ.setdefault('SITE_SETTINGS', 'settings-' + os.path.basename(here))
import siteconf
import shared_counter
shared_counter.loads += 1
def application(environ, start_response):
    sites = sorted(set(os.path.basename(p) for p in sys.path
                       if p.startswith(os.path.dirname(here) + '/site')))
    shared_counter.hits += 1
    body = 'conf=%s name=%s path=%s hits=%d group=%s loads=%d settings=%s' % (
        siteconf.NAME, os.environ.get('SITE_NAME'), ','.join(sites),
        shared_counter.hits, environ['mod_wsgi.application_group'],
        shared_counter.loads, os.environ.get('SITE_SETTINGS'))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

/// Extension modules in the main interpreter: `_decimal` and `sqlite3`, and a
/// PyO3 module (Debian's python3-cryptography), which refuses to load in a
/// second interpreter once the main one has it.
const EXTENSIONS: &str = r#"
import decimal, _decimal, sqlite3, sys
from cryptography.hazmat.bindings import _rust
import preload_marker_check
def application(environ, start_response):
    total = decimal.Decimal('1.10') + decimal.Decimal('2.20')
    one = sqlite3.connect(':memory:').execute('select 1').fetchone()[0]
    body = 'decimal=%s c=%s sqlite=%d preloaded=%s' % (
        total, decimal.Decimal is _decimal.Decimal, one, preload_marker_check.seen())
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

/// Says whether `WSGIImportScript` ran `preload.wsgi` in this interpreter.
const PRELOAD_CHECK: &str = r#"
import sys
def seen():
    return 'yes' if 'preload_marker' in sys.modules else 'no'
"#;

const PRELOAD: &str = r#"
import sys, types
sys.modules['preload_marker'] = types.ModuleType('preload_marker')
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'preload']
"#;

/// Reports the preload check from within a named group.
const SHARED: &str = r#"
import shared_counter, preload_marker_check
def application(environ, start_response):
    shared_counter.hits += 1
    body = 'hits=%d preloaded=%s' % (shared_counter.hits, preload_marker_check.seen())
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

/// A site in the default group that needs the PyO3 extension module.
const NEEDS_PYO3: &str = r#"
from cryptography.hazmat.bindings import _rust
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'loaded']
"#;

/// The same, importing it only when a request comes.
const NEEDS_PYO3_LATER: &str = r#"
def application(environ, start_response):
    from cryptography.hazmat.bindings import _rust
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'loaded']
"#;

/// Two Django-style sites, a `%{GLOBAL}` app with extension modules, a
/// named group mounted twice and a script preloaded into that group, served
/// embedded (`daemon` None) or by one daemon process.
fn isolation_server(mpm: Mpm, daemon: bool) -> Running {
    let process = if daemon { "iso" } else { "%{GLOBAL}" };
    let mut conf = String::new();
    if daemon {
        conf.push_str("WSGIDaemonProcess iso processes=1 threads=4 python-path={root}/lib\n");
        conf.push_str("WSGIProcessGroup iso\n");
    } else {
        conf.push_str("WSGIPythonPath {root}/lib\n");
    }
    conf.push_str(&format!(
        "WSGIImportScript {{root}}/preload.wsgi process-group={process} application-group=shared\n\
         WSGIScriptAlias /one {{root}}/site1/app.wsgi\n\
         WSGIScriptAlias /two {{root}}/site2/app.wsgi\n\
         WSGIScriptAlias /global {{root}}/extensions.wsgi application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /s1 {{root}}/shared1.wsgi application-group=shared\n\
         WSGIScriptAlias /s2 {{root}}/shared2.wsgi application-group=shared\n\
         WSGIScriptAlias /pyo3 {{root}}/pyo3.wsgi\n\
         WSGIScriptAlias /pyo3-later {{root}}/pyo3-later.wsgi\n"
    ));
    Server::new(mpm)
        .single_process()
        .file("site1/app.wsgi", SITE)
        .file("site1/siteconf.py", "NAME = 'one'\n")
        .file("site2/app.wsgi", SITE)
        .file("site2/siteconf.py", "NAME = 'two'\n")
        .file("lib/shared_counter.py", "hits = 0\nloads = 0\n")
        .file("lib/preload_marker_check.py", PRELOAD_CHECK)
        .file("extensions.wsgi", EXTENSIONS)
        .file("preload.wsgi", PRELOAD)
        .file("shared1.wsgi", SHARED)
        .file("shared2.wsgi", SHARED)
        .file("pyo3.wsgi", NEEDS_PYO3)
        .file("pyo3-later.wsgi", NEEDS_PYO3_LATER)
        .conf(&conf)
        .start()
}

/// What a site's response must say. `setdefault` is where mod_wsgi and we
/// differ: mod_wsgi starts an interpreter's `os.environ` from the C
/// environment, which earlier groups' assignments changed (`putenv`), so the
/// site whose interpreter came second keeps the first one's settings; ours
/// start from the environment the process started with.
fn site_view(body: &str) -> String {
    match module() {
        Module::Ours => body.to_owned(),
        Module::ModWsgi => body.split(" settings=").next().unwrap().to_owned(),
    }
}

fn groups_are_isolated(s: &mut Running, daemon: bool) {
    let host = s.get("/one").text();
    let group_of = |site: &str| {
        host.split(" group=")
            .nth(1)
            .and_then(|g| g.split(' ').next())
            .map(|g| g.replace("/one", site))
            .unwrap()
    };
    // Each site sees its own settings module, environment and path, even
    // interleaved, and a library both import is a separate copy in each.
    for round in 1..=3 {
        for (site, n) in [("one", round + 1), ("two", round)] {
            let dir = if site == "one" { "site1" } else { "site2" };
            assert_eq!(
                site_view(&hit(s, &format!("/{site}"))),
                site_view(&format!(
                    "conf={site} name={dir} path={dir} hits={n} group={} loads=1 settings=settings-{dir}",
                    group_of(&format!("/{site}"))
                )),
                "the default group of /{site} is not isolated"
            );
        }
    }

    // %{GLOBAL} is the main interpreter: C extensions work there, and
    // nothing the sites did is visible.
    assert_eq!(
        hit(s, "/global"),
        "decimal=3.30 c=True sqlite=1 preloaded=no"
    );

    // A named group mounted twice is one interpreter; WSGIImportScript ran
    // in it (and only in it).
    assert_eq!(hit(s, "/s1"), "hits=1 preloaded=yes");
    assert_eq!(hit(s, "/s2"), "hits=2 preloaded=yes");
    assert_eq!(hit(s, "/s1"), "hits=3 preloaded=yes");

    // A PyO3 extension already loaded by the main interpreter refuses a
    // sub-interpreter, whether the script imports it or the request does: a
    // 500, and the log says how to run it.
    for path in ["/pyo3", "/pyo3-later"] {
        let r = s.get(path);
        assert_eq!(r.status, 500, "{path}: {}", r.text());
    }
    if module() == Module::Ours {
        let hint =
            "run the application in the main interpreter with 'WSGIApplicationGroup %{GLOBAL}'";
        let two_hints = wait_for(std::time::Duration::from_secs(10), || {
            (s.error_log().matches(hint).count() >= 2).then_some(())
        });
        assert!(
            two_hints.is_some(),
            "not two hints at WSGIApplicationGroup %{{GLOBAL}}:\n{}",
            s.error_log()
        );
    }

    // Touching one site's script reloads it in its own interpreter: embedded
    // mode re-runs the script there (its libraries stay loaded), daemon mode
    // replaces the process; the other site is still itself and, embedded,
    // was not reloaded.
    s.touch("site2/app.wsgi");
    let two = hit(s, "/two");
    let one = hit(s, "/one");
    let (loads_two, loads_one) = if daemon { (1, 1) } else { (2, 1) };
    assert!(
        two.starts_with("conf=two name=site2 path=site2 ")
            && two.contains(&format!(" loads={loads_two} ")),
        "after reload: {two}"
    );
    assert!(
        one.starts_with("conf=one name=site1 path=site1 ")
            && one.contains(&format!(" loads={loads_one} ")),
        "after reload of the other site: {one}"
    );
    if module() == Module::Ours {
        assert!(two.ends_with("settings=settings-site2"), "{two}");
        assert!(one.ends_with("settings=settings-site1"), "{one}");
    }
}

fn embedded_groups_are_isolated(mpm: Mpm) {
    groups_are_isolated(&mut isolation_server(mpm, false), false);
}
per_mpm!(embedded_groups_are_isolated);

fn daemon_groups_are_isolated(mpm: Mpm) {
    groups_are_isolated(&mut isolation_server(mpm, true), true);
}
per_mpm!(daemon_groups_are_isolated);

/// A request that computes without blocking, and one that tells it to stop.
const SPIN: &str = r#"
import os, time
state = {'done': False}
def application(environ, start_response):
    if environ['PATH_INFO'] == '/spin':
        with open(os.path.join(os.path.dirname(__file__), 'var', 'spinning'), 'w') as f:
            f.write('yes')
        end = time.monotonic() + 30
        while not state['done'] and time.monotonic() < end:
            pass
        body = b'released' if state['done'] else b'never released'
    else:
        state['done'] = True
        body = b'released it'
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

/// While one request of a group computes without ever blocking, another
/// request of the same group still gets the GIL at the switch interval (it
/// is what ends the first one). Python 3.11 only makes the GIL holder yield
/// to threads waiting in its own interpreter, so this holds only if a thread
/// enters a group with its own thread state of the group's interpreter.
fn busy_group_serves_its_other_requests(mpm: Mpm, daemon: bool) {
    if module() == Module::ModWsgi {
        // Debian's mod_wsgi 4.9.4 (Python 3.11): the second request waits
        // until the computing one ends (here: the client gives up first).
        return;
    }
    let conf = if daemon {
        "WSGIDaemonProcess busy processes=1 threads=2\n\
         WSGIScriptAlias /app {root}/spin.wsgi process-group=busy\n"
    } else {
        "WSGIScriptAlias /app {root}/spin.wsgi\n"
    };
    // Embedded, both requests must reach the same process; in daemon mode
    // the one daemon process does that, and prefork needs two children.
    let server = Server::new(mpm);
    let server = if daemon {
        server
    } else {
        server.single_process()
    };
    let s = server
        .file("spin.wsgi", SPIN)
        .file("var/.keep", "")
        .conf(conf)
        .start();
    std::thread::scope(|scope| {
        let spin = scope.spawn(|| s.get("/app/spin"));
        assert!(
            s.wait_file("var/spinning", std::time::Duration::from_secs(10))
                .is_some(),
            "the spinning request did not start:\n{}",
            s.error_log()
        );
        assert_eq!(hit(&s, "/app/release"), "released it");
        let spun = spin.join().unwrap();
        assert_eq!(spun.text(), "released");
    });
}

fn embedded_busy_group_serves_its_other_requests(mpm: Mpm) {
    busy_group_serves_its_other_requests(mpm, false);
}
threaded_mpms!(embedded_busy_group_serves_its_other_requests);

fn daemon_busy_group_serves_its_other_requests(mpm: Mpm) {
    busy_group_serves_its_other_requests(mpm, true);
}
per_mpm!(daemon_busy_group_serves_its_other_requests);

/// Tries to set an attribute on each type the server hands an application.
const SET_ON_TYPES: &str = r#"
def application(environ, start_response):
    seen = []
    for name, obj in [('input', type(environ['wsgi.input'])),
                      ('errors', type(environ['wsgi.errors'])),
                      ('file_wrapper', environ['wsgi.file_wrapper']),
                      ('start_response', type(start_response))]:
        try:
            setattr(obj, 'set_by_a_group', 1)
            seen.append(name + '=set')
        except (TypeError, AttributeError):
            seen.append(name + '=refused')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [' '.join(seen).encode()]
"#;

/// The server's types are shared by every interpreter of a process (as
/// mod_wsgi's static types are), so none may take an attribute from one
/// application group for the others to see.
#[test]
fn server_types_cannot_carry_state_between_groups() {
    let s = Server::new(Mpm::Event)
        .single_process()
        .file("types.wsgi", SET_ON_TYPES)
        .conf("WSGIScriptAlias /types {root}/types.wsgi\n")
        .start();
    assert_eq!(
        hit(&s, "/types"),
        "input=refused errors=refused file_wrapper=refused start_response=refused"
    );
}
