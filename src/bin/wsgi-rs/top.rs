//! `wsgi-rs top`: a terminal view of a running server's metrics (the text
//! `SetHandler wsgi-rs-metrics`, or `wsgi-rs-status?format=prometheus`,
//! serves), redrawn every interval, like `uwsgitop`; `--once` prints one
//! view and exits.
//!
//! The metrics are fetched with a plain HTTP/1.0 GET: the endpoint is a
//! local, unencrypted URL guarded by `Require ip`, and this is all the
//! client the launcher needs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cli::TopArgs;
use crate::failure::{Failure, Outcome};
use crate::prometheus::{groups, parse, quantile, since, Group};

/// Runs `wsgi-rs top`.
pub fn run(args: &TopArgs) -> Outcome<ExitCode> {
    let interval = Duration::from_secs_f64(args.interval.max(0.1));
    let mut before = (Instant::now(), sample(&args.url)?);
    if args.once {
        std::thread::sleep(interval);
        let now = (Instant::now(), sample(&args.url)?);
        print!("{}", view(&args.url, &before, &now, true));
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        std::thread::sleep(interval);
        let now = (Instant::now(), sample(&args.url)?);
        // Home, clear: a plain ANSI terminal is all this needs.
        print!("\x1b[H\x1b[2J{}", view(&args.url, &before, &now, false));
        let _ = std::io::stdout().flush();
        before = now;
    }
}

/// The groups' figures now.
fn sample(url: &str) -> Outcome<BTreeMap<String, Group>> {
    let text = fetch(url)?;
    let figures = groups(&parse(&text));
    if figures.is_empty() {
        return Err(Failure::new(
            format!("{url} serves no mod_wsgi_rs metrics"),
            "point wsgi-rs top at a `SetHandler wsgi-rs-metrics` location of a server with WSGIServerMetrics on",
        ));
    }
    Ok(figures)
}

/// The view: one line per group. Queue-wait quantiles are over the
/// interval's requests, or (with `all_time`, or when the interval had
/// none) over every request since the server started.
fn view(
    url: &str,
    (t0, before): &(Instant, BTreeMap<String, Group>),
    (t1, now): &(Instant, BTreeMap<String, Group>),
    all_time: bool,
) -> String {
    let seconds = t1.duration_since(*t0).as_secs_f64().max(1e-3);
    let mut out = format!("wsgi-rs top  {url}\n\n");
    let _ = writeln!(
        out,
        "{:<20} {:>6} {:>6} {:>6} {:>8} {:>10} {:>10} {:>10} {:>9}",
        "GROUP", "PROCS", "BUSY", "IDLE", "REQ/S", "REQUESTS", "WAIT-P50", "WAIT-P99", "RESTARTS"
    );
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |s| format!("{:.2}ms", s * 1000.0));
    for (name, g) in now {
        let old = before.get(name);
        let rate = old.map_or(0.0, |o| (g.requests - o.requests).max(0.0) / seconds);
        let recent = old.map(|o| since(&g.queue, &o.queue)).unwrap_or_default();
        let buckets = if all_time || quantile(0.5, &recent).is_none() {
            &g.queue
        } else {
            &recent
        };
        let _ = writeln!(
            out,
            "{:<20} {:>6} {:>6} {:>6} {:>8.1} {:>10} {:>10} {:>10} {:>9}",
            name,
            g.processes,
            g.busy,
            g.idle,
            rate,
            g.requests,
            ms(quantile(0.5, buckets)),
            ms(quantile(0.99, buckets)),
            g.restarts
        );
    }
    out
}

/// The body of `GET url` (http only).
fn fetch(url: &str) -> Outcome<String> {
    let bad = |why: &str| {
        Failure::new(
            format!("cannot read the metrics at {url}: {why}"),
            "give an http:// URL of a `SetHandler wsgi-rs-metrics` location, e.g. http://127.0.0.1/server-metrics",
        )
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// URLs are read"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr = if host.contains(':') && !host.ends_with(']') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    let target = addr
        .to_socket_addrs()
        .map_err(|e| bad(&e.to_string()))?
        .next()
        .ok_or_else(|| bad("the host has no address"))?;
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(5))
        .map_err(|e| bad(&e.to_string()))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: wsgi-rs-top\r\nAccept: text/plain\r\n\r\n"
    )
    .map_err(|e| bad(&e.to_string()))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| bad(&e.to_string()))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("not an HTTP response"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(bad(&format!("the server answered {status}")));
    }
    Ok(body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_shows_rates_and_quantiles() {
        let text = |requests: u32, fast: u32| {
            format!(
                "wsgi_rs_requests_total{{group=\"dg\",code=\"200\"}} {requests}\n\
                 wsgi_rs_threads{{group=\"dg\",state=\"busy\"}} 1\n\
                 wsgi_rs_threads{{group=\"dg\",state=\"idle\"}} 3\n\
                 wsgi_rs_processes{{group=\"dg\"}} 2\n\
                 wsgi_rs_queue_wait_seconds_bucket{{group=\"dg\",le=\"0.001\"}} {fast}\n\
                 wsgi_rs_queue_wait_seconds_bucket{{group=\"dg\",le=\"0.01\"}} {requests}\n\
                 wsgi_rs_queue_wait_seconds_bucket{{group=\"dg\",le=\"+Inf\"}} {requests}\n"
            )
        };
        let t0 = Instant::now();
        let before = (t0, groups(&parse(&text(10, 10))));
        let now = (t0 + Duration::from_secs(2), groups(&parse(&text(30, 10))));
        let live = view("u", &before, &now, false);
        let line = live.lines().find(|l| l.starts_with("dg")).unwrap();
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            cols,
            ["dg", "2", "1", "3", "10.0", "30", "5.50ms", "9.91ms", "0"]
        );
        // Since start: a third waited at most 1 ms, the rest at most 10.
        let all = view("u", &before, &now, true);
        let line = all.lines().find(|l| l.starts_with("dg")).unwrap();
        assert!(line.contains(" 3.25ms "), "{line}");
    }

    #[test]
    fn only_http_urls_are_fetched() {
        let e = fetch("https://example.org/m").unwrap_err().to_string();
        assert!(e.contains("only http://"), "{e}");
    }
}
