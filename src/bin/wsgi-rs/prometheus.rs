//! Just enough of the Prometheus text format (0.0.4) for `wsgi-rs top`:
//! samples with their labels, and the per-group figures of mod_wsgi_rs'
//! metrics. The launcher cannot use the library (see main.rs), and a
//! client crate would bring far more than these few lines.

use std::collections::BTreeMap;

/// One sample: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// Its labels, in order.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the label set `a="x",b="y"` (escapes: `\\`, `\"`, `\n`).
fn parse_labels(mut s: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if s.is_empty() {
            return Some(labels);
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_owned();
        let mut chars = s[eq + 1..].trim_start().char_indices();
        let rest = s[eq + 1..].trim_start();
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                c => value.push(c),
            }
        }
        labels.push((key, value));
        s = &rest[end?..];
    }
}

/// Parses one sample line; None for comments, blank and malformed lines.
fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, labels, rest) = match line.find('{') {
        Some(open) if open < line.find(' ').unwrap_or(line.len()) => {
            let close = line.rfind('}')?;
            (
                &line[..open],
                parse_labels(&line[open + 1..close])?,
                &line[close + 1..],
            )
        }
        _ => {
            let space = line.find(' ')?;
            (&line[..space], Vec::new(), &line[space..])
        }
    };
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Every sample of an exposition.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

/// One group's figures at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    /// Requests served.
    pub requests: f64,
    /// Busy threads.
    pub busy: f64,
    /// Idle threads.
    pub idle: f64,
    /// Live processes.
    pub processes: f64,
    /// Process restarts, all reasons.
    pub restarts: f64,
    /// Queue-wait histogram: (upper bound, cumulative count).
    pub queue: Vec<(f64, f64)>,
}

/// The per-group figures of mod_wsgi_rs' metrics, by group name.
pub fn groups(samples: &[Sample]) -> BTreeMap<String, Group> {
    let mut out: BTreeMap<String, Group> = BTreeMap::new();
    for s in samples {
        let Some(name) = s.label("group") else {
            continue;
        };
        let g = out.entry(name.to_owned()).or_default();
        match s.name.as_str() {
            "wsgi_rs_requests_total" => g.requests += s.value,
            "wsgi_rs_threads" if s.label("state") == Some("busy") => g.busy = s.value,
            "wsgi_rs_threads" if s.label("state") == Some("idle") => g.idle = s.value,
            "wsgi_rs_processes" => g.processes = s.value,
            "wsgi_rs_process_restarts_total" => g.restarts += s.value,
            "wsgi_rs_queue_wait_seconds_bucket" => {
                let le = match s.label("le") {
                    Some("+Inf") => f64::INFINITY,
                    Some(v) => v.parse().unwrap_or(f64::INFINITY),
                    None => continue,
                };
                g.queue.push((le, s.value));
            }
            _ => {}
        }
    }
    for g in out.values_mut() {
        g.queue.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// The buckets of `now` less those of `before` (the observations between).
pub fn since(now: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    now.iter()
        .map(|&(le, c)| {
            let old = before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
            (le, (c - old).max(0.0))
        })
        .collect()
}

/// The `q` quantile (0-1) of cumulative buckets, interpolated linearly
/// within its bucket (as Prometheus' `histogram_quantile` does); None
/// without observations. In the `+Inf` bucket it is the highest bound.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut low, mut below) = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(low);
            }
            let share = if count > below {
                (rank - below) / (count - below)
            } else {
                1.0
            };
            return Some(low + (le - low) * share);
        }
        (low, below) = (le, count);
    }
    Some(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP wsgi_rs_requests_total Requests.\n\
        # TYPE wsgi_rs_requests_total counter\n\
        wsgi_rs_requests_total{group=\"embedded\",code=\"200\"} 6\n\
        wsgi_rs_requests_total{group=\"embedded\",code=\"404\"} 2\n\
        wsgi_rs_requests_total{group=\"a \\\"q\\\" \\\\ b\",code=\"200\"} 1\n\
        wsgi_rs_threads{group=\"dg\",state=\"busy\"} 1\n\
        wsgi_rs_threads{group=\"dg\",state=\"idle\"} 3\n\
        wsgi_rs_processes{group=\"dg\"} 2\n\
        wsgi_rs_process_restarts_total{group=\"dg\",reason=\"crash\"} 1\n\
        wsgi_rs_process_restarts_total{group=\"dg\",reason=\"reload\"} 2\n\
        wsgi_rs_queue_wait_seconds_bucket{group=\"dg\",le=\"+Inf\"} 10\n\
        wsgi_rs_queue_wait_seconds_bucket{group=\"dg\",le=\"0.001\"} 4\n\
        wsgi_rs_queue_wait_seconds_bucket{group=\"dg\",le=\"0.01\"} 10\n\
        unlabelled 3.5\n\
        broken{group=\"x\" 1\n";

    #[test]
    fn samples_and_labels_parse() {
        let s = parse(TEXT);
        assert_eq!(s.len(), 12, "the broken line is dropped: {s:#?}");
        assert_eq!(s[0].label("code"), Some("200"));
        assert_eq!(s[2].label("group"), Some("a \"q\" \\ b"));
        assert_eq!(s[11].name, "unlabelled");
        assert_eq!(s[11].value, 3.5);
        assert_eq!(s[8].value, 10.0);
    }

    #[test]
    fn groups_sum_their_figures() {
        let g = groups(&parse(TEXT));
        assert_eq!(g["embedded"].requests, 8.0);
        let dg = &g["dg"];
        assert_eq!(
            (dg.busy, dg.idle, dg.processes, dg.restarts),
            (1.0, 3.0, 2.0, 3.0)
        );
        assert_eq!(
            dg.queue,
            vec![(0.001, 4.0), (0.01, 10.0), (f64::INFINITY, 10.0)]
        );
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let b = [(0.001, 4.0), (0.01, 10.0), (f64::INFINITY, 10.0)];
        assert!((quantile(0.5, &b).unwrap() - 0.0025).abs() < 1e-12);
        assert!((quantile(0.2, &b).unwrap() - 0.0005).abs() < 1e-12);
        assert_eq!(quantile(0.5, &[(0.1, 0.0), (f64::INFINITY, 0.0)]), None);
        // Beyond the last finite bound: that bound.
        assert_eq!(
            quantile(0.99, &[(0.1, 1.0), (f64::INFINITY, 5.0)]),
            Some(0.1)
        );
        let later = [(0.001, 5.0), (0.01, 12.0), (f64::INFINITY, 12.0)];
        assert_eq!(
            since(&later, &b),
            vec![(0.001, 1.0), (0.01, 2.0), (f64::INFINITY, 2.0)]
        );
    }
}
