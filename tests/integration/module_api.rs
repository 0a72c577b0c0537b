//! mod_wsgi's Python API as documented for 4.9/6.0: `request_data()`,
//! `subscribe_events()` with the request_started / response_started /
//! request_exception / request_finished events, `active_requests`,
//! `process_metrics()`, and `subscribe_shutdown()` callbacks when a process
//! stops; in embedded and daemon mode.

use std::time::{Duration, Instant};

use crate::common::{module, Mode, Module, Mpm, Running, Server};

const APP: &str = r#"
import json
import threading
import mod_wsgi

EVENTS = []
ACTIVE = mod_wsgi.active_requests

def outside_a_request():
    # A thread of the application's own serves no request.
    result = []
    def probe():
        try:
            mod_wsgi.request_data()
            result.append('no error')
        except RuntimeError:
            result.append('RuntimeError')
    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return result[0]

def describe(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return type(value).__name__

@mod_wsgi.subscribe_events
def record(name, **event):
    if name == 'request_started':
        same = event['request_data'] is mod_wsgi.request_data()
        mod_wsgi.request_data()['from_started'] = 'yes' if same else 'other dict'
        if event['request_environ'].get('PATH_INFO') == '/report':
            return
    elif mod_wsgi.request_data().get('report'):
        return
    EVENTS.append([name, {k: describe(v) for k, v in event.items()}])
    if name == 'request_exception':
        EVENTS[-1][1]['exception_type'] = event['exception_info'][0].__name__
    return {'added_by_callback': 1}

def application(environ, start_response):
    path = environ['PATH_INFO']
    data = mod_wsgi.request_data()
    if path == '/report':
        data['report'] = True
        body = json.dumps({
            'events': EVENTS,
            'outside': outside_a_request(),
            'metrics': {k: describe(v) for k, v in mod_wsgi.process_metrics().items()},
            'request_count': mod_wsgi.process_metrics()['request_count'],
        })
        del EVENTS[:]
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [body.encode()]
    if path == '/fail':
        raise ValueError('failing on purpose')
    listed = any(v is data for v in ACTIVE.values())
    body = ('from_started=%s listed=%s' % (data.get('from_started'), listed)).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
"#;

fn start(mode: Mode, group: &str) -> Running {
    let daemon = match mode {
        Mode::Embedded => String::new(),
        Mode::Daemon => "WSGIDaemonProcess api threads=2\nWSGIProcessGroup api\n".to_owned(),
    };
    Server::new(Mpm::Event)
        .single_process()
        .file("api.wsgi", APP)
        .conf(&daemon)
        .conf(&format!("WSGIApplicationGroup {group}\n"))
        .conf("WSGIScriptAlias /api {root}/api.wsgi\n")
        .start()
}

/// The keys of the first recorded event called `name`.
fn keys_of<'a>(events: &'a str, name: &str) -> &'a str {
    let at = events
        .find(&format!("[\"{name}\", {{"))
        .unwrap_or_else(|| panic!("no {name} event in {events}"));
    let rest = &events[at..];
    &rest[..rest.find('}').unwrap()]
}

fn events_and_request_data(mode: Mode) {
    check_events(start(mode, "%{GLOBAL}"), mode);
}
both_modes!(events_and_request_data);

/// The same in an application group's own interpreter, with its own
/// `mod_wsgi` module.
fn events_in_an_application_group(mode: Mode) {
    check_events(start(mode, "site-a"), mode);
}
both_modes!(events_in_an_application_group);

fn check_events(s: Running, mode: Mode) {
    let r = s.get("/api/work");
    assert_eq!(r.status, 200, "{}", s.error_log());
    // The request_started callback and the app share request_data(), and
    // the request is listed in active_requests while it runs.
    assert_eq!(r.text(), "from_started=yes listed=True");
    let r = s.get("/api/fail");
    assert_eq!(r.status, 500);

    let r = s.get("/api/report");
    assert_eq!(r.status, 200, "{}", s.error_log());
    let report = r.text();
    assert!(report.contains("\"outside\": \"RuntimeError\""), "{report}");
    let started = keys_of(&report, "request_started");
    for key in [
        "\"request_id\"",
        "\"thread_id\"",
        "\"request_start\"",
        "\"application_object\": \"function\"",
        "\"request_environ\": \"dict\"",
        "\"application_start\"",
        "\"request_data\": \"dict\"",
    ] {
        assert!(
            started.contains(key),
            "request_started lacks {key}: {started}"
        );
    }
    let response = keys_of(&report, "response_started");
    for key in [
        "\"response_status\": \"200 OK\"",
        "\"response_headers\": \"list\"",
        "\"exception_info\": null",
        "\"request_data\": \"dict\"",
    ] {
        assert!(
            response.contains(key),
            "response_started lacks {key}: {response}"
        );
    }
    let finished = keys_of(&report, "request_finished");
    for key in [
        "\"output_length\": 28",
        "\"input_length\": 0",
        "\"application_time\"",
        "\"application_finish\"",
        "\"output_writes\"",
        "\"request_data\": \"dict\"",
    ] {
        assert!(
            finished.contains(key),
            "request_finished lacks {key}: {finished}"
        );
    }
    let exception = keys_of(&report, "request_exception");
    for key in [
        "\"exception_info\": \"tuple\"",
        "\"exception_type\": \"ValueError\"",
        "\"request_data\": \"dict\"",
    ] {
        assert!(
            exception.contains(key),
            "request_exception lacks {key}: {exception}"
        );
    }
    for key in [
        "\"pid\": ",
        "\"request_count\": ",
        "\"request_busy_time\": ",
        "\"memory_rss\": ",
        "\"threads\": \"list\"",
        "\"active_requests\": ",
    ] {
        assert!(
            report.contains(key),
            "process_metrics lacks {key}: {report}"
        );
    }
    assert!(
        report.contains("\"request_count\": 2"),
        "two requests finished before the report ({mode:?}): {report}"
    );
}

