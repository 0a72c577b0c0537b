//! The contract between the WSGI core and whatever carries the request (an
//! Apache `request_rec` in embedded mode, a socket in daemon mode), and the
//! [`Exchange`] that request-scoped Python objects share.
//!
//! Python objects such as `wsgi.input` can outlive the request (an app may keep
//! a reference), so they never hold the backend directly: they go through the
//! exchange, which is closed when the request ends. After that every call
//! fails cleanly instead of touching freed Apache memory.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pyo3::sync::MutexExt;
use pyo3::types::{PyDict, PyString};
use pyo3::{Py, Python};

/// Apache's severity levels that Python code can reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// Critical.
    Crit,
    /// Error.
    Error,
    /// Warning.
    Warn,
    /// Notice.
    Notice,
    /// Information.
    Info,
    /// Debugging.
    Debug,
}

impl LogLevel {
    /// Maps a Python `logging` level number to the nearest Apache level.
    pub fn from_python(level: i64) -> Self {
        match level {
            l if l >= 50 => LogLevel::Crit,
            l if l >= 40 => LogLevel::Error,
            l if l >= 30 => LogLevel::Warn,
            l if l >= 20 => LogLevel::Info,
            _ => LogLevel::Debug,
        }
    }

    /// The `log` crate's level.
    pub fn to_log(self) -> log::Level {
        match self {
            LogLevel::Crit | LogLevel::Error => log::Level::Error,
            LogLevel::Warn => log::Level::Warn,
            LogLevel::Notice | LogLevel::Info => log::Level::Info,
            LogLevel::Debug => log::Level::Debug,
        }
    }
}

/// Why reading the request body failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The connection failed.
    #[error("request body read failed: {0}")]
    Io(String),
    /// An input filter already answered the client (e.g. 413 for a chunked
    /// body over LimitRequestBody); the handler must not answer again.
    #[error("request body refused by Apache: {0}")]
    AlreadyAnswered(String),
    /// The request has ended.
    #[error("the request has finished; wsgi.input is no longer readable")]
    Closed,
}

/// Why sending the response failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The client went away.
    #[error("client connection closed: {0}")]
    Disconnected(String),
    /// The request has ended.
    #[error("the request has finished; no more output can be sent")]
    Closed,
}

/// What the WSGI core needs from the server side of one request.
/// Every method may block; the core calls them with the GIL released, except
/// writes the backend says cannot block (see [`Backend::write_is_quick`]).
pub trait Backend: Send {
    /// Reads request body bytes into `buf`; `Ok(0)` means the body has ended.
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, BodyError>;
    /// Records the status and headers; they go out with the first body write.
    /// Values were validated by the core (no CR/LF/control characters).
    fn start_response(&mut self, status: u16, status_line: &str, headers: &[(String, String)]);
    /// Sends body bytes, flushing them to the client when `flush` is set.
    fn write_body(&mut self, data: &[u8], flush: bool) -> Result<(), WriteError>;
    /// True when this write only buffers (no I/O that could wait on the
    /// client): the core then keeps the GIL, which saves handing it to
    /// another thread and waiting to get it back, per write.
    fn write_is_quick(&self, _len: usize, _flush: bool) -> bool {
        false
    }
    /// Sends `len` bytes of an open regular file from `offset`, taking
    /// ownership of `file`. Returns it back if this backend cannot.
    fn send_file(
        &mut self,
        file: OwnedFd,
        offset: u64,
        len: u64,
    ) -> Result<(), (Option<OwnedFd>, WriteError)>;
    /// Makes sure the client cannot take a truncated response for a complete
    /// one (the app failed after output started).
    fn abort(&mut self);
    /// True when the response must carry no body (HEAD).
    fn is_head(&self) -> bool;
    /// Logs a line attributed to this request.
    fn log(&self, level: LogLevel, msg: &str);
    /// The request's id as the server's logs show it (Apache's `%L`), made
    /// on demand, for the events' `request_id`; None when the server side
    /// has none to give.
    fn request_id(&mut self) -> Option<String> {
        None
    }
    /// Called once the application has loaded, just before it runs: a
    /// backend that holds the request body back until then (daemon mode
    /// asks our client for a large body only now, so a request that fails
    /// earlier never consumes it) releases it. An error means the client
    /// has gone.
    fn app_ready(&mut self) -> Result<(), WriteError> {
        Ok(())
    }
    /// Called once the application is done, with how it ended: a backend
    /// that frames its responses itself (daemon mode) completes or fails
    /// the response here. Apache finishes requests on its own.
    fn finish(&mut self, _outcome: &super::Outcome) {}
}

/// One request's shared state: the backend while the request is live, and the
/// response status/headers as `start_response` recorded them.
pub struct Exchange {
    /// The state, locked by each call.
    inner: Mutex<ExchangeState>,
}

/// What an exchange holds.
pub(crate) struct ExchangeState {
    /// The backend while the request is live.
    pub backend: Option<Box<dyn Backend>>,
    /// The response so far.
    pub response: ResponseState,
    /// What the request's events report (see `events.rs`).
    pub track: RequestTrack,
}

/// What one request records for its events (`events.rs`): kept with the
/// exchange, as the input and output paths count into it.
#[derive(Default)]
pub(crate) struct RequestTrack {
    /// Events are published for this request (decided when it starts).
    pub published: bool,
    /// `mod_wsgi.request_data()`, made on first use.
    pub request_data: Option<Py<PyDict>>,
    /// The request's id for events, made on first use.
    pub request_id: Option<Py<PyString>>,
    /// Reads of `wsgi.input`.
    pub input_reads: u64,
    /// Body bytes read.
    pub input_length: u64,
    /// Time spent reading them.
    pub input_time: Duration,
    /// Writes of the response.
    pub output_writes: u64,
    /// Time spent writing.
    pub output_time: Duration,
}

/// The response as the application gave it, and how much went out.
#[derive(Default)]
pub(crate) struct ResponseState {
    /// Set by `start_response`, validated.
    pub status: Option<(u16, String)>,
    /// The headers, validated.
    pub headers: Vec<(String, String)>,
    /// The declared `Content-Length`.
    pub content_length: Option<u64>,
    /// Headers handed to the backend: no more `start_response` without exc_info.
    pub headers_sent: bool,
    /// Body bytes handed to the backend.
    pub bytes_sent: u64,
    /// An input filter answered the client itself while the app read the body.
    pub body_refused: bool,
}

impl Exchange {
    /// The exchange of a request carried by `backend`.
    pub fn new(backend: Box<dyn Backend>) -> Arc<Self> {
        Arc::new(Exchange {
            inner: Mutex::new(ExchangeState {
                backend: Some(backend),
                response: ResponseState::default(),
                track: Default::default(),
            }),
        })
    }

    /// Locks the state without risking a deadlock against the GIL.
    pub(crate) fn lock(&self, py: Python<'_>) -> MutexGuard<'_, ExchangeState> {
        self.inner
            .lock_py_attached(py)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ends the request: later calls from lingering Python objects fail.
    pub fn close(&self, py: Python<'_>) -> Option<Box<dyn Backend>> {
        self.lock(py).backend.take()
    }

    /// Logs a line for this request, or to the server log once it has ended.
    pub fn log(&self, py: Python<'_>, level: LogLevel, msg: &str) {
        let state = self.lock(py);
        match &state.backend {
            Some(b) => b.log(level, msg),
            None => log::log!(level.to_log(), "{msg}"),
        }
    }
}
