//! A deliberately small HTTP/1.1 client over `std::net::TcpStream`.
//!
//! It is hand-written rather than a crate because the tests need to send
//! malformed and chunked requests byte for byte, and to see exactly how a
//! response ended: a body cut short (before its Content-Length, or before the
//! terminating 0-chunk) is how a test observes an aborted connection, which a
//! friendly client library would hide or turn into an opaque error.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Every socket read and write gives up after this long, so a server that
/// hangs fails the test instead of blocking the whole suite. As long as
/// Apache's `Timeout` (common/server.rs): far above any deliberate timeout
/// of a test, so a loaded machine never reaches it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// One parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// 0 when the server closed the connection without a parsable status line.
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    /// The body after removing any chunked framing.
    pub body: Vec<u8>,
    /// False when the body ended before its Content-Length, before the
    /// terminating 0-chunk, or the connection was reset.
    pub complete: bool,
}

impl Response {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8, for assertions and failure messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Builds an HTTP/1.1 request. `Host` and `Connection: close` are added unless
/// the caller gives its own; `Content-Length` is added for a non-empty body
/// (or any POST/PUT) unless the caller set a length or a transfer coding.
pub fn build_request(
    method: &str,
    path: &str,
    port: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !has("host") {
        head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    if !has("connection") {
        head.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has("content-length")
        && !has("transfer-encoding")
        && (!body.is_empty() || method == "POST" || method == "PUT")
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Encodes `parts` as a chunked request body, one chunk per part, with the
/// terminating 0-chunk.
pub fn chunked(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts.iter().filter(|p| !p.is_empty()) {
        out.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Opens a connection to 127.0.0.1:`port` with the harness timeouts set.
pub fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("cannot connect to 127.0.0.1:{port}: {e}"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Reads until EOF. Returns the bytes and whether the connection was reset
/// (as opposed to a clean FIN). A read timeout panics: a hang is a failure.
pub fn read_to_eof(stream: &mut TcpStream) -> (Vec<u8>, bool) {
    let (_, data, reset) = read_timed(stream, Instant::now());
    (data, reset)
}

/// Like `read_to_eof` but also records when each piece arrived, as
/// (elapsed since `start`, total bytes received so far), so a test can tell
/// whether a streamed body really arrived incrementally.
pub fn read_timed(
    stream: &mut TcpStream,
    start: Instant,
) -> (Vec<(Duration, usize)>, Vec<u8>, bool) {
    let mut data = Vec::new();
    let mut arrivals = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (arrivals, data, false),
            Ok(n) => {
                data.extend_from_slice(&buf[..n]);
                arrivals.push((start.elapsed(), data.len()));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => panic!(
                "no data from the server for {IO_TIMEOUT:?} (hang?); received so far {} bytes: {:?}",
                data.len(),
                String::from_utf8_lossy(&data[..data.len().min(2000)])
            ),
            // A reset (or any other error) ends the response; the caller sees
            // it as an incomplete body.
            Err(_) => return (arrivals, data, true),
        }
    }
}

/// When the cumulative data first contained `needle` (its last byte arrived).
pub fn arrival_of(arrivals: &[(Duration, usize)], data: &[u8], needle: &[u8]) -> Option<Duration> {
    let end = find(data, needle)? + needle.len();
    arrivals
        .iter()
        .find(|(_, len)| *len >= end)
        .map(|(t, _)| *t)
}

/// Sends `request` on a fresh connection and reads everything up to EOF.
/// Write errors are ignored on purpose: a server may answer (413, 411…) and
/// close before it has read the whole request, and the answer is what counts.
pub fn exchange(port: u16, request: &[u8]) -> (Vec<u8>, bool) {
    let mut stream = connect(port);
    let _ = stream.write_all(request);
    let _ = stream.flush();
    read_to_eof(&mut stream)
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses a complete exchange's bytes. `head` says the request was HEAD (no
/// body expected whatever the headers say); `reset` that the connection was
/// reset rather than closed cleanly. 1xx interim responses are skipped.
pub fn parse_response(raw: &[u8], head: bool, reset: bool) -> Response {
    let mut pos = 0;
    loop {
        let Some(end) = find(&raw[pos..], b"\r\n\r\n") else {
            return Response {
                status: 0,
                reason: String::new(),
                headers: Vec::new(),
                body: raw[pos..].to_vec(),
                complete: false,
            };
        };
        let head_text = String::from_utf8_lossy(&raw[pos..pos + end]).into_owned();
        let body_start = pos + end + 4;
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        let _version = parts.next();
        let status: u16 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let reason = parts.next().unwrap_or("").to_string();
        if (100..200).contains(&status) && status != 101 {
            pos = body_start;
            continue;
        }
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        let rest = &raw[body_start..];
        let mut resp = Response {
            status,
            reason,
            headers,
            body: Vec::new(),
            complete: false,
        };
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if head || status == 204 || status == 304 {
            resp.body = rest.to_vec();
            resp.complete = !reset;
        } else if chunked {
            let (body, done) = decode_chunked(rest);
            resp.body = body;
            resp.complete = done;
        } else if let Some(cl) = resp
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            resp.body = rest[..rest.len().min(cl)].to_vec();
            resp.complete = rest.len() >= cl;
        } else {
            // Delimited by EOF: only a reset tells us it was cut short.
            resp.body = rest.to_vec();
            resp.complete = !reset;
        }
        return resp;
    }
}

/// Removes chunked framing. Returns the data and whether the terminating
/// 0-chunk (and the blank line after any trailers) was seen.
pub fn decode_chunked(mut rest: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(le) = find(rest, b"\r\n") else {
            return (out, false);
        };
        let line = String::from_utf8_lossy(&rest[..le]).into_owned();
        let size_text = line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return (out, false);
        };
        rest = &rest[le + 2..];
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let Some(le) = find(rest, b"\r\n") else {
                    return (out, false);
                };
                if le == 0 {
                    return (out, true);
                }
                rest = &rest[le + 2..];
            }
        }
        if rest.len() < size {
            out.extend_from_slice(rest);
            return (out, false);
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size..];
        if !rest.starts_with(b"\r\n") {
            return (out, false);
        }
        rest = &rest[2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_and_detects_truncation() {
        let full = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let r = parse_response(full, false, false);
        assert_eq!(
            (r.status, r.body.as_slice(), r.complete),
            (200, &b"hello"[..], true)
        );
        let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
        assert!(!parse_response(cut, false, false).complete);
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello";
        assert!(!parse_response(short, false, false).complete);
        let interim =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_response(interim, false, false).status, 404);
    }
}
