//! Gathering, at post_config, what the process plan is resolved from: every
//! server's configuration record, the MPM's sizing, Apache's user, the
//! socket prefix and `Timeout`. The resolving itself is `crate::plan`.

use std::ffi::{c_int, CStr};
use std::time::Duration;

use super::ffi;
use crate::config::ServerConfig;
use crate::plan::{ApacheUser, MpmFacts, PlanInputs, ProcessPlan, Server};

/// One `ap_mpm_query` value.
fn mpm_query(what: u32) -> i32 {
    let mut value: c_int = 0;
    // SAFETY: ap_mpm_query writes one int.
    unsafe { ffi::ap_mpm_query(what as c_int, &mut value) };
    value
}

/// The default socket prefix: `wsgi_rs` under Apache's runtime directory.
///
/// # Safety
/// `pconf` must be live; `main` must be the main server's config.
unsafe fn socket_prefix(pconf: *mut ffi::apr_pool_t, main: &ServerConfig) -> String {
    // SAFETY: both functions return pool strings relative to ServerRoot /
    // DefaultRuntimeDir; the inputs are NUL-terminated.
    unsafe {
        let p = match &main.socket_prefix {
            Some(prefix) => {
                let c = std::ffi::CString::new(prefix.as_str()).unwrap_or_default();
                ffi::ap_server_root_relative(pconf, c.as_ptr())
            }
            None => ffi::ap_runtime_dir_relative(pconf, c"wsgi_rs".as_ptr()),
        };
        if p.is_null() {
            "wsgi_rs".to_owned()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// Apache's `User`/`Group` as mod_unixd read them, and whether we are root.
pub(super) fn apache_user() -> ApacheUser {
    // SAFETY: geteuid cannot fail; ap_unixd_config is filled by mod_unixd
    // while the configuration is read and only read here.
    unsafe {
        let u = &*std::ptr::addr_of!(ffi::ap_unixd_config);
        let name = if u.user_name.is_null() {
            String::new()
        } else {
            CStr::from_ptr(u.user_name).to_string_lossy().into_owned()
        };
        ApacheUser {
            root: libc::geteuid() == 0,
            uid: u.user_id,
            gid: u.group_id,
            name,
        }
    }
}

/// Gathers what the plan is resolved from and resolves it.
///
/// # Safety
/// `s` must be httpd's live main server_rec and `pconf` its pool.
pub(super) unsafe fn build_plan(
    s: *mut ffi::server_rec,
    pconf: *mut ffi::apr_pool_t,
) -> Result<ProcessPlan, String> {
    // SAFETY: caller's contract; the config was created by our callbacks.
    let main = unsafe { &*ffi::wsgi_rs_server_config(s).cast::<ServerConfig>() };
    let mpm = MpmFacts {
        threads: mpm_query(ffi::AP_MPMQ_MAX_THREADS),
        daemons: mpm_query(ffi::AP_MPMQ_MAX_DAEMONS),
        threaded: mpm_query(ffi::AP_MPMQ_IS_THREADED) != ffi::AP_MPMQ_NOT_SUPPORTED as i32,
    };
    let mut servers = Vec::new();
    let mut server = s;
    while !server.is_null() {
        // SAFETY: the server list and each config live in pconf.
        unsafe {
            let sr = &*server;
            let hostname = if sr.server_hostname.is_null() {
                String::new()
            } else {
                CStr::from_ptr(sr.server_hostname)
                    .to_string_lossy()
                    .into_owned()
            };
            servers.push(Server {
                config: &*ffi::wsgi_rs_server_config(server).cast::<ServerConfig>(),
                hostname,
                port: sr.port,
                address: server as usize,
            });
            server = sr.next;
        }
    }
    let inputs = PlanInputs {
        servers,
        mpm,
        apache_user: apache_user(),
        // SAFETY: caller's contract.
        socket_prefix: unsafe { socket_prefix(pconf, main) },
        // SAFETY: s is live; timeout is Apache's `Timeout` in microseconds.
        apache_timeout: Duration::from_micros(unsafe { (*s).timeout }.max(0) as u64),
        parent_pid: std::process::id() as i32,
        metrics_handler: [super::metrics::HANDLER, super::metrics::STATUS_HANDLER]
            .iter()
            // SAFETY: post_config, while httpd keeps the parsed configuration.
            .any(|h| unsafe { ffi::wsgi_rs_config_names(h.as_ptr()) } != 0),
    };
    let plan = crate::plan::build_plan(&inputs)?;
    Ok(plan)
}
