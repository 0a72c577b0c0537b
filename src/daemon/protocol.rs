//! The uwsgi wire protocol spoken on daemon sockets, and the small
//! extensions our own Apache-side client negotiates.
//!
//! A request is one uwsgi packet: `modifier1: u8` (0 = WSGI), `datasize:
//! u16 LE` (size of the vars block), `modifier2: u8`, then the vars as
//! `u16 LE key_len, key, u16 LE val_len, val` pairs, then the body
//! (`CONTENT_LENGTH` bytes). A plain peer (Apache `mod_proxy_uwsgi`,
//! nginx `uwsgi_pass`) gets a plain HTTP response (`HTTP/1.1 NNN reason`,
//! headers, blank line, body) and the connection is closed at its end.
//!
//! Extensions, enabled only when the request carries `WSGI_RS_CLIENT=1`:
//! - both bodies are framed as `u32 LE length` + bytes. The request body
//!   ends with a zero length (so its length never depends on
//!   `CONTENT_LENGTH`, which input filters may have made wrong); the
//!   response body ends with [`END_KEEP`] or [`END_CLOSE`], so a response
//!   cut short by a crash or an application error can never be taken for a
//!   complete one;
//! - after [`END_KEEP`] the connection carries the client's next request
//!   (persistent connections); the client sends a request only once the
//!   previous response has ended, so requests never overlap on a connection;
//! - the daemon may answer a single byte [`REJECT`] before anything else,
//!   meaning "not served, nothing consumed: retry on a fresh connection"
//!   (used while a process restarts for a changed script or recycling);
//! - with `WSGI_RS_EXPECT=1` the client sends the body only after the
//!   daemon answered [`CONTINUE`], so a large body is never half-consumed by
//!   a process that then rejects the request. A daemon that answers without
//!   taking the body (an error) sends its response instead, ending it with
//!   [`END_CLOSE`]. Without it the whole body follows the vars at once,
//!   and the daemon reads all of it before running the application: a
//!   connection that fails with nothing consumed (reset, broken pipe) was
//!   then never acted on, and the client may safely send the request again.
//! - `WSGI_RS_CHUNKED=1` only says the client's request had no length
//!   (`wsgi.input_terminated`).
//! - `WSGI_RS_UPGRADE=websocket` says the client asked for a WebSocket and
//!   our client can tunnel it. A daemon that accepts answers a
//!   `HTTP/1.1 101` head, unframed, and from then on the connection carries
//!   the WebSocket's raw bytes both ways until either side closes it (see
//!   `httpd::daemon_client::tunnel` and `daemon::websocket`). Any other answer is
//!   an ordinary framed response. Without the var the daemon never answers
//!   101, so plain peers, which cannot tunnel, never see one.

use std::borrow::Cow;
use std::io;
use std::ops::Range;

use crate::config::{rewrite_by_encoded_rules, EnvEdit};

/// Private variables: consumed by the daemon, never shown to applications.
pub const VAR_PREFIX: &[u8] = b"WSGI_RS_";
/// The secret proving the request came from this Apache.
pub const VAR_SECRET: &str = "WSGI_RS_SECRET";
/// Set by our client: it frames bodies and keeps connections.
pub const VAR_CLIENT: &str = "WSGI_RS_CLIENT";
/// The body follows the daemon's go-ahead.
pub const VAR_EXPECT: &str = "WSGI_RS_EXPECT";
/// The client's body was chunked.
pub const VAR_CHUNKED: &str = "WSGI_RS_CHUNKED";
/// The request asks for a WebSocket, and our client can tunnel it.
pub const VAR_UPGRADE: &str = "WSGI_RS_UPGRADE";
/// The WSGI script to run.
pub const VAR_SCRIPT: &str = "WSGI_RS_SCRIPT";
/// Its application group.
pub const VAR_APPLICATION_GROUP: &str = "WSGI_RS_APPLICATION_GROUP";
/// The callable's name.
pub const VAR_CALLABLE: &str = "WSGI_RS_CALLABLE";
/// `WSGIScriptReloading` ("0" when off).
pub const VAR_RELOADING: &str = "WSGI_RS_RELOADING";
/// The script's modification time (microseconds) as Apache saw it for this
/// request, so the daemon need not stat() it again.
pub const VAR_SCRIPT_MTIME: &str = "WSGI_RS_SCRIPT_MTIME";
/// When Apache sent the request (microseconds), for `queue-timeout`.
pub const VAR_QUEUE_START: &str = "WSGI_RS_QUEUE_START";
/// `WSGIEnableSendfile On` for this request (absent: Off).
pub const VAR_SENDFILE: &str = "WSGI_RS_SENDFILE";
/// `WSGIIgnoreActivity On` for this request (absent: Off).
pub const VAR_IGNORE_ACTIVITY: &str = "WSGI_RS_IGNORE_ACTIVITY";
/// The alias's `interface=` (`asgi` or `wsgi`); absent: the daemon tells
/// by the callable.
pub const VAR_INTERFACE: &str = "WSGI_RS_INTERFACE";

