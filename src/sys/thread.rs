//! The calling thread as the C library and Python know it.

/// The calling thread's `pthread_t`, which is also Python's thread ident
/// (`threading.get_ident()`, `PyThreadState_SetAsyncExc`'s id) on Linux.
pub fn current_id() -> u64 {
    // SAFETY: pthread_self has no preconditions and cannot fail.
    unsafe { libc::pthread_self() as u64 }
}
