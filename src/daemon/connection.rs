//! Serving one connection in a daemon process: read the uwsgi request, check
//! it came from this Apache, decide whether this process may serve it (a
//! changed script or a pending restart means "retry elsewhere"), then run the
//! application through the WSGI core with a [`DaemonBackend`].

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;

use super::process::{Daemon, ANSWER_APP, ANSWER_MONITOR, ANSWER_NONE};
use super::protocol::{self, Vars};
use crate::interp::{self, ScriptKey};
use crate::wsgi::{
    flush_thread_streams, run_application, set_current_request, Backend, BodyError, EnvironSpec,
    Exchange, Input, LogLevel, LogStream, Outcome, WriteError, WsgiFlags,
};

/// What the monitor knows about the request a worker is running.
pub struct ActiveRequest {
    pub started: Instant,
    /// `threading.get_ident()` of the worker, to find its Python stack.
    pub thread_id: u64,
    pub uri: String,
    pub timed_out: AtomicBool,
    answer: Arc<AtomicU8>,
    /// A second handle on the connection, for the monitor's 504.
    stream: UnixStream,
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
        let mut stream = &self.stream;
        let _ = stream.write_all(&error_response(504, "Gateway Timeout", self.framed));
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        true
    }
}

/// An error answer. Our client gets the status only (marked internal, so
/// Apache renders its own error page, as for embedded mode); plain peers get
/// a small body.
fn error_response(status: u16, reason: &str, framed: bool) -> Vec<u8> {
    let line = format!("{status} {reason}");
    if framed {
        let mut out = protocol::encode_response_head(
            &line,
            &[(protocol::INTERNAL_ERROR_HEADER.into(), "error".into())],
        );
        out.extend_from_slice(&protocol::frame_header(0));
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

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
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

/// `admitted`: the process was not yet restarting when the connection was
/// taken; our client's other requests are rejected (retried elsewhere).
pub fn serve(daemon: &Arc<Daemon>, index: usize, mut stream: UnixStream, admitted: bool) {
    let timeout = Some(daemon.launch.socket_timeout).filter(|t| !t.is_zero());
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    let vars = match protocol::read_request(&mut stream) {
        Ok(v) => v,
        Err(e) => {
            log::debug!("(wsgi:{}) unreadable request: {e}", daemon.group());
            return;
        }
    };
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
        return;
    }
    let vars = if ours { vars } else { vars.without_private() };
    let framed = vars.flag(protocol::VAR_CLIENT);
    if framed && !admitted {
        let _ = stream.write_all(&[protocol::REJECT]);
        return;
    }
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
                return;
            }
        },
    };
    let queue_limit = daemon.launch.spec.queue_timeout;
    if !queue_limit.is_zero() {
        let start = vars
            .get_str(protocol::VAR_QUEUE_START)
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(start) = start {
            let waited = Duration::from_micros(micros_now().saturating_sub(start));
            if waited > queue_limit {
                log::error!(
                    "(wsgi:{}) queue timeout: request waited {:.1}s for a daemon thread",
                    daemon.group(),
                    waited.as_secs_f64()
                );
                let _ = stream.write_all(&error_response(504, "Gateway Timeout", framed));
                return;
            }
        }
    }
    let answer = Arc::new(AtomicU8::new(ANSWER_NONE));
    let uri = vars.get_str("REQUEST_URI").unwrap_or_default();
    if let Ok(second) = stream.try_clone() {
        *daemon.slots[index]
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(ActiveRequest {
            started: Instant::now(),
            // SAFETY: pthread_self cannot fail; Python's thread ident is it.
            thread_id: unsafe { libc::pthread_self() } as u64,
            uri,
            timed_out: AtomicBool::new(false),
            answer: answer.clone(),
            stream: second,
            framed,
        });
    }
    let reloading = vars.get(protocol::VAR_RELOADING) != Some(b"0");
    let callable = vars
        .get_str(protocol::VAR_CALLABLE)
        .unwrap_or_else(|| "application".into());
    interp::with_python(|py| {
        run(
            py, daemon, &vars, key, &callable, reloading, stream, answer, framed,
        )
    });
}

