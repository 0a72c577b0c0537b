//! Checks of the message table against itself, the source tree and
//! `docs/messages.md`.

use std::path::{Path, PathBuf};

use super::*;

/// The repository's root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every text file under `src/` (path relative to the root, contents),
/// except the table itself and these tests (also read by the panic
/// boundary's check of the `extern "C"` entries).
pub(crate) fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(&path).ok()?;
            let name = path.strip_prefix(root()).ok()?.display().to_string();
            (name != "src/messages.rs" && name != "src/messages/tests.rs").then_some((name, text))
        })
        .collect()
}

/// Each `WSGIRS` followed by three digits in `text`, with its byte offset.
fn ids_in(text: &str) -> Vec<(usize, u16)> {
    text.match_indices("WSGIRS")
        .filter_map(|(at, _)| {
            let digits = text.get(at + 6..at + 9)?;
            let next = text[at + 9..].chars().next();
            if !digits.bytes().all(|b| b.is_ascii_digit())
                || next.is_some_and(|c| c.is_ascii_digit())
            {
                return None;
            }
            Some((at, digits.parse().ok()?))
        })
        .collect()
}

#[test]
fn ranges_are_in_order_and_apart() {
    for pair in RANGES.windows(2) {
        assert!(pair[0].0 <= pair[0].1 && pair[0].1 < pair[1].0, "{pair:?}");
    }
}

#[test]
fn ids_are_unique_and_in_order() {
    for pair in MESSAGES.windows(2) {
        assert!(
            pair[0].id < pair[1].id,
            "WSGIRS{} must come after WSGIRS{} (unique, in number order)",
            pair[1].id,
            pair[0].id
        );
    }
    for m in MESSAGES {
        assert!(
            RANGES
                .iter()
                .any(|(first, last, _)| (*first..=*last).contains(&m.id)),
            "WSGIRS{} is in no range of RANGES",
            m.id
        );
        assert!(
            !m.meaning().is_empty() && !m.remedy.is_empty(),
            "WSGIRS{}",
            m.id
        );
        assert!(
            m.meaning().ends_with('.') && m.remedy.ends_with('.'),
            "WSGIRS{}: sentences end with a full stop",
            m.id
        );
        if m.subject != Subject::Other {
            assert!(
                !m.meaning().ends_with(".."),
                "WSGIRS{}: a notice ends without a full stop (it ends the log line)",
                m.id
            );
        }
    }
}

/// An id written anywhere in the source must mean something.
#[test]
fn every_id_in_the_source_is_in_the_table() {
    for (file, text) in sources() {
        for (at, id) in ids_in(&text) {
            let line = text[..at].lines().count().max(1);
            assert!(
                lookup(id).is_some(),
                "{file}:{line}: WSGIRS{id} is not in the table of src/messages.rs; add it there"
            );
        }
    }
}

/// An entry nothing writes is stale. The ids of the notices of settings
/// with no effect are in `config`'s tables, not written:
/// `notices_are_config_s_tables` checks those rows.
#[test]
fn every_entry_is_used_in_the_source() {
    let sources = sources();
    let written = |m: &&Message| matches!(m.subject, Subject::Other | Subject::Notice);
    for m in MESSAGES.iter().filter(written) {
        assert!(
            sources
                .iter()
                .any(|(_, text)| ids_in(text).iter().any(|(_, id)| *id == m.id)),
            "WSGIRS{} is in the table but nothing under src/ writes it; remove its row",
            m.id
        );
    }
}

/// The rows of the notices of directives and `WSGIDaemonProcess` options
/// with no effect are exactly those of `config`'s tables, and each
/// option's id is 200 + its place in mod_wsgi's option list (so adding
/// options at the end never renumbers one).
#[test]
fn notices_are_config_s_tables() {
    use crate::config::option_notice_number;
    let ids = |subject: Subject| -> Vec<u16> {
        MESSAGES
            .iter()
            .filter(|m| m.subject == subject)
            .map(|m| m.id)
            .collect()
    };
    let directives: Vec<u16> = NO_EFFECT.iter().map(|row| row.id).collect();
    assert_eq!(ids(Subject::Directive), directives);
    let mut options: Vec<u16> = NO_EFFECT_OPTIONS
        .iter()
        .map(|(option, _)| option_notice_number(option) as u16)
        .collect();
    options.sort_unstable();
    assert_eq!(ids(Subject::DaemonOption), options);
    for m in MESSAGES
        .iter()
        .filter(|m| m.subject == Subject::DaemonOption)
    {
        assert!((200..300).contains(&m.id), "WSGIRS{}", m.id);
    }
}

