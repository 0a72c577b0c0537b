//! Replacement before retirement without a template (`process-template`
//! off, the default): a daemon process that must be replaced
//! (maximum-requests, restart-interval, inactivity-timeout) serves on while
//! the Apache parent starts its successor, and stops only once the
//! successor serves; one successor of a group starts at a time. What the
//! log shows: `WSGIRS432` the parent starts a successor, `WSGIRS434` it
//! serves in place of its predecessor, `WSGIRS338` a process exits.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::common::{referee_differs, wait_for, StopOnDrop};
use crate::common::{Mpm, Running, Server};
use crate::daemon::{daemon_pids, served_pid, PID_APP};

/// How long a request under recycling may take on a loaded machine (the
/// client's patience, and the group's socket-timeout and connect-timeout).
/// Zero failures is asserted, not latency; a real hang still fails.
const PATIENCE: Duration = Duration::from_secs(120);

/// A daemon group `succ` (`options`) serving `PID_APP` at /app, with the
/// metrics handler at /metrics.
fn server(mpm: Mpm, options: &str) -> Running {
    Server::new(mpm)
        .file("pid.wsgi", PID_APP)
        .conf(&format!(
            "WSGIDaemonProcess succ display-name=%{{GROUP}} {options}\n\
             WSGIScriptAlias /app {{root}}/pid.wsgi process-group=succ\n\
             <Location /metrics>\n    SetHandler wsgi-rs-metrics\n</Location>\n"
        ))
        .start()
}

/// A daemon group `group` (processes=1 threads=2 `options`) serving at /app,
/// in the global application group, a script that runs `preamble` as it is
/// imported and then answers as `PID_APP`. It is not preloaded (the alias
/// names no groups): a request or a successor's warm-up loads it.
fn app_server(mpm: Mpm, preamble: &str, group: &str, options: &str) -> Server {
    let app = format!("{preamble}{PID_APP}");
    Server::new(mpm).file("app.wsgi", &app).conf(&format!(
        "WSGIDaemonProcess {group} processes=1 threads=2 {options} display-name=%{{GROUP}}\n\
         WSGIScriptAlias /app {{root}}/app.wsgi\n\
         <Location /app>\n    WSGIProcessGroup {group}\n    WSGIApplicationGroup %{{GLOBAL}}\n</Location>\n"
    ))
}

