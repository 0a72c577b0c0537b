//! Daemon groups under `apache2 -X` (httpd's single-process debug mode),
//! where no MPM main loop reaps or replaces daemon processes: a process
//! that exits is replaced, and stopping Apache stops the group and removes
//! its socket.

use std::time::Duration;

use crate::common::{referee_differs, wait_for, Mpm, Server};
use crate::daemon::{pids_with_cmdline, served_pid, title, PID_APP};

/// Under `-X`, a group with `maximum-requests=1` serves request after
/// request, from new processes as the ones before recycle (each replaced
/// by a successor the `-X` supervisor starts); SIGTERM to Apache then leaves no daemon process and no
/// socket behind.
fn debug_mode_supervises_daemon_groups(mpm: Mpm) {
    if referee_differs("mod_wsgi 4.9.4 never replaces a daemon process that exits under httpd -X") {
        return;
    }
    let group = format!("debug{}", mpm.name());
    let mut s = Server::new(mpm)
        .debug_mode()
        .file("pid.wsgi", PID_APP)
        .conf(&format!(
            "WSGIDaemonProcess {group} processes=1 threads=2 maximum-requests=1 \
             display-name=%{{GROUP}}\n\
             WSGIScriptAlias /app {{root}}/pid.wsgi process-group={group}\n"
        ))
        .start();
    // A recycled process serves on until its successor does (see
    // daemon_succession): requests go on until three processes served.
    let mut served = Vec::new();
    let replaced = wait_for(Duration::from_secs(60), || {
        let r = s.get("/app");
        assert_eq!(
            r.status,
            200,
            "request {}: {}\n{}",
            served.len(),
            r.text(),
            s.error_log()
        );
        served.push(served_pid(&r));
        let mut distinct = served.clone();
        distinct.sort_unstable();
        distinct.dedup();
        (distinct.len() >= 3).then_some(())
    });
    assert!(
        replaced.is_some(),
        "a recycled process was not replaced: {served:?}"
    );
    s.send_signal(libc::SIGTERM);
    assert!(
        s.wait_exit(Duration::from_secs(30)),
        "apache2 -X did not exit on SIGTERM"
    );
    let needle = format!("{} ", title(&group));
    let gone = wait_for(Duration::from_secs(30), || {
        pids_with_cmdline(&needle).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "daemon processes outlived apache2 -X: {:?}",
        pids_with_cmdline(&needle)
    );
    let socket = s.path(&format!("run/wsgi_rs.{group}.sock"));
    let removed = wait_for(Duration::from_secs(10), || (!socket.exists()).then_some(()));
    assert!(removed.is_some(), "{} left behind", socket.display());
}
per_mpm!(debug_mode_supervises_daemon_groups);