#[allow(clippy::too_many_arguments)]
fn run(
    py: Python<'_>,
    daemon: &Arc<Daemon>,
    vars: &Vars,
    key: ScriptKey,
    callable: &str,
    reloading: bool,
    mut stream: UnixStream,
    answer: Arc<AtomicU8>,
    framed: bool,
) {
    if reloading && daemon.scripts.is_stale(py, &key) {
        // Daemon mode reloads by replacing the process, so every module is
        // imported afresh, as mod_wsgi does.
        daemon.request_restart(&format!("script '{}' changed", key.path.display()));
        if framed {
            let _ = py.detach(|| stream.write_all(&[protocol::REJECT]));
            return;
        }
    }
    let app = match daemon.scripts.application(py, &key, callable, None, false) {
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
    if framed
        && vars.flag(protocol::VAR_EXPECT)
        && py
            .detach(|| stream.write_all(&[protocol::CONTINUE]))
            .is_err()
    {
        return;
    }
    let body = if vars.flag(protocol::VAR_CHUNKED) {
        BodyLeft::UntilEof
    } else {
        let n = vars
            .get_str("CONTENT_LENGTH")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        BodyLeft::Length(n)
    };
    let head = vars.get("REQUEST_METHOD") == Some(b"HEAD");
    let client = vars.get_str("REMOTE_ADDR").unwrap_or_default();
    let backend = DaemonBackend {
        stream,
        framed,
        body,
        head,
        pending_head: None,
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

enum BodyLeft {
    Length(u64),
    UntilEof,
    Done,
}

/// The daemon side of one request: the body comes from the socket, the
/// response goes back on it (framed for our client, plain for others).
pub struct DaemonBackend {
    stream: UnixStream,
    framed: bool,
    body: BodyLeft,
    head: bool,
    pending_head: Option<Vec<u8>>,
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

    fn send(&mut self, parts: &[&[u8]]) -> Result<(), WriteError> {
        self.claim_answer()?;
        let disconnected = |e: std::io::Error| WriteError::Disconnected(e.to_string());
        let mut slices: Vec<std::io::IoSlice<'_>> = parts
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| std::io::IoSlice::new(p))
            .collect();
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            let n = self.stream.write_vectored(slices).map_err(disconnected)?;
            if n == 0 {
                return Err(WriteError::Disconnected("connection closed".into()));
            }
            std::io::IoSlice::advance_slices(&mut slices, n);
        }
        Ok(())
    }

    /// Reads and drops body bytes the application left unread, so closing
    /// the socket does not reset a client that is still sending.
    fn drain_body(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        let mut budget: u64 = 4 << 20;
        while budget > 0 {
            match self.read_body(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => budget = budget.saturating_sub(n as u64),
            }
        }
    }
}

impl Backend for DaemonBackend {
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, BodyError> {
        let want = match self.body {
            BodyLeft::Done | BodyLeft::Length(0) => return Ok(0),
            BodyLeft::Length(n) => buf.len().min(n.min(usize::MAX as u64) as usize),
            BodyLeft::UntilEof => buf.len(),
        };
        let n = self
            .stream
            .read(&mut buf[..want])
            .map_err(|e| BodyError::Io(e.to_string()))?;
        match &mut self.body {
            BodyLeft::Length(left) => {
                if n == 0 {
                    self.body = BodyLeft::Done;
                    return Err(BodyError::Io(
                        "client closed before the whole body arrived".into(),
                    ));
                }
                *left -= n as u64;
            }
            BodyLeft::UntilEof if n == 0 => self.body = BodyLeft::Done,
            _ => {}
        }
        Ok(n)
    }

    fn start_response(&mut self, _status: u16, status_line: &str, headers: &[(String, String)]) {
        // The internal-error marker is ours alone: an app must not be able to
        // make the Apache side treat its response as a daemon failure.
        let headers: Vec<(String, String)> = headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case(protocol::INTERNAL_ERROR_HEADER))
            .cloned()
            .collect();
        self.pending_head = Some(protocol::encode_response_head(status_line, &headers));
    }

    fn write_body(&mut self, data: &[u8], _flush: bool) -> Result<(), WriteError> {
        let head = self.pending_head.take().unwrap_or_default();
        if self.framed {
            let frame = protocol::frame_header(data.len());
            let frame: &[u8] = if data.is_empty() { &[] } else { &frame };
            self.send(&[&head, frame, data])
        } else {
            self.send(&[&head, data])
        }
    }

    fn send_file(&mut self, fd: i32, offset: u64, len: u64) -> Result<(), (i32, WriteError)> {
        use std::os::fd::AsRawFd;
        let head = self.pending_head.take().unwrap_or_default();
        let result = (|| {
            self.send(&[&head])?;
            let mut offset = offset as libc::off_t;
            let mut left = len;
            while left > 0 {
                let chunk = left.min(4 << 20) as usize;
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
                let head = self.pending_head.take().unwrap_or_default();
                let end = protocol::frame_header(0);
                let end: &[u8] = if self.framed { &end } else { &[] };
                if self.send(&[&head, end]).is_ok() {
                    self.drain_body();
                }
            }
            Outcome::Failed | Outcome::BodyRefused => {
                if self.claim_answer().is_ok() {
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
