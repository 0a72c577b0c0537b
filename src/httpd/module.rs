//! The `module` record httpd looks up by name (`LoadModule wsgi_rs_module`).
//! It is defined here rather than in the C shim because a cdylib exports
//! only Rust symbols. The command table it points at is built from the
//! directive table (`commands.rs`); hook registration is C (httpd macros).

use super::commands::COMMANDS;
use super::ffi;
use super::records::{
    wsgi_rs_create_dir_config, wsgi_rs_create_server_config, wsgi_rs_merge_dir_config,
    wsgi_rs_merge_server_config,
};

/// httpd writes into this record (`module_index`, `next`, `name` handling),
/// so it has to be a mutable static; no Rust code touches it.
#[no_mangle]
#[used]
pub static mut wsgi_rs_module: ffi::module_struct = ffi::module_struct {
    version: ffi::MODULE_MAGIC_NUMBER_MAJOR as i32,
    minor_version: ffi::MODULE_MAGIC_NUMBER_MINOR as i32,
    module_index: -1,
    name: c"mod_wsgi_rs.c".as_ptr(),
    dynamic_load_handle: std::ptr::null_mut(),
    next: std::ptr::null_mut(),
    magic: ffi::MODULE_MAGIC_COOKIE as u64,
    rewrite_args: None,
    create_dir_config: Some(wsgi_rs_create_dir_config),
    merge_dir_config: Some(wsgi_rs_merge_dir_config),
    create_server_config: Some(wsgi_rs_create_server_config),
    merge_server_config: Some(wsgi_rs_merge_server_config),
    cmds: &raw const COMMANDS.0 as *const ffi::command_rec,
    register_hooks: Some(ffi::wsgi_rs_register_hooks),
    flags: 0,
};
