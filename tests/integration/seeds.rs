//! The deployment samples of `apache-conf/sites-available/`, one per real
//! deployment the project was built for (RelengAPI, OpenStack Heat, CLAM,
//! Mozilla Antenna), loaded as shipped into a real Apache with the sample
//! apps of `examples/seeds/`, and driven the way those deployments use them.
//!
//! Each test reads the site file and applies a small, explicit substitution
//! table: the sample's system paths become the test's copies of the app and
//! of the framework venv, user accounts become ones that exist here, and a
//! `<VirtualHost *:80>` becomes the harness's port. Every entry must match
//! (so a sample cannot drift away from its test unnoticed); nothing else in
//! the file is changed. `${APACHE_LOG_DIR}` and `${APACHE_RUN_DIR}` are
//! defined as Debian's envvars would, so the vhosts' own ErrorLog and
//! CustomLog files are written (under the server root) and checked.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::common::deploy::{
    daemon_account, daemon_processes, is_root, log_file, wait_daemon_processes, wait_log_line,
    with_tree, DEBIAN_CONTEXT, REPO,
};
use crate::common::server::MODULES_DIR;
use crate::common::venv::venv;
use crate::common::{module, wait_for, wait_for_count, Module, Mpm, Running, Server, StopOnDrop};

/// The site file `apache-conf/sites-available/{file}` with `table` applied
/// in order. Panics if an entry matches nothing.
fn site(file: &str, table: &[(&str, String)]) -> String {
    let path = Path::new(REPO)
        .join("apache-conf/sites-available")
        .join(file);
    let mut text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    for (from, to) in table {
        assert!(
            text.contains(from),
            "{file} no longer contains {from:?}: update this test's substitution table"
        );
        text = text.replace(from, to);
    }
    text
}

/// A server with the Debian context and the sample app `examples/seeds/{app}`
/// copied to `{root}/{app}`.
fn server_with_app(mpm: Mpm, app: &str) -> Server {
    let src = Path::new(REPO).join("examples/seeds").join(app);
    with_tree(Server::new(mpm), app, &src).conf(DEBIAN_CONTEXT)
}

fn venv_path() -> String {
    venv().display().to_string()
}

/// Basic credentials of the CLAM sample's user (alice:changeme).
const CLAM_AUTH: &str = "Basic YWxpY2U6Y2hhbmdlbWU=";
const RELENGAPI_TOKEN: &str = "Bearer sample-token-change-me";

/// RelengAPI: Flask in embedded mode with WSGIPythonHome naming the venv; the
/// token in `Authorization` reaches the app (WSGIPassAuthorization On) and
/// its logging lands in the vhost's error log at the record's level.
#[test]
fn relengapi_token_auth_and_logging() {
    let mut table = vec![
        ("/srv/relengapi/virtualenv", venv_path()),
        ("/srv/relengapi", "{root}/relengapi".to_string()),
        ("<VirtualHost *:80>", "<VirtualHost *:{port}>".to_string()),
    ];
    if module() == Module::ModWsgi {
        // The referee's log tag; it also has no ApacheLogHandler, so app.wsgi
        // falls back to stderr (every line at the error level).
        table.push(("wsgi_rs:info", "wsgi:info".to_string()));
    }
    let s = server_with_app(Mpm::Prefork, "relengapi")
        .conf(&site("relengapi.conf", &table))
        .start();

    let r = s.get("/versions");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert!(r.text().contains("\"relengapi\""), "{}", r.text());

    let r = s.get("/tokenauth/self");
    assert_eq!(r.status, 401, "no token: {}", r.text());
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Bearer realm=\"relengapi\"")
    );
    let r = s.request(
        "GET",
        "/tokenauth/self",
        &[("Authorization", "Bearer wrong-token")],
        b"",
    );
    assert_eq!(r.status, 401, "wrong token: {}", r.text());

    let r = s.request(
        "GET",
        "/tokenauth/self",
        &[("Authorization", RELENGAPI_TOKEN)],
        b"",
    );
    assert_eq!(
        r.status,
        200,
        "the token did not reach the app: {}",
        r.text()
    );
    assert!(
        r.text().contains("\"user\":\"ci-bot@example.org\""),
        "{}",
        r.text()
    );

    // The vhost's ErrorLog gets the app's records with Python's level kept.
    let accepted = "[relengapi.tokenauth] token of ci-bot@example.org accepted for /tokenauth/self";
    let rejected = "[relengapi.tokenauth] rejected GET /tokenauth/self: no Authorization header";
    if module() == Module::Ours {
        let line = wait_log_line(&s, "relengapi-error.log", accepted);
        assert!(line.contains("[wsgi_rs:info]"), "{line}");
        let line = wait_log_line(&s, "relengapi-error.log", rejected);
        assert!(line.contains("[wsgi_rs:warn]"), "{line}");
    } else {
        // mod_wsgi writes embedded-mode stderr to the main server's log.
        for needle in [accepted, rejected] {
            assert!(
                s.wait_log(needle, Duration::from_secs(30))
                    || log_file(&s, "relengapi-error.log").contains(needle),
                "{needle} not logged"
            );
        }
    }
    // And the CustomLog line with the `combined` format.
    let line = wait_log_line(
        &s,
        "relengapi-access.log",
        "\"GET /tokenauth/self HTTP/1.1\" 200",
    );
    assert!(line.starts_with("127.0.0.1 "), "{line}");
}

