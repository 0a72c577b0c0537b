//! Small WSGI applications used by several test files, and a parser for the
//! environ dump app's output.
//!
//! Apps are plain Python written into each test's ServerRoot; `{root}` and
//! `{port}` in them are substituted by the harness.

use std::collections::HashMap;

/// The canonical hello world, with a Content-Length.
pub const HELLO: &str = r#"
def application(environ, start_response):
    body = b'Hello, World!'
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
"#;

/// Dumps the environ, one `KEY<TAB>TYPE<TAB>VALUE` line per key. Values are
/// escaped with unicode_escape so tabs, newlines and non-ASCII characters
/// survive the trip and the exact str the app saw can be compared (a latin-1
/// byte 0xE9 shows as `\xe9`). Non-str values are shown by repr().
pub const ENVIRON: &str = r#"
def application(environ, start_response):
    lines = []
    for key in sorted(environ):
        value = environ[key]
        text = value if isinstance(value, str) else repr(value)
        text = text.encode('unicode_escape').decode('ascii')
        lines.append('%s\t%s\t%s' % (key, type(value).__name__, text))
    body = '\n'.join(lines).encode('ascii')
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
"#;

/// Echoes the whole request body (read with read() and no size, which must
/// work for chunked requests too).
pub const ECHO: &str = r#"
def application(environ, start_response):
    data = environ['wsgi.input'].read()
    start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                              ('Content-Length', str(len(data)))])
    return [data]
"#;

/// The parsed output of `ENVIRON`: key -> (Python type name, escaped value).
#[derive(Debug)]
pub struct Environ(pub HashMap<String, (String, String)>);

impl Environ {
    pub fn parse(body: &[u8]) -> Environ {
        let text = String::from_utf8_lossy(body);
        let mut map = HashMap::new();
        for line in text.lines() {
            let mut parts = line.splitn(3, '\t');
            if let (Some(k), Some(t), Some(v)) = (parts.next(), parts.next(), parts.next()) {
                map.insert(k.to_string(), (t.to_string(), v.to_string()));
            }
        }
        assert!(!map.is_empty(), "not an environ dump: {text:?}");
        Environ(map)
    }

    /// The value (escaped as described on `ENVIRON`), if the key is present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|(_, v)| v.as_str())
    }

    pub fn type_of(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|(t, _)| t.as_str())
    }

    /// A value that must be present and a str.
    pub fn str(&self, key: &str) -> &str {
        match self.0.get(key) {
            Some((t, v)) if t == "str" => v,
            Some((t, v)) => panic!("environ[{key:?}] is a {t}, not a str: {v}"),
            None => panic!("environ has no {key:?}; keys: {:?}", self.keys()),
        }
    }

    pub fn keys(&self) -> Vec<&str> {
        let mut k: Vec<&str> = self.0.keys().map(|s| s.as_str()).collect();
        k.sort_unstable();
        k
    }
}

/// Deterministic pseudo-random bytes (an LCG), for large bodies whose
/// corruption or reordering must show.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}
