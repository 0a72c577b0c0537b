//! `wsgi-rs serve` in daemon mode (the default), with our module and with
//! Debian's mod_wsgi, reloading by restarting the daemon process, the
//! active virtualenv as Python home, and a request timeout that keeps the
//! process (`--interrupt-timeout`).

use std::path::Path;

use crate::harness::*;

/// `serve` runs the app in a daemon process by default; `module` picks the
/// module (None: ours) and `loaded` is the LoadModule line to expect.
fn daemon_mode_is_the_default(module: Option<&str>, loaded: &str) {
    let scratch = Scratch::new();
    echo_app(&scratch);
    let mut args = vec!["echo:app", "--python-path", "lib"];
    args.extend(module.iter().flat_map(|m| ["--module", *m]));
    let served = Served::start(&scratch, &args);
    let response = served.get("/");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(field(&response.body, "process_group"), "wsgi-rs");
    assert_eq!(field(&response.body, "helper"), "from the python path");
    let config = std::fs::read_to_string(served.root.join("httpd.conf")).unwrap();
    assert!(config.contains(loaded), "{config}");
    assert!(config.contains("WSGIDaemonProcess"), "{config}");
    // The daemon process is a separate process from Apache's children,
    // and is stopped with them.
    let daemon_pid = field(&response.body, "pid").to_owned();
    assert!(Path::new("/proc").join(&daemon_pid).exists());
    let finished = stop_cleanly(served, libc::SIGINT);
    assert!(
        finished.stdout.contains("(daemon mode;"),
        "{}",
        finished.stdout
    );
    assert!(!Path::new("/proc").join(&daemon_pid).exists());
}

#[test]
fn daemon_mode_is_the_default_and_works_with_debian_mod_wsgi() {
    daemon_mode_is_the_default(
        Some(DEBIAN_MOD_WSGI),
        &format!("LoadModule wsgi_module \"{DEBIAN_MOD_WSGI}\""),
    );
}

#[test]
fn daemon_mode_is_the_default_with_our_module() {
    daemon_mode_is_the_default(None, "LoadModule wsgi_rs_module");
}

/// `--reload-on-changes` in daemon mode: editing an imported module restarts
/// the daemon process, which imports everything afresh.
fn reload_on_changes_restarts_the_daemon(module: Option<&str>) {
    let scratch = Scratch::new();
    echo_app(&scratch);
    let mut args = vec!["echo:app", "--reload-on-changes", "--python-path", "lib"];
    args.extend(module.iter().flat_map(|m| ["--module", *m]));
    let served = Served::start(&scratch, &args);
    let before = served.get("/");
    assert_eq!(field(&before.body, "version"), "one");
    edit_echo_module(&scratch);
    let after = wait_for_version(&served, "two, edited");
    assert_ne!(field(&before.body, "pid"), field(&after.body, "pid"));
    stop_cleanly(served, libc::SIGTERM);
}

#[test]
fn reload_on_changes_restarts_the_daemon_process() {
    reload_on_changes_restarts_the_daemon(Some(DEBIAN_MOD_WSGI));
}

#[test]
fn reload_on_changes_restarts_our_daemon_process() {
    reload_on_changes_restarts_the_daemon(None);
}

#[test]
fn python_home_defaults_to_the_active_virtualenv() {
    let scratch = Scratch::new();
    let venv = make_venv(&scratch);
    scratch.write(
        "prefix.wsgi",
        r#"
import sys
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [sys.prefix.encode()]
"#,
    );
    let served = Served::start_with(
        &scratch,
        &["prefix.wsgi", "--module", DEBIAN_MOD_WSGI],
        |c| {
            c.env("VIRTUAL_ENV", &venv);
        },
    );
    assert_eq!(served.get("/").body, venv.to_string_lossy());
    let config = std::fs::read_to_string(served.root.join("httpd.conf")).unwrap();
    assert!(config.contains(&format!("WSGIPythonHome \"{}\"", venv.display())));
    assert!(config.contains(&format!("python-home={}", venv.display())));
    let finished = stop_cleanly(served, libc::SIGINT);
    assert!(finished.stderr.contains("using the active virtualenv"));
}

/// `/spin` runs Python (short sleeps) until it is interrupted; anything
/// else answers the daemon process's pid.
const SPIN_APP: &str = r#"
import os, time
def application(environ, start_response):
    if environ.get('PATH_INFO') == '/spin':
        while True:
            time.sleep(0.02)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('pid=%d' % os.getpid()).encode()]
"#;

/// `--interrupt-timeout` reaches the daemon group's options, and with it a
/// request past `--request-timeout` is answered 504 while its daemon
/// process serves on: the next request gets the same pid (without it, the
/// process is restarted and the pid changes).
#[test]
fn interrupt_timeout_keeps_the_daemon_process() {
    let scratch = Scratch::new();
    scratch.write("spin.wsgi", SPIN_APP);
    let served = Served::start(
        &scratch,
        &[
            "spin.wsgi",
            "--threads",
            "1",
            "--request-timeout",
            "1",
            "--interrupt-timeout",
            "30",
        ],
    );
    let config = std::fs::read_to_string(served.root.join("httpd.conf")).unwrap();
    assert!(
        config.contains(" request-timeout=1 interrupt-timeout=30"),
        "{config}"
    );
    let before = served.get("/");
    assert_eq!(before.status, 200, "{}", before.body);
    let stuck = served.get("/spin");
    assert_eq!(stuck.status, 504, "{}", stuck.body);
    let after = served.get("/");
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(
        field(&after.body, "pid"),
        field(&before.body, "pid"),
        "the daemon process was restarted"
    );
    stop_cleanly(served, libc::SIGINT);
}
