//! Daemon processes lost under load, and replaced for memory: a SIGKILLed
//! process fails only the requests it was running, each with 502 at once,
//! and its replacement serves soon after; a process whose resident memory
//! passes `maximum-memory=` is replaced gracefully, logged with the figure
//! and counted as a `memory` restart. Ours only (mod_wsgi answers 500 for a
//! dead daemon and has no maximum-memory).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::common::{referee_differs, wait_for, Mpm, Server, StopOnDrop};
use crate::daemon::{daemon_pids, served_pid, PID_APP};

/// What the load's clients saw.
#[derive(Default)]
struct Seen {
    /// Statuses other than 200, in order.
    failures: Vec<u16>,
    /// When each pid first served, for the replacement's first response.
    first_served: Vec<(u32, Instant)>,
    /// Responses in all.
    total: usize,
}

/// Under load from 8 clients, the processes of a group of two are SIGKILLed
/// in turn, six times (the issue's scenario): every failure is a 502, there
/// are no more of them per kill than the killed process had threads (its
/// requests in flight), and a replacement with a new pid serves each time
/// (how soon is printed: the figure for the README, not an assertion).
#[test]
fn sigkill_under_load_fails_only_requests_in_flight() {
    sigkill_under_load("");
}

/// The same with the group's processes forked by its template process,
/// which replaces them itself.
#[test]
fn sigkill_under_load_with_a_template_process() {
    sigkill_under_load("process-template=On");
}

fn sigkill_under_load(options: &str) {
    if referee_differs("mod_wsgi 4.9.4 answers 500 for a daemon that died") {
        return;
    }
    const THREADS: usize = 4;
    const KILLS: usize = 6;
    const SETTLED: Duration = Duration::from_millis(1500);
    const SPACING: Duration = Duration::from_millis(2500);
    let s = Server::new(Mpm::Event)
        .file("pid.wsgi", PID_APP)
        .conf(&format!(
            "WSGIDaemonProcess load processes=2 threads={THREADS} {options} display-name=%{{GROUP}}\n\
             WSGIScriptAlias /app {{root}}/pid.wsgi process-group=load\n"
        ))
        .start();
    let seen = Mutex::new(Seen::default());
    let stop = AtomicBool::new(false);
    let mut figures = Vec::new();
    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        for _ in 0..8 {
            scope.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    // Short requests, some in flight at any moment.
                    let r = s.get("/app/sleep/0.02");
                    let at = Instant::now();
                    let mut seen = seen.lock().unwrap();
                    seen.total += 1;
                    if r.status == 200 {
                        let pid = served_pid(&r);
                        if !seen.first_served.iter().any(|(p, _)| *p == pid) {
                            seen.first_served.push((pid, at));
                        }
                    } else {
                        seen.failures.push(r.status);
                    }
                }
            });
        }
        // The load is running on both processes.
        let originals = wait_for(Duration::from_secs(30), || {
            let seen = seen.lock().unwrap();
            (seen.first_served.len() >= 2).then(|| [seen.first_served[0].0, seen.first_served[1].0])
        })
        .expect("the load never reached both processes");
        let mut current = originals.to_vec();
        let mut last_kill: Option<Instant> = None;
        for round in 0..KILLS {
            let victim = current[round % 2];
            // The issue's scenario: six kills in 15 s. Faster, by design, a
            // process lost within a second of its start counts towards the
            // crash-loop back-off, and a burst of deaths is reaped at the
            // MPM's one-second pace (see httpd/child_exit.rs).
            let ready = wait_for(Duration::from_secs(30), || {
                let spaced = last_kill.is_none_or(|t| t.elapsed() >= SPACING);
                (spaced && age(victim)? >= SETTLED).then_some(())
            });
            assert!(
                ready.is_some(),
                "process {victim} is gone before it was killed"
            );
            let (failed_before, known) = {
                let seen = seen.lock().unwrap();
                let known: BTreeSet<u32> = seen.first_served.iter().map(|(p, _)| *p).collect();
                (seen.failures.len(), known)
            };
            let killed = Instant::now();
            last_kill = Some(killed);
            // SAFETY: killing a daemon process this test's Apache started.
            unsafe { libc::kill(victim as i32, libc::SIGKILL) };
            let replacement = wait_for(Duration::from_secs(30), || {
                let seen = seen.lock().unwrap();
                seen.first_served
                    .iter()
                    .find(|(p, at)| !known.contains(p) && *at >= killed)
                    .map(|(p, at)| (*p, *at - killed))
            });
            let Some((pid, after)) = replacement else {
                panic!(
                    "no new process served within 30 s of killing {victim}:\n{}",
                    s.error_log()
                )
            };
            figures.push(after);
            current[round % 2] = pid;
            eprintln!("killed {victim}: replacement {pid} served after {after:?}");
            let failures = seen.lock().unwrap().failures[failed_before..].to_vec();
            assert!(
                failures.len() <= THREADS,
                "more failures than requests in flight in the killed process: {failures:?}"
            );
            assert!(
                failures.iter().all(|&code| code == 502),
                "failures other than 502: {failures:?}"
            );
        }
        stop.store(true, Ordering::SeqCst);
    });
    let seen = seen.into_inner().unwrap();
    assert!(
        seen.failures.iter().all(|&code| code == 502),
        "failures other than 502: {:?}",
        seen.failures
    );
    eprintln!(
        "{} responses, {} failed (all 502), replacements served after {figures:?}",
        seen.total,
        seen.failures.len()
    );
}