/// The first line of the generated part of `docs/messages.md`.
const BEGIN: &str = "<!-- Written from src/messages.rs by `WSGI_RS_WRITE_DOCS=1 cargo test --lib messages`; do not edit by hand. -->\n";
/// The line after it.
const END: &str = "<!-- End of the part written from src/messages.rs. -->";

/// `docs/messages.md` lists exactly the table; `WSGI_RS_WRITE_DOCS=1`
/// rewrites it instead of failing.
#[test]
fn docs_list_the_table() {
    let path = root().join("docs/messages.md");
    let doc = std::fs::read_to_string(&path).expect("docs/messages.md exists");
    let (head, rest) = doc
        .split_once(BEGIN)
        .expect("docs/messages.md has the BEGIN marker");
    let (_, tail) = rest
        .split_once(END)
        .expect("docs/messages.md has the END marker");
    let written = format!("{head}{BEGIN}{}\n{END}{tail}", reference());
    if std::env::var_os("WSGI_RS_WRITE_DOCS").is_some() {
        std::fs::write(&path, &written).expect("docs/messages.md is writable");
    } else {
        assert!(
            doc == written,
            "docs/messages.md is out of date: run `WSGI_RS_WRITE_DOCS=1 cargo test --lib messages`"
        );
    }
}