/// `clients` threads send requests to /app until `processes` distinct
/// processes have answered (or each client has sent `cap`); every status,
/// and the pids that answered.
fn load_until(
    s: &Running,
    clients: usize,
    processes: usize,
    cap: usize,
) -> (Vec<u16>, HashSet<u32>) {
    let pids = Mutex::new(HashSet::new());
    let enough = AtomicBool::new(false);
    let statuses = std::thread::scope(|scope| {
        let _stop = StopOnDrop(&enough);
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    let mut statuses = Vec::new();
                    while statuses.len() < cap && !enough.load(Ordering::SeqCst) {
                        let r = s.get_patiently("/app", PATIENCE);
                        statuses.push(r.status);
                        if r.status == 200 {
                            let mut seen = pids.lock().unwrap();
                            seen.insert(served_pid(&r));
                            if seen.len() >= processes {
                                enough.store(true, Ordering::SeqCst);
                            }
                        }
                    }
                    statuses
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    (statuses, pids.into_inner().unwrap())
}

/// The value of the metrics sample `name{labels}`, 0 when absent.
fn sample(s: &Running, name: &str, labels: &str) -> f64 {
    let text = s.get("/metrics").text();
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The number after `key` in `line` (`"pid "` → the pid that follows).
fn number_after(line: &str, key: &str) -> Option<u32> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// What the log says of successions, in order.
#[derive(Debug, Default)]
struct Successions {
    /// `+` a successor starting (432), `-` one serving (434).
    events: String,
    /// For each replaced pid: the line number where its successor served.
    served_for: HashMap<u32, usize>,
    /// For each pid that exited for `reason`: the line number.
    exited: HashMap<u32, usize>,
}

/// Reads the log's succession events; `reason`: the exit text counted.
fn successions(log: &str, reason: &str) -> Successions {
    let mut out = Successions::default();
    for (n, line) in log.lines().enumerate() {
        if line.contains("WSGIRS432: (wsgi:succ)") {
            out.events.push('+');
        } else if line.contains("WSGIRS434: daemon process (wsgi:succ)") {
            out.events.push('-');
            if let Some(old) = number_after(line, "in place of pid ") {
                out.served_for.insert(old, n);
            }
        } else if line.contains("WSGIRS338: daemon process (wsgi:succ)") && line.contains(reason) {
            if let Some(pid) = number_after(line, ") pid ") {
                out.exited.insert(pid, n);
            }
        }
    }
    out
}

/// Every process that exited for `reason` had a successor serving before
/// it exited (the log's order), and none stopped without one.
fn assert_replaced_first(s: &Running, reason: &str, what: &str) -> Successions {
    let log = s.error_log();
    let seen = successions(&log, reason);
    assert!(
        !seen.exited.is_empty(),
        "{what}: no exit for {reason}:\n{log}"
    );
    for (pid, exit) in &seen.exited {
        let served = seen.served_for.get(pid);
        assert!(
            served.is_some_and(|at| at < exit),
            "{what}: pid {pid} exited (line {exit}) before a successor served ({served:?}):\n{log}"
        );
    }
    assert!(
        !log.contains("WSGIRS433"),
        "{what}: stopped without a successor:\n{log}"
    );
    seen
}

/// Under concurrent load with maximum-requests=8 and two processes, every
/// MPM, until eight processes have served: no request fails, processes are
/// replaced (and counted once each,
/// none as a crash), every replaced process exits only after its
/// successor serves, and the group's successors start one at a time (each
/// serves before the next starts).
#[test]
fn maximum_requests_replaces_with_a_serving_successor_one_at_a_time() {
    if referee_differs("mod_wsgi stops a process before its replacement starts") {
        return;
    }
    for mpm in Mpm::ALL {
        let s = server(
            mpm,
            &format!(
                "processes=2 threads=4 maximum-requests=8 \
                 socket-timeout={0} connect-timeout={0}",
                PATIENCE.as_secs()
            ),
        );
        let (statuses, pids) = load_until(&s, 6, 8, 5000);
        let failed: Vec<_> = statuses.iter().filter(|&&c| c != 200).collect();
        assert!(failed.is_empty(), "{mpm:?}: failed {failed:?}");
        assert!(pids.len() >= 8, "{mpm:?}: only {pids:?} served");
        let what = format!("{mpm:?}");
        let seen = assert_replaced_first(&s, "maximum requests", &what);
        let mut open = 0;
        for e in seen.events.chars() {
            open += if e == '+' { 1 } else { -1 };
            assert!(
                (0..=1).contains(&open),
                "{mpm:?}: two successors starting at once: {}",
                seen.events
            );
        }
        // Each replaced process counted its restart once, none as a crash
        // (the last exits may still be on their way).
        let exited = seen.exited.len();
        let counted = wait_for(Duration::from_secs(30), || {
            let n = sample(
                &s,
                "wsgi_rs_process_restarts_total",
                "group=\"succ\",reason=\"maximum-requests\"",
            ) as usize;
            (n >= exited).then_some(n)
        });
        assert!(
            counted.is_some(),
            "{mpm:?}: fewer than {exited} restarts counted"
        );
        let crashes = sample(
            &s,
            "wsgi_rs_process_restarts_total",
            "group=\"succ\",reason=\"crash\"",
        );
        assert_eq!(crashes, 0.0, "{mpm:?}");
    }
}

/// restart-interval under a trickle: the process is replaced, every
/// request succeeds, and the replacement served before the old process
/// exited.
#[test]
fn restart_interval_replaces_after_the_successor_serves() {
    if referee_differs("mod_wsgi stops a process before its replacement starts") {
        return;
    }
    let s = server(Mpm::Worker, "processes=1 threads=2 restart-interval=2");
    let first = served_pid(&s.get("/app"));
    let replaced = wait_for(Duration::from_secs(60), || {
        let r = s.get("/app");
        assert_eq!(r.status, 200, "{}", r.text());
        (served_pid(&r) != first).then_some(())
    });
    assert!(replaced.is_some(), "never replaced");
    let exited = wait_for(Duration::from_secs(30), || {
        (!daemon_pids(&s, "succ").contains(&first)).then_some(())
    });
    assert!(exited.is_some(), "{first} still running");
    let seen = assert_replaced_first(&s, "restart interval", "restart-interval");
    assert!(seen.exited.contains_key(&first), "{seen:?}");
}

/// inactivity-timeout: an idle process is replaced only once its successor
/// serves, so the next request finds a started process.
#[test]
fn inactivity_timeout_replaces_after_the_successor_serves() {
    if referee_differs("mod_wsgi stops a process before its replacement starts") {
        return;
    }
    let s = server(Mpm::Prefork, "processes=1 threads=2 inactivity-timeout=2");
    let first = served_pid(&s.get("/app"));
    let exited = wait_for(Duration::from_secs(60), || {
        (!daemon_pids(&s, "succ").contains(&first)).then_some(())
    });
    assert!(exited.is_some(), "{first} still running");
    let seen = assert_replaced_first(&s, "inactivity timeout", "inactivity-timeout");
    assert!(seen.exited.contains_key(&first), "{seen:?}");
    let r = s.get("/app");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(served_pid(&r), first);
}

/// An app reporting its version; `{root}/var/hold` makes a process's start
/// wait (the group imports `hold.py` at start).
const VERSIONED: &str = r#"
VERSION = '{version}'
def application(environ, start_response):
    body = ('version=%s\n' % VERSION).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

/// Imported by each process of the group as it starts: waits while
/// `var/hold` exists.
const HOLD: &str = r#"
import os, time
while os.path.exists('{root}/var/hold'):
    time.sleep(0.05)
"#;

/// A script touched while its process serves on until a successor serves:
/// the process stops at once (it does not wait for the successor), so no
/// request after the touch gets the old code; the successor serves the new.
#[test]
fn a_touch_while_awaiting_a_successor_stops_the_process_at_once() {
    if referee_differs("mod_wsgi stops a process before its replacement starts") {
        return;
    }
    let s = Server::new(Mpm::Event)
        .file("app.wsgi", &VERSIONED.replace("{version}", "one"))
        .file("hold.py", HOLD)
        .conf(
            "WSGIDaemonProcess succ processes=1 threads=2 maximum-requests=2 \
             socket-timeout=60 connect-timeout=60 display-name=%{GROUP}\n\
             WSGIImportScript {root}/hold.py process-group=succ application-group=%{GLOBAL}\n\
             WSGIScriptAlias /app {root}/app.wsgi process-group=succ application-group=%{GLOBAL}\n",
        )
        .start();
    assert_eq!(s.get("/app").text(), "version=one\n");
    let first = daemon_pids(&s, "succ")[0];
    // The successor will wait in its start-up until released.
    std::fs::write(s.path("var/hold"), b"").unwrap();
    assert_eq!(s.get("/app").text(), "version=one\n");
    assert!(
        s.wait_log("WSGIRS432", Duration::from_secs(30)),
        "no successor started:\n{}",
        s.error_log()
    );
    s.write_file("app.wsgi", &VERSIONED.replace("{version}", "two"));
    s.touch("app.wsgi");
    std::thread::scope(|scope| {
        let after = scope.spawn(|| s.get_patiently("/app", PATIENCE));
        let stopped = format!("pid {first} exiting: script");
        let exited = s.wait_log(&stopped, Duration::from_secs(30));
        std::fs::remove_file(s.path("var/hold")).unwrap();
        assert!(
            exited,
            "pid {first} did not stop for the changed script while its successor started:\n{}",
            s.error_log()
        );
        let r = after.join().unwrap();
        assert_eq!((r.status, r.text()), (200, "version=two\n".to_owned()));
    });
    for _ in 0..3 {
        assert_eq!(s.get("/app").text(), "version=two\n");
    }
}

/// An import that leaves a mark (`var/importing-PID`) and then waits while
/// `var/hold` exists.
const SLOW_IMPORT: &str = r#"
import os, time
open('{root}/var/importing-%d' % os.getpid(), 'w').close()
while os.path.exists('{root}/var/hold'):
    time.sleep(0.05)
"#;

/// A successor loads the script its predecessor served before it takes
/// over (the script is not preloaded: the alias names no groups), so no
/// request waits for the application's imports in a fresh process: while
/// the successor's import is held, the old process serves every request.
#[test]
fn a_successor_loads_the_application_before_it_takes_over() {
    if referee_differs("mod_wsgi stops a process before its replacement starts") {
        return;
    }
    let s = app_server(Mpm::Worker, SLOW_IMPORT, "succ", "maximum-requests=2").start();
    let first = served_pid(&s.get("/app"));
    std::fs::write(s.path("var/hold"), b"").unwrap();
    // The second request reaches maximum-requests: a successor starts.
    assert_eq!(served_pid(&s.get("/app")), first);
    let importing = |pid: u32| s.path(&format!("var/importing-{pid}")).exists();
    let successor = wait_for(Duration::from_secs(30), || {
        std::fs::read_dir(s.path("var"))
            .unwrap()
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_prefix("importing-")?.parse::<u32>().ok()
            })
            .find(|&pid| pid != first)
    });
    let Some(successor) = successor else {
        std::fs::remove_file(s.path("var/hold")).unwrap();
        panic!(
            "the successor did not load the application before serving:\n{}",
            s.error_log()
        );
    };
    // Its import is held: the old process serves on.
    for i in 0..5 {
        let r = s.get_patiently("/app", Duration::from_secs(30));
        assert_eq!((r.status, served_pid(&r)), (200, first), "request {i}");
    }
    std::fs::remove_file(s.path("var/hold")).unwrap();
    let took_over = wait_for(Duration::from_secs(60), || {
        let r = s.get("/app");
        assert_eq!(r.status, 200, "{}", r.text());
        (served_pid(&r) == successor).then_some(())
    });
    assert!(
        took_over.is_some(),
        "{successor} never served:\n{}",
        s.error_log()
    );
    assert!(importing(successor));
}

/// `SLOW_IMPORT`, but the import waits only in a successor's warm-up (on
/// the process's main thread), not when a request imports it.
const SLOW_WARM_UP: &str = r#"
import os, threading, time
open('{root}/var/importing-%d' % os.getpid(), 'w').close()
while (threading.current_thread() is threading.main_thread()
       and os.path.exists('{root}/var/hold')):
    time.sleep(0.05)
"#;

/// A graceful restart while a successor is starting: the new generation
/// serves, and the successor retires with the process it was for (both
/// stop once the new generation serves), leaving no process behind.
#[test]
fn a_graceful_restart_retires_a_successor_in_flight() {
    if referee_differs("mod_wsgi stops a process before its replacement starts") {
        return;
    }
    let mut s = app_server(Mpm::Event, SLOW_WARM_UP, "succ", "maximum-requests=2").start();
    let first = served_pid(&s.get("/app"));
    std::fs::write(s.path("var/hold"), b"").unwrap();
    assert_eq!(served_pid(&s.get("/app")), first);
    let successor = wait_for(Duration::from_secs(30), || {
        std::fs::read_dir(s.path("var"))
            .unwrap()
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_prefix("importing-")?.parse::<u32>().ok()
            })
            .find(|&pid| pid != first)
    });
    let Some(successor) = successor else {
        std::fs::remove_file(s.path("var/hold")).unwrap();
        panic!("no successor started:\n{}", s.error_log());
    };
    s.graceful();
    for i in 0..5 {
        let r = s.get_patiently("/app", Duration::from_secs(30));
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
    std::fs::remove_file(s.path("var/hold")).unwrap();
    let settled = wait_for(Duration::from_secs(30), || {
        let pids = daemon_pids(&s, "succ");
        (pids.len() == 1 && !pids.contains(&first) && !pids.contains(&successor)).then_some(pids)
    });
    assert!(
        settled.is_some(),
        "old processes left: {:?} (first {first}, successor {successor}):\n{}",
        daemon_pids(&s, "succ"),
        s.error_log()
    );
    assert_eq!(s.get("/app").status, 200);
}

