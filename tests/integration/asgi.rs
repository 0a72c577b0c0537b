//! ASGI applications (Starlette, FastAPI, Django's ASGI handler) served by
//! daemon groups from real apps in the test venv (`tests/framework-apps/asgi`).
//! Ours only: mod_wsgi does not run ASGI applications.

use std::path::Path;

use serde_json::Value;

use crate::common::deploy::{with_tree, REPO};
use crate::common::venv::venv;
use crate::common::{referee_differs, Mpm, Running, Server};

/// Starts Apache with the ASGI test apps under {root}/asgi and `conf`
/// (where `{venv}` is the test venv) after a daemon group `api` of
/// `options`.
pub fn deploy(mpm: Mpm, options: &str, conf: &str) -> Running {
    let src = Path::new(REPO).join("tests/framework-apps/asgi");
    let venv = venv().display().to_string();
    let conf = format!(
        "WSGIDaemonProcess api {options} python-home={venv} python-path={{root}}/asgi\n{}",
        conf.replace("{venv}", &venv)
    );
    with_tree(Server::new(mpm), "asgi", &src)
        .conf(&conf)
        .start()
}

/// The Starlette app at /api in group `api`.
fn starlette(mpm: Mpm, options: &str) -> Running {
    deploy(
        mpm,
        options,
        "WSGIScriptAlias /api {root}/asgi/starlette_app.py process-group=api \
         application-group=%{GLOBAL}\n",
    )
}

/// The response's JSON body.
pub fn json(r: &crate::common::Response) -> Value {
    serde_json::from_str(&r.text()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()))
}

#[test]
fn starlette_json_get_and_scope() {
    if referee_differs("mod_wsgi does not run ASGI applications") {
        return;
    }
    let s = starlette(Mpm::Event, "threads=4");
    let r = s.request(
        "GET",
        "/api/info?a=1&b=%20x",
        &[("X-Custom", "Yes"), ("Host", "example.org")],
        b"",
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    let v = json(&r);
    assert_eq!(v["framework"], "starlette");
    assert_eq!(v["type"], "http");
    assert_eq!(v["asgi"]["version"], "3.0");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["scheme"], "http");
    assert_eq!(v["http_version"], "1.1");
    assert_eq!(v["path"], "/api/info");
    assert_eq!(v["raw_path"], "/api/info");
    assert_eq!(v["root_path"], "/api");
    assert_eq!(v["query_string"], "a=1&b=%20x");
    assert_eq!(v["state"], "hello from lifespan");
    assert_eq!(v["client"][0], "127.0.0.1");
    assert_eq!(v["url_for"], "http://example.org/api/items/7");
    let headers = v["headers"].as_array().unwrap();
    assert!(
        headers.iter().any(|h| h[0] == "x-custom" && h[1] == "Yes"),
        "{}",
        r.text()
    );
    let item = s.get("/api/items/7");
    assert_eq!(item.status, 200);
    assert_eq!(item.text(), r#"{"id":7}"#);
    assert_eq!(item.header("X-Item"), Some("yes"));
    assert_eq!(s.get("/api/items/x").status, 404);
}
