//! The log streams as mod_wsgi builds them: `sys.stdout`, `sys.stderr` and
//! `wsgi.errors` are `io.TextIOWrapper`s (utf-8, `errors='replace'`,
//! line-buffered) over a binary writer into the error log, so bytes written
//! through `.buffer` reach the log too (Mercurial's hgweb needs
//! `sys.stdout.buffer` at import). Embedded and daemon mode.

use std::time::Duration;

use crate::common::{Environ, Mode, Mpm, Server};

fn mode_conf(mode: Mode) -> &'static str {
    match mode {
        Mode::Embedded => "",
        Mode::Daemon => "WSGIDaemonProcess stdio threads=2\nWSGIProcessGroup stdio\n",
    }
}

const SHAPES: &str = r#"
import io
import sys
def describe(name, stream):
    return [
        '%s.type\t-\t%s' % (name, type(stream).__name__),
        '%s.textio\t-\t%r' % (name, isinstance(stream, io.TextIOWrapper)),
        '%s.encoding\t-\t%s' % (name, stream.encoding),
        '%s.errors\t-\t%s' % (name, stream.errors),
        '%s.line_buffering\t-\t%r' % (name, stream.line_buffering),
        '%s.has_buffer\t-\t%r' % (name, hasattr(stream, 'buffer')),
    ]
def application(environ, start_response):
    lines = (describe('stdout', sys.stdout) + describe('stderr', sys.stderr)
             + describe('errors', environ['wsgi.errors']))
    sys.stdout.buffer.write(b'marker-stdout-buffer\n')
    sys.stderr.buffer.write(b'marker-stderr-buffer\n')
    environ['wsgi.errors'].buffer.write(b'marker-errors-buffer\n')
    sys.stdout.write('marker-partial-')
    sys.stdout.write('line\n')
    sys.stdout.buffer.write(b'marker-invalid-utf8-\xff-end\n')
    print('marker-unflushed-tail', end='')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return ['\n'.join(lines).encode()]
"#;

fn text_streams_over_a_buffer(mode: Mode) {
    let s = Server::new(Mpm::Event)
        .file("io.wsgi", SHAPES)
        .conf(mode_conf(mode))
        .conf("WSGIScriptAlias /io {root}/io.wsgi\n")
        .start();
    let r = s.get("/io");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    let info = Environ::parse(&r.body);
    for name in ["stdout", "stderr", "errors"] {
        let get = |what: &str| info.get(&format!("{name}.{what}")).map(str::to_owned);
        assert_eq!(get("type").as_deref(), Some("TextIOWrapper"), "{info:?}");
        assert_eq!(get("textio").as_deref(), Some("True"), "{info:?}");
        assert_eq!(get("encoding").as_deref(), Some("utf-8"), "{info:?}");
        assert_eq!(get("errors").as_deref(), Some("replace"), "{info:?}");
        assert_eq!(get("line_buffering").as_deref(), Some("True"), "{info:?}");
        assert_eq!(get("has_buffer").as_deref(), Some("True"), "{info:?}");
    }
    for marker in [
        "marker-stdout-buffer",
        "marker-stderr-buffer",
        "marker-errors-buffer",
        "marker-partial-line",
        "marker-invalid-utf8-",
        // A line left without its newline is logged at the end of the
        // request (mod_wsgi: when the stream is flushed).
        "marker-unflushed-tail",
    ] {
        assert!(
            s.wait_log(marker, Duration::from_secs(30)),
            "{marker} not in the error log ({mode:?}):\n{}",
            s.error_log()
        );
    }
}
both_modes!(text_streams_over_a_buffer);
