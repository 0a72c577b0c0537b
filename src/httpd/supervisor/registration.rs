//! Daemon processes registered with httpd's other-child list, which tells
//! the parent of their deaths (and of restarts).

use std::ffi::c_void;

use super::maintenance;
use crate::httpd::ffi;

/// Registers `proc_` with httpd's other-child list under `key`, in a pool
/// of its own under `pconf`: APR allocates the registration's record from
/// the pool it is given and never frees it, so registering each respawned
/// process in pconf itself grew the parent by a record per respawn. The
/// pool is destroyed when the process is unregistered ([`unregister`]), or
/// with pconf. Returns the pool.
///
/// # Safety
/// `pconf` must be live; `proc_` must stay where it is until unregistered.
pub(super) unsafe fn register(
    proc_: *mut ffi::apr_proc_t,
    key: usize,
    pconf: *mut ffi::apr_pool_t,
) -> *mut ffi::apr_pool_t {
    let mut pool: *mut ffi::apr_pool_t = std::ptr::null_mut();
    // SAFETY: caller's contract; a subpool of a live pool.
    unsafe {
        ffi::apr_pool_create_ex(&mut pool, pconf, None, std::ptr::null_mut());
        ffi::apr_proc_other_child_register(
            proc_,
            Some(maintenance),
            key as *mut c_void,
            std::ptr::null_mut(),
            pool,
        );
    }
    pool
}

/// Takes the registration `key` off httpd's list and frees its pool. Calls
/// [`maintenance`] back, so the supervisor lock must not be held.
///
/// # Safety
/// `pool` must be the pool `key` was registered in, not yet destroyed.
pub(super) unsafe fn unregister(key: usize, pool: *mut ffi::apr_pool_t) {
    // SAFETY: caller's contract.
    unsafe {
        ffi::apr_proc_other_child_unregister(key as *mut c_void);
        ffi::apr_pool_destroy(pool);
    }
}
