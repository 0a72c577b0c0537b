//! Receiving a request without holding a worker thread. A worker woken for
//! a connection reads what has arrived, never waiting for more; only once
//! the request is complete (its head, and its body when that comes with
//! it: our client's inline body, or a plain peer's `CONTENT_LENGTH` bytes up
//! to `request-buffer-size`) does the worker go on to run it. Otherwise the
//! bytes so far go back into the epoll set with the connection and the
//! worker takes other work, so slow or idle peers never occupy a thread. A
//! connection that does not complete its head within `header-timeout`, or
//! whose buffered body stops arriving for `socket-timeout`, is closed by the
//! monitor's sweep (`Daemon::close_stalled`).

use std::io::ErrorKind;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustix::net::RecvFlags;

use super::protocol::{self, ProtocolError, Vars};

/// What may be received before a worker takes a request, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `header-timeout`: from the connection (or a kept connection's first
    /// byte) to a complete head; zero for no limit.
    pub header_timeout: Duration,
    /// `socket-timeout`: the longest pause in a buffered body; zero for no
    /// limit.
    pub body_timeout: Duration,
    /// `request-buffer-size`: the largest body received before running.
    pub body: usize,
}

/// Where a connection is in receiving its next request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Between requests on a kept connection: nothing sent yet, no limit.
    Idle,
    /// Connected, or a request's first bytes came: its head is due.
    Head,
    /// The head is complete; the buffered body is arriving.
    Body,
}

/// A client connection no worker is serving: its request so far.
pub struct Conn {
    /// The connection.
    pub stream: UnixStream,
    /// Bytes of the next request received so far.
    partial: Vec<u8>,
    /// How far the next request has come.
    stage: Stage,
    /// When the sweep closes it unless the request is complete.
    deadline: Option<Instant>,
    /// It has been in the epoll set before (re-armed, not added).
    pub known: bool,
    /// Counted among the process's connections (it has carried a request).
    pub counted: bool,
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

/// `now + limit`, or none for a zero limit.
fn deadline_after(limit: Duration) -> Option<Instant> {
    (!limit.is_zero()).then(|| Instant::now() + limit)
}

impl Conn {
    /// A connection just accepted: its head is due within `header-timeout`.
    pub fn accepted(stream: UnixStream, limits: &Limits) -> Conn {
        Conn {
            stream,
            partial: Vec::new(),
            stage: Stage::Head,
            deadline: deadline_after(limits.header_timeout),
            known: false,
            counted: false,
        }
    }

    /// A connection that has carried a request (and is counted), handed
    /// back between requests by the ASGI event loop; it may or may not have
    /// been in the epoll set before.
    pub fn resting(stream: UnixStream) -> Conn {
        Conn {
            stream,
            partial: Vec::new(),
            stage: Stage::Idle,
            deadline: None,
            known: true,
            counted: true,
        }
    }

    /// After a response: waits for the client's next request, for as long
    /// as the client keeps it.
    pub fn rest(&mut self) {
        self.partial = Vec::new();
        self.stage = Stage::Idle;
        self.deadline = None;
    }

    /// A request is on its way (or due, on a new connection): it counts as
    /// in flight for the process's drain.
    pub fn receiving(&self) -> bool {
        self.stage != Stage::Idle
    }

    /// Where the next request is.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Its time ran out before the request was complete.
    pub fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| d <= now)
    }
}

/// A worker's reusable read buffer: a request arriving at once (the usual
/// case) is read and served from it without another allocation.
pub struct Scratch {
    /// The buffer; only `..filled` holds data.
    buf: Vec<u8>,
    /// How much of it holds the current request.
    filled: usize,
}

/// The buffer's usual size: a whole vars block and a 64 KiB body.
const SCRATCH: usize = 4 + protocol::MAX_VARS + 64 * 1024;

impl Default for Scratch {
    fn default() -> Self {
        // Zeroed memory from the allocator: pages a small request never
        // touches cost nothing.
        Scratch {
            buf: vec![0u8; SCRATCH],
            filled: 0,
        }
    }
}

