//! The configuration `serve` generates, and `--setup-only` with the start
//! and stop scripts it writes.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

#[test]
fn generated_daemon_and_embedded_configs() {
    let scratch = Scratch::new();
    scratch.write("hello.wsgi", HELLO_APP);
    let daemon = run({
        let mut c = wsgi_rs(scratch.path());
        c.args([
            "serve",
            "hello.wsgi",
            "--setup-only",
            "--module",
            DEBIAN_MOD_WSGI,
        ])
        .args([
            "--processes",
            "3",
            "--threads",
            "4",
            "--maximum-requests",
            "50",
        ])
        .args(["--request-timeout", "20"])
        .arg("--server-root")
        .arg(scratch.path().join("daemon"));
        c
    });
    assert!(daemon.status.success(), "{}", daemon.stderr);
    let text = std::fs::read_to_string(scratch.path().join("daemon/httpd.conf")).unwrap();
    let app_dir = scratch.path().display();
    assert!(text.contains(&format!(
        "WSGIDaemonProcess wsgi-rs processes=3 threads=4 home={app_dir} maximum-requests=50 \
         request-timeout=20\n"
    )));
    assert!(text.contains("WSGIProcessGroup wsgi-rs\n"));
    assert!(text.contains("WSGIApplicationGroup %{GLOBAL}\n"));
    assert!(text.contains(&format!("WSGIScriptAlias \"/\" \"{app_dir}/hello.wsgi\"\n")));
    assert!(text.contains("ErrorLog \""), "setup-only logs to files");

    let embedded = run({
        let mut c = wsgi_rs(scratch.path());
        c.args(["serve", "hello.wsgi", "--setup-only", "--embedded"])
            .args(with_module(&[]))
            .arg("--server-root")
            .arg(scratch.path().join("embedded"));
        c
    });
    assert!(embedded.status.success(), "{}", embedded.stderr);
    let text = std::fs::read_to_string(scratch.path().join("embedded/httpd.conf")).unwrap();
    assert!(!text.contains("WSGIDaemonProcess"));
    assert!(!text.contains("WSGIProcessGroup"));
    assert!(text.contains("WSGIApplicationGroup %{GLOBAL}\n"));
    assert!(text.contains("LoadModule wsgi_rs_module"));
    if running_as_root() {
        assert!(text.contains("User www-data\nGroup www-data\n"));
        let root_mode = std::fs::metadata(scratch.path().join("embedded"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(root_mode & 0o777, 0o755);
        let conf_mode = std::fs::metadata(scratch.path().join("embedded/httpd.conf"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(conf_mode & 0o777, 0o644);
    } else {
        assert!(!text.contains("\nUser "));
    }
}

#[test]
fn setup_only_start_and_stop_scripts_run_apache_in_the_background() {
    let scratch = Scratch::new();
    scratch.write("hello.wsgi", HELLO_APP);
    let root = scratch.server_root();
    let port = free_port();
    let setup = run({
        let mut c = wsgi_rs(scratch.path());
        c.args(["serve", "hello.wsgi", "--setup-only", "--embedded"])
            .args(with_module(&[]))
            .args(["--port", &port.to_string()])
            .arg("--server-root")
            .arg(&root);
        c
    });
    assert!(setup.status.success(), "{}", setup.stderr);
    let printed = |label: &str| -> PathBuf {
        setup
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{label}: ")))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("no {label} path in {}", setup.stdout))
    };
    assert_eq!(printed("config"), root.join("httpd.conf"));
    let (start, stop) = (printed("start"), printed("stop"));
    assert_nothing_left(&root);

    let started = run(Command::new(&start));
    assert!(started.status.success(), "{}", started.stderr);
    let cleanup = Served {
        child: None,
        root: root.clone(),
        port,
    };
    let deadline = Instant::now() + START_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "./start did not bring Apache up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let response = cleanup.get("/");
    assert_eq!(response.body, "hello from the launcher test\n");

    let stopped = run(Command::new(&stop));
    assert!(stopped.status.success(), "{}", stopped.stderr);
    assert_nothing_left(&root);
    let access_log = std::fs::read_to_string(root.join("access_log")).unwrap();
    assert!(access_log.contains("\"GET / HTTP/1.0\" 200"));
    assert!(root.join("error_log").is_file());
    drop(cleanup);
}
