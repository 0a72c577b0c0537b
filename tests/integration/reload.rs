//! Script reloading: with WSGIScriptReloading On (the
//! default) a changed .wsgi file is re-loaded on the next request; with Off
//! the loaded code stays.

use crate::common::{Mpm, Server};

fn version_app(v: &str) -> String {
    format!(
        "def application(environ, start_response):\n    \
         start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
         return [b'{v}']\n"
    )
}

fn reloading_on_picks_up_changes(mpm: Mpm) {
    // Several processes: each must notice the change on its own.
    let s = Server::new(mpm)
        .file("app.wsgi", &version_app("v1"))
        .conf("WSGIScriptAlias /app {root}/app.wsgi\n")
        .start();
    for _ in 0..4 {
        assert_eq!(s.get("/app").text(), "v1");
    }
    s.write_file("app.wsgi", &version_app("v2"));
    s.touch("app.wsgi");
    for _ in 0..4 {
        let r = s.get("/app");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "v2"),
            "change not picked up"
        );
    }
    s.write_file("app.wsgi", &version_app("v3"));
    s.touch("app.wsgi");
    assert_eq!(s.get("/app").text(), "v3", "second change not picked up");
}
per_mpm!(reloading_on_picks_up_changes);

fn reloading_off_keeps_loaded_code(mpm: Mpm) {
    // One process, so the request after the change is served by a process
    // that has already loaded v1 (a fresh process would load v2 legitimately).
    let s = Server::new(mpm)
        .single_process()
        .file("app.wsgi", &version_app("v1"))
        .conf("WSGIScriptAlias /app {root}/app.wsgi\nWSGIScriptReloading Off\n")
        .start();
    assert_eq!(s.get("/app").text(), "v1");
    s.write_file("app.wsgi", &version_app("v2"));
    s.touch("app.wsgi");
    for _ in 0..4 {
        let r = s.get("/app");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "v1"),
            "reloaded despite WSGIScriptReloading Off"
        );
    }
}
per_mpm!(reloading_off_keeps_loaded_code);
