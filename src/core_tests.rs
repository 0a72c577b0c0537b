//! Unit tests of the WSGI core through the runner both modes use, with a
//! fake [`Backend`] that records what a server would have sent: environ
//! building, `start_response` and its header validation, reading
//! `wsgi.input`, and the response writer (buffering, flushes, declared
//! lengths, HEAD, failures). They need only Python, not Apache, so
//! `cargo test --lib` runs them in seconds; the integration tests check the
//! same paths against a real Apache.

use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::interp::{self, PythonSettings};
use crate::wsgi::{
    run_request, Backend, BodyError, EnvironSpec, LoadError, LogLevel, Outcome, WriteError,
    WsgiFlags,
};

/// What the fake backend was asked to do.
#[derive(Debug, Default)]
struct Record {
    /// The status line `start_response` settled on, once headers went out.
    status: Option<String>,
    /// The headers that went out.
    headers: Vec<(String, String)>,
    /// The body as sent.
    body: Vec<u8>,
    /// How many writes asked for a flush.
    flushes: usize,
    /// How many writes there were.
    writes: usize,
    /// `abort` was called.
    aborted: bool,
    /// How `finish` was told the request ended.
    finished: Option<Outcome>,
    /// Lines logged against the request.
    log: Vec<String>,
}

/// A backend serving a request from memory.
struct Fake {
    /// The request body.
    input: Vec<u8>,
    /// How much of it was read.
    at: usize,
    /// At most this much per read, to exercise the core's buffering.
    chunk: usize,
    /// A HEAD request.
    head: bool,
    /// `app_ready` fails, as for a client that has gone.
    gone: bool,
    /// What happened, shared with the test.
    record: Arc<Mutex<Record>>,
}

impl Backend for Fake {
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, BodyError> {
        let n = buf.len().min(self.chunk).min(self.input.len() - self.at);
        buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }

    fn start_response(&mut self, _status: u16, status_line: &str, headers: &[(String, String)]) {
        let mut record = self.record.lock().unwrap();
        record.status = Some(status_line.to_owned());
        record.headers = headers.to_vec();
    }

    fn write_body(&mut self, data: &[u8], flush: bool) -> Result<(), WriteError> {
        let mut record = self.record.lock().unwrap();
        record.body.extend_from_slice(data);
        record.writes += 1;
        record.flushes += usize::from(flush);
        Ok(())
    }

    fn send_file(
        &mut self,
        file: OwnedFd,
        _offset: u64,
        _len: u64,
    ) -> Result<(), (Option<OwnedFd>, WriteError)> {
        Err((Some(file), WriteError::Disconnected("no files here".into())))
    }

    fn abort(&mut self) {
        self.record.lock().unwrap().aborted = true;
    }

    fn is_head(&self) -> bool {
        self.head
    }

    fn log(&self, _level: LogLevel, msg: &str) {
        self.record.lock().unwrap().log.push(msg.to_owned());
    }

    fn app_ready(&mut self) -> Result<(), WriteError> {
        if self.gone {
            Err(WriteError::Disconnected("gone".into()))
        } else {
            Ok(())
        }
    }

    fn finish(&mut self, outcome: &Outcome) {
        self.record.lock().unwrap().finished = Some(match outcome {
            Outcome::Done => Outcome::Done,
            Outcome::Failed => Outcome::Failed,
            Outcome::BodyRefused => Outcome::BodyRefused,
            Outcome::Aborted => Outcome::Aborted,
        });
    }
}

