//! The daemon side of one request as the WSGI core sees it: the body comes
//! from the socket (in memory, framed after our go-ahead, or plain for
//! other uwsgi peers), the response goes back on it, framed for our client
//! and plain for others.

use std::io::{Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use super::active::{Answer, AnswerState};
use super::protocol;
use crate::wsgi::{Backend, BodyError, LogLevel, Outcome, WriteError};

/// Where the request body comes from.
pub(super) enum Body {
    /// Read in full before the application ran (our client, small bodies).
    Memory {
        /// The body.
        data: Vec<u8>,
        /// How much of it was read.
        at: usize,
    },
    /// Framed on the socket after our go-ahead (our client, large or
    /// chunked bodies). `asked`: the go-ahead has been sent; until then
    /// the client sends nothing.
    Framed {
        /// The go-ahead has been sent.
        asked: bool,
        /// Bytes of the current frame not read yet.
        frame_left: usize,
        /// The end frame has arrived.
        done: bool,
    },
    /// `CONTENT_LENGTH` bytes on the socket (plain uwsgi peers); `early`
    /// arrived with the vars.
    Plain {
        /// Body bytes that came with the vars.
        early: Vec<u8>,
        /// How much of `early` was read.
        at: usize,
        /// Body bytes not read yet.
        left: u64,
    },
}

/// Responses are gathered up to this size between flushes.
const OUT_BUFFER: usize = 64 * 1024;

/// The daemon side of one request: the body comes from the socket, the
/// response goes back on it (framed for our client, plain for others).
pub struct DaemonBackend {
    /// The connection, borrowed from the worker (never closed here).
    pub(super) stream: ManuallyDrop<UnixStream>,
    /// The peer is our client: frames, end marker, keep-alive.
    pub(super) framed: bool,
    /// The connection may serve another request after this one.
    pub(super) keep_alive: bool,
    /// Where the request body comes from.
    pub(super) body: Body,
    /// A HEAD request: no body goes out.
    pub(super) head: bool,
    /// Response bytes not yet sent: the head, and body data the core did not
    /// ask to flush (items of a list), sent with what follows.
    pub(super) out: Vec<u8>,
    /// Who answers, shared with the monitor's request timeout.
    pub(super) answer: Arc<AnswerState>,
    /// The client's address, for log lines.
    pub(super) client: String,
    /// The process group's name, for log lines.
    pub(super) group: String,
    /// `abort` has shut the connection down.
    pub(super) aborted: bool,
    /// `WSGIEnableSendfile On`: file_wrapper files go out by sendfile();
    /// else they are read and written.
    pub(super) sendfile: bool,
}

/// Logs a response write that blocked past `response-socket-timeout`
/// (Apache stopped reading: a client that does not read, usually).
fn log_response_timeout(group: &str, client: &str, stream: &UnixStream) {
    let limit = stream.write_timeout().ok().flatten().unwrap_or_default();
    log::error!(
        "WSGIRS445: (wsgi:{group}) [client {client}] response-socket-timeout: writing the response to Apache blocked for {}s; the request is abandoned",
        limit.as_secs_f64()
    );
}

impl DaemonBackend {
    /// Sends `len` bytes of `fd` from `offset` by reading and writing them
    /// (`WSGIEnableSendfile Off`); the frame header is already sent.
    fn copy_file(
        &mut self,
        file: &OwnedFd,
        offset: &mut u64,
        len: usize,
    ) -> Result<(), WriteError> {
        let mut buf = vec![0u8; len.min(OUT_BUFFER)];
        let mut left = len;
        while left > 0 {
            let want = left.min(buf.len());
            let n = match rustix::io::pread(file, &mut buf[..want], *offset) {
                Ok(0) => {
                    return Err(WriteError::Disconnected(
                        "file ended before its length".to_owned(),
                    ))
                }
                Ok(n) => n,
                Err(e) => return Err(WriteError::Disconnected(e.to_string())),
            };
            self.send(&[&buf[..n]])?;
            *offset += n as u64;
            left -= n;
        }
        Ok(())
    }

    /// Makes the application the one who answers; fails once the monitor has.
    fn claim_answer(&self) -> Result<(), WriteError> {
        match self.answer.claim(Answer::App) {
            Ok(()) | Err(Answer::App) => Ok(()),
            Err(_) => Err(WriteError::Disconnected(
                "request timed out and was answered 504".into(),
            )),
        }
    }

    /// Sends what is buffered, then `parts`, in as few writes as possible.
    fn send(&mut self, parts: &[&[u8]]) -> Result<(), WriteError> {
        self.claim_answer()?;
        let disconnected = |e: std::io::Error| {
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                log_response_timeout(&self.group, &self.client, &self.stream);
            }
            WriteError::Disconnected(e.to_string())
        };
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
            Body::Framed { asked, done, .. } => done || !asked,
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

    /// Reads from the connection, retrying on EINTR.
    fn read_stream(&mut self, buf: &mut [u8]) -> Result<usize, BodyError> {
        loop {
            match (&*self.stream).read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(BodyError::Io(e.to_string())),
                Ok(n) => return Ok(n),
            }
        }
    }

    /// The error for a client that stopped before its whole body.
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
            Body::Framed { done: true, .. } | Body::Framed { asked: false, .. } => Ok(0),
            Body::Framed {
                frame_left, done, ..
            } => {
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

    fn app_ready(&mut self) -> Result<(), WriteError> {
        if let Body::Framed { asked, .. } = &mut self.body {
            if !*asked {
                (&*self.stream)
                    .write_all(&[protocol::CONTINUE])
                    .map_err(|e| WriteError::Disconnected(e.to_string()))?;
                *asked = true;
            }
        }
        Ok(())
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

    fn send_file(
        &mut self,
        file: OwnedFd,
        offset: u64,
        len: u64,
    ) -> Result<(), (Option<OwnedFd>, WriteError)> {
        let result = (|| {
            self.send(&[])?;
            let mut offset = offset;
            let mut left = len;
            while left > 0 {
                let chunk = left.min(protocol::MAX_FRAME as u64) as usize;
                if self.framed {
                    self.send(&[&protocol::frame_header(chunk)])?;
                }
                if !self.sendfile {
                    self.copy_file(&file, &mut offset, chunk)?;
                    left -= chunk as u64;
                    continue;
                }
                let mut sent_in_chunk = 0;
                while sent_in_chunk < chunk {
                    // sendfile advances `offset` itself.
                    let sent = rustix::fs::sendfile(
                        &*self.stream,
                        &file,
                        Some(&mut offset),
                        chunk - sent_in_chunk,
                    );
                    sent_in_chunk += match sent {
                        Ok(0) => {
                            return Err(WriteError::Disconnected(
                                "file ended before its length".to_owned(),
                            ))
                        }
                        Ok(n) => n,
                        Err(e) => return Err(WriteError::Disconnected(e.to_string())),
                    };
                }
                left -= chunk as u64;
            }
            Ok(())
        })();
        // The file closes as it drops here: the core handed it over.
        result.map_err(|e| (None, e))
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
        // Our messages keep their id first; the application's lines (and a
        // traceback's) are logged as written.
        let (id, text) = split_id(msg);
        // Pass-through: the message was made (with its id) by the caller.
        log::log!(
            level.to_log(),
            "{id}(wsgi:{}) [client {}] {text}",
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
                    self.answer.set(Answer::Kept);
                }
            }
            Outcome::Failed | Outcome::BodyRefused => {
                if self.claim_answer().is_ok() {
                    self.out.clear();
                    let _ = self.send(&[&protocol::error_response(
                        500,
                        "Internal Server Error",
                        self.framed,
                    )]);
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

/// `("WSGIRSnnn: ", rest)` for a message that starts with its id, else
/// `("", msg)`.
fn split_id(msg: &str) -> (&str, &str) {
    let id_len = "WSGIRSnnn: ".len();
    let is_id = msg.len() >= id_len
        && msg.starts_with("WSGIRS")
        && msg.as_bytes()[6..9].iter().all(u8::is_ascii_digit)
        && msg[9..].starts_with(": ");
    if is_id {
        msg.split_at(id_len)
    } else {
        ("", msg)
    }
}

#[cfg(test)]
mod tests {
    use super::split_id;

    #[test]
    fn our_id_is_split_off_and_other_text_kept() {
        assert_eq!(
            split_id("WSGIRS370: Exception occurred"),
            ("WSGIRS370: ", "Exception occurred")
        );
        assert_eq!(split_id("WSGIRS37: x"), ("", "WSGIRS37: x"));
        assert_eq!(split_id("WSGIRS3700: x"), ("", "WSGIRS3700: x"));
        assert_eq!(split_id("printed by the app"), ("", "printed by the app"));
        assert_eq!(split_id(""), ("", ""));
    }
}
