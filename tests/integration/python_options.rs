//! The interpreter options (`WSGIPythonOptimize`, `WSGIPythonWarnings`,
//! `WSGIPythonHashSeed`, `WSGIDontWriteBytecode`, `WSGIPythonEggs`,
//! `WSGISwitchInterval`, `WSGIPassApacheRequest`, `WSGIDestroyInterpreter`)
//! as the application sees them, in embedded mode and in a daemon process.

use std::time::Duration;

use crate::common::{module, Module, Mpm, Server};

const REPORT: &str = r#"
import os, sys
def application(environ, start_response):
    request_rec = environ.get('apache.request_rec')
    lines = [
        'optimize=%d' % sys.flags.optimize,
        'warnoptions=%s' % ','.join(sys.warnoptions),
        'hash_randomization=%d' % sys.flags.hash_randomization,
        'hash=%d' % hash('mod_wsgi'),
        'dont_write_bytecode=%d' % sys.flags.dont_write_bytecode,
        'switchinterval=%g' % sys.getswitchinterval(),
        'eggs=%s' % os.environ.get('PYTHON_EGG_CACHE', '-'),
        'request_rec=%s' % (type(request_rec).__name__ if request_rec is not None else '-'),
    ]
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('\n'.join(lines) + '\n').encode()]
"#;

fn field(body: &str, key: &str) -> String {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {body}"))
        .to_owned()
}

/// mod_wsgi 4.9 (the referee) predates WSGISwitchInterval and the daemon's
/// switch-interval=.
fn has_switch_interval() -> bool {
    module() == Module::Ours
}

fn options_site() -> Server {
    let mut conf = String::from(
        "WSGIPythonOptimize 2\n\
         WSGIPythonWarnings ignore::DeprecationWarning\n\
         WSGIPythonWarnings error::UserWarning:somemodule\n\
         WSGIPythonHashSeed 0\n\
         WSGIDontWriteBytecode On\n\
         WSGIPythonEggs /tmp/embedded-eggs\n\
         WSGIScriptAlias /embedded {root}/report.wsgi\n\
         <Location /embedded>\n  WSGIPassApacheRequest On\n</Location>\n",
    );
    let mut daemon = String::from("WSGIDaemonProcess opts threads=2 python-eggs=/tmp/daemon-eggs");
    if has_switch_interval() {
        conf.push_str("WSGISwitchInterval 0.002\n");
        daemon.push_str(" switch-interval=0.003");
    }
    conf.push_str(&daemon);
    conf.push_str(
        "\nWSGIScriptAlias /daemon {root}/report.wsgi process-group=opts\n\
         <Location /daemon>\n  WSGIPassApacheRequest On\n</Location>\n",
    );
    Server::new(Mpm::Event)
        .file("report.wsgi", REPORT)
        .conf(&conf)
}

#[test]
fn interpreter_options_reach_embedded_and_daemon_processes() {
    let s = options_site().start();
    let embedded = s.get("/embedded");
    assert_eq!(embedded.status, 200, "{}", s.error_log());
    let daemon = s.get("/daemon");
    assert_eq!(daemon.status, 200, "{}", s.error_log());
    for body in [embedded.text(), daemon.text()] {
        assert_eq!(field(&body, "optimize"), "2", "{body}");
        assert_eq!(
            field(&body, "warnoptions"),
            "ignore::DeprecationWarning,error::UserWarning:somemodule",
            "{body}"
        );
        assert_eq!(field(&body, "hash_randomization"), "0", "{body}");
        assert_eq!(field(&body, "dont_write_bytecode"), "1", "{body}");
    }
    // A fixed seed gives the same hash in every process.
    assert_eq!(
        field(&embedded.text(), "hash"),
        field(&daemon.text(), "hash")
    );
    assert_eq!(field(&embedded.text(), "eggs"), "/tmp/embedded-eggs");
    assert_eq!(field(&daemon.text(), "eggs"), "/tmp/daemon-eggs");
    // Embedded mode only, as an unnamed capsule.
    assert_eq!(field(&embedded.text(), "request_rec"), "PyCapsule");
    assert_eq!(field(&daemon.text(), "request_rec"), "-");
    if has_switch_interval() {
        assert_eq!(field(&embedded.text(), "switchinterval"), "0.002");
        assert_eq!(field(&daemon.text(), "switchinterval"), "0.003");
    }
}

#[test]
fn defaults_leave_python_as_it_is() {
    let s = Server::new(Mpm::Event)
        .file("report.wsgi", REPORT)
        .conf("WSGIScriptAlias / {root}/report.wsgi\n")
        .start();
    let body = s.get("/").text();
    assert_eq!(field(&body, "optimize"), "0", "{body}");
    assert_eq!(field(&body, "warnoptions"), "", "{body}");
    assert_eq!(field(&body, "hash_randomization"), "1", "{body}");
    assert_eq!(field(&body, "dont_write_bytecode"), "0", "{body}");
    assert_eq!(field(&body, "switchinterval"), "0.005", "{body}");
    assert_eq!(field(&body, "request_rec"), "-", "{body}");
}

/// Writes `MARK_DIR/exited-PID` at exit; MARK_DIR is outside the server's
/// root, which is removed when the server stops.
const ATEXIT: &str = r#"
import atexit, os
MARK = os.path.join('MARK_DIR', 'exited-%d' % os.getpid())
def mark():
    with open(MARK, 'w') as f:
        f.write('ran')
atexit.register(mark)
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'%d' % os.getpid()]
"#;

/// `WSGIDestroyInterpreter` decides whether exit handlers run when a
/// process shuts down: the default runs them, `Off` does not.
#[test]
fn destroy_interpreter_decides_whether_exit_handlers_run() {
    let marks = std::env::temp_dir().join(format!("wsgi-rs-atexit-{}", std::process::id()));
    std::fs::create_dir_all(&marks).unwrap();
    std::fs::set_permissions(&marks, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let script = ATEXIT.replace("MARK_DIR", &marks.display().to_string());
    for (setting, expect_ran) in [("", true), ("WSGIDestroyInterpreter Off\n", false)] {
        for (path, group) in [("/e", ""), ("/d", " process-group=x")] {
            if path == "/d" && module() == Module::ModWsgi {
                // mod_wsgi 4.9's daemon is stopped before its exit handlers
                // run when Apache stops; ours runs them (daemon mode only).
                continue;
            }
            let s = Server::new(Mpm::Prefork)
                .single_process()
                .file("atexit.wsgi", &script)
                .conf(&format!(
                    "{setting}WSGIDaemonProcess x threads=1\n\
                     WSGIScriptAlias {path} {{root}}/atexit.wsgi{group}\n"
                ))
                .start();
            let r = s.get(path);
            assert_eq!(r.status, 200, "{}", s.error_log());
            let mark = marks.join(format!("exited-{}", r.text()));
            let (_, _, log) = s.shutdown(Duration::from_secs(20));
            let ran = mark.exists();
            let _ = std::fs::remove_file(&mark);
            assert_eq!(
                ran, expect_ran,
                "{setting:?} {path}: exit handler ran = {ran}\n{log}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&marks);
}