/// A load failure, as the script cache would report it.
struct NoApp(&'static str);

impl fmt::Display for NoApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl LoadError for NoApp {
    fn python_error(&self) -> Option<&PyErr> {
        None
    }

    fn logged(&self) -> String {
        self.to_string()
    }
}

/// One request to run.
struct Case {
    /// Python source defining `application`.
    app: &'static str,
    /// CGI variables.
    cgi: Vec<(&'static str, &'static str)>,
    /// The request body.
    input: &'static [u8],
    /// Body bytes per backend read.
    chunk: usize,
    /// A HEAD request.
    head: bool,
    /// The client is gone before the application runs.
    gone: bool,
}

impl Case {
    /// A GET of `/` for the application in `app`.
    fn new(app: &'static str) -> Case {
        Case {
            app,
            cgi: vec![
                ("REQUEST_METHOD", "GET"),
                ("SCRIPT_NAME", ""),
                ("PATH_INFO", "/"),
                ("SERVER_NAME", "localhost"),
                ("SERVER_PORT", "80"),
                ("SERVER_PROTOCOL", "HTTP/1.1"),
            ],
            input: b"",
            chunk: usize::MAX,
            head: false,
            gone: false,
        }
    }

    /// Runs the request; how it ended, and what the backend saw.
    fn run(self) -> (Outcome, Record) {
        interp::initialize(&PythonSettings::default()).expect("Python starts");
        let record = Arc::new(Mutex::new(Record::default()));
        let backend = Fake {
            input: self.input.to_vec(),
            at: 0,
            chunk: self.chunk,
            head: self.head,
            gone: self.gone,
            record: record.clone(),
        };
        let flags = WsgiFlags {
            multithread: true,
            multiprocess: false,
            application_group: "tests".into(),
            callable_object: "application".into(),
            script_reloading: true,
            ..WsgiFlags::default()
        };
        let outcome = interp::with_python(|py| {
            let globals = PyDict::new(py);
            let code = std::ffi::CString::new(self.app).expect("no NUL in the app");
            let load = || -> Result<Bound<'_, PyAny>, NoApp> {
                py.run(&code, Some(&globals), None)
                    .map_err(|_| NoApp("the test application does not compile"))?;
                globals
                    .get_item("application")
                    .ok()
                    .flatten()
                    .ok_or(NoApp("no application in the test script"))
            };
            let cgi: Vec<(&[u8], &[u8])> = self
                .cgi
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
                .collect();
            let environ = EnvironSpec {
                cgi: cgi.iter().copied(),
                flags: &flags,
            };
            run_request(
                py,
                Box::new(backend),
                load,
                environ,
                |_| Ok(()),
                "test.wsgi",
            )
        });
        let record = std::mem::take(&mut *record.lock().unwrap());
        (outcome, record)
    }
}

/// The body as text.
fn text(record: &Record) -> String {
    String::from_utf8_lossy(&record.body).into_owned()
}

/// Whether a logged line contains `part`.
fn logged(record: &Record, part: &str) -> bool {
    record.log.iter().any(|l| l.contains(part))
}

#[test]
fn environ_holds_the_cgi_variables_and_the_wsgi_keys() {
    let mut case = Case::new(
        r#"
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    keys = ['REQUEST_METHOD', 'PATH_INFO', 'QUERY_STRING', 'HTTP_X_NAME',
            'wsgi.url_scheme', 'wsgi.multithread', 'wsgi.multiprocess',
            'wsgi.run_once', 'mod_wsgi.application_group',
            'mod_wsgi.callable_object', 'mod_wsgi.script_reloading']
    out = [repr(environ.get(k)) for k in keys]
    out.append(repr(environ['wsgi.version']))
    out.append(repr(type(environ['HTTP_X_NAME']).__name__))
    return ['\n'.join(out).encode()]
"#,
    );
    case.cgi.push(("QUERY_STRING", "a=1"));
    // A latin-1 byte arrives as the code point of the same value.
    case.cgi.push(("HTTP_X_NAME", "caf\u{e9}"));
    case.cgi.push(("HTTPS", "on"));
    let (outcome, record) = case.run();
    assert_eq!(outcome, Outcome::Done, "{:?}", record.log);
    let lines: Vec<String> = text(&record).lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            "'GET'",
            "'/'",
            "'a=1'",
            // "café" as UTF-8 bytes, each decoded as latin-1.
            "'cafÃ©'",
            "'https'",
            "True",
            "False",
            "False",
            "'tests'",
            "'application'",
            "'1'",
            "(1, 0)",
            "'str'",
        ]
    );
}

#[test]
fn a_response_goes_out_with_its_status_and_headers() {
    let (outcome, record) = Case::new(
        r#"
def application(environ, start_response):
    start_response('201 Created', [('Content-Type', 'text/plain'), ('X-A', 'b')])
    return [b'made']
"#,
    )
    .run();
    assert_eq!(outcome, Outcome::Done);
    assert_eq!(record.status.as_deref(), Some("201 Created"));
    assert_eq!(
        record.headers,
        [
            ("Content-Type".to_owned(), "text/plain".to_owned()),
            ("X-A".to_owned(), "b".to_owned())
        ]
    );
    assert_eq!(text(&record), "made");
    assert_eq!(record.finished, Some(Outcome::Done));
}

