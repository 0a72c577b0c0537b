//! The panic boundary: httpd calls us through `extern "C"` functions, and a
//! panic unwinding out of one would abort the whole Apache child. Each entry
//! point runs its body through [`guard`], which logs the panic and returns the
//! entry point's failure value instead (a 500 for handlers).

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `body` for httpd entry point `entry`; a panic is logged and becomes `on_panic`, never an abort.
pub fn guard<R>(entry: &str, on_panic: R, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            ::log::error!("WSGIRS306: internal error in {entry}: {what}");
            on_panic
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every `extern "C"` function of the library with a body (what httpd,
    //! APR or the kernel calls) runs it through [`guard`]: no lint says so,
    //! so this reads the source. A signal handler, where logging is not
    //! async-signal-safe, says why it has none in a `// No guard: why`
    //! comment just above it.

    /// The `extern "C"` functions of `text` (a file's source before its
    /// unit tests) whose body never calls `guard(` and that no
    /// `// No guard:` comment excuses, by line number.
    fn unguarded(text: &str) -> Vec<usize> {
        let lines: Vec<&str> = text.lines().collect();
        let mut found = Vec::new();
        for (at, line) in lines.iter().enumerate() {
            // A definition, not a pointer type (`extern "C" fn(`).
            let Some(rest) = line.split_once("extern \"C\" fn ").map(|(_, r)| r) else {
                continue;
            };
            if !rest.starts_with(|c: char| c.is_alphabetic() || c == '_') {
                continue;
            }
            let excused = lines[..at]
                .iter()
                .rev()
                .take_while(|l| {
                    let l = l.trim_start();
                    l.starts_with("//") || l.starts_with("#[")
                })
                .any(|l| l.trim_start().starts_with("// No guard:"));
            if excused {
                continue;
            }
            // The body: from the signature's `{` to the brace that closes it.
            let mut depth = 0i32;
            let mut opened = false;
            let mut body = String::new();
            for l in &lines[at..] {
                for c in l.chars() {
                    match c {
                        '{' => {
                            depth += 1;
                            opened = true;
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
                body.push_str(l);
                body.push('\n');
                if opened && depth <= 0 {
                    break;
                }
            }
            if !body.contains("guard(") {
                found.push(at + 1);
            }
        }
        found
    }

    /// The rule holds across the library's source (the launcher, a
    /// program of its own, is not behind this boundary).
    #[test]
    fn every_extern_c_entry_runs_through_the_guard() {
        let mut missing = Vec::new();
        for (name, text) in crate::messages::tests::sources() {
            if !name.ends_with(".rs") || name.starts_with("src/bin/") {
                continue;
            }
            // Unit tests' own callbacks are not entries.
            let code = text.split("\n#[cfg(test)]\nmod ").next().unwrap_or(&text);
            missing.extend(unguarded(code).into_iter().map(|l| format!("{name}:{l}")));
        }
        assert!(
            missing.is_empty(),
            "extern \"C\" functions not behind boundary::guard (run the body \
             through guard, or say `// No guard: why` above a signal handler): {missing:?}"
        );
    }

    /// A panic becomes the entry's failure value.
    #[test]
    fn a_panic_becomes_the_failure_value() {
        assert_eq!(super::guard("test entry", 500, || panic!("boom")), 500);
        assert_eq!(super::guard("test entry", 500, || 200), 200);
    }

    /// The check finds what it must and only that.
    #[test]
    fn the_check_reads_bodies_pointers_and_excuses() {
        let text = r#"
/// Guarded.
#[no_mangle]
pub extern "C" fn a(r: *mut c_void) -> c_int {
    guard("a", 500, || {
        work(r)
    })
}
/// Not guarded.
unsafe extern "C" fn b<T>(data: *mut c_void) -> ffi::apr_status_t {
    if x { y() }
    drop(data);
    0
}
/// A pointer type is no definition.
pub(crate) type Callback = unsafe extern "C" fn(reason: c_int);
/// A handler.
// No guard: a signal handler.
extern "C" fn c(_sig: c_int) {
    STOP.store(true, Ordering::SeqCst);
}
extern "C" fn d(_sig: c_int) {}
fn later() { guard("later", (), || {}) }
"#;
        assert_eq!(unguarded(text), vec![10, 22]);
    }
}