/// The substitutions both Heat samples need.
fn heat_table() -> Vec<(&'static str, String)> {
    vec![
        (
            "user=heat group=heat",
            daemon_account("www-data", "www-data"),
        ),
        ("/opt/heat/venv", venv_path()),
        ("/usr/lib/heat", "{root}/heat".to_string()),
    ]
}

/// Checks the Heat sample API mounted at `mount`: version document, stack
/// list and stack, JSON 404, 405, and a fault turned into a JSON 500 whose
/// traceback reaches `error_log` (under logs/, or the main log for "").
fn check_heat_api(s: &Running, mount: &str, error_log: &str) {
    let base = format!("http://127.0.0.1:{}{mount}", s.port);

    let r = s.get(&format!("{mount}/"));
    assert_eq!(r.status, 300, "{}\n{}", r.text(), s.error_log());
    assert!(
        r.text().contains(&format!("\"href\": \"{base}/v1/\"")),
        "versions: {}",
        r.text()
    );
    let first_id = r.header("x-openstack-request-id").unwrap_or("").to_string();
    assert!(first_id.starts_with("req-"), "{:?}", r.headers);

    let r = s.get(&format!("{mount}/v1/tenant1/stacks"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    for name in ["web-tier", "db-tier"] {
        let href = format!("\"href\": \"{base}/v1/tenant1/stacks/{name}\"");
        assert!(r.text().contains(&href), "no {href} in {}", r.text());
    }
    let id = r.header("x-openstack-request-id").unwrap_or("");
    assert!(
        id.starts_with("req-") && id != first_id,
        "request ids: {first_id} {id}"
    );

    let r = s.get(&format!("{mount}/v1/tenant1/stacks/db-tier"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("\"stack_name\": \"db-tier\""),
        "{}",
        r.text()
    );

    let r = s.get(&format!("{mount}/v1/tenant1/stacks/nope"));
    assert_eq!(
        (r.status, r.text().as_str()),
        (404, "{\"code\": 404, \"title\": \"Not Found\"}")
    );

    let r = s.request("POST", &format!("{mount}/v1/tenant1/stacks"), &[], b"{}");
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));

    let r = s.get(&format!("{mount}/v1/tenant1/stacks/boom"));
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.text()
            .contains("\"message\": \"the engine is unreachable\""),
        "{}",
        r.text()
    );
    let needle = "RuntimeError: the engine is unreachable";
    if error_log.is_empty() {
        assert!(
            s.wait_log(needle, Duration::from_secs(30)),
            "no traceback in the error log"
        );
    } else {
        wait_log_line(s, error_log, needle);
    }
    let log = if error_log.is_empty() {
        s.error_log()
    } else {
        log_file(s, error_log)
    };
    assert!(log.contains("Traceback (most recent call last):"), "{log}");
}

/// Heat's mod-wsgi deployment: the API in a daemon group of its own vhost
/// (on the site's `Listen` port, here the harness's), loaded through
/// PasteDeploy from the venv.
#[test]
fn heat_api_in_daemon_mode() {
    let mut table = vec![
        ("Listen 8004\n", String::new()),
        ("<VirtualHost *:8004>", "<VirtualHost *:{port}>".to_string()),
    ];
    table.extend(heat_table());
    let s = server_with_app(Mpm::Event, "heat")
        .conf(&site("heat-api.conf", &table))
        .start();
    check_heat_api(&s, "", "heat-api.log");
    if module() == Module::Ours {
        // processes=2, titled by display-name=%{GROUP}, as the user= account.
        let procs = wait_daemon_processes(&s, "(wsgi:heat-api)", 2);
        if is_root() {
            assert!(
                procs.iter().all(|&(_, uid)| uid == 33),
                "not www-data: {procs:?}"
            );
        }
    }
}

