//! Serving one request on a daemon connection: read the uwsgi request, check
//! it came from this Apache, decide whether this process may serve it (a
//! changed script or a pending restart means "retry elsewhere"), then run the
//! application through the WSGI core with a [`DaemonBackend`]. Our client's
//! connections are persistent: [`serve`] says whether the connection is
//! ready for the next request.

use std::io::{Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use super::process::{Daemon, ANSWER_APP, ANSWER_KEPT, ANSWER_MONITOR, ANSWER_NONE};
use super::protocol::{self, ProtocolError, Vars};
use crate::interp::{self, ScriptKey};
use crate::wsgi::{
    flush_thread_streams, run_application, set_current_request, Backend, BodyError, EnvironSpec,
    Exchange, Input, LogLevel, LogStream, Outcome, WriteError, WsgiFlags,
};

/// Largest body our client sends without waiting for [`protocol::CONTINUE`]
/// (it sends 64 KiB; the rest is slack for frame headers).
const INLINE_LIMIT: usize = 128 * 1024;

/// A worker's reusable read buffer: a whole vars block plus an inline body
/// arrive in one read.
pub struct Scratch(Vec<u8>);

impl Default for Scratch {
    fn default() -> Self {
        // Zeroed memory from the allocator: pages a small request never
        // touches cost nothing.
        Scratch(vec![0u8; 4 + protocol::MAX_VARS + INLINE_LIMIT])
    }
}

/// What the monitor knows about the request a worker is running.
pub struct ActiveRequest {
    pub started: Instant,
    /// `threading.get_ident()` of the worker, to find its Python stack.
    pub thread_id: u64,
    pub uri: String,
    pub timed_out: AtomicBool,
    answer: Arc<AtomicU8>,
    /// The connection, for the monitor's 504. Only used under the slot's
    /// lock; the worker clears the slot before it closes or parks the
    /// connection.
    fd: RawFd,
    framed: bool,
}

impl ActiveRequest {
    /// Sends 504 if the application has not started its response; true if
    /// it did.
    pub fn answer_timeout(&self) -> bool {
        if self
            .answer
            .compare_exchange(
                ANSWER_NONE,
                ANSWER_MONITOR,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_err()
        {
            return false;
        }
        // SAFETY: the worker keeps fd open while this slot holds it (see
        // the field); ManuallyDrop never closes it.
        let stream = ManuallyDrop::new(unsafe { UnixStream::from_raw_fd(self.fd) });
        let _ = (&*stream).write_all(&error_response(504, "Gateway Timeout", self.framed));
        let _ = stream.shutdown(std::net::Shutdown::Write);
        true
    }
}

/// An error answer. Our client gets the status only (marked internal, so
/// Apache renders its own error page, as for embedded mode) and the
/// connection closes; plain peers get a small body.
fn error_response(status: u16, reason: &str, framed: bool) -> Vec<u8> {
    let line = format!("{status} {reason}");
    if framed {
        let mut out = protocol::encode_response_head(
            &line,
            &[(protocol::INTERNAL_ERROR_HEADER.into(), "error".into())],
        );
        out.extend_from_slice(&protocol::END_CLOSE.to_le_bytes());
        out
    } else {
        let body = format!("{line}\n");
        let mut out = protocol::encode_response_head(
            &line,
            &[
                ("Content-Type".into(), "text/plain".into()),
                ("Content-Length".into(), body.len().to_string()),
            ],
        );
        out.extend_from_slice(body.as_bytes());
        out
    }
}

/// Constant-time comparison: the secret must not leak through timing.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn read_some(stream: &mut UnixStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// A request's vars, and where its body starts in the scratch buffer.
struct Head {
    vars: Vars,
    /// `scratch[body_start..filled]` already holds body bytes.
    body_start: usize,
    filled: usize,
}

/// Reads one request's header and vars; None when the client closed the
/// connection between requests.
fn read_head(
    stream: &mut UnixStream,
    scratch: &mut Scratch,
) -> Result<Option<Head>, ProtocolError> {
    let buf = &mut scratch.0;
    let mut filled = 0;
    loop {
        if let Some((vars, used)) = protocol::parse_request_head(&buf[..filled])? {
            return Ok(Some(Head {
                vars,
                body_start: used,
                filled,
            }));
        }
        match read_some(stream, &mut buf[filled..])? {
            0 if filled == 0 => return Ok(None),
            0 => return Err(ProtocolError::Truncated),
            n => filled += n,
        }
    }
}

/// Reads a whole framed body that follows the vars without a go-ahead: the
/// bytes already in the buffer, then the stream.
fn read_inline_body(stream: &mut UnixStream, already: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    let mut reader = already.chain(stream);
    let mut body = Vec::new();
    loop {
        let mut len = [0u8; 4];
        reader.read_exact(&mut len).map_err(truncated)?;
        let len = u32::from_le_bytes(len) as usize;
        if len == 0 {
            break;
        }
        if body.len() + len > INLINE_LIMIT {
            return Err(ProtocolError::Malformed);
        }
        let at = body.len();
        body.resize(at + len, 0);
        reader.read_exact(&mut body[at..]).map_err(truncated)?;
    }
    if reader.into_inner().0.is_empty() {
        Ok(body)
    } else {
        // Our client never sends a request before the last one's answer.
        Err(ProtocolError::Malformed)
    }
}

fn truncated(e: std::io::Error) -> ProtocolError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => ProtocolError::Truncated,
        _ => ProtocolError::Io(e),
    }
}