/// Marks a daemon-generated error answer to our client (Apache then renders
/// its own error page); stripped from application headers.
pub const INTERNAL_ERROR_HEADER: &str = "X-Wsgi-Rs-Internal";

/// The daemon's answer "retry elsewhere" (it is restarting).
pub const REJECT: u8 = b'R';
/// The daemon's go-ahead for a streamed body.
pub const CONTINUE: u8 = b'C';

/// Ends a framed response body; the connection stays open for the next
/// request.
pub const END_KEEP: u32 = 0;
/// Ends a framed response body; the daemon then closes the connection.
pub const END_CLOSE: u32 = u32::MAX;
/// Largest body frame either side sends.
pub const MAX_FRAME: usize = 4 << 20;

/// Largest vars block the uwsgi header can describe.
pub const MAX_VARS: usize = u16::MAX as usize;

/// What can be wrong with a request on the wire.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The vars do not fit the 16-bit size.
    #[error("uwsgi vars block is {0} bytes, more than the protocol's 65535")]
    VarsTooLarge(usize),
    /// A key or value does not fit its 16-bit length.
    #[error("a uwsgi var is longer than 65535 bytes")]
    VarTooLong,
    /// A packet type other than WSGI's.
    #[error("unsupported uwsgi modifier1 {0} (only 0, WSGI, is served)")]
    Modifier(u8),
    /// Lengths that do not add up.
    #[error("malformed uwsgi vars block")]
    Malformed,
    /// The stream ended in the middle.
    #[error("connection closed before a complete request arrived")]
    Truncated,
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Appends a request's 4-byte header and vars block to `out`.
pub fn encode_request_into<'a>(
    out: &mut Vec<u8>,
    vars: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<(), ProtocolError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    for (k, v) in vars {
        if k.len() > MAX_VARS || v.len() > MAX_VARS {
            out.truncate(start);
            return Err(ProtocolError::VarTooLong);
        }
        out.extend_from_slice(&(k.len() as u16).to_le_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u16).to_le_bytes());
        out.extend_from_slice(v);
    }
    let size = out.len() - start - 4;
    if size > MAX_VARS {
        out.truncate(start);
        return Err(ProtocolError::VarsTooLarge(size));
    }
    out[start + 1..start + 3].copy_from_slice(&(size as u16).to_le_bytes());
    Ok(())
}

/// Builds the 4-byte header and vars block of a request.
#[cfg(test)] // Only the unit tests need it.
pub fn encode_request<'a>(
    vars: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::new();
    encode_request_into(&mut out, vars)?;
    Ok(out)
}

/// The vars of one request, in arrival order: one block of bytes and the
/// positions of each key and value in it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Vars {
    /// The vars block as received.
    block: Vec<u8>,
    /// Where each key and value lies in `block`.
    pairs: Vec<(Range<usize>, Range<usize>)>,
}