/// Heat's uwsgi deployment: Apache's own mod_proxy_uwsgi forwards /heat-api
/// to the socket of a mod_wsgi_rs daemon group, which serves the app of its
/// WSGIImportScript (no WSGIScriptAlias is involved).
#[test]
fn heat_api_through_mod_proxy_uwsgi() {
    if module() == Module::ModWsgi {
        return; // ours only: mod_wsgi's daemon sockets do not speak uwsgi
    }
    let s = server_with_app(Mpm::Event, "heat")
        .conf(&format!(
            "LoadModule proxy_module {MODULES_DIR}/mod_proxy.so\n\
             LoadModule proxy_uwsgi_module {MODULES_DIR}/mod_proxy_uwsgi.so\n"
        ))
        .conf(&site("uwsgi-heat-api.conf", &heat_table()))
        .start();
    assert!(
        s.path("run/wsgi_rs.heat-api-uwsgi.sock").exists(),
        "the group's socket is not where ProxyPass looks"
    );
    check_heat_api(&s, "/heat-api", "");
    wait_daemon_processes(&s, "(wsgi:heat-api-uwsgi)", 2);
}

/// CLAM: the service under /yourwebservice in a daemon group running as
/// another user, Basic credentials reaching the app, static files served by
/// Apache's Alias, and `touch yourwebservice.wsgi` deploying a code change
/// while requests keep succeeding.
#[test]
fn clam_daemon_static_auth_and_touch_reload() {
    let table = vec![
        ("user=clam group=clam", daemon_account("nobody", "nogroup")),
        ("/srv/yourwebservice/env", venv_path()),
        ("/srv/yourwebservice", "{root}/clam".to_string()),
        ("<VirtualHost *:80>", "<VirtualHost *:{port}>".to_string()),
    ];
    let s = server_with_app(Mpm::Event, "clam")
        .conf(&site("clam.conf", &table))
        .start();
    let index = "/yourwebservice/";
    let auth = [("Authorization", CLAM_AUTH)];

    let r = s.get(index);
    assert_eq!(r.status, 401, "{}\n{}", r.text(), s.error_log());
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Basic realm=\"yourwebservice\"")
    );
    assert_eq!(r.header("X-Served-By"), Some("yourwebservice"));
    let wrong = [("Authorization", "Basic YWxpY2U6d3Jvbmc=")]; // alice:wrong
    assert_eq!(s.request("GET", index, &wrong, b"").status, 401);

    let r = s.request("GET", index, &auth, b"");
    assert_eq!(
        r.status,
        200,
        "credentials did not reach the app: {}",
        r.text()
    );
    let xml = r.text();
    // url_for builds both from SCRIPT_NAME=/yourwebservice.
    let base = format!("baseurl=\"http://127.0.0.1:{}/yourwebservice/\"", s.port);
    assert!(xml.contains(&base), "{base} not in {xml}");
    assert!(
        xml.contains("stylesheet=\"/yourwebservice/static/style.css\""),
        "{xml}"
    );
    assert!(
        xml.contains("user=\"alice\" ") && xml.contains("version=\"1.0\""),
        "{xml}"
    );

    // The mount point reaches the app as SCRIPT_NAME exactly, despite the
    // trailing slash of the alias target; what follows is PATH_INFO.
    let r = s.get("/yourwebservice/info");
    assert_eq!(r.status, 200, "{}", r.text());
    let compact: String = r.text().split_whitespace().collect();
    assert!(
        compact.contains(r#""mount_point":"/yourwebservice","path_info":"/info""#),
        "{}",
        r.text()
    );
    let r = s.request("GET", "/yourwebservice/no-such-page", &auth, b"");
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.header("X-Served-By"), Some("yourwebservice"));

    // The stylesheet the app links to comes from Apache's Alias: Apache's
    // headers, none of the app's.
    let r = s.get("/yourwebservice/static/style.css");
    assert_eq!(r.status, 200, "{}", r.text());
    let css = fs::read(Path::new(REPO).join("examples/seeds/clam/static/style.css")).unwrap();
    assert_eq!(r.body, css);
    assert_eq!(
        r.header("X-Served-By"),
        None,
        "the app served a static file"
    );
    assert_eq!(r.header("Content-Type"), Some("text/css"));
    assert_eq!(r.header("Accept-Ranges"), Some("bytes"));

    if module() == Module::Ours && is_root() {
        let procs = wait_daemon_processes(&s, "(wsgi:yourwebservice)", 1);
        assert_eq!(procs[0].1, 65534, "the daemon does not run as nobody");
    }
    let before = daemon_processes(&s, "(wsgi:yourwebservice)");

    // Deploy a code change: edit the service, touch the .wsgi, and keep two
    // clients busy all along; every one of their requests must succeed.
    let stop = AtomicBool::new(false);
    let answered = AtomicUsize::new(0);
    let (outcomes, took) = std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        let clients: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut seen = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let r = s.request("GET", index, &auth, b"");
                        seen.push((r.status, r.complete, r.text()));
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    seen
                })
            })
            .collect();
        // Both clients are busy before the change is deployed.
        wait_for_count(&answered, 4, Duration::from_secs(30));
        let config = "clam/yourwebservice/config.py";
        let text = fs::read_to_string(s.path(config)).unwrap();
        let changed = text.replace("SYSTEM_VERSION = '1.0'", "SYSTEM_VERSION = '2.0'");
        assert_ne!(text, changed, "config.py has no SYSTEM_VERSION = '1.0'");
        s.write_file(config, &changed);
        let start = Instant::now();
        s.touch("clam/yourwebservice.wsgi");
        let reloaded = wait_for(Duration::from_secs(20), || {
            s.request("GET", index, &auth, b"")
                .text()
                .contains("version=\"2.0\"")
                .then_some(())
        })
        .is_some();
        let took = start.elapsed();
        // The clients run on the new code too before they stop.
        let so_far = answered.load(Ordering::SeqCst);
        wait_for_count(&answered, so_far + 4, Duration::from_secs(30));
        stop.store(true, Ordering::Relaxed);
        let outcomes: Vec<_> = clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        assert!(reloaded, "no response showed version 2.0 within {took:?}");
        (outcomes, took)
    });
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|(status, complete, _)| *status != 200 || !complete)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the reload ({took:?}): {failed:?}",
        failed.len(),
        outcomes.len()
    );
    assert!(outcomes.len() >= 4, "only {} requests made", outcomes.len());
    if module() == Module::Ours {
        // The process was replaced, not just the script re-run.
        let after = wait_daemon_processes(&s, "(wsgi:yourwebservice)", 1);
        assert!(
            before.iter().all(|p| p.0 != after[0].0),
            "same daemon pid after the reload: {before:?} {after:?}"
        );
    }
}

