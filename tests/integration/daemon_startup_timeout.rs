//! `startup-timeout`: a daemon process whose application keeps failing to
//! load is replaced once the timeout has passed since it started.

use std::time::{Duration, Instant};

use crate::common::{module, Module, Mpm, Server};

/// Pids of processes whose title is `(wsgi:NAME)`.
fn daemon_pids(name: &str) -> Vec<u32> {
    let title = format!("(wsgi:{name})");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.starts_with(title.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn failing_application_is_restarted_after_startup_timeout() {
    if module() == Module::ModWsgi {
        return; // the log wording is ours
    }
    let name = format!("st{}", std::process::id());
    let s = Server::new(Mpm::Event)
        .file("broken.wsgi", "raise RuntimeError('cannot start yet')\n")
        .conf(&format!(
            "WSGIDaemonProcess {name} threads=2 startup-timeout=1 display-name=%{{GROUP}}\n\
             WSGIProcessGroup {name}\n\
             WSGIScriptAlias /b {{root}}/broken.wsgi\n"
        ))
        .start();
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        if let Some(&pid) = daemon_pids(&name).first() {
            break pid;
        }
        assert!(Instant::now() < deadline, "no daemon process");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(s.get("/b").status, 500);
    assert!(s.wait_log("cannot start yet", Duration::from_secs(30)));
    assert!(
        s.wait_log("startup timeout", Duration::from_secs(30)),
        "{}",
        s.error_log()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = daemon_pids(&name);
        if !now.is_empty() && !now.contains(&first) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "process {first} was not replaced"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