impl Vars {
    /// Every variable, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs
            .iter()
            .map(|(k, v)| (&self.block[k.clone()], &self.block[v.clone()]))
    }

    /// How many variables there are.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are none.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// A variable's value.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// A variable's value as text (lossy).
    pub fn get_str(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Whether a flag variable is "1".
    pub fn flag(&self, key: &str) -> bool {
        self.get(key) == Some(b"1")
    }

    /// The vars an application may see (private ones removed).
    pub fn public(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.iter().filter(|(k, _)| !is_private(k))
    }

    /// Removes every occurrence of a variable.
    pub fn unset(&mut self, key: &str) {
        let block = &self.block;
        self.pairs
            .retain(|(k, _)| &block[k.clone()] != key.as_bytes());
    }

    /// Sets a variable, replacing every occurrence it had (as
    /// `apr_table_set` does), after the others.
    pub fn set(&mut self, key: &str, value: &[u8]) {
        self.unset(key);
        let k = self.block.len()..self.block.len() + key.len();
        self.block.extend_from_slice(key.as_bytes());
        let v = self.block.len()..self.block.len() + value.len();
        self.block.extend_from_slice(value);
        self.pairs.push((k, v));
    }

    /// The same vars with every private one dropped (a plain peer's view).
    pub fn without_private(mut self) -> Vars {
        let block = &self.block;
        self.pairs.retain(|(k, _)| !is_private(&block[k.clone()]));
        self
    }
}

/// Private vars, including the `REDIRECT_`-prefixed copies httpd makes of
/// them on internal redirects (an ErrorDocument after a proxied request).
pub fn is_private(key: &[u8]) -> bool {
    key.windows(VAR_PREFIX.len()).any(|w| w == VAR_PREFIX)
}

/// Constant-time comparison: the secret must not leak through timing. An
/// empty secret matches nothing.
pub fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    !expected.is_empty()
        && given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Its [`VAR_SECRET`] is neither of ours.
    Secret,
    /// It carries the proxy secret, but trusted-proxy rules that do not
    /// parse (a bug: only this Apache writes them).
    ProxyRules(String),
}

/// The [`VAR_SECRET`] of a request that this Apache's `mod_proxy_uwsgi`
/// sends to a daemon group: the proxy secret, then, when
/// `WSGITrustedProxyHeaders` applies to the request's location, a space
/// and the location's rules (`config::encode_rules`). The rules ride in
/// the secret's own var so that nothing unable to write the secret (a
/// client, `SetEnv`, mod_rewrite's `[E=]`) can write rules either.
pub fn proxy_credentials<'a>(proxy_secret: &'a str, rules: Option<&str>) -> Cow<'a, str> {
    match rules {
        Some(rules) => Cow::Owned(format!("{proxy_secret} {rules}")),
        None => Cow::Borrowed(proxy_secret),
    }
}

/// The vars a daemon acts on, by the request's [`VAR_SECRET`]: all of them
/// with `secret` (our own client's, which may choose script, group and
/// callable), only the public ones with `proxy_secret` (this Apache's
/// `mod_proxy_uwsgi`: the group's default application whatever it sends),
/// rewritten by the trusted-proxy rules that came with it (see
/// [`proxy_credentials`]) as our handler rewrites its own requests' vars;
/// refused with anything else.
pub fn admit(vars: Vars, secret: &[u8], proxy_secret: &[u8]) -> Result<Vars, Refused> {
    let given = vars.get(VAR_SECRET).unwrap_or(b"");
    if same_secret(given, secret) {
        return Ok(vars);
    }
    let (given, rules) = match given.iter().position(|&b| b == b' ') {
        Some(at) => (&given[..at], Some(given[at + 1..].to_vec())),
        None => (given, None),
    };
    if !same_secret(given, proxy_secret) {
        return Err(Refused::Secret);
    }
    let mut vars = vars.without_private();
    if let Some(rules) = rules {
        let edits =
            rewrite_by_encoded_rules(&rules, |key| vars.get(key)).map_err(Refused::ProxyRules)?;
        for edit in edits {
            match edit {
                EnvEdit::Set(key, value) => vars.set(key, &value),
                EnvEdit::Unset(key) => vars.unset(key),
            }
        }
    }
    Ok(vars)
}

/// Parses a request's header and vars from the start of `buf`: the vars
/// and the number of bytes they took, or None while `buf` holds less than
/// the whole of them.
pub fn parse_request_head(buf: &[u8]) -> Result<Option<(Vars, usize)>, ProtocolError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    if buf[0] != 0 {
        return Err(ProtocolError::Modifier(buf[0]));
    }
    let size = u16::from_le_bytes([buf[1], buf[2]]) as usize;
    if buf.len() < 4 + size {
        return Ok(None);
    }
    Ok(Some((parse_vars(buf[4..4 + size].to_vec())?, 4 + size)))
}

