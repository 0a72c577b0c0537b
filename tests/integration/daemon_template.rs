//! `process-template=On` (ours only): a daemon group's processes are forked
//! from a template process that started Python and imported the group's
//! start-up scripts once; a recycled process is replaced only once its
//! successor serves, one replacement at a time per group; a changed script
//! replaces the template, so the new code is imported.

use std::collections::HashSet;
use std::fs;
use std::time::Duration;

use crate::common::{referee_differs, wait_for};
use crate::common::{Mpm, Running, Server};
use crate::daemon::{field, served_pid};

/// An app that leaves a mark (its pid) in `var/imports` each time its
/// script is imported, and answers with its version and pid.
fn marking_app(version: &str) -> String {
    format!(
        r#"
import os
with open('{{root}}/var/imports', 'a') as f:
    f.write('%d\n' % os.getpid())
VERSION = '{version}'
def application(environ, start_response):
    body = ('version=%s\npid=%d\n' % (VERSION, os.getpid())).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
"#
    )
}

/// A group `tpl` with a template, serving `marking_app` at /app (preloaded:
/// both groups are named).
fn template_server(mpm: Mpm, options: &str) -> Running {
    Server::new(mpm)
        .file("app.wsgi", &marking_app("one"))
        .conf(&format!(
            "WSGIDaemonProcess tpl process-template=On display-name=%{{GROUP}} {options}\n\
             WSGIScriptAlias /app {{root}}/app.wsgi process-group=tpl application-group=%{{GLOBAL}}\n\
             <Location /metrics>\n    SetHandler wsgi-rs-metrics\n</Location>\n"
        ))
        .start()
}

