//! The `wsgi-rs-status` page and the running-requests list it polls.
//!
//! The page is one self-contained HTML file (inline CSS and script, charts
//! drawn on `<canvas>`): it polls its own URL with `?format=prometheus` (the
//! same text `wsgi-rs-metrics` serves) and `?format=running` (the JSON this
//! file writes), so it needs no other configuration.

use std::fmt::Write;

use super::board::Board;
use super::running::RunningRequest;

/// The page.
pub const PAGE: &str = include_str!("status.html");

/// The Content-Type of the page.
pub const PAGE_TYPE: &str = "text/html; charset=utf-8";

/// The Content-Type of the running-requests list.
pub const JSON_TYPE: &str = "application/json";

/// What the status handler answers for a query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The HTML page.
    Page,
    /// The metrics in Prometheus text.
    Prometheus,
    /// The running requests as JSON.
    Running,
}

impl Answer {
    /// The answer for `query` (`format=prometheus`, `format=running`, else
    /// the page).
    pub fn for_query(query: &[u8]) -> Answer {
        let mut answer = Answer::Page;
        for pair in query.split(|&b| b == b'&') {
            match pair {
                b"format=prometheus" => answer = Answer::Prometheus,
                b"format=running" => answer = Answer::Running,
                _ => {}
            }
        }
        answer
    }
}

/// `s` as a JSON string literal.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // Also < and >: the text may end up in HTML.
            c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The running requests of `board` as JSON, ages counted to `now_micros`.
pub fn running_json(board: &Board, now_micros: u64) -> String {
    render_running(&board.running().list(), |g| board.group_name(g), now_micros)
}

/// The JSON of `list`, naming groups with `name`.
fn render_running<'a>(
    list: &[RunningRequest],
    name: impl Fn(usize) -> Option<&'a str>,
    now_micros: u64,
) -> String {
    let mut out = String::from("{\"running\":[");
    for (i, r) in list.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"group\":");
        json_string(&mut out, r.group.and_then(&name).unwrap_or("-"));
        let age = now_micros.saturating_sub(r.start_micros) as f64 / 1e6;
        let _ = write!(
            out,
            ",\"pid\":{},\"thread\":{},\"age\":{age:.3},\"request\":",
            r.pid, r.tid
        );
        json_string(&mut out, &r.url);
        out.push('}');
    }
    out.push_str("]}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_picks_the_answer() {
        assert_eq!(Answer::for_query(b""), Answer::Page);
        assert_eq!(Answer::for_query(b"format=prometheus"), Answer::Prometheus);
        assert_eq!(Answer::for_query(b"x=1&format=running"), Answer::Running);
        assert_eq!(Answer::for_query(b"format=html"), Answer::Page);
    }

    #[test]
    fn running_requests_are_json_with_escaped_urls() {
        let list = vec![
            RunningRequest {
                group: Some(1),
                pid: 42,
                tid: 7,
                start_micros: 1_000_000,
                url: "GET /a\"b\\<c>\n".to_owned(),
            },
            RunningRequest {
                group: None,
                pid: 43,
                tid: 8,
                start_micros: 3_500_000,
                url: "GET /".to_owned(),
            },
        ];
        let names = ["embedded", "app"];
        let json = render_running(&list, |g| names.get(g).copied(), 4_000_000);
        assert_eq!(
            json,
            "{\"running\":[{\"group\":\"app\",\"pid\":42,\"thread\":7,\"age\":3.000,\
             \"request\":\"GET /a\\\"b\\\\\\u003cc\\u003e\\u000a\"},\
             {\"group\":\"-\",\"pid\":43,\"thread\":8,\"age\":0.500,\"request\":\"GET /\"}]}\n"
        );
    }

    #[test]
    fn the_page_is_self_contained() {
        assert!(PAGE.starts_with("<!DOCTYPE html>"));
        for external in ["src=", "href=", "@import", "url("] {
            assert!(!PAGE.contains(external), "{external} in the page");
        }
        assert!(PAGE.contains("?format=prometheus") && PAGE.contains("?format=running"));
    }
}