/// Whether the connection is ready for the client's next request.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    Keep,
    Close,
}

/// Serves one request on `stream`. `accepting`: the process is not exiting.
pub fn serve(
    daemon: &Arc<Daemon>,
    index: usize,
    stream: &mut UnixStream,
    scratch: &mut Scratch,
    accepting: bool,
) -> After {
    let head = match read_head(stream, scratch) {
        Ok(Some(head)) => head,
        Ok(None) => return After::Close,
        Err(e) => {
            log::debug!("(wsgi:{}) unreadable request: {e}", daemon.group());
            return After::Close;
        }
    };
    let admitted = daemon.admit() && accepting;
    let vars = head.vars;
    let given = vars.get(protocol::VAR_SECRET).unwrap_or(b"");
    // Our handler may choose script, group and callable; a proxied request
    // (or anything else) only ever gets the group's default application.
    let ours = same_secret(given, daemon.launch.secret.as_bytes());
    if !ours && !same_secret(given, daemon.launch.proxy_secret.as_bytes()) {
        log::warn!(
            "(wsgi:{}) refused a request that did not come from this Apache (wrong or missing secret)",
            daemon.group()
        );
        let framed = vars.flag(protocol::VAR_CLIENT);
        let _ = stream.write_all(&error_response(403, "Forbidden", framed));
        return After::Close;
    }
    let vars = if ours { vars } else { vars.without_private() };
    let framed = vars.flag(protocol::VAR_CLIENT);
    if framed && !admitted {
        let _ = stream.write_all(&[protocol::REJECT]);
        return After::Close;
    }
    let already = &scratch.0[head.body_start..head.filled];
    let body = if !framed {
        let length = vars
            .get_str("CONTENT_LENGTH")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        Body::Plain {
            early: already.to_vec(),
            at: 0,
            left: length,
        }
    } else if vars.flag(protocol::VAR_EXPECT) {
        if !already.is_empty() {
            log::debug!("(wsgi:{}) body sent before the go-ahead", daemon.group());
            return After::Close;
        }
        Body::Framed {
            frame_left: 0,
            done: false,
        }
    } else {
        match read_inline_body(stream, already) {
            Ok(data) => Body::Memory { data, at: 0 },
            Err(e) => {
                log::debug!("(wsgi:{}) unreadable request body: {e}", daemon.group());
                return After::Close;
            }
        }
    };
    let key = match vars.get_str(protocol::VAR_SCRIPT) {
        Some(script) => ScriptKey {
            group: vars
                .get_str(protocol::VAR_APPLICATION_GROUP)
                .unwrap_or_default(),
            path: PathBuf::from(script),
        },
        None => match &daemon.launch.default_script {
            Some(key) => key.clone(),
            None => {
                log::error!(
                    "(wsgi:{}) a request named no WSGI script and the group has no WSGIImportScript",
                    daemon.group()
                );
                let _ = stream.write_all(&error_response(500, "Internal Server Error", framed));
                return After::Close;
            }
        },
    };
    let queue_limit = daemon.launch.spec.queue_timeout;
    if !queue_limit.is_zero() {
        let start = vars
            .get_str(protocol::VAR_QUEUE_START)
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(start) = start {
            let waited = Duration::from_micros(protocol::micros_now().saturating_sub(start));
            if waited > queue_limit {
                log::error!(
                    "(wsgi:{}) queue timeout: request waited {:.1}s for a daemon thread",
                    daemon.group(),
                    waited.as_secs_f64()
                );
                let _ = stream.write_all(&error_response(504, "Gateway Timeout", framed));
                return After::Close;
            }
        }
    }
    let answer = Arc::new(AtomicU8::new(ANSWER_NONE));
    *daemon.slots[index]
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(ActiveRequest {
        started: Instant::now(),
        // SAFETY: pthread_self cannot fail; Python's thread ident is it.
        thread_id: unsafe { libc::pthread_self() } as u64,
        uri: vars.get_str("REQUEST_URI").unwrap_or_default(),
        timed_out: AtomicBool::new(false),
        answer: answer.clone(),
        fd: stream.as_raw_fd(),
        framed,
    });
    let reloading = vars.get(protocol::VAR_RELOADING) != Some(b"0");
    let callable = vars
        .get_str(protocol::VAR_CALLABLE)
        .unwrap_or_else(|| "application".into());
    let request = Request {
        vars: &vars,
        key,
        callable: &callable,
        reloading,
        body,
        framed,
        // More open connections than threads would let requests wait in
        // this process while another one has idle threads.
        keep_alive: framed && daemon.connections() <= daemon.slots.len(),
    };
    interp::with_python(|py| run(py, daemon, stream, request, answer.clone()));
    if answer.load(Ordering::SeqCst) == ANSWER_KEPT {
        After::Keep
    } else {
        After::Close
    }
}

