//! Thread states for server threads. Apache's worker threads are foreign to
//! Python; attaching with a fresh thread state per request is slow and wipes
//! `threading.local` between requests. Each thread therefore creates its
//! thread state once (without taking the GIL) and keeps it for its whole
//! life: the state's GILState counter never drops to zero, so pyo3's
//! per-call ensure/release pair only swaps the GIL.

use std::cell::Cell;

use pyo3::ffi;
use pyo3::Python;

thread_local! {
    static PINNED: Cell<bool> = const { Cell::new(false) };
    /// How deep this thread is inside `with_python`/`with_group` calls: above
    /// zero it holds the GIL (nothing in this crate calls back into them
    /// from a `py.detach` closure).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Lowers the depth again however the call leaves.
struct Leave;

impl Drop for Leave {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// Runs `f` counted as inside an interpreter.
pub(super) fn entered<R>(f: impl FnOnce() -> R) -> R {
    DEPTH.with(|d| d.set(d.get() + 1));
    let _leave = Leave;
    f()
}

/// Whether this thread is already inside an interpreter (holds the GIL).
pub(super) fn is_inside() -> bool {
    DEPTH.with(|d| d.get() > 0)
}

/// Gives this thread its long-lived thread state.
pub(super) fn pin_thread_state() {
    PINNED.with(|pinned| {
        if !pinned.get() {
            // SAFETY: the interpreter is initialised (checked by the callers).
            // A thread's first thread state becomes the one the GILState API
            // (and so pyo3) uses for it, with its counter at one, so it is
            // never freed. PyThreadState_New needs no GIL: a new thread
            // must not wait for the GIL as the main interpreter here, since
            // a busy sub-interpreter would not yield to it (groups.rs).
            unsafe {
                if ffi::PyGILState_GetThisThreadState().is_null() {
                    ffi::PyThreadState_New(ffi::PyInterpreterState_Main());
                }
            }
            pinned.set(true);
        }
    });
}

/// Runs `f` attached to the interpreter on this thread's long-lived state.
/// The interpreter must have been initialised.
pub fn with_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    assert!(super::is_initialized(), "Python is not initialised");
    pin_thread_state();
    entered(|| Python::attach(f))
}

/// Raises `mod_wsgi.RequestTimeout` (of the current interpreter) in the
/// thread `thread_id` of the current interpreter, the next time it runs
/// Python bytecode; true when such a thread was found. A thread blocked
/// in C sees it only once the call returns.
pub fn interrupt_thread(py: Python<'_>, thread_id: u64) -> bool {
    use pyo3::types::PyAnyMethods;
    let Ok(class) = py
        .import("mod_wsgi")
        .and_then(|m| m.getattr("RequestTimeout"))
    else {
        return false;
    };
    // SAFETY: `py` proves the GIL is held, in the interpreter whose thread
    // states are searched; the class is a live object (the call takes its
    // own reference).
    let found =
        unsafe { ffi::PyThreadState_SetAsyncExc(thread_id as std::ffi::c_long, class.as_ptr()) };
    found > 0
}

/// Withdraws an exception [`interrupt_thread`] raised in this thread that
/// has not been delivered yet, so it cannot hit a later request.
pub fn withdraw_interrupt(_py: Python<'_>) {
    // SAFETY: the GIL is held (`_py`); a null exception clears the pending
    // one of this thread's state in the current interpreter.
    unsafe {
        ffi::PyThreadState_SetAsyncExc(
            ffi::PyThread_get_thread_ident() as std::ffi::c_long,
            std::ptr::null_mut(),
        );
    }
}
