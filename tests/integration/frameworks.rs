//! Real Python web frameworks under the module: Flask, Falcon, Django (a
//! single-file project) and Pyramid (built by PasteDeploy from an `.ini`),
//! each mounted at `/app` in embedded and in daemon mode, running in the
//! framework venv (`common/venv.rs`).
//!
//! The apps in `tests/framework-apps/` implement one small API (its README
//! describes it), so one set of assertions checks routing with a path
//! parameter, a form post with non-ASCII data, status codes, headers, and
//! URL generation that includes the mount point (url_for, reverse,
//! route_url, Falcon's root_path), which only works when SCRIPT_NAME and
//! PATH_INFO are split as PEP 3333 says.

use std::path::Path;

use crate::common::deploy::{with_tree, REPO};
use crate::common::venv::venv;
use crate::common::{Mode, Mpm, Running, Server};

const GROUP: &str = "frameworks";

/// Starts Apache with `tests/framework-apps/{framework}` mounted at /app.
/// The app's directory goes on sys.path through WSGIPythonPath or
/// python-path=, the venv through WSGIPythonHome or python-home=.
fn deploy(framework: &str, mode: Mode) -> Running {
    let src = Path::new(REPO).join("tests/framework-apps").join(framework);
    let venv = venv().display();
    let conf = match mode {
        Mode::Embedded => format!(
            "WSGIPythonHome {venv}\n\
             WSGIPythonPath {{root}}/{framework}\n\
             WSGIApplicationGroup %{{GLOBAL}}\n\
             WSGIScriptAlias /app {{root}}/{framework}/app.wsgi\n"
        ),
        Mode::Daemon => format!(
            "WSGIDaemonProcess {GROUP} processes=2 threads=4 python-home={venv} \
             python-path={{root}}/{framework}\n\
             WSGIProcessGroup {GROUP}\n\
             WSGIApplicationGroup %{{GLOBAL}}\n\
             WSGIScriptAlias /app {{root}}/{framework}/app.wsgi\n"
        ),
    };
    with_tree(Server::new(Mpm::Event), framework, &src)
        .conf(&conf)
        .start()
}

/// The assertions every framework app must pass.
fn check_app(framework: &str, mode: Mode) {
    let s = deploy(framework, mode);
    let group = match mode {
        Mode::Embedded => "",
        Mode::Daemon => GROUP,
    };
    let context = |what: &str, r: &crate::common::Response| {
        format!(
            "{framework} ({mode:?}) {what}: {} {:?}\n{}\n--- error log ---\n{}",
            r.status,
            r.headers,
            r.text(),
            s.error_log()
        )
    };

    // URLs generated from SCRIPT_NAME=/app, as a path and absolute.
    let r = s.get("/app/");
    assert_eq!(r.status, 200, "{}", context("index", &r));
    assert_eq!(
        r.text(),
        format!(
            "framework={framework}\nitem=/app/items/7\nitem_abs=http://127.0.0.1:{}/app/items/7\n",
            s.port
        ),
        "{}",
        context("index", &r)
    );
    assert_eq!(
        r.header("Content-Type").map(str::to_ascii_lowercase),
        Some("text/plain; charset=utf-8".to_string())
    );
    // Also proves the request ran in the intended mode.
    assert_eq!(
        r.header("X-Process-Group"),
        Some(group),
        "{}",
        context("index", &r)
    );

    // A path parameter, a JSON body and a custom header.
    let r = s.get("/app/items/42");
    assert_eq!(r.status, 200, "{}", context("item", &r));
    assert!(
        r.header("Content-Type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{}",
        context("item", &r)
    );
    assert_eq!(r.header("X-Item-Id"), Some("42"));
    // Frameworks differ in JSON spacing only.
    let compact: String = r.text().split_whitespace().collect();
    assert_eq!(compact, r#"{"id":42,"self":"/app/items/42"}"#);

    for missing in ["/app/items/abc", "/app/no-such-page"] {
        let r = s.get(missing);
        assert_eq!(r.status, 404, "{}", context(missing, &r));
    }

    // A form post, UTF-8 percent-encoded as browsers send it.
    let r = s.request(
        "POST",
        "/app/greet",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"name=J%C3%BCrgen&lang=de",
    );
    assert_eq!(r.status, 200, "{}", context("form", &r));
    assert_eq!(r.text(), "hello J\u{fc}rgen (de)");

    // A redirect to a generated URL keeps the mount point.
    let r = s.get("/app/old");
    assert_eq!(r.status, 302, "{}", context("redirect", &r));
    let location = r.header("Location").unwrap_or("");
    assert!(
        location.ends_with("/app/items/1"),
        "{}",
        context("redirect", &r)
    );
}

fn flask(mode: Mode) {
    check_app("flask", mode);
}
both_modes!(flask);

fn falcon(mode: Mode) {
    check_app("falcon", mode);
}
both_modes!(falcon);

fn django(mode: Mode) {
    check_app("django", mode);
}
both_modes!(django);

/// Pyramid's `framework=` line comes from production.ini's settings, so
/// this also shows PasteDeploy read the file.
fn pyramid(mode: Mode) {
    check_app("pyramid", mode);
}
both_modes!(pyramid);
