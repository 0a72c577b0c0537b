//! The Prometheus text exposition format (version 0.0.4) of a board's
//! figures: what `SetHandler wsgi-rs-metrics` answers. Written by hand: the
//! format is a few lines per family, and the figures are already aggregated.

use std::fmt::Write;

use super::board::{GroupFigures, Histogram, BUCKETS};

/// The Content-Type of the answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value, escaped as the format asks (backslash, quote, newline).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Reads one figure of a group.
type Figure = fn(&GroupFigures) -> u64;

/// Writes a family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes a histogram's samples for one group.
fn histogram(out: &mut String, name: &str, group: &str, h: &Histogram) {
    let mut cumulative = 0;
    for (i, n) in h.buckets.iter().enumerate() {
        cumulative += n;
        let le = BUCKETS.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
        let _ = writeln!(
            out,
            "{name}_bucket{{group=\"{group}\",le=\"{le}\"}} {cumulative}"
        );
    }
    let sum = h.sum_micros as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum{{group=\"{group}\"}} {sum}");
    let _ = writeln!(out, "{name}_count{{group=\"{group}\"}} {cumulative}");
}

/// The exposition of `groups`.
pub fn render(groups: &[GroupFigures]) -> String {
    let mut out = String::new();
    let labelled: Vec<(String, &GroupFigures)> =
        groups.iter().map(|g| (escape(&g.name), g)).collect();
    let daemons = || labelled.iter().filter(|(_, g)| g.daemon);

    family(
        &mut out,
        "wsgi_rs_requests_total",
        "counter",
        "Requests answered, by process group and HTTP status.",
    );
    for (name, g) in &labelled {
        for (code, n) in &g.codes {
            let _ = writeln!(
                out,
                "wsgi_rs_requests_total{{group=\"{name}\",code=\"{code}\"}} {n}"
            );
        }
    }
    family(
        &mut out,
        "wsgi_rs_request_duration_seconds",
        "histogram",
        "Time the application took to answer a request.",
    );
    for (name, g) in &labelled {
        histogram(
            &mut out,
            "wsgi_rs_request_duration_seconds",
            name,
            &g.duration,
        );
    }
    family(
        &mut out,
        "wsgi_rs_queue_wait_seconds",
        "histogram",
        "Time a request waited from Apache passing it to the daemon group until a daemon thread took it.",
    );
    for (name, g) in daemons() {
        histogram(&mut out, "wsgi_rs_queue_wait_seconds", name, &g.queue);
    }
    let counters: [(&str, &str, Figure); 2] = [
        (
            "wsgi_rs_request_body_bytes_total",
            "Request body bytes read from clients.",
            |g| g.bytes_in,
        ),
        (
            "wsgi_rs_response_body_bytes_total",
            "Response bytes sent to clients.",
            |g| g.bytes_out,
        ),
    ];
    for (metric, help, value) in counters {
        family(&mut out, metric, "counter", help);
        for (name, g) in &labelled {
            let _ = writeln!(out, "{metric}{{group=\"{name}\"}} {}", value(g));
        }
    }
    family(
        &mut out,
        "wsgi_rs_threads",
        "gauge",
        "Request threads, busy or idle.",
    );
    for (name, g) in &labelled {
        let idle = g.threads.saturating_sub(g.busy);
        let _ = writeln!(
            out,
            "wsgi_rs_threads{{group=\"{name}\",state=\"busy\"}} {}",
            g.busy
        );
        let _ = writeln!(
            out,
            "wsgi_rs_threads{{group=\"{name}\",state=\"idle\"}} {idle}"
        );
    }
    family(
        &mut out,
        "wsgi_rs_processes",
        "gauge",
        "Running processes (embedded: Apache children).",
    );
    for (name, g) in &labelled {
        let _ = writeln!(out, "wsgi_rs_processes{{group=\"{name}\"}} {}", g.processes);
    }
    family(
        &mut out,
        "wsgi_rs_process_resident_bytes",
        "gauge",
        "Resident memory of the group's daemon processes.",
    );
    for (name, g) in daemons() {
        let _ = writeln!(
            out,
            "wsgi_rs_process_resident_bytes{{group=\"{name}\"}} {}",
            g.resident
        );
    }
    family(
        &mut out,
        "wsgi_rs_process_restarts_total",
        "counter",
        "Daemon processes replaced, by reason.",
    );
    for (name, g) in daemons() {
        for (reason, n) in &g.restarts {
            let _ = writeln!(
                out,
                "wsgi_rs_process_restarts_total{{group=\"{name}\",reason=\"{}\"}} {n}",
                reason.label()
            );
        }
    }
    family(
        &mut out,
        "wsgi_rs_request_timeouts_total",
        "counter",
        "Requests that ran past request-timeout.",
    );
    for (name, g) in daemons() {
        let _ = writeln!(
            out,
            "wsgi_rs_request_timeouts_total{{group=\"{name}\"}} {}",
            g.timeouts
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Board, Layout, Reason};
    use std::time::Duration;

    #[test]
    fn renders_every_family() {
        let b = Board::on_heap(Layout::new(2, [("my \"app\"", 1, 3)]));
        b.request(0, 200, 1, 2);
        b.request(1, 500, 0, 0);
        b.duration(1, Duration::from_millis(2));
        b.queue_wait(1, Duration::from_millis(40));
        let place = b.claim(1).unwrap();
        b.process_started(place, 9);
        b.set_threads(place, 3);
        b.restart(1, place, Reason::Reload);
        b.timeout(1);
        let text = render(&b.snapshot());
        for line in [
            "# TYPE wsgi_rs_requests_total counter",
            "wsgi_rs_requests_total{group=\"embedded\",code=\"200\"} 1",
            "wsgi_rs_requests_total{group=\"my \\\"app\\\"\",code=\"500\"} 1",
            "wsgi_rs_request_duration_seconds_bucket{group=\"my \\\"app\\\"\",le=\"0.001\"} 0",
            "wsgi_rs_request_duration_seconds_bucket{group=\"my \\\"app\\\"\",le=\"0.0025\"} 1",
            "wsgi_rs_request_duration_seconds_bucket{group=\"my \\\"app\\\"\",le=\"+Inf\"} 1",
            "wsgi_rs_request_duration_seconds_sum{group=\"my \\\"app\\\"\"} 0.002",
            "wsgi_rs_queue_wait_seconds_count{group=\"my \\\"app\\\"\"} 1",
            "wsgi_rs_request_body_bytes_total{group=\"embedded\"} 1",
            "wsgi_rs_response_body_bytes_total{group=\"embedded\"} 2",
            "wsgi_rs_threads{group=\"my \\\"app\\\"\",state=\"idle\"} 3",
            "wsgi_rs_processes{group=\"my \\\"app\\\"\"} 1",
            "wsgi_rs_process_restarts_total{group=\"my \\\"app\\\"\",reason=\"reload\"} 1",
            "wsgi_rs_process_restarts_total{group=\"my \\\"app\\\"\",reason=\"crash\"} 0",
            "wsgi_rs_request_timeouts_total{group=\"my \\\"app\\\"\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        // Embedded mode has no queue, restarts or daemon memory.
        assert!(!text.contains("wsgi_rs_queue_wait_seconds_count{group=\"embedded\"}"));
        assert!(!text.contains("wsgi_rs_process_restarts_total{group=\"embedded\""));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}