const SHUTDOWN_APP: &str = r#"
import mod_wsgi

@mod_wsgi.subscribe_shutdown
def stopping(name, **event):
    with open('{root}/var/stopping-%s' % event['shutdown_reason'], 'w') as f:
        f.write(name)

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
"#;

/// A process stopping calls the `subscribe_shutdown()` callbacks with
/// `process_stopping`: a daemon replaced after maximum-requests, an Apache
/// child replaced by a graceful restart.
fn shutdown_callbacks(mode: Mode) {
    let extra = match mode {
        Mode::Daemon => "maximum-requests=1",
        Mode::Embedded => "",
    };
    let mut s = {
        let daemon = match mode {
            Mode::Embedded => String::new(),
            Mode::Daemon => {
                format!("WSGIDaemonProcess stop threads=2 {extra}\nWSGIProcessGroup stop\n")
            }
        };
        Server::new(Mpm::Event)
            .single_process()
            .file("stop.wsgi", SHUTDOWN_APP)
            .conf(&daemon)
            .conf("WSGIApplicationGroup %{GLOBAL}\nWSGIScriptAlias /stop {root}/stop.wsgi\n")
            .start()
    };
    assert_eq!(s.get("/stop").status, 200, "{}", s.error_log());
    let reason = match mode {
        Mode::Daemon => "maximum_requests",
        Mode::Embedded => {
            s.graceful();
            "shutdown_signal"
        }
    };
    let (seen_reason, name) = wait_stopping(&s)
        .unwrap_or_else(|| panic!("no shutdown callback ran ({mode:?}):\n{}", s.error_log()));
    assert_eq!(name, "process_stopping");
    // mod_wsgi 4.9 gives no reason (an empty string); 6.0 names it.
    if module() == Module::Ours {
        assert_eq!(seen_reason, reason, "{mode:?}");
    }
}

/// Waits for the file the shutdown callback writes: (reason, event name).
fn wait_stopping(s: &Running) -> Option<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        for entry in std::fs::read_dir(s.path("var")).ok()?.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(reason) = file.strip_prefix("stopping-") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                if !text.is_empty() {
                    return Some((reason.to_owned(), text));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}
both_modes!(shutdown_callbacks);

/// 6.0's `subscribe_signals` returns the callback (decorator use keeps the
/// function) and says it will not be called; names mod_wsgi_rs does not
/// provide raise an AttributeError that says so.
#[test]
fn unsupported_names_say_so() {
    if module() == Module::ModWsgi {
        return; // ours only: 4.9 has no subscribe_signals, and other messages
    }
    let app = r#"
import mod_wsgi

@mod_wsgi.subscribe_signals
def on_signal(name, **event):
    pass

def application(environ, start_response):
    try:
        mod_wsgi.request_metrics
        missing = 'present'
    except AttributeError as e:
        missing = str(e)
    body = ('%s|%s|%r' % (on_signal.__name__, missing, mod_wsgi.server_metrics())).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;
    let s = Server::new(Mpm::Event)
        .file("sig.wsgi", app)
        .conf("WSGIScriptAlias /sig {root}/sig.wsgi\n")
        .start();
    let r = s.get("/sig");
    assert_eq!(r.status, 200, "{}", s.error_log());
    let text = r.text();
    assert!(
        text.starts_with("on_signal|mod_wsgi.request_metrics is not provided by mod_wsgi_rs"),
        "{text}"
    );
    assert!(text.ends_with("|None"), "{text}");
    assert!(
        s.wait_log("does not deliver process signals", Duration::from_secs(30)),
        "{}",
        s.error_log()
    );
}

/// In embedded mode an event's `request_id` is Apache's log id for the
/// request, the `%L` of `ErrorLogFormat` and `LogFormat`, so event data and
/// log lines can be matched up.
#[test]
fn request_id_is_apaches_log_id() {
    let app = r#"
import mod_wsgi

@mod_wsgi.subscribe_events
def record(name, **event):
    if name == 'request_started':
        mod_wsgi.request_data()['id'] = event['request_id']

def application(environ, start_response):
    environ['wsgi.errors'].write('marker-request-id %s\n' % mod_wsgi.request_data()['id'])
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
"#;
    let s = Server::new(Mpm::Event)
        .file("id.wsgi", app)
        .conf("ErrorLogFormat \"[%l] [log-id %L] %M\"\n")
        .conf("WSGIScriptAlias /id {root}/id.wsgi\n")
        .start();
    assert_eq!(s.get("/id").status, 200, "{}", s.error_log());
    assert!(
        s.wait_log("marker-request-id", Duration::from_secs(30)),
        "{}",
        s.error_log()
    );
    let log = s.error_log();
    let line = log
        .lines()
        .find(|l| l.contains("marker-request-id"))
        .unwrap();
    let id = line.rsplit(' ').next().unwrap();
    assert!(id.len() > 4, "{line}");
    assert!(
        line.contains(&format!("[log-id {id}] ")),
        "the event's request_id is not the log id: {line}"
    );
}