/// One request, read and checked, ready to run.
struct Request<'a> {
    vars: &'a Vars,
    key: ScriptKey,
    callable: &'a str,
    reloading: bool,
    body: Body,
    framed: bool,
    keep_alive: bool,
}

fn run(
    py: Python<'_>,
    daemon: &Arc<Daemon>,
    stream: &mut UnixStream,
    request: Request<'_>,
    answer: Arc<AtomicU8>,
) {
    let Request {
        vars,
        key,
        callable,
        reloading,
        body,
        framed,
        keep_alive,
    } = request;
    let mtime = vars
        .get_str(protocol::VAR_SCRIPT_MTIME)
        .and_then(|m| m.parse::<i64>().ok());
    if reloading && daemon.scripts.is_stale(py, &key, mtime) {
        // Daemon mode reloads by replacing the process, so every module is
        // imported afresh, as mod_wsgi does.
        daemon.request_restart(&format!("script '{}' changed", key.path.display()));
        if framed {
            let _ = py.detach(|| stream.write_all(&[protocol::REJECT]));
            return;
        }
    }
    let app = match daemon.scripts.application(py, &key, callable, mtime, false) {
        Ok(app) => {
            daemon.app_loaded.store(true, Ordering::SeqCst);
            app
        }
        Err(e) => {
            daemon.load_failed.store(true, Ordering::SeqCst);
            log::error!("(wsgi:{}) {e}", daemon.group());
            if let Some(err) = e.python_error() {
                for line in crate::wsgi::format_exception(py, err) {
                    log::error!("{line}");
                }
            }
            let _ = py
                .detach(|| stream.write_all(&error_response(500, "Internal Server Error", framed)));
            return;
        }
    };
    if matches!(body, Body::Framed { .. })
        && py
            .detach(|| stream.write_all(&[protocol::CONTINUE]))
            .is_err()
    {
        return;
    }
    let head = vars.get("REQUEST_METHOD") == Some(b"HEAD");
    let client = vars.get_str("REMOTE_ADDR").unwrap_or_default();
    let backend = DaemonBackend {
        // SAFETY: the backend is dropped (Exchange::close, on every path
        // through CloseOnDrop) before this function returns, while the
        // worker still owns the descriptor; ManuallyDrop never closes it.
        stream: ManuallyDrop::new(unsafe { UnixStream::from_raw_fd(stream.as_raw_fd()) }),
        framed,
        keep_alive,
        body,
        head,
        out: Vec::new(),
        answer,
        client,
        group: daemon.group().to_owned(),
        aborted: false,
    };
    let spec = &daemon.launch.spec;
    let flags = WsgiFlags {
        multithread: spec.threads > 1,
        multiprocess: spec.multiprocess || spec.processes > 1,
        process_group: spec.name.clone(),
        application_group: key.group.clone(),
        callable_object: callable.to_owned(),
        script_reloading: reloading,
        input_chunked: vars.flag(protocol::VAR_CHUNKED),
    };
    let exchange = Exchange::new(Box::new(backend));
    let _scope = CloseOnDrop(exchange.clone());
    let environ = (|| {
        let input = Bound::new(py, Input::new(exchange.clone()))?;
        let errors = Bound::new(py, LogStream::for_request(exchange.clone()))?;
        EnvironSpec {
            cgi: vars.public(),
            flags: &flags,
        }
        .build(py, input, errors)
    })();
    let outcome = match environ {
        Ok(environ) => {
            set_current_request(Some(exchange.clone()));
            let o = run_application(
                py,
                &app,
                environ,
                &exchange,
                &key.path.display().to_string(),
            );
            flush_thread_streams(py, Some(&exchange));
            set_current_request(None);
            o
        }
        Err(e) => {
            crate::wsgi::log_exception(py, &exchange, "Could not build the WSGI environ", &e);
            Outcome::Failed
        }
    };
    if let Some(mut backend) = exchange.close(py) {
        py.detach(|| backend.finish(&outcome));
    }
}

