//! Our configuration records as httpd keeps them: created empty for each
//! server and directory section, and merged down the section tree.

use std::ffi::{c_char, c_void};

use super::boundary::guard;
use super::ffi;
use super::pool::pool_box;
use crate::config::{DirConfig, ServerConfig};

/// A server's empty record.
#[no_mangle]
pub extern "C" fn wsgi_rs_create_server_config(
    p: *mut ffi::apr_pool_t,
    _s: *mut ffi::server_rec,
) -> *mut c_void {
    // SAFETY: httpd passes its live configuration pool.
    guard("create_server_config", std::ptr::null_mut(), || unsafe {
        pool_box(p, ServerConfig::default()).cast()
    })
}

/// A virtual host's record merged over the main server's.
#[no_mangle]
pub extern "C" fn wsgi_rs_merge_server_config(
    p: *mut ffi::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    guard("merge_server_config", std::ptr::null_mut(), || {
        // SAFETY: both are ServerConfig records we created in pconf.
        let (base, add) = unsafe { (&*base.cast::<ServerConfig>(), &*add.cast::<ServerConfig>()) };
        // SAFETY: live configuration pool.
        unsafe { pool_box(p, ServerConfig::merge(base, add)).cast() }
    })
}

/// A directory section's empty record.
#[no_mangle]
pub extern "C" fn wsgi_rs_create_dir_config(
    p: *mut ffi::apr_pool_t,
    _dir: *mut c_char,
) -> *mut c_void {
    // SAFETY: httpd passes a live pool.
    guard("create_dir_config", std::ptr::null_mut(), || unsafe {
        pool_box(p, DirConfig::default()).cast()
    })
}

/// A nested section's record merged over its parent's.
#[no_mangle]
pub extern "C" fn wsgi_rs_merge_dir_config(
    p: *mut ffi::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    guard("merge_dir_config", std::ptr::null_mut(), || {
        // SAFETY: both are DirConfig records we created.
        let (base, add) = unsafe { (&*base.cast::<DirConfig>(), &*add.cast::<DirConfig>()) };
        // SAFETY: live pool (request pool for runtime merges).
        unsafe { pool_box(p, DirConfig::merge(base, add)).cast() }
    })
}