impl Scratch {
    /// The body bytes that arrived with the head.
    pub fn body(&self, head: &Head) -> &[u8] {
        &self.buf[head.body_start..self.filled]
    }

    /// Gives back the memory a large buffered body took.
    pub fn relax(&mut self) {
        if self.buf.len() > 4 * SCRATCH {
            *self = Scratch::default();
        }
    }
}

/// A complete request's head; its buffered body is in the [`Scratch`].
pub struct Head {
    /// The request's variables.
    pub vars: Vars,
    /// Where the body starts in the scratch buffer.
    body_start: usize,
}

/// What receiving came to.
pub enum Intake {
    /// The request is complete: run it.
    Ready(Head),
    /// More must arrive first: give the connection back to the epoll set.
    More,
    /// Close the connection: the client closed it before a request
    /// (`None`), or sent one that cannot be served.
    Closed(Option<ProtocolError>),
}

/// The body length a plain uwsgi peer declares (none: no body).
pub fn plain_length(vars: &Vars) -> u64 {
    vars.get_str("CONTENT_LENGTH")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0)
}

/// Where a framed inline body ends (just past its zero frame) once all of
/// it is in `data`; too large or followed by anything is malformed (our
/// client sends nothing before the answer).
fn frames_end(data: &[u8], limit: usize) -> Result<Option<usize>, ProtocolError> {
    let mut at = 0;
    let mut total = 0usize;
    loop {
        let Some(header) = data.get(at..at + 4) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        at += 4;
        if len == 0 {
            return if at == data.len() {
                Ok(Some(at))
            } else {
                Err(ProtocolError::Malformed)
            };
        }
        total = total.saturating_add(len);
        if total > limit {
            return Err(ProtocolError::Malformed);
        }
        if data.len() < at + len {
            return Ok(None);
        }
        at += len;
    }
}

/// The payload of a complete framed inline body (see [`frames_end`]).
pub fn inline_body(mut data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(header) = data.get(..4) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len == 0 {
            break;
        }
        body.extend_from_slice(&data[4..4 + len]);
        data = &data[4 + len..];
    }
    body
}

/// Whether `data` holds a complete request (a head, the stage due
/// otherwise).
fn assess(data: &[u8], limit: usize) -> Result<Result<Head, Stage>, ProtocolError> {
    let Some((vars, body_start)) = protocol::parse_request_head(data)? else {
        return Ok(Err(Stage::Head));
    };
    let body = &data[body_start..];
    let complete = if vars.flag(protocol::VAR_CLIENT) {
        // A streamed body follows the go-ahead; an inline one comes now.
        vars.flag(protocol::VAR_EXPECT) || frames_end(body, limit)?.is_some()
    } else {
        // Larger bodies are read as the application asks for them.
        let length = plain_length(&vars);
        length > limit as u64 || body.len() as u64 >= length
    };
    Ok(if complete {
        Ok(Head { vars, body_start })
    } else {
        Err(Stage::Body)
    })
}

/// The most a request may take in the buffer before it is complete.
fn max_request(limit: usize) -> usize {
    4 + protocol::MAX_VARS + limit + 4 * (limit / protocol::MAX_FRAME + 2)
}