#[test]
fn header_values_that_could_split_a_response_are_refused() {
    for (headers, complaint) in [
        ("[('X-A', 'b\\r\\nSet-Cookie: x=1')]", "control"),
        ("[('X-A', 'line\\nbreak')]", "control"),
        ("[('Bad Name', 'v')]", "invalid response header name"),
        ("[('X-A', 1)]", "must be a str"),
        ("[('X-A',)]", "exactly two items"),
        ("('X-A', 'v')", "must be a list"),
        ("[('Content-Length', 'ten')]", "invalid Content-Length"),
    ] {
        let app = format!(
            "def application(environ, start_response):\n    start_response('200 OK', {headers})\n    return [b'x']\n"
        );
        let app: &'static str = Box::leak(app.into_boxed_str());
        let (outcome, record) = Case::new(app).run();
        assert_eq!(outcome, Outcome::Failed, "{headers}");
        assert_eq!(record.status, None, "{headers}: nothing may go out");
        assert!(logged(&record, complaint), "{headers}: {:?}", record.log);
    }
}

#[test]
fn status_lines_are_validated() {
    for status in [
        "'200OK'",
        "'20 OK'",
        "'099 Low'",
        "b'200 OK'",
        "'200 O\\nK'",
    ] {
        let app = format!(
            "def application(environ, start_response):\n    start_response({status}, [])\n    return [b'x']\n"
        );
        let app: &'static str = Box::leak(app.into_boxed_str());
        let (outcome, record) = Case::new(app).run();
        assert_eq!(outcome, Outcome::Failed, "{status}");
        assert_eq!(record.status, None, "{status}");
    }
}

#[test]
fn start_response_twice_needs_exc_info() {
    let (outcome, record) = Case::new(
        r#"
import sys
def application(environ, start_response):
    start_response('200 OK', [])
    try:
        start_response('500 Oops', [])
    except RuntimeError:
        pass
    else:
        raise AssertionError('a second call without exc_info was accepted')
    try:
        raise ValueError('changed my mind')
    except ValueError:
        start_response('503 Busy', [], sys.exc_info())
    return [b'late']
"#,
    )
    .run();
    assert_eq!(outcome, Outcome::Done, "{:?}", record.log);
    assert_eq!(record.status.as_deref(), Some("503 Busy"));
    assert_eq!(text(&record), "late");
}

#[test]
fn exc_info_after_the_headers_went_out_re_raises() {
    let (outcome, record) = Case::new(
        r#"
import sys
def application(environ, start_response):
    write = start_response('200 OK', [])
    write(b'partial')
    try:
        raise KeyError('boom')
    except KeyError:
        start_response('500 Oops', [], sys.exc_info())
    return [b'never']
"#,
    )
    .run();
    // Too late for another status: the response is cut short.
    assert_eq!(outcome, Outcome::Aborted);
    assert!(record.aborted);
    assert_eq!(record.status.as_deref(), Some("200 OK"));
    assert_eq!(text(&record), "partial");
    assert!(logged(&record, "KeyError"), "{:?}", record.log);
}

#[test]
fn list_items_are_buffered_and_generator_items_flushed() {
    let (_, listed) = Case::new(
        r#"
def application(environ, start_response):
    start_response('200 OK', [])
    return [b'a', b'b', b'c']
"#,
    )
    .run();
    assert_eq!(text(&listed), "abc");
    assert_eq!(
        listed.flushes, 0,
        "a list is complete: no flush between items"
    );
    let (_, streamed) = Case::new(
        r#"
def application(environ, start_response):
    start_response('200 OK', [])
    for part in (b'a', b'b', b'c'):
        yield part
"#,
    )
    .run();
    assert_eq!(text(&streamed), "abc");
    assert_eq!(streamed.flushes, 3, "each generated item goes out at once");
}

#[test]
fn bytes_beyond_the_declared_length_are_dropped() {
    let (outcome, record) = Case::new(
        r#"
def application(environ, start_response):
    start_response('200 OK', [('Content-Length', '5')])
    return [b'12345', b'6789']
"#,
    )
    .run();
    assert_eq!(outcome, Outcome::Done);
    assert_eq!(text(&record), "12345");
}

#[test]
fn a_body_shorter_than_declared_is_aborted() {
    let (outcome, record) = Case::new(
        r#"
def application(environ, start_response):
    start_response('200 OK', [('Content-Length', '10')])
    return [b'123']
"#,
    )
    .run();
    assert_eq!(outcome, Outcome::Aborted);
    assert!(record.aborted);
    assert!(logged(&record, "Truncated response"), "{:?}", record.log);
}

#[test]
fn head_requests_send_headers_only() {
    let mut case = Case::new(
        r#"
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'body']
"#,
    );
    case.head = true;
    let (outcome, record) = case.run();
    assert_eq!(outcome, Outcome::Done);
    assert_eq!(record.status.as_deref(), Some("200 OK"));
    assert!(record.body.is_empty());
}