/// Apache stopping while a successor starts: the successor is stopped and
/// reaped with the group's other processes (it is killed once
/// shutdown-timeout has passed, as it does not answer while it starts).
#[test]
fn apache_stop_stops_a_successor_in_flight() {
    if referee_differs("mod_wsgi stops a process before its replacement starts") {
        return;
    }
    // Outside the server's root, which may go with the server.
    let hold = std::env::temp_dir().join(format!("wsgi-rs-succession-hold-{}", std::process::id()));
    let app = SLOW_WARM_UP.replace("{root}/var/hold", &hold.display().to_string());
    let s = app_server(
        Mpm::Prefork,
        &app,
        "succstop",
        "maximum-requests=2 shutdown-timeout=2",
    )
    .start();
    let first = served_pid(&s.get("/app"));
    std::fs::write(&hold, b"").unwrap();
    assert_eq!(served_pid(&s.get("/app")), first);
    let started = wait_for(Duration::from_secs(30), || {
        std::fs::read_dir(s.path("var"))
            .unwrap()
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_prefix("importing-")?.parse::<u32>().ok()
            })
            .find(|&pid| pid != first)
    });
    let (_, _, log) = s.shutdown(Duration::from_secs(60));
    let needle = format!("{} ", crate::daemon::title("succstop"));
    let gone = wait_for(Duration::from_secs(30), || {
        crate::daemon::pids_with_cmdline(&needle)
            .is_empty()
            .then_some(())
    });
    let left = crate::daemon::pids_with_cmdline(&needle);
    let _ = std::fs::remove_file(&hold);
    assert!(started.is_some(), "no successor started:\n{log}");
    assert!(gone.is_some(), "processes outlived Apache: {left:?}\n{log}");
}

