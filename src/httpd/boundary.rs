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