/// Ends the request's scope on every way out, a panic included: no lingering
/// Python object keeps the connection, and the thread serves no request.
struct CloseOnDrop(Arc<Exchange>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        Python::attach(|py| {
            set_current_request(None);
            self.0.close(py);
        });
    }
}

/// Where the request body comes from.
enum Body {
    /// Read in full before the application ran (our client, small bodies).
    Memory { data: Vec<u8>, at: usize },
    /// Framed on the socket after our go-ahead (our client, large or
    /// chunked bodies).
    Framed { frame_left: usize, done: bool },
    /// `CONTENT_LENGTH` bytes on the socket (plain uwsgi peers); `early`
    /// arrived with the vars.
    Plain {
        early: Vec<u8>,
        at: usize,
        left: u64,
    },
}

/// Responses are gathered up to this size between flushes.
const OUT_BUFFER: usize = 64 * 1024;

/// The daemon side of one request: the body comes from the socket, the
/// response goes back on it (framed for our client, plain for others).
pub struct DaemonBackend {
    stream: ManuallyDrop<UnixStream>,
    framed: bool,
    keep_alive: bool,
    body: Body,
    head: bool,
    /// Response bytes not yet sent: the head, and body data the core did not
    /// ask to flush (items of a list), sent with what follows.
    out: Vec<u8>,
    answer: Arc<AtomicU8>,
    client: String,
    group: String,
    aborted: bool,
}

impl DaemonBackend {
    fn claim_answer(&self) -> Result<(), WriteError> {
        match self.answer.compare_exchange(
            ANSWER_NONE,
            ANSWER_APP,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => Ok(()),
            Err(ANSWER_APP) => Ok(()),
            Err(_) => Err(WriteError::Disconnected(
                "request timed out and was answered 504".into(),
            )),
        }
    }