/// An import that leaves a mark (`var/importing-PID`).
const MARKED_IMPORT: &str = r#"
import os
open('{root}/var/importing-%d' % os.getpid(), 'w').close()
"#;

/// The successor of a process replaced for inactivity-timeout does not
/// load the application ahead (the point of the timeout is to free that
/// memory until a request comes, as under mod_wsgi); its first request
/// loads it.
#[test]
fn an_idle_process_successor_loads_nothing_ahead() {
    if referee_differs("mod_wsgi stops a process before its replacement starts") {
        return;
    }
    let s = app_server(Mpm::Event, MARKED_IMPORT, "succ", "inactivity-timeout=2").start();
    let first = served_pid(&s.get("/app"));
    let in_place = format!("serves in place of pid {first}");
    let successor = wait_for(Duration::from_secs(60), || {
        let log = s.error_log();
        let line = log.lines().find(|l| l.contains(&in_place))?;
        number_after(line, ") pid ")
    });
    let Some(successor) = successor else {
        panic!("{first} was not replaced:\n{}", s.error_log());
    };
    let marked = |pid: u32| s.path(&format!("var/importing-{pid}")).exists();
    // It has served nothing yet: a mark would be an import ahead.
    assert!(
        !marked(successor),
        "the successor imported the application ahead"
    );
    let r = s.get("/app");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(marked(served_pid(&r)));
}
