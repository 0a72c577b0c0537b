//! `wsgi-rs serve` in embedded mode: scripts, module callables, Paste
//! Deploy files, the MPMs, and reloading an edited module.

use crate::harness::*;

#[test]
fn serves_a_wsgi_script_embedded_and_sigint_leaves_nothing_behind() {
    let scratch = Scratch::new();
    scratch.write("hello.wsgi", HELLO_APP);
    let served = Served::start(&scratch, &["hello.wsgi", "--embedded"]);
    let response = served.get("/");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "hello from the launcher test\n");
    let port = served.port;
    let finished = stop_cleanly(served, libc::SIGINT);
    assert!(
        finished
            .stdout
            .contains(&format!("at http://127.0.0.1:{port}/ (embedded mode")),
        "{}",
        finished.stdout
    );
    // The access log goes to the terminal's stdout.
    assert!(
        finished.stdout.contains("\"GET / HTTP/1.0\" 200"),
        "{}",
        finished.stdout
    );
    assert!(finished.stderr.contains("SIGINT received, stopping Apache"));
}

#[test]
fn serves_a_module_callable_with_options_and_sigterm_stops_it() {
    let scratch = Scratch::new();
    echo_app(&scratch);
    scratch.write("static/style.css", "body { color: teal }\n");
    let served = Served::start(
        &scratch,
        &[
            "echo:app",
            "--embedded",
            "--mount-point",
            "/app/",
            "--python-path",
            "lib",
            "--url-alias",
            "/static",
            "static",
            "--pass-authorization",
            "--processes",
            "2",
            "--threads",
            "3",
        ],
    );
    let response = get(
        served.port,
        "/app/some/where",
        "Authorization: Bearer xyz\r\n",
    );
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(field(&response.body, "script_name"), "/app");
    assert_eq!(field(&response.body, "path_info"), "/some/where");
    assert_eq!(field(&response.body, "authorization"), "Bearer xyz");
    assert_eq!(field(&response.body, "helper"), "from the python path");
    let css = served.get("/static/style.css");
    assert_eq!(css.status, 200);
    assert_eq!(css.body, "body { color: teal }\n");
    assert!(css.head.contains("text/css"), "{}", css.head);
    assert_eq!(served.get("/elsewhere").status, 404);
    let config = std::fs::read_to_string(served.root.join("httpd.conf")).unwrap();
    assert!(config.contains("ThreadsPerChild 3\n"));
    assert!(config.contains("MaxRequestWorkers 6\n"));
    stop_cleanly(served, libc::SIGTERM);
}

#[test]
fn serves_a_paste_deploy_ini() {
    let scratch = Scratch::new();
    scratch.write(
        "factory.py",
        r#"
def make_app(global_config, **settings):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [("greeting=" + settings["greeting"]).encode()]
    return app
"#,
    );
    scratch.write(
        "site.ini",
        "[app:main]\nuse = call:factory:make_app\ngreeting = hello from paste\n",
    );
    let served = Served::start(&scratch, &["site.ini", "--embedded"]);
    let response = served.get("/");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body, "greeting=hello from paste");
    stop_cleanly(served, libc::SIGINT);
}

#[test]
fn serves_under_the_worker_and_prefork_mpms() {
    for mpm in ["worker", "prefork"] {
        let scratch = Scratch::new();
        scratch.write("hello.wsgi", HELLO_APP);
        let served = Served::start(&scratch, &["hello.wsgi", "--embedded", "--mpm", mpm]);
        assert_eq!(served.get("/").status, 200, "{mpm}");
        let config = std::fs::read_to_string(served.root.join("httpd.conf")).unwrap();
        assert!(
            config.contains(&format!("LoadModule mpm_{mpm}_module")),
            "{mpm}"
        );
        stop_cleanly(served, libc::SIGINT);
    }
}

#[test]
fn reload_on_changes_picks_up_an_edited_module_embedded() {
    let scratch = Scratch::new();
    echo_app(&scratch);
    let served = Served::start(
        &scratch,
        &[
            "echo:app",
            "--embedded",
            "--reload-on-changes",
            "--python-path",
            "lib",
        ],
    );
    let before = served.get("/");
    assert_eq!(field(&before.body, "version"), "one");
    edit_echo_module(&scratch);
    wait_for_version(&served, "two, edited");
    let finished = stop_cleanly(served, libc::SIGINT);
    assert!(
        finished
            .stderr
            .contains("wsgi-rs: reloading, changed: echo"),
        "{}",
        finished.stderr
    );
}