/// The pids that imported the script so far.
fn imports(s: &Running) -> Vec<u32> {
    fs::read_to_string(s.path("var/imports"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

/// How long a request under recycling may take on a loaded machine: the
/// client's patience and the group's socket-timeout and connect-timeout (a
/// request retries while processes that are being replaced reject it).
/// Zero failures is asserted, not latency; a real hang still fails.
const PATIENCE: Duration = Duration::from_secs(120);

/// `clients` threads send `each` requests to /app (each waits up to
/// `PATIENCE`); returns every status and the pids that answered.
fn load(s: &Running, clients: usize, each: usize) -> (Vec<u16>, HashSet<u32>) {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    (0..each)
                        .map(|_| {
                            let r = s.get_patiently("/app", PATIENCE);
                            let pid = (r.status == 200).then(|| served_pid(&r));
                            (r.status, pid)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        let mut pids = HashSet::new();
        for h in handles {
            for (status, pid) in h.join().unwrap() {
                statuses.push(status);
                pids.extend(pid);
            }
        }
        (statuses, pids)
    })
}

/// The value of the metrics sample `name{labels}` (labels as the
/// exposition writes them), 0 when absent.
fn sample(s: &Running, name: &str, labels: &str) -> f64 {
    let text = s.get("/metrics").text();
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The log's replacement events in order: `+` a successor starting, `-`
/// one serving in place of its predecessor.
fn replacements(log: &str) -> String {
    log.lines()
        .filter_map(|l| {
            if l.contains("WSGIRS423") {
                Some('+')
            } else if l.contains("WSGIRS424") && !l.contains("in place of pid 0 ") {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// Under load with maximum-requests=8 (jittered) and two processes, every
/// MPM: no request fails, processes really are replaced many times, the
/// script is imported once (in the template, which serves nothing), and
/// replacements of the group never overlap: each successor serves before
/// the next one starts.
#[test]
fn recycles_under_load_from_one_import_one_at_a_time() {
    if referee_differs("process-template is ours") {
        return;
    }
    for mpm in Mpm::ALL {
        let s = template_server(
            mpm,
            &format!(
                "processes=2 threads=4 maximum-requests=8 maximum-requests-jitter=4 \
                 socket-timeout={0} connect-timeout={0}",
                PATIENCE.as_secs()
            ),
        );
        let (statuses, pids) = load(&s, 6, 50);
        let failed: Vec<_> = statuses.iter().filter(|&&c| c != 200).collect();
        assert!(failed.is_empty(), "{mpm:?}: failed {failed:?}");
        // 300 requests at most 12 per process: at least 25 processes.
        assert!(
            pids.len() >= 25,
            "{mpm:?}: only {} processes served",
            pids.len()
        );
        let imported = imports(&s);
        assert_eq!(imported.len(), 1, "{mpm:?}: imported by {imported:?}");
        assert!(!pids.contains(&imported[0]), "{mpm:?}: the template served");
        // Each replaced process counted its restart once, none as a crash.
        let restarts = sample(
            &s,
            "wsgi_rs_process_restarts_total",
            "group=\"tpl\",reason=\"maximum-requests\"",
        ) as usize;
        assert!(
            (pids.len() - 2..=pids.len()).contains(&restarts),
            "{mpm:?}: {restarts} restarts counted for {} processes",
            pids.len()
        );
        let crashes = sample(
            &s,
            "wsgi_rs_process_restarts_total",
            "group=\"tpl\",reason=\"crash\"",
        );
        assert_eq!(crashes, 0.0, "{mpm:?}");
        let events = replacements(&s.error_log());
        assert!(events.len() >= 40, "{mpm:?}: {events}");
        let mut open = 0;
        for e in events.chars() {
            open += if e == '+' { 1 } else { -1 };
            assert!(
                (0..=1).contains(&open),
                "{mpm:?}: overlapping replacements: {events}"
            );
        }
    }
}

/// Touching the script with the template: the template is replaced and
/// imports the new code; no request fails meanwhile.
#[test]
fn touch_reload_imports_the_new_code() {
    if referee_differs("process-template is ours") {
        return;
    }
    let s = template_server(Mpm::Event, "processes=2 threads=2");
    let r = s.get("/app");
    assert_eq!(field(&r.text(), "version").as_deref(), Some("one"));
    s.write_file("app.wsgi", &marking_app("two"));
    s.touch("app.wsgi");
    let reloaded = wait_for(Duration::from_secs(30), || {
        let r = s.get("/app");
        assert_eq!(r.status, 200, "{}", r.text());
        (field(&r.text(), "version").as_deref() == Some("two")).then_some(())
    });
    assert!(reloaded.is_some(), "the new code never served");
    for _ in 0..20 {
        let r = s.get("/app");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(field(&r.text(), "version").as_deref(), Some("two"));
    }
    assert_eq!(imports(&s).len(), 2, "{:?}", imports(&s));
}

/// restart-interval with the template: under a trickle the process is
/// replaced, every request succeeds, and the replacement was started and
/// serving before the old process stopped (the log says so).
#[test]
fn restart_interval_hands_over_to_a_ready_successor() {
    if referee_differs("process-template is ours") {
        return;
    }
    let s = template_server(Mpm::Worker, "processes=1 threads=2 restart-interval=1");
    let first = served_pid(&s.get("/app"));
    let replaced = wait_for(Duration::from_secs(30), || {
        let r = s.get("/app");
        assert_eq!(r.status, 200, "{}", r.text());
        (served_pid(&r) != first).then_some(())
    });
    assert!(replaced.is_some(), "never replaced");
    let log = s.error_log();
    assert!(
        log.contains(&format!("in place of pid {first} ")),
        "no hand-over from {first}: {log}"
    );
}

/// A template that cannot start (`home=` missing) fails the group as a
/// process would: 503 at once with the cause in the log, and the group
/// serves once a later start succeeds.
#[test]
fn a_template_that_cannot_start_is_503_then_recovers() {
    if referee_differs("process-template is ours") {
        return;
    }
    let s = Server::new(Mpm::Worker)
        .file("app.wsgi", &marking_app("one"))
        .conf(
            "WSGIDaemonProcess homeless home={root}/later processes=2 threads=1 \
             process-template=On socket-timeout=60 display-name=%{GROUP}\n\
             WSGIScriptAlias /app {root}/app.wsgi process-group=homeless\n",
        )
        .start();
    assert!(
        s.wait_log("WSGIRS420", Duration::from_secs(30)),
        "the template's failure is not logged:\n{}",
        s.error_log()
    );
    let start = std::time::Instant::now();
    let r = s.get("/app");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let log = s.error_log();
    assert!(
        log.lines()
            .any(|l| l.contains("'homeless' cannot start") && l.contains("chdir")),
        "no line gives the group and the cause:\n{log}"
    );
    fs::create_dir(s.path("later")).unwrap();
    let served = wait_for(Duration::from_secs(90), || {
        let r = s.get("/app");
        (r.status == 200).then_some(())
    });
    assert!(served.is_some(), "never recovered:\n{}", s.error_log());
}

/// maximum-requests stays exact with the template: 20 sequential requests
/// to one process with maximum-requests=5 are served in four runs of five
/// by four processes, though each successor was started ahead.
#[test]
fn maximum_requests_stays_exact() {
    if referee_differs("process-template is ours") {
        return;
    }
    let s = template_server(Mpm::Prefork, "processes=1 threads=2 maximum-requests=5");
    let pids: Vec<u32> = (0..20)
        .map(|i| {
            let r = s.get("/app");
            assert_eq!(r.status, 200, "request {i}: {}", r.text());
            served_pid(&r)
        })
        .collect();
    for run in pids.chunks(5) {
        assert!(run.iter().all(|&p| p == run[0]), "{pids:?}");
    }
    let distinct: HashSet<u32> = pids.iter().copied().collect();
    assert_eq!(distinct.len(), 4, "{pids:?}");
}

/// The template switches user, home and umask before Python starts, so the
/// processes forked from it run as the configured user; an application
/// group other than `%{GLOBAL}` (a sub-interpreter, which CPython does not
/// carry across a fork) is made in each process and works there.
#[test]
fn forked_processes_keep_identity_and_sub_interpreters() {
    if referee_differs("process-template is ours") {
        return;
    }
    let app = r#"
import os, mod_wsgi
def application(environ, start_response):
    mask = os.umask(0o022)
    os.umask(mask)
    body = ('uid=%d\ngid=%d\ncwd=%s\numask=%04o\ngroup=%s\nppid=%d\npid=%d\n' % (
        os.getuid(), os.getgid(), os.getcwd(), mask,
        environ['mod_wsgi.application_group'], os.getppid(), os.getpid(),
    )).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;
    let s = Server::new(Mpm::Event)
        .file("id.wsgi", app)
        .file("home/README", "the daemon's home\n")
        .conf(
            "WSGIDaemonProcess ident user=nobody group=nogroup home={root}/home umask=0077 \
             threads=2 process-template=On display-name=%{GROUP}\n\
             WSGIScriptAlias /id {root}/id.wsgi process-group=ident\n",
        )
        .start();
    let r = s.get("/id");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.text();
    let get = |k: &str| field(&body, k).unwrap_or_else(|| panic!("no {k} in {body}"));
    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    let nobody = passwd
        .lines()
        .find_map(|l| l.strip_prefix("nobody:x:"))
        .and_then(|rest| rest.split(':').next())
        .expect("no nobody in /etc/passwd");
    assert_eq!(get("uid"), nobody, "{body}");
    assert_eq!(get("cwd"), s.path("home").display().to_string());
    assert_eq!(get("umask"), "0077");
    assert!(
        !get("group").is_empty(),
        "ran in the main interpreter: {body}"
    );
    // Forked by the template (a child of Apache), not by Apache itself.
    let ppid: u32 = get("ppid").parse().unwrap();
    assert_ne!(ppid, s.pid(), "{body}");
    assert!(s.child_pids().contains(&ppid), "{body}");
    let title = fs::read_to_string(format!("/proc/{ppid}/cmdline")).unwrap_or_default();
    assert!(title.starts_with("(wsgi:ident) template"), "{title:?}");
    let pid = get("pid");
    let own = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        own.starts_with("(wsgi:ident)") && !own.contains("template"),
        "{own:?}"
    );
}

/// Apache restarts: across a graceful one the group keeps serving; a hard
/// one stops the template with its processes and the new generation starts
/// a fresh one, which imports the script again and serves; no old template
/// is left behind.
#[test]
fn apache_restarts_replace_the_template() {
    if referee_differs("process-template is ours") {
        return;
    }
    let mut s = template_server(Mpm::Event, "processes=2 threads=2");
    assert_eq!(s.get("/app").status, 200);
    s.graceful();
    for _ in 0..5 {
        let r = s.get("/app");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let before = imports(&s).len();
    s.restart();
    let r = s.get("/app");
    assert_eq!(r.status, 200, "{}", r.text());
    let imported = wait_for(Duration::from_secs(30), || {
        (imports(&s).len() > before).then_some(())
    });
    assert!(imported.is_some(), "not imported again: {:?}", imports(&s));
    let templates = wait_for(Duration::from_secs(30), || {
        let n = s
            .child_pids()
            .into_iter()
            .filter(|p| {
                fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.starts_with("(wsgi:tpl) template"))
            })
            .count();
        (n == 1).then_some(())
    });
    assert!(templates.is_some(), "old templates still running");
}

/// A process forked from the template that is killed is replaced by the
/// template at once: the group serves again (through the other process
/// meanwhile) and the loss counts as a crash on the metrics board.
#[test]
fn a_killed_process_is_replaced_by_the_template() {
    if referee_differs("process-template is ours") {
        return;
    }
    let s = template_server(Mpm::Prefork, "processes=2 threads=2");
    let victim = served_pid(&s.get("/app"));
    // SAFETY: signalling a daemon process of this test's own Apache.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let crashed = wait_for(Duration::from_secs(30), || {
        let n = sample(
            &s,
            "wsgi_rs_process_restarts_total",
            "group=\"tpl\",reason=\"crash\"",
        );
        (n == 1.0).then_some(())
    });
    assert!(crashed.is_some(), "the crash was not counted");
    let log = s.error_log();
    assert!(
        log.contains(&format!(
            "WSGIRS428: daemon process (wsgi:tpl) pid {victim} exited"
        )),
        "{log}"
    );
    for _ in 0..10 {
        let r = s.get("/app");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_ne!(served_pid(&r), victim);
    }
    assert_eq!(imports(&s).len(), 1, "{:?}", imports(&s));
}
