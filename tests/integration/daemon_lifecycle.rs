//! Daemon processes across Apache's own life: graceful and hard
//! restarts leave exactly the configured processes, stopping Apache leaves
//! no process and no socket behind, and a killed Apache parent takes its
//! daemons with it (parent-death signal), under every MPM.
//!
//! Group names carry the test's pid and MPM, so a search of the whole
//! machine for leftovers cannot see another test's daemons.

use std::time::{Duration, Instant};

use crate::common::{referee_differs, wait_for};
use crate::common::{Mpm, Running, Server};
use crate::daemon::{pids_with_cmdline, served_pid, title, wait_daemons, PID_APP};

/// Why these tests cannot find mod_wsgi's daemons the same way.
const TITLE_DIFFERS: &str = "mod_wsgi cuts the process title to the length of argv[0] \
     (too short for these group names) and leaves /proc/PID/comm alone";

fn unique_group(prefix: &str, mpm: Mpm) -> String {
    format!("{prefix}{}{}", mpm.name(), std::process::id())
}

fn lifecycle_server(mpm: Mpm, group: &str) -> Running {
    Server::new(mpm)
        .file("pid.wsgi", PID_APP)
        .conf(&format!(
            "WSGIDaemonProcess {group} processes=2 threads=2 display-name=%{{GROUP}}\n\
             WSGIScriptAlias /app {{root}}/pid.wsgi process-group={group}\n"
        ))
        .start()
}

/// Exactly the group's two processes exist (here and anywhere on the
/// machine: none was orphaned), their title is set, and they serve.
fn assert_group_healthy(s: &Running, group: &str, when: &str) -> Vec<u32> {
    let pids = wait_daemons(s, group, 2, Duration::from_secs(30));
    let everywhere = wait_for(Duration::from_secs(30), || {
        let all = pids_with_cmdline(&title(group));
        (all == pids).then_some(all)
    });
    assert!(
        everywhere.is_some(),
        "{when}: processes titled {} outside this Apache: {:?} (children: {pids:?})",
        title(group),
        pids_with_cmdline(&title(group))
    );
    let comm_title: String = title(group).chars().take(15).collect();
    for pid in &pids {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm.trim_end(), comm_title, "{when}: comm of {pid}");
    }
    for _ in 0..4 {
        let r = s.get("/app");
        assert_eq!(r.status, 200, "{when}: {}", r.text());
        assert!(
            pids.contains(&served_pid(&r)),
            "{when}: served by a stranger"
        );
    }
    pids
}

fn restarts_and_stop_leave_no_orphans(mpm: Mpm) {
    if referee_differs(TITLE_DIFFERS) {
        return;
    }
    let group = unique_group("lc", mpm);
    let mut s = lifecycle_server(mpm, &group);
    let socket = s.path(&format!("run/wsgi_rs.{group}.sock"));
    let started = assert_group_healthy(&s, &group, "after start");
    assert!(socket.exists());

    let start = Instant::now();
    s.graceful();
    let took = start.elapsed();
    // Daemons that ignored the stop would be killed after shutdown-timeout
    // and logged ("did not stop in time", checked below); the bound only
    // catches a restart that hangs, with room for a loaded machine.
    assert!(
        took < Duration::from_secs(8),
        "graceful restart took {took:?}"
    );
    let after_graceful = assert_group_healthy(&s, &group, "after graceful restart");
    assert!(
        started.iter().all(|p| !after_graceful.contains(p)),
        "daemons {started:?} survived a graceful restart: {after_graceful:?}"
    );
    let start = Instant::now();
    s.restart();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(8), "restart took {took:?}");
    let after_restart = assert_group_healthy(&s, &group, "after restart");
    assert!(
        after_graceful.iter().all(|p| !after_restart.contains(p)),
        "daemons {after_graceful:?} survived a restart: {after_restart:?}"
    );
    // The last process's start line may be written just after it served.
    let log = wait_for(Duration::from_secs(30), || {
        let log = s.error_log();
        (log.matches("started with 2 thread(s)").count() >= 6).then_some(log)
    })
    .unwrap_or_else(|| s.error_log());
    assert!(
        !log.contains("AH00291"),
        "old daemons were left for the MPM to find (long lost child)"
    );
    assert!(
        !log.contains("did not stop in time"),
        "a daemon ignored the request to stop"
    );
    // Each generation starts the group's processes once: none is started
    // again by a generation that is going away.
    let starts = log.matches("started with 2 thread(s)").count();
    assert_eq!(starts, 6, "daemon starts over 3 generations:\n{log}");

    let root = s.root().display().to_string();
    let (took, escalated, _log) = s.shutdown(Duration::from_secs(30));
    assert!(!escalated, "Apache had to kill a child to stop");
    assert!(took < Duration::from_secs(8), "stop took {took:?}");
    let leftovers = wait_for(Duration::from_secs(30), || {
        let left: Vec<u32> = pids_with_cmdline(&title(&group))
            .into_iter()
            .chain(pids_with_cmdline(&root))
            .collect();
        left.is_empty().then_some(())
    });
    assert!(
        leftovers.is_some(),
        "left running after Apache stopped: {:?} {:?}",
        pids_with_cmdline(&title(&group)),
        pids_with_cmdline(&root)
    );
    assert!(!socket.exists(), "{} left behind", socket.display());
}
per_mpm!(restarts_and_stop_leave_no_orphans);

fn kill_signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on a process this test started (Apache or its child).
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// SIGKILL to the Apache parent: nobody is left to stop the daemons, so
/// they must notice (parent-death signal) and exit within 3 s.
fn daemons_exit_when_apache_is_killed(mpm: Mpm) {
    if referee_differs(TITLE_DIFFERS) {
        return;
    }
    let group = unique_group("pd", mpm);
    let s = lifecycle_server(mpm, &group);
    let daemons = assert_group_healthy(&s, &group, "after start");
    let workers: Vec<u32> = s
        .child_pids()
        .into_iter()
        .filter(|p| !daemons.contains(p))
        .collect();
    kill_signal(s.pid(), libc::SIGKILL);
    let gone = wait_for(Duration::from_secs(30), || {
        pids_with_cmdline(&title(&group)).is_empty().then_some(())
    });
    // Apache's own children do not watch for their parent's death the same
    // way; they are this test's to clean up (the harness only stops a live
    // parent).
    for pid in workers {
        kill_signal(pid, libc::SIGKILL);
    }
    assert!(
        gone.is_some(),
        "daemons outlived the killed Apache parent: {:?}",
        pids_with_cmdline(&title(&group))
    );
}
per_mpm!(daemons_exit_when_apache_is_killed);
