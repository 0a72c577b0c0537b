//! The directive handler httpd calls for each of our directives: it finds
//! the directive, checks where it may appear, and hands its arguments to the
//! pure parser in `config`, which stores the result in the server's or the
//! directory's record.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, Ordering};

use super::boundary::guard;
use super::ffi;
use super::pool::pool_str;
use crate::config::{DirConfig, Directive, Notice, Scope, ServerConfig};
use crate::daemon::privileges;

/// Names of the `WSGIDaemonProcess` groups read so far in this
/// configuration pass: names are unique server-wide. Cleared by pre_config.
pub(super) static DAEMON_NAMES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Checks what the pure parser cannot: that the group's name is unique and
/// its users and groups exist, so a typo stops Apache with file and line.
fn validate_daemon_process(config: &ServerConfig) -> Result<(), String> {
    let Some(spec) = config.daemon_processes.last() else {
        return Ok(());
    };
    let mut names = DAEMON_NAMES.lock().unwrap_or_else(|p| p.into_inner());
    if names.contains(&spec.name) {
        return Err(format!(
            "WSGIDaemonProcess: name '{}' duplicates a previous WSGIDaemonProcess definition",
            spec.name
        ));
    }
    names.push(spec.name.clone());
    if let Some(user) = &spec.user {
        let (uid, ..) = privileges::lookup_user(user)
            .map_err(|e| format!("WSGIDaemonProcess: user={user}: {e}"))?;
        if uid == 0 {
            return Err(format!(
                "WSGIDaemonProcess: user={user}: daemon processes may not run as root"
            ));
        }
    }
    for group in spec.group.iter().chain(&spec.supplementary_groups) {
        privileges::lookup_group(group)
            .map_err(|e| format!("WSGIDaemonProcess: group {group}: {e}"))?;
    }
    let users = [
        ("script-user", &spec.script_user),
        ("socket-user", &spec.socket_user),
    ];
    for (option, user) in users
        .into_iter()
        .filter_map(|(o, u)| Some((o, u.as_ref()?)))
    {
        privileges::lookup_user(user)
            .map_err(|e| format!("WSGIDaemonProcess: {option}={user}: {e}"))?;
    }
    if let Some(group) = &spec.script_group {
        privileges::lookup_group(group)
            .map_err(|e| format!("WSGIDaemonProcess: script-group={group}: {e}"))?;
    }
    Ok(())
}

/// Set when the configuration being read uses `WSGIGroupAuthoritative`;
/// post_config says once that it has no effect.
pub(super) static GROUP_AUTHORITATIVE_USED: AtomicBool = AtomicBool::new(false);

/// Said once when `WSGIGroupAuthoritative` appears (`WSGIRS117`, from its
/// row in `src/messages.rs`).
pub(super) fn group_authoritative_warning() -> String {
    let d = Directive::GroupAuthoritative;
    Notice::for_directive(d, "", d.name()).map_or_else(String::new, |n| n.to_string())
}

/// Logs the warning above, once per configuration pass.
fn note_group_authoritative() {
    // SAFETY: plain query.
    let serving = unsafe { ffi::ap_state_query(ffi::AP_SQ_MAIN_STATE as c_int) }
        == ffi::AP_SQ_MS_RUN_MPM as c_int;
    if !serving {
        GROUP_AUTHORITATIVE_USED.store(true, Ordering::Relaxed);
        return;
    }
    // Read from an .htaccess file while serving: said once per process.
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        let warning = group_authoritative_warning();
        ::log::warn!("{warning}");
    }
}

/// Apache's refusal of a main-server-only directive inside `<VirtualHost>`
/// (`ap_check_cmd_context(cmd, GLOBAL_ONLY)`), with Apache's own message.
pub(super) fn check_global(cmd: *mut ffi::cmd_parms) -> Result<(), String> {
    // SAFETY: live cmd_parms.
    let err = unsafe { ffi::wsgi_rs_check_global(cmd) };
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: httpd returns a NUL-terminated pool string.
    Err(unsafe { CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned())
}

/// Finds the directive, checks where it is, and stores it in the server's or directory's record.
fn apply_directive(
    cmd: *mut ffi::cmd_parms,
    mconfig: *mut c_void,
    args: &[&str],
) -> Result<(), String> {
    // SAFETY: cmd is the live cmd_parms of this directive call.
    let name = unsafe { CStr::from_ptr(ffi::wsgi_rs_directive_name(cmd)) }.to_string_lossy();
    let d = Directive::from_name(&name).ok_or_else(|| format!("{name}: unknown directive"))?;
    if d.global_only() {
        check_global(cmd)?;
    }
    match d.scope() {
        Scope::Server => {
            // SAFETY: cmd->server is live and carries our ServerConfig.
            let config =
                unsafe { &mut *ffi::wsgi_rs_server_config((*cmd).server).cast::<ServerConfig>() };
            config.apply(d, args).map_err(|e| e.to_string())?;
            if d == Directive::DaemonProcess {
                validate_daemon_process(config)?;
            }
            Ok(())
        }
        Scope::Dir => {
            // SAFETY: for per-dir directives httpd passes our DirConfig.
            let config = unsafe { &mut *mconfig.cast::<DirConfig>() };
            config.apply(d, args).map_err(|e| e.to_string())?;
            if d == Directive::GroupAuthoritative {
                note_group_authoritative();
            }
            Ok(())
        }
    }
}

/// httpd's handler for every directive of ours: NULL, or the error message.
#[no_mangle]
pub extern "C" fn wsgi_rs_directive(
    cmd: *mut ffi::cmd_parms,
    mconfig: *mut c_void,
    argc: c_int,
    argv: *const *mut c_char,
) -> *const c_char {
    let result = guard(
        "directive",
        Err("internal error while parsing directive".to_owned()),
        || {
            // SAFETY: httpd passes argc NUL-terminated strings from its pools.
            let owned: Vec<String> = (0..argc.max(0) as usize)
                .map(|i| {
                    // SAFETY: i < argc, and each of them is a C string.
                    unsafe { CStr::from_ptr(*argv.add(i)) }
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            let args: Vec<&str> = owned.iter().map(String::as_str).collect();
            apply_directive(cmd, mconfig, &args)
        },
    );
    match result {
        Ok(()) => std::ptr::null(),
        // SAFETY: cmd->pool lives at least as long as httpd reads the error.
        Err(msg) => unsafe { pool_str((*cmd).pool, &msg) },
    }
}