/// The start of each log call in `text`: the `log` crate's macros, the
/// request loggers' `.log(` methods and the functions that log a script
/// error's first line and its traceback.
fn log_calls(text: &str) -> Vec<(usize, &'static str)> {
    const STARTS: [&str; 10] = [
        "log::error!(",
        "log::warn!(",
        "log::info!(",
        "log::debug!(",
        "log::trace!(",
        "log::log!(",
        ".log(",
        "log_script_error(",
        "log_exception(",
        "log_failure(",
    ];
    let mut calls: Vec<(usize, &'static str)> = STARTS
        .iter()
        .flat_map(|start| text.match_indices(start).map(|(at, _)| (at, *start)))
        .filter(|(at, _)| !text[..*at].ends_with("fn "))
        .collect();
    calls.sort();
    calls
}

/// The arguments of the call whose `(` ends at `open`, split at top-level
/// commas (string and char literals and nested brackets skipped).
fn call_args(text: &str, open: usize) -> Vec<&str> {
    let bytes = text.as_bytes();
    let (mut depth, mut i, mut start) = (0usize, open, open);
    let mut args = Vec::new();
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth == 0 => {
                args.push(text[start..i].trim());
                break;
            }
            b')' | b']' | b'}' => depth -= 1,
            b',' if depth == 0 => {
                args.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    args.retain(|a| !a.is_empty());
    args
}

/// The first string literal in `arg`, without its quotes.
fn first_literal(arg: &str) -> Option<&str> {
    let open = arg.find('"')?;
    let rest = &arg[open + 1..];
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i] != b'"' {
        i += if bytes[i] == b'\\' { 2 } else { 1 };
    }
    Some(&rest[..i.min(rest.len())])
}

/// The level a call logs at, when it is written in the call.
fn call_level(start: &str, args: &[&str]) -> Option<Level> {
    let word = match start {
        "log::error!(" => return Some(Level::Error),
        "log::warn!(" => return Some(Level::Warn),
        "log::info!(" => return Some(Level::Info),
        "log::debug!(" | "log::trace!(" => return Some(Level::Debug),
        "log_script_error(" | "log_exception(" | "log_failure(" => return Some(Level::Error),
        _ => args
            .iter()
            .find(|a| a.contains("APLOG_") || a.contains("LogLevel::"))?,
    };
    [
        ("ERR", Level::Error),
        ("Error", Level::Error),
        ("WARN", Level::Warn),
        ("Warn", Level::Warn),
        ("INFO", Level::Info),
        ("NOTICE", Level::Info),
        ("Info", Level::Info),
        ("Notice", Level::Info),
        ("DEBUG", Level::Debug),
        ("Debug", Level::Debug),
    ]
    .into_iter()
    .find(|(name, _)| word.contains(name))
    .map(|(_, level)| level)
}

/// Whether `arg` only passes on a line made elsewhere: a variable (`line`,
/// `&msg`), a literal that is one placeholder (`"{line}"`), or an error's
/// `logged()` line (which starts with the id the error's type gives it).
fn passes_on(arg: &str) -> bool {
    let inner = arg.trim_start_matches('&');
    let inner = inner.strip_suffix(".logged()").unwrap_or(inner);
    let name = inner
        .strip_prefix("\"{")
        .and_then(|s| s.strip_suffix("}\""))
        .unwrap_or(inner);
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What is wrong with the log calls of one source file: a message that
/// does not start with `WSGIRSnnn: ` (and passes on nothing), or an id
/// logged at another level than its row says.
fn log_call_problems(file: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (at, start) in log_calls(text) {
        let line = text[..at].lines().count().max(1);
        let args = call_args(text, at + start.len());
        let message = match start {
            ".log(" => args.last().copied(),
            "log_script_error(" => args.get(1).copied(),
            "log_exception(" | "log_failure(" => args.get(2).copied(),
            _ => args.iter().copied().find(|a| a.starts_with('"')),
        };
        let Some(message) = message else { continue };
        let above = text[..at].lines().rev().nth(1).unwrap_or("");
        if passes_on(message) || above.contains("// Pass-through:") {
            continue;
        }
        let literal = first_literal(message).unwrap_or("");
        let id = ids_in(literal)
            .first()
            .filter(|(at, _)| *at == 0 && literal[9..].starts_with(": "))
            .map(|(_, id)| *id);
        let Some(id) = id else {
            problems.push(format!(
                "{file}:{line}: no 'WSGIRSnnn: ' at the start of {message}"
            ));
            continue;
        };
        if let (Some(level), Some(entry)) = (call_level(start, &args), lookup(id)) {
            if level != entry.level {
                problems.push(format!(
                    "{file}:{line}: WSGIRS{id} logged at {}, its row says {}",
                    level.apache_name(),
                    entry.level.apache_name()
                ));
            }
        }
    }
    problems
}

/// Every log call of the module starts its message with a registered
/// `WSGIRSnnn: ` at the table's level, or passes on a line made elsewhere
/// (a traceback's line after the one with the id, the application's own
/// output, an error's `logged()` line), which a `// Pass-through:` comment
/// right above the call says when it is not plain. The launcher
/// (`src/bin/`) writes to the terminal, not to Apache's error log.
#[test]
fn every_log_call_names_its_id() {
    let problems: Vec<String> = sources()
        .iter()
        .filter(|(file, _)| file.ends_with(".rs") && !file.starts_with("src/bin/"))
        .flat_map(|(file, text)| log_call_problems(file, text))
        .collect();
    assert!(
        problems.is_empty(),
        "log calls to correct (see src/messages.rs):\n{}",
        problems.join("\n")
    );
}

/// The check above finds what it should, and only that.
#[test]
fn the_log_call_check_sees_a_missing_id_and_a_wrong_level() {
    let text = r#"
        log::warn!("WSGIRS116: (wsgi:{}) slow", group);
        log::error!("{line}");
        req.log(APLOG_ERR, &format!("no id here: {e}"));
        req.log(ffi::APLOG_DEBUG as i32, &format!("WSGIRS300: {e}, {}", f(x)));
        exchange.log(py, LogLevel::Error, line);
        req.log(APLOG_ERR, &e.logged());
        log_script_error(py, &message, e.python_error(), |line| log::error!("{line}"));
        // Pass-through: made elsewhere.
        log::log!(level, "(wsgi:{}) {msg}", group);
        log::info!(
            "daemon started"
        );
    "#;
    let problems = log_call_problems("x.rs", text);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].starts_with("x.rs:4: no 'WSGIRSnnn: '"),
        "{problems:#?}"
    );
    assert_eq!(
        problems[1],
        "x.rs:5: WSGIRS300 logged at debug, its row says error"
    );
    assert!(
        problems[2].starts_with("x.rs:11: no 'WSGIRSnnn: '"),
        "{problems:#?}"
    );
}
