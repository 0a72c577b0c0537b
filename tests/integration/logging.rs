//! Logging: print(), sys.stderr and wsgi.errors reach the
//! Apache error log; the `mod_wsgi` module is importable; (ours only) Python
//! log levels map onto Apache levels through mod_wsgi.ApacheLogHandler.

use std::time::Duration;

use crate::common::{module, Environ, Module, Mpm, Server};

#[test]
fn print_stderr_and_wsgi_errors_reach_error_log() {
    let app = r#"
import sys
def application(environ, start_response):
    print('marker-print-stdout')
    sys.stderr.write('marker-sys-stderr\n')
    environ['wsgi.errors'].write('marker-wsgi-errors\n')
    environ['wsgi.errors'].writelines(['marker-writelines-1\n', 'marker-writelines-2\n'])
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
"#;
    let s = Server::new(Mpm::Event)
        .file("log.wsgi", app)
        .conf("WSGIScriptAlias /log {root}/log.wsgi\n")
        .start();
    assert_eq!(s.get("/log").status, 200);
    for marker in [
        "marker-print-stdout",
        "marker-sys-stderr",
        "marker-wsgi-errors",
        "marker-writelines-1",
        "marker-writelines-2",
    ] {
        assert!(
            s.wait_log(marker, Duration::from_secs(30)),
            "{marker} not in the error log"
        );
    }
}

#[test]
fn mod_wsgi_module_is_importable() {
    let app = r#"
import mod_wsgi
def application(environ, start_response):
    lines = []
    for name in ('version', 'process_group', 'application_group',
                 'maximum_processes', 'threads_per_process'):
        value = getattr(mod_wsgi, name, '<missing>')
        lines.append('%s\t%s\t%r' % (name, type(value).__name__, value))
    body = '\n'.join(lines).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;
    let s = Server::new(Mpm::Event)
        .file("m.wsgi", app)
        .conf("WSGIScriptAlias /m {root}/m.wsgi\n")
        .start();
    let r = s.get("/m");
    assert_eq!(r.status, 200, "{}", r.text());
    let info = Environ::parse(&r.body);
    assert_eq!(info.type_of("version"), Some("tuple"), "{info:?}");
    assert_eq!(info.get("process_group"), Some("''"));
    assert_eq!(
        info.get("application_group"),
        Some(format!("'127.0.0.1:{}|/m'", s.port).as_str())
    );
    assert_eq!(info.type_of("maximum_processes"), Some("int"));
    assert_eq!(info.type_of("threads_per_process"), Some("int"));
    // The base config runs 8 threads per child under the event MPM.
    assert_eq!(info.get("threads_per_process"), Some("8"));
    // Not pinned: mod_wsgi reports what the MPM answers for MAX_DAEMONS at
    // the time it asks, which varied between runs (1 or more) here.
    let procs: i64 = info.get("maximum_processes").unwrap().parse().unwrap();
    assert!(procs >= 1, "maximum_processes {procs}");
}

/// mod_wsgi sends every Python log record to `[wsgi:error]`; ours maps the
/// record's level onto Apache's.
#[test]
fn apache_log_handler_maps_levels() {
    if module() == Module::ModWsgi {
        return; // ours only: mod_wsgi has no ApacheLogHandler
    }
    let app = r#"
import logging
import mod_wsgi
log = logging.getLogger('wsgi-level-test')
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(mod_wsgi.ApacheLogHandler())
def application(environ, start_response):
    log.info('marker-info-level')
    log.warning('marker-warning-level')
    log.error('marker-error-level')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
"#;
    let s = Server::new(Mpm::Event)
        .file("lvl.wsgi", app)
        .conf("WSGIScriptAlias /lvl {root}/lvl.wsgi\n")
        .start();
    assert_eq!(s.get("/lvl").status, 200);
    for (marker, tag) in [
        ("marker-info-level", "[wsgi_rs:info]"),
        ("marker-warning-level", "[wsgi_rs:warn]"),
        ("marker-error-level", "[wsgi_rs:error]"),
    ] {
        assert!(
            s.wait_log(marker, Duration::from_secs(30)),
            "{marker} not logged"
        );
        let log = s.error_log();
        let line = log.lines().find(|l| l.contains(marker)).unwrap();
        assert!(
            line.contains(tag),
            "{marker} logged as {line:?}, expected {tag}"
        );
    }
}