    /// Sends what is buffered, then `parts`, in as few writes as possible.
    fn send(&mut self, parts: &[&[u8]]) -> Result<(), WriteError> {
        self.claim_answer()?;
        let disconnected = |e: std::io::Error| WriteError::Disconnected(e.to_string());
        let out = std::mem::take(&mut self.out);
        let mut slices: Vec<std::io::IoSlice<'_>> = std::iter::once(out.as_slice())
            .chain(parts.iter().copied())
            .filter(|p| !p.is_empty())
            .map(std::io::IoSlice::new)
            .collect();
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            let n = (&*self.stream)
                .write_vectored(slices)
                .map_err(disconnected)?;
            if n == 0 {
                return Err(WriteError::Disconnected("connection closed".into()));
            }
            std::io::IoSlice::advance_slices(&mut slices, n);
        }
        // Keep the allocation for the next buffered write.
        self.out = out;
        self.out.clear();
        Ok(())
    }

    /// Whether the client has nothing more to send for this request.
    fn body_complete(&self) -> bool {
        match self.body {
            Body::Memory { .. } => true,
            Body::Framed { done, .. } => done,
            Body::Plain { left, .. } => left == 0,
        }
    }

    /// Reads and drops body bytes the application left unread, so the
    /// connection is ready for the next request (or closing it does not
    /// reset a client that is still sending).
    fn drain_body(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        let mut budget: u64 = 4 << 20;
        while budget > 0 && !self.body_complete() {
            match self.read_body(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => budget = budget.saturating_sub(n as u64),
            }
        }
    }

    fn read_stream(&mut self, buf: &mut [u8]) -> Result<usize, BodyError> {
        loop {
            match (&*self.stream).read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(BodyError::Io(e.to_string())),
                Ok(n) => return Ok(n),
            }
        }
    }

    fn early_eof() -> BodyError {
        BodyError::Io("client closed before the whole body arrived".into())
    }
}

impl Backend for DaemonBackend {
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, BodyError> {
        match &mut self.body {
            Body::Memory { data, at } => {
                let n = buf.len().min(data.len() - *at);
                buf[..n].copy_from_slice(&data[*at..*at + n]);
                *at += n;
                Ok(n)
            }
            Body::Framed { done: true, .. } => Ok(0),
            Body::Framed { frame_left, done } => {
                while *frame_left == 0 {
                    let mut len = [0u8; 4];
                    (&*self.stream).read_exact(&mut len).map_err(|e| {
                        if e.kind() == std::io::ErrorKind::UnexpectedEof {
                            Self::early_eof()
                        } else {
                            BodyError::Io(e.to_string())
                        }
                    })?;
                    let len = u32::from_le_bytes(len) as usize;
                    if len == 0 {
                        *done = true;
                        return Ok(0);
                    }
                    if len > protocol::MAX_FRAME {
                        return Err(BodyError::Io("malformed body frame".into()));
                    }
                    *frame_left = len;
                }
                let want = buf.len().min(*frame_left);
                let n = loop {
                    match (&*self.stream).read(&mut buf[..want]) {
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(BodyError::Io(e.to_string())),
                        Ok(0) => return Err(Self::early_eof()),
                        Ok(n) => break n,
                    }
                };
                *frame_left -= n;
                Ok(n)
            }
            Body::Plain { left: 0, .. } => Ok(0),
            Body::Plain { early, at, left } => {
                let want = buf.len().min((*left).min(usize::MAX as u64) as usize);
                let n = if *at < early.len() {
                    let n = want.min(early.len() - *at);
                    buf[..n].copy_from_slice(&early[*at..*at + n]);
                    *at += n;
                    n
                } else {
                    let want = &mut buf[..want];
                    match self.read_stream(want)? {
                        0 => return Err(Self::early_eof()),
                        n => n,
                    }
                };
                if let Body::Plain { left, .. } = &mut self.body {
                    *left -= n as u64;
                }
                Ok(n)
            }
        }
    }