/// Reads what has arrived on `conn` into `scratch` without waiting, and
/// says whether the request is complete.
pub fn receive(conn: &mut Conn, scratch: &mut Scratch, limits: &Limits) -> Intake {
    let partial = std::mem::take(&mut conn.partial);
    if scratch.buf.len() < partial.len() {
        scratch.buf.resize(partial.len(), 0);
    }
    scratch.buf[..partial.len()].copy_from_slice(&partial);
    scratch.filled = partial.len();
    let mut progressed = false;
    let due = loop {
        let due = match assess(&scratch.buf[..scratch.filled], limits.body) {
            Ok(Ok(head)) => return Intake::Ready(head),
            Ok(Err(due)) => due,
            Err(e) => return Intake::Closed(Some(e)),
        };
        if scratch.filled == scratch.buf.len() {
            let most = max_request(limits.body);
            if scratch.filled >= most {
                return Intake::Closed(Some(ProtocolError::Malformed));
            }
            let grown = (scratch.buf.len() * 2).min(most);
            scratch.buf.resize(grown, 0);
        }
        let room = &mut scratch.buf[scratch.filled..];
        // MSG_DONTWAIT never blocks, whatever the socket's timeout.
        match rustix::net::recv(&conn.stream, room, RecvFlags::DONTWAIT) {
            Ok((_, 0)) if scratch.filled == 0 => return Intake::Closed(None),
            Ok((_, 0)) => return Intake::Closed(Some(ProtocolError::Truncated)),
            Ok((_, n)) => {
                scratch.filled += n;
                progressed = true;
            }
            Err(e) => {
                let e = std::io::Error::from(e);
                match e.kind() {
                    ErrorKind::Interrupted => {}
                    ErrorKind::WouldBlock => break due,
                    _ => return Intake::Closed(Some(ProtocolError::Io(e))),
                }
            }
        }
    };
    conn.partial = scratch.buf[..scratch.filled].to_vec();
    let due = if scratch.filled == 0 { conn.stage } else { due };
    conn.deadline = match (conn.stage, due) {
        // A kept connection's next request started.
        (Stage::Idle, Stage::Head) => deadline_after(limits.header_timeout),
        // The head is done: the body has its own pace, reset by progress.
        (Stage::Idle | Stage::Head, Stage::Body) => deadline_after(limits.body_timeout),
        (Stage::Body, Stage::Body) if progressed => deadline_after(limits.body_timeout),
        // The head's time counts from its start, however it trickles.
        _ => conn.deadline,
    };
    conn.stage = due;
    Intake::More
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const LIMITS: Limits = Limits {
        header_timeout: Duration::from_secs(10),
        body_timeout: Duration::from_secs(10),
        body: 100,
    };

    fn packet(vars: &[(&str, &str)]) -> Vec<u8> {
        protocol::encode_request(vars.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes()))).unwrap()
    }

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if !body.is_empty() {
            out.extend_from_slice(&protocol::frame_header(body.len()));
            out.extend_from_slice(body);
        }
        out.extend_from_slice(&protocol::frame_header(0));
        out
    }

    /// Feeds `parts` one at a time, receiving after each; the outcome of
    /// each receive.
    fn feed(parts: &[&[u8]], limits: &Limits) -> (Vec<&'static str>, Option<Vec<u8>>) {
        let (mut client, server) = UnixStream::pair().unwrap();
        let mut conn = Conn::accepted(server, limits);
        let mut scratch = Scratch::default();
        let mut seen = Vec::new();
        for part in parts {
            client.write_all(part).unwrap();
            match receive(&mut conn, &mut scratch, limits) {
                Intake::Ready(head) => {
                    seen.push("ready");
                    return (seen, Some(scratch.body(&head).to_vec()));
                }
                Intake::More => seen.push(match conn.stage() {
                    Stage::Head => "head",
                    Stage::Body => "body",
                    Stage::Idle => "idle",
                }),
                Intake::Closed(_) => seen.push("closed"),
            }
        }
        (seen, None)
    }

    #[test]
    fn a_dribbled_head_waits_without_blocking() {
        let p = packet(&[("REQUEST_METHOD", "GET")]);
        let (seen, body) = feed(&[&p[..1], &p[1..7], &p[7..]], &LIMITS);
        assert_eq!(seen, ["head", "head", "ready"]);
        assert_eq!(body.unwrap(), b"");
    }

    #[test]
    fn a_plain_body_up_to_the_limit_is_buffered() {
        let p = packet(&[("CONTENT_LENGTH", "10")]);
        let (seen, body) = feed(&[&p, b"01234", b"56789"], &LIMITS);
        assert_eq!(seen, ["body", "body", "ready"]);
        assert_eq!(body.unwrap(), b"0123456789");
        // Above the limit the head is enough: the application reads on.
        let p = packet(&[("CONTENT_LENGTH", "101")]);
        let (seen, _) = feed(&[&p], &LIMITS);
        assert_eq!(seen, ["ready"]);
    }

    #[test]
    fn an_inline_framed_body_is_buffered_and_checked() {
        let p = packet(&[(protocol::VAR_CLIENT, "1")]);
        let body = framed(b"hello");
        let (seen, got) = feed(&[&p, &body[..6], &body[6..]], &LIMITS);
        assert_eq!(seen, ["body", "body", "ready"]);
        assert_eq!(inline_body(&got.unwrap()), b"hello");
        // Over the limit, or followed by more: refused.
        let (seen, _) = feed(&[&p, &framed(&[b'x'; 101])], &LIMITS);
        assert_eq!(seen, ["body", "closed"]);
        let mut twice = framed(b"a");
        twice.extend_from_slice(b"extra");
        let (seen, _) = feed(&[&p, &twice], &LIMITS);
        assert_eq!(seen, ["body", "closed"]);
        // A streamed body waits for the go-ahead.
        let p = packet(&[(protocol::VAR_CLIENT, "1"), (protocol::VAR_EXPECT, "1")]);
        assert_eq!(feed(&[&p], &LIMITS).0, ["ready"]);
    }

    #[test]
    fn a_close_before_any_byte_is_quiet() {
        let (client, server) = UnixStream::pair().unwrap();
        let mut conn = Conn::accepted(server, &LIMITS);
        drop(client);
        let got = receive(&mut conn, &mut Scratch::default(), &LIMITS);
        assert!(matches!(got, Intake::Closed(None)));
    }

    #[test]
    fn deadlines_follow_the_stage() {
        let (mut client, server) = UnixStream::pair().unwrap();
        let mut conn = Conn::accepted(server, &LIMITS);
        assert!(conn.receiving() && conn.deadline.is_some());
        conn.rest();
        assert!(!conn.receiving() && conn.deadline.is_none());
        let mut scratch = Scratch::default();
        // Nothing arrived: still idle, no deadline.
        assert!(matches!(
            receive(&mut conn, &mut scratch, &LIMITS),
            Intake::More
        ));
        assert_eq!(conn.stage(), Stage::Idle);
        assert!(conn.deadline.is_none());
        client.write_all(&[0]).unwrap();
        receive(&mut conn, &mut scratch, &LIMITS);
        assert_eq!(conn.stage(), Stage::Head);
        let due = conn.deadline.unwrap();
        assert!(!conn.expired(due - Duration::from_millis(1)));
        assert!(conn.expired(due));
        let unlimited = Limits {
            header_timeout: Duration::ZERO,
            ..LIMITS
        };
        let (_client, server) = UnixStream::pair().unwrap();
        assert!(Conn::accepted(server, &unlimited).deadline.is_none());
    }

    #[test]
    fn a_large_buffered_body_grows_the_scratch_then_gives_it_back() {
        let limits = Limits {
            body: 1 << 20,
            ..LIMITS
        };
        let p = packet(&[("CONTENT_LENGTH", "1048576")]);
        let (mut client, server) = UnixStream::pair().unwrap();
        let mut conn = Conn::accepted(server, &limits);
        let mut scratch = Scratch::default();
        let writer = std::thread::spawn(move || {
            client.write_all(&p).unwrap();
            client.write_all(&vec![7u8; 1 << 20]).unwrap();
            client
        });
        let head = loop {
            match receive(&mut conn, &mut scratch, &limits) {
                Intake::Ready(head) => break head,
                Intake::More => std::thread::yield_now(),
                Intake::Closed(e) => panic!("closed: {e:?}"),
            }
        };
        let _client = writer.join().unwrap();
        assert_eq!(scratch.body(&head).len(), 1 << 20);
        scratch.relax();
        assert_eq!(scratch.buf.len(), SCRATCH);
    }
}
