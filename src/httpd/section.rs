//! The handler of our section containers (`RAW_ARGS` directives written
//! `<Name ...> ... </Name>`), today only mod_wsgi 6's
//! `<WSGIInterpreterOptions>`. httpd has already read the lines inside into
//! the directive's children; they are checked here, not executed, so a
//! `WSGIPythonPath` inside never acts as a server-level one.

use std::ffi::{c_char, c_void, CStr};

use super::boundary::guard;
use super::directive::check_global;
use super::ffi;
use super::pool::pool_str;
use crate::config::{InterpreterOptionsBlock, ServerConfig};

/// A C string from httpd as text; empty for NULL.
fn text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: httpd's configuration strings are NUL-terminated pool strings.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Reads a `<WSGIInterpreterOptions>` section's lines up to its end tag and stores it.
fn read_section(cmd: *mut ffi::cmd_parms, args: *const c_char) -> Result<(), String> {
    check_global(cmd)?;
    let mut block = InterpreterOptionsBlock::open(&text(args)).map_err(|e| e.to_string())?;
    // SAFETY: cmd->directive is the node of this container in the
    // configuration tree httpd built; its children are its lines.
    let mut child = unsafe { (*(*cmd).directive).first_child };
    while !child.is_null() {
        // SAFETY: a live node of the same tree.
        let node = unsafe { &*child };
        let line = format!("{} {}", text(node.directive), text(node.args));
        block
            .add_line(&line)
            .map_err(|e| format!("{e} (line {} of {})", node.line_num, text(node.filename)))?;
        child = node.next;
    }
    // SAFETY: cmd->server is live and carries our ServerConfig.
    let config = unsafe { &mut *ffi::wsgi_rs_server_config((*cmd).server).cast::<ServerConfig>() };
    config.interpreter_blocks.push(block);
    Ok(())
}

/// httpd's handler for our section container.
#[no_mangle]
pub extern "C" fn wsgi_rs_section(
    cmd: *mut ffi::cmd_parms,
    _mconfig: *mut c_void,
    args: *const c_char,
) -> *const c_char {
    let result = guard(
        "section",
        Err("internal error while parsing a section".to_owned()),
        || read_section(cmd, args),
    );
    match result {
        Ok(()) => std::ptr::null(),
        // SAFETY: cmd->pool lives at least as long as httpd reads the error.
        Err(msg) => unsafe { pool_str((*cmd).pool, &msg) },
    }
}
