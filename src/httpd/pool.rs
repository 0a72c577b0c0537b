//! Rust values owned by an APR pool: httpd keeps module configs as `void *`
//! in pools, so we box them and let the pool's cleanup drop the box.

use std::ffi::{c_void, CString};
use std::os::raw::c_char;

use super::ffi;

/// Pool cleanup that drops a boxed value (a value's `Drop` may run code of
/// ours, so it runs behind the panic boundary).
unsafe extern "C" fn drop_box<T>(data: *mut c_void) -> ffi::apr_status_t {
    super::boundary::guard("pool cleanup", (), || {
        // SAFETY: registered only by `pool_box::<T>` with a pointer from
        // Box::into_raw, and pool cleanups run exactly once.
        drop(unsafe { Box::from_raw(data.cast::<T>()) });
    });
    ffi::APR_SUCCESS as ffi::apr_status_t
}

/// Moves `value` into memory that lives exactly as long as `pool`.
///
/// # Safety
/// `pool` must be a live APR pool; the returned pointer must not be used
/// after the pool is cleared or destroyed.
pub unsafe fn pool_box<T>(pool: *mut ffi::apr_pool_t, value: T) -> *mut T {
    let ptr = Box::into_raw(Box::new(value));
    // SAFETY: caller guarantees a live pool; drop_box::<T> matches the type.
    unsafe {
        ffi::apr_pool_cleanup_register(
            pool,
            ptr.cast(),
            Some(drop_box::<T>),
            Some(ffi::apr_pool_cleanup_null),
        );
    }
    ptr
}

/// Copies `s` into `pool` as latin-1 bytes (WSGI header values and status
/// lines are latin-1 strings: 'é' is the byte E9 on the wire, not UTF-8).
/// Callers have checked every character is below 256 and not NUL.
///
/// # Safety
/// `pool` must be a live APR pool.
pub unsafe fn pool_latin1(pool: *mut ffi::apr_pool_t, s: &str) -> *const c_char {
    let bytes: Vec<u8> = s
        .chars()
        .filter(|&c| c != '\0')
        .map(|c| c as u32 as u8)
        .collect();
    let c = CString::new(bytes).expect("NULs removed");
    // SAFETY: caller guarantees a live pool; `c` is NUL-terminated.
    unsafe { ffi::apr_pstrdup(pool, c.as_ptr()) }
}

/// Copies `s` into `pool` as a C string (NUL bytes dropped: httpd strings
/// cannot hold them, and our callers validated their input already).
///
/// # Safety
/// `pool` must be a live APR pool.
pub unsafe fn pool_str(pool: *mut ffi::apr_pool_t, s: &str) -> *const c_char {
    let c = CString::new(s.replace('\0', "")).expect("NULs removed");
    // SAFETY: caller guarantees a live pool; `c` is NUL-terminated.
    unsafe { ffi::apr_pstrdup(pool, c.as_ptr()) }
}

/// Copies raw bytes into `pool` as a C string. A NUL in `b` ends the
/// string there, as it would for any httpd table value.
///
/// # Safety
/// `pool` must be a live APR pool.
pub unsafe fn pool_bytes(pool: *mut ffi::apr_pool_t, b: &[u8]) -> *const c_char {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    // SAFETY: caller guarantees a live pool; apr_pstrmemdup copies `end`
    // bytes from a live slice and NUL-terminates the copy.
    unsafe { ffi::apr_pstrmemdup(pool, b.as_ptr().cast(), end) }
}