/// How long process `pid` has run (None once it is gone).
fn age(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22, counted after the command name in parentheses (field 2).
    let start_ticks: u64 = stat[stat.rfind(')')? + 2..]
        .split(' ')
        .nth(19)?
        .parse()
        .ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(Duration::from_secs_f64(
        (uptime - start_ticks as f64 / hz).max(0.0),
    ))
}

/// `/grow` keeps 64 MiB more resident per request; anything else reports
/// the pid.
const GROW_APP: &str = r#"
import os
kept = []
def application(environ, start_response):
    if environ.get('PATH_INFO') == '/grow':
        kept.append(b'x' * (64 << 20))
    body = ('pid=%d\n' % os.getpid()).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

/// maximum-memory=128 MiB: a process that grows past it is replaced (the
/// request that grew it is answered normally), the log gives the figure,
/// and the metrics count one `memory` restart.
#[test]
fn maximum_memory_replaces_the_process_gracefully() {
    if referee_differs("mod_wsgi has no maximum-memory") {
        return;
    }
    let s = Server::new(Mpm::Worker)
        .file("grow.wsgi", GROW_APP)
        .conf(
            "WSGIDaemonProcess mem processes=1 threads=2 maximum-memory=134217728 \
             display-name=%{GROUP}\n\
             WSGIScriptAlias /app {root}/grow.wsgi process-group=mem\n\
             <Location /metrics>\n    SetHandler wsgi-rs-metrics\n    Require ip 127.0.0.1\n</Location>\n",
        )
        .start();
    let before = served_pid(&s.get("/app"));
    for _ in 0..3 {
        let r = s.get("/app/grow");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let after = wait_for(Duration::from_secs(30), || {
        let now = daemon_pids(&s, "mem");
        (now.len() == 1 && now[0] != before).then(|| now[0])
    });
    assert!(
        after.is_some(),
        "process {before} not replaced: {:?}",
        daemon_pids(&s, "mem")
    );
    assert!(s.wait_log("WSGIRS442", Duration::from_secs(30)));
    let log = s.error_log();
    let line = log.lines().find(|l| l.contains("WSGIRS442")).unwrap();
    let resident: u64 = line
        .split("resident memory ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no figure in: {line}"));
    assert!(resident > 134_217_728, "{line}");
    assert!(line.contains(&format!("pid {before}")), "{line}");
    let r = s.get("/app");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(served_pid(&r), before);
    let counted = wait_for(Duration::from_secs(30), || {
        s.get("/metrics")
            .text()
            .contains("wsgi_rs_process_restarts_total{group=\"mem\",reason=\"memory\"} 1")
            .then_some(())
    });
    assert!(counted.is_some(), "{}", s.get("/metrics").text());
}