/// Antenna: Falcon in a daemon group of 5 processes; the health endpoints,
/// a traceback in the vhost's error log for /__broken__, and 50 concurrent
/// load-balancer heartbeats.
#[test]
fn antenna_health_endpoints_under_concurrency() {
    let table = vec![
        (
            "user=antenna group=antenna",
            daemon_account("www-data", "www-data"),
        ),
        ("/srv/antenna/venv", venv_path()),
        ("/srv/antenna", "{root}/antenna".to_string()),
        ("<VirtualHost *:80>", "<VirtualHost *:{port}>".to_string()),
    ];
    let s = server_with_app(Mpm::Event, "antenna")
        .conf(&site("antenna.conf", &table))
        .start();

    let r = s.get("/__lbheartbeat__");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "OK"),
        "{}",
        s.error_log()
    );

    let r = s.get("/__heartbeat__");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert!(
        r.text().starts_with("{\"ok\": true, \"errors\": {}"),
        "{}",
        r.text()
    );

    let r = s.get("/__version__");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        "{\"commit\": \"5cc6f5170973c7af2e4bb2097679a82ae5659466\", \"version\": \"\", \
         \"source\": \"https://github.com/mozilla/antenna\", \
         \"build\": \"https://circleci.com/gh/mozilla/antenna/331\"}"
    );

    let r = s.get("/__broken__");
    assert_eq!(r.status, 500, "{}", r.text());
    wait_log_line(
        &s,
        "antenna-error.log",
        "RuntimeError: intentional exception from /__broken__",
    );
    let log = log_file(&s, "antenna-error.log");
    assert!(log.contains("Traceback (most recent call last):"), "{log}");
    assert!(
        log.contains("in on_get"),
        "the traceback lacks the app's frame: {log}"
    );

    if module() == Module::Ours {
        wait_daemon_processes(&s, "(wsgi:antenna)", 5);
    }

    const CLIENTS: usize = 50;
    let barrier = Barrier::new(CLIENTS);
    let results: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let r = s.get("/__lbheartbeat__");
                    (r.status, r.text())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let bad: Vec<_> = results
        .iter()
        .filter(|(st, body)| *st != 200 || body != "OK")
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {CLIENTS} heartbeats failed: {bad:?}",
        bad.len()
    );
}