#[test]
fn close_is_called_on_every_way_out() {
    let (outcome, record) = Case::new(
        r#"
class Body:
    def __init__(self):
        self.done = False
    def __iter__(self):
        yield b'x'
        raise ValueError('mid-iteration')
    def close(self):
        raise RuntimeError('close ran')
def application(environ, start_response):
    start_response('200 OK', [])
    return Body()
"#,
    )
    .run();
    // The iteration failed after output started, and close() still ran.
    assert_eq!(outcome, Outcome::Aborted);
    assert!(record.aborted);
    assert!(logged(&record, "ValueError"), "{:?}", record.log);
    assert!(logged(&record, "close ran"), "{:?}", record.log);
    let (outcome, record) = Case::new(
        r#"
class Body(list):
    def close(self):
        raise RuntimeError('close ran after a clean iteration')
def application(environ, start_response):
    start_response('200 OK', [])
    return Body([b'a'])
"#,
    )
    .run();
    // A close() that raises fails the request, as mod_wsgi logs it.
    assert_eq!(text(&record), "a");
    assert!(
        logged(&record, "close ran after a clean iteration"),
        "{outcome:?} {:?}",
        record.log
    );
}

#[test]
fn an_application_that_raises_before_output_fails_with_its_traceback() {
    let (outcome, record) = Case::new(
        r#"
def helper():
    raise LookupError('no such thing')
def application(environ, start_response):
    helper()
"#,
    )
    .run();
    assert_eq!(outcome, Outcome::Failed);
    assert_eq!(record.finished, Some(Outcome::Failed));
    assert!(logged(
        &record,
        "Exception occurred processing WSGI script 'test.wsgi'"
    ));
    assert!(logged(&record, "Traceback (most recent call last):"));
    assert!(logged(&record, "in helper"), "{:?}", record.log);
    assert!(logged(&record, "LookupError: no such thing"));
}

#[test]
fn a_script_that_does_not_load_is_logged_and_fails() {
    let (outcome, record) = Case::new("def application(:\n").run();
    assert_eq!(outcome, Outcome::Failed);
    assert_eq!(record.finished, Some(Outcome::Failed));
    assert!(logged(&record, "does not compile"), "{:?}", record.log);
}

#[test]
fn a_client_gone_before_the_application_runs_aborts() {
    let mut case = Case::new(
        r#"
def application(environ, start_response):
    raise AssertionError('must not run')
"#,
    );
    case.gone = true;
    let (outcome, record) = case.run();
    assert_eq!(outcome, Outcome::Aborted);
    assert!(record.log.is_empty(), "{:?}", record.log);
}

#[test]
fn wsgi_input_reads_lines_sizes_and_the_rest() {
    let mut case = Case::new(
        r#"
def application(environ, start_response):
    i = environ['wsgi.input']
    parts = [i.readline(), i.read(3), i.readline(2), i.readline(), list(i.readlines())]
    rest = i.read()
    start_response('200 OK', [])
    return [repr(parts).encode(), b'|', repr(rest).encode()]
"#,
    );
    case.input = b"first\nsecond\nthird\nfourth\n";
    // Three bytes per backend read: lines span reads.
    case.chunk = 3;
    case.cgi.push(("CONTENT_LENGTH", "26"));
    let (outcome, record) = case.run();
    assert_eq!(outcome, Outcome::Done, "{:?}", record.log);
    assert_eq!(
        text(&record),
        "[b'first\\n', b'sec', b'on', b'd\\n', [b'third\\n', b'fourth\\n']]|b''"
    );
}

#[test]
fn wsgi_input_iterates_and_reads_everything_at_once() {
    let mut case = Case::new(
        r#"
def application(environ, start_response):
    i = environ['wsgi.input']
    whole = i.read()
    start_response('200 OK', [])
    return [str(len(whole)).encode(), b' ', whole[-4:], b' ', repr(i.read(10)).encode()]
"#,
    );
    let body: &'static [u8] = Box::leak(vec![b'z'; 100_000].into_boxed_slice());
    case.input = body;
    case.chunk = 4096;
    let (outcome, record) = case.run();
    assert_eq!(outcome, Outcome::Done, "{:?}", record.log);
    assert_eq!(text(&record), "100000 zzzz b''");
}

#[test]
fn the_write_callable_sends_at_once() {
    let (outcome, record) = Case::new(
        r#"
def application(environ, start_response):
    write = start_response('200 OK', [])
    write(b'one ')
    try:
        write('text')
    except TypeError:
        write(b'refused-str ')
    return [b'two']
"#,
    )
    .run();
    assert_eq!(outcome, Outcome::Done, "{:?}", record.log);
    assert_eq!(text(&record), "one refused-str two");
    assert!(record.flushes >= 2, "write() flushes: {record:?}");
}