/// Reads a request's header and vars; the body follows on the stream.
#[cfg(test)] // Only the unit tests need it.
pub fn read_request(r: &mut impl io::Read) -> Result<Vars, ProtocolError> {
    let mut buf = vec![0u8; 4];
    r.read_exact(&mut buf).map_err(truncated)?;
    let size = u16::from_le_bytes([buf[1], buf[2]]) as usize;
    buf.resize(4 + size, 0);
    r.read_exact(&mut buf[4..]).map_err(truncated)?;
    Ok(parse_request_head(&buf)?.ok_or(ProtocolError::Truncated)?.0)
}

/// An end of stream becomes `Truncated`; other errors stay I/O errors.
#[cfg(test)]
fn truncated(e: io::Error) -> ProtocolError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => ProtocolError::Truncated,
        _ => ProtocolError::Io(e),
    }
}

/// Splits a vars block into its key/value pairs.
pub fn parse_vars(block: Vec<u8>) -> Result<Vars, ProtocolError> {
    let mut pairs = Vec::with_capacity(32);
    let mut at = 0;
    let take = |at: &mut usize| -> Result<Range<usize>, ProtocolError> {
        let rest = &block[*at..];
        if rest.len() < 2 {
            return Err(ProtocolError::Malformed);
        }
        let n = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        if rest.len() < 2 + n {
            return Err(ProtocolError::Malformed);
        }
        let item = *at + 2..*at + 2 + n;
        *at += 2 + n;
        Ok(item)
    };
    while at < block.len() {
        let k = take(&mut at)?;
        let v = take(&mut at)?;
        pairs.push((k, v));
    }
    Ok(Vars { block, pairs })
}

/// Now, as microseconds since the epoch: the unit of
/// [`VAR_QUEUE_START`], which the daemon compares with its own clock.
pub fn micros_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// One body frame header (`u32 LE` length); zero ends a request body.
pub fn frame_header(len: usize) -> [u8; 4] {
    debug_assert!(len <= MAX_FRAME);
    (len as u32).to_le_bytes()
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The status line after `HTTP/x.y ` (e.g. `200 OK`).
    pub status_line: String,
    /// The headers.
    pub headers: Vec<(String, String)>,
}

/// Largest response head the client accepts (mod_wsgi answers 500 beyond).
pub const MAX_HEAD: usize = 64 * 1024;

/// The longest response header line (with its line end) the client takes
/// when `header-buffer-size=` is not given: mod_wsgi's default.
pub const DEFAULT_HEADER_LINE: usize = 32 * 1024;

/// The longest response header line (with its line end) a group's client
/// takes: `header-buffer-size=`, or mod_wsgi's default when 0.
pub fn header_line_limit(header_buffer_size: u32) -> usize {
    match header_buffer_size {
        0 => DEFAULT_HEADER_LINE,
        size => size as usize,
    }
}

/// The most a whole response head may take for that line limit: a line
/// as long as the limit must fit with a few others.
pub fn head_limit(line_limit: usize) -> usize {
    MAX_HEAD.max(2 * line_limit)
}

/// The length of the longest line of `head` (each with its line end).
pub fn longest_line(head: &[u8]) -> usize {
    head.split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0)
}

/// Parses `HTTP/x.y NNN reason\r\n(name: value\r\n)*\r\n` (without the final
/// blank line's CRLF requirement beyond what `head` holds). Values are
/// latin-1.
pub fn parse_response_head(head: &[u8]) -> Option<ResponseHead> {
    let text: String = head.iter().map(|&b| b as char).collect();
    let mut lines = text.split("\r\n");
    let first = lines.next()?;
    let rest = first.strip_prefix("HTTP/")?;
    let (_, status_line) = rest.split_once(' ')?;
    let code = status_line.get(..3)?.parse::<u16>().ok()?;
    if status_line.chars().any(|c| c.is_control()) {
        return None;
    }
    if !(100..1000).contains(&code) {
        return None;
    }
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':')?;
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return None;
        }
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return None;
        }
        headers.push((name.to_owned(), value.to_owned()));
    }
    Some(ResponseHead {
        status: code,
        status_line: status_line.to_owned(),
        headers,
    })
}

