//! Checks of the message table against itself, the source tree and
//! `docs/messages.md`.

use std::path::{Path, PathBuf};

use super::*;

/// The repository's root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every text file under `src/` (path relative to the root, contents),
/// except the table itself and these tests.
fn sources() -> Vec<(String, String)> {
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
            !m.meaning.is_empty() && !m.remedy.is_empty(),
            "WSGIRS{}",
            m.id
        );
        assert!(
            m.meaning.ends_with('.') && m.remedy.ends_with('.'),
            "WSGIRS{}: sentences end with a full stop",
            m.id
        );
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

/// An entry nothing writes is stale. The ids of the `WSGIDaemonProcess`
/// option notices (200-299) are computed, not written: `config::daemon`
/// checks them.
#[test]
fn every_entry_is_used_in_the_source() {
    let sources = sources();
    for m in MESSAGES.iter().filter(|m| !(200..300).contains(&m.id)) {
        assert!(
            sources
                .iter()
                .any(|(_, text)| ids_in(text).iter().any(|(_, id)| *id == m.id)),
            "WSGIRS{} is in the table but nothing under src/ writes it; remove its row",
            m.id
        );
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