    fn start_response(&mut self, _status: u16, status_line: &str, headers: &[(String, String)]) {
        // The internal-error marker is ours alone: an app must not be able to
        // make the Apache side treat its response as a daemon failure.
        let headers: Vec<(String, String)> = headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case(protocol::INTERNAL_ERROR_HEADER))
            .cloned()
            .collect();
        self.out = protocol::encode_response_head(status_line, &headers);
    }

    fn write_body(&mut self, data: &[u8], flush: bool) -> Result<(), WriteError> {
        if self.write_is_quick(data.len(), flush) {
            self.claim_answer()?;
            if self.framed && !data.is_empty() {
                self.out
                    .extend_from_slice(&protocol::frame_header(data.len()));
            }
            self.out.extend_from_slice(data);
            return Ok(());
        }
        if !self.framed {
            return self.send(&[data]);
        }
        for chunk in data.chunks(protocol::MAX_FRAME) {
            self.send(&[&protocol::frame_header(chunk.len()), chunk])?;
        }
        if data.is_empty() {
            self.send(&[])?;
        }
        Ok(())
    }

    fn write_is_quick(&self, len: usize, flush: bool) -> bool {
        // Such a write only joins `out`, frame header included.
        !flush && self.out.len() + len + 4 <= OUT_BUFFER
    }

    fn send_file(&mut self, fd: i32, offset: u64, len: u64) -> Result<(), (i32, WriteError)> {
        let result = (|| {
            self.send(&[])?;
            let mut offset = offset as libc::off_t;
            let mut left = len;
            while left > 0 {
                let chunk = left.min(protocol::MAX_FRAME as u64) as usize;
                if self.framed {
                    self.send(&[&protocol::frame_header(chunk)])?;
                }
                let mut sent_in_chunk = 0;
                while sent_in_chunk < chunk {
                    // SAFETY: sendfile between two descriptors we hold open;
                    // it advances `offset` itself.
                    let n = unsafe {
                        libc::sendfile(
                            self.stream.as_raw_fd(),
                            fd,
                            &mut offset,
                            chunk - sent_in_chunk,
                        )
                    };
                    if n <= 0 {
                        return Err(WriteError::Disconnected(
                            std::io::Error::last_os_error().to_string(),
                        ));
                    }
                    sent_in_chunk += n as usize;
                }
                left -= chunk as u64;
            }
            Ok(())
        })();
        // SAFETY: we own fd (the core handed it over) and are done with it.
        unsafe { libc::close(fd) };
        result.map_err(|e| (-1, e))
    }

    fn abort(&mut self) {
        self.aborted = true;
        // What the application had produced goes out first: the client then
        // sees a response cut short, as when nothing was buffered.
        let _ = self.send(&[]);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    fn is_head(&self) -> bool {
        self.head
    }

    fn log(&self, level: LogLevel, msg: &str) {
        log::log!(
            level.to_log(),
            "(wsgi:{}) [client {}] {msg}",
            self.group,
            self.client
        );
    }

    fn finish(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Done => {
                if !self.body_complete() {
                    // Unread body: the head and anything buffered go first,
                    // so a client still sending is not kept waiting.
                    if self.send(&[]).is_err() {
                        return;
                    }
                    self.drain_body();
                }
                let keep = self.framed && self.keep_alive && self.body_complete();
                let end = if keep {
                    protocol::END_KEEP
                } else {
                    protocol::END_CLOSE
                }
                .to_le_bytes();
                let end: &[u8] = if self.framed { &end } else { &[] };
                if self.send(&[end]).is_ok() && keep {
                    self.answer.store(ANSWER_KEPT, Ordering::SeqCst);
                }
            }
            Outcome::Failed | Outcome::BodyRefused => {
                if self.claim_answer().is_ok() {
                    self.out.clear();
                    let _ =
                        self.send(&[&error_response(500, "Internal Server Error", self.framed)]);
                    self.drain_body();
                }
            }
            Outcome::Aborted => {
                if !self.aborted {
                    let _ = self.stream.shutdown(std::net::Shutdown::Both);
                }
            }
        }
    }
}