/// Serialises a response head for the wire.
pub fn encode_response_head(status_line: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + headers.len() * 32);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend(status_line.chars().map(|c| c as u8));
    out.extend_from_slice(b"\r\n");
    for (k, v) in headers {
        out.extend(k.chars().map(|c| c as u8));
        out.extend_from_slice(b": ");
        out.extend(v.chars().map(|c| c as u8));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// An error answer. Our client gets the status only (marked internal, so
/// Apache renders its own error page, as for embedded mode) and the
/// connection closes; plain peers get a small body.
pub fn error_response(status: u16, reason: &str, framed: bool) -> Vec<u8> {
    let line = format!("{status} {reason}");
    if framed {
        let mut out =
            encode_response_head(&line, &[(INTERNAL_ERROR_HEADER.into(), "error".into())]);
        out.extend_from_slice(&END_CLOSE.to_le_bytes());
        out
    } else {
        let body = format!("{line}\n");
        let mut out = encode_response_head(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip() {
        let vars: Vec<(&[u8], &[u8])> = vec![
            (b"REQUEST_METHOD", b"GET"),
            (b"PATH_INFO", b"/x"),
            (b"EMPTY", b""),
        ];
        let packet = encode_request(vars.iter().copied()).unwrap();
        assert_eq!(packet[0], 0);
        assert_eq!(packet[3], 0);
        let size = u16::from_le_bytes([packet[1], packet[2]]) as usize;
        assert_eq!(size, packet.len() - 4);
        let parsed = read_request(&mut &packet[..]).unwrap();
        assert_eq!(parsed.get("PATH_INFO"), Some(&b"/x"[..]));
        assert_eq!(parsed.get("EMPTY"), Some(&b""[..]));
        assert_eq!(parsed.len(), 3);
        let (head, used) = parse_request_head(&packet).unwrap().unwrap();
        assert_eq!((head, used), (parsed, packet.len()));
        assert!(parse_request_head(&packet[..packet.len() - 1])
            .unwrap()
            .is_none());
    }

    #[test]
    fn oversized_vars_are_refused() {
        let big = vec![b'x'; 40_000];
        let vars: Vec<(&[u8], &[u8])> = vec![(b"A", &big), (b"B", &big)];
        assert!(matches!(
            encode_request(vars.iter().copied()),
            Err(ProtocolError::VarsTooLarge(_))
        ));
        let huge = vec![b'x'; 70_000];
        let vars: Vec<(&[u8], &[u8])> = vec![(b"A", &huge)];
        assert!(matches!(
            encode_request(vars.iter().copied()),
            Err(ProtocolError::VarTooLong)
        ));
    }

    #[test]
    fn truncated_and_malformed_requests() {
        assert!(matches!(
            read_request(&mut &b"\0\x05"[..]),
            Err(ProtocolError::Truncated)
        ));
        assert!(matches!(
            read_request(&mut &b"\x05\0\0\0"[..]),
            Err(ProtocolError::Modifier(5))
        ));
        assert!(matches!(
            parse_vars(b"\x05\0ab".to_vec()),
            Err(ProtocolError::Malformed)
        ));
        assert!(matches!(
            parse_vars(b"\x01\0a".to_vec()),
            Err(ProtocolError::Malformed)
        ));
    }

    #[test]
    fn private_vars_are_hidden() {
        let vars = parse_vars(
            encode_request(vec![
                (&b"WSGI_RS_SECRET"[..], &b"s"[..]),
                (b"HTTP_HOST", b"h"),
            ])
            .unwrap()[4..]
                .to_vec(),
        )
        .unwrap();
        let public: Vec<_> = vars.public().collect();
        assert_eq!(public, vec![(&b"HTTP_HOST"[..], &b"h"[..])]);
        assert_eq!(vars.get_str(VAR_SECRET).as_deref(), Some("s"));
        let plain = vars.without_private();
        assert_eq!(plain.len(), 1);
        assert_eq!(plain.get(VAR_SECRET), None);
    }

    fn vars_of(pairs: &[(&str, &str)]) -> Vars {
        let packet = encode_request(pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
        parse_vars(packet.unwrap()[4..].to_vec()).unwrap()
    }

    #[test]
    fn proxied_vars_are_rewritten_by_the_rules_that_ride_with_the_secret() {
        // The rules as `config::encode_rules` writes them.
        let credentials = proxy_credentials("p", Some("X-Forwarded-For"));
        assert_eq!(credentials, "p X-Forwarded-For");
        let sent = [
            ("REMOTE_ADDR", "127.0.0.1"),
            ("HTTP_X_FORWARDED_FOR", "203.0.113.7, 10.0.0.1"),
            ("HTTP_X_REAL_IP", "6.6.6.6"),
            ("WSGI_RS_SECRET", &credentials),
            ("WSGI_RS_SCRIPT", "/elsewhere.wsgi"),
            ("HTTP_X_REAL_IP", "6.6.6.7"),
        ];
        let vars = admit(vars_of(&sent), b"s", b"p").unwrap();
        assert_eq!(vars.get_str("REMOTE_ADDR").as_deref(), Some("203.0.113.7"));
        assert_eq!(vars.get("HTTP_X_REAL_IP"), None);
        assert!(vars.iter().all(|(k, _)| !is_private(k)));
        assert_eq!(vars.iter().filter(|(k, _)| *k == b"REMOTE_ADDR").count(), 1);
        // Without rules the proxied vars pass as sent, private ones aside.
        let sent = [("HTTP_X_REAL_IP", "6.6.6.6"), ("WSGI_RS_SECRET", "p")];
        let vars = admit(vars_of(&sent), b"s", b"p").unwrap();
        assert_eq!(vars.get_str("HTTP_X_REAL_IP").as_deref(), Some("6.6.6.6"));
        // Rules need the secret in front of them.
        for wrong in [
            "q X-Forwarded-For",
            " X-Forwarded-For",
            "X-Forwarded-For",
            "p",
        ] {
            let sent = [("WSGI_RS_SECRET", wrong)];
            let admitted = admit(vars_of(&sent), b"s", b"pp");
            assert_eq!(admitted, Err(Refused::Secret), "{wrong}");
        }
        let sent = [("WSGI_RS_SECRET", "p X-Forwarded-Fro")];
        assert!(matches!(
            admit(vars_of(&sent), b"s", b"p"),
            Err(Refused::ProxyRules(_))
        ));
    }

    #[test]
    fn set_and_unset_act_on_every_occurrence() {
        let mut vars = vars_of(&[("A", "1"), ("B", "2"), ("A", "3")]);
        vars.set("A", b"4");
        assert_eq!(
            vars.iter().collect::<Vec<_>>(),
            [(&b"B"[..], &b"2"[..]), (b"A", b"4")]
        );
        vars.unset("A");
        vars.unset("C");
        assert_eq!(vars.iter().collect::<Vec<_>>(), [(&b"B"[..], &b"2"[..])]);
    }

    #[test]
    fn response_heads() {
        let head = encode_response_head(
            "201 Created",
            &[
                ("Content-Type".into(), "text/plain".into()),
                ("X-A".into(), "é".into()),
            ],
        );
        let parsed = parse_response_head(&head).unwrap();
        assert_eq!(parsed.status, 201);
        assert_eq!(parsed.status_line, "201 Created");
        assert_eq!(parsed.headers[1], ("X-A".to_owned(), "é".to_owned()));
        assert!(parse_response_head(b"HTTP/1.1 abc\r\n\r\n").is_none());
        assert!(parse_response_head(b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n").is_none());
        assert!(parse_response_head(b"garbage\r\n\r\n").is_none());
    }

    #[test]
    fn header_lines_are_measured_with_their_line_end() {
        assert_eq!(longest_line(b"HTTP/1.1 200 OK\r\nX-A: bb\r\n\r\n"), 17);
        assert_eq!(longest_line(b""), 0);
        assert_eq!(header_line_limit(0), 32768);
        assert_eq!(header_line_limit(8192), 8192);
        assert_eq!(head_limit(8192), MAX_HEAD);
        assert_eq!(head_limit(1 << 20), 2 << 20);
    }
}
