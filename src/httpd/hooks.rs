//! httpd's lifecycle hooks: pre_config, post_config (which resolves the
//! parsed configuration into the process plan and starts the daemon
//! groups), child_init (which preloads scripts) and the parent's monitor
//! tick.

use std::ffi::c_int;
use std::sync::atomic::Ordering;

use super::boundary::guard;
use super::ffi;
use super::plan;
use super::resolve::{apache_user, build_plan};
use super::supervisor;
use crate::config::ServerConfig;
use crate::daemon::health::Health;
use crate::interp;
use crate::plan::group_secrets;
use crate::wsgi::log_script_error;

/// pre_config: refuses to start beside mod_wsgi, and forgets the previous
/// pass's daemon group names.
#[no_mangle]
pub extern "C" fn wsgi_rs_pre_config(
    _pconf: *mut ffi::apr_pool_t,
    _plog: *mut ffi::apr_pool_t,
    _ptemp: *mut ffi::apr_pool_t,
) -> c_int {
    guard("pre_config", ffi::OK as c_int, || {
        if mod_wsgi_loaded() {
            // No server yet: the message goes to httpd's stderr (the
            // terminal, or the service's journal), before "Pre-configuration
            // failed".
            super::log::install(std::ptr::null_mut());
            ::log::error!(
                "WSGIRS392: mod_wsgi (wsgi_module) is loaded as well as mod_wsgi_rs; both answer the same directives, so only one may be loaded: disable one of them (a2dismod wsgi, or a2dismod wsgi_rs)"
            );
            return ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;
        }
        super::directive::DAEMON_NAMES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        ffi::OK as c_int
    })
}

/// Debian's (or any) mod_wsgi is loaded in this httpd too. Its directives
/// have the same names as ours, and httpd gives each directive to whichever
/// module it finds first, so a site would be served half by one module and
/// half by the other; Debian's wsgi.load has no `Conflicts:` line that
/// would stop `a2enmod wsgi` while we are enabled (ours has one).
fn mod_wsgi_loaded() -> bool {
    // SAFETY: looks a name up in httpd's list of loaded modules, which
    // LoadModule filled before the pre_config hooks run.
    unsafe { !ffi::ap_find_linked_module(c"mod_wsgi.c".as_ptr()).is_null() }
}

/// `mod_wsgi_rs/VERSION Python/X.Y` in the server's banner, as mod_wsgi
/// adds `mod_wsgi/VERSION Python/X.Y` (once, on the pass that starts the
/// server). httpd applies `ServerTokens`: components show in the `Server`
/// header and the start-up line only under `ServerTokens Full`.
///
/// # Safety
/// `pconf` must be httpd's live configuration pool.
unsafe fn add_version_components(pconf: *mut ffi::apr_pool_t) {
    // SAFETY: Py_GetVersion returns a static string compiled into
    // libpython; it needs no initialised interpreter (none runs here).
    let python = unsafe { std::ffi::CStr::from_ptr(pyo3::ffi::Py_GetVersion()) }
        .to_string_lossy()
        .into_owned();
    let python: Vec<&str> = python
        .split(|c: char| !c.is_ascii_digit())
        .take(2)
        .collect();
    let components = [
        format!("mod_wsgi_rs/{}", env!("CARGO_PKG_VERSION")),
        format!("Python/{}", python.join(".")),
    ];
    for component in components {
        // SAFETY: live pconf (caller's contract); httpd copies the string
        // into pconf.
        unsafe { ffi::ap_add_version_component(pconf, super::pool::pool_str(pconf, &component)) };
    }
}

/// post_config: resolves and publishes the plan, and starts the daemon groups.
#[no_mangle]
pub extern "C" fn wsgi_rs_post_config(
    pconf: *mut ffi::apr_pool_t,
    _plog: *mut ffi::apr_pool_t,
    _ptemp: *mut ffi::apr_pool_t,
    s: *mut ffi::server_rec,
) -> c_int {
    guard(
        "post_config",
        ffi::HTTP_INTERNAL_SERVER_ERROR as c_int,
        || {
            super::log::install(s);
            // SAFETY: httpd passes its live pconf, which owns `s`.
            unsafe { super::log::forget_with(pconf) };
            // SAFETY: httpd passes the live main server and pconf.
            let mut plan = match unsafe { build_plan(s, pconf) } {
                Ok(plan) => plan,
                Err(msg) => {
                    ::log::error!("WSGIRS301: {msg}");
                    return ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;
                }
            };
            // httpd reads the configuration twice at start-up; the first pass
            // only checks it, so daemons start in the second.
            // SAFETY: plain query.
            let dry_run = unsafe { ffi::ap_state_query(ffi::AP_SQ_MAIN_STATE as c_int) }
                == ffi::AP_SQ_MS_CREATE_PRE_CONFIG as c_int;
            let group_authoritative = &super::directive::GROUP_AUTHORITATIVE_USED;
            if group_authoritative.swap(false, Ordering::Relaxed) && !dry_run {
                // Pass-through: the warning starts with its id.
                let warning = super::directive::group_authoritative_warning();
                ::log::warn!("{warning}");
            }
            if !dry_run {
                // SAFETY: httpd passes its live pconf.
                unsafe { add_version_components(pconf) };
                // SAFETY: the main server's record, created by our callbacks.
                let main = unsafe { &*ffi::wsgi_rs_server_config(s).cast::<ServerConfig>() };
                let daemons = plan.daemon_groups.iter().map(|g| &g.launch.spec);
                for notice in main.startup_notices(daemons) {
                    ::log::warn!("{notice}");
                }
            }
            if !dry_run {
                // SAFETY: the parent's real post_config pass, before it forks
                // children or daemon processes.
                unsafe { super::metrics::create(&plan) };
            }
            if dry_run {
                plan::publish(plan);
                return ffi::OK as c_int;
            }
            let apache = apache_user();
            for group in &mut plan.daemon_groups {
                let backlog = group.launch.spec.listen_backlog;
                // Apache's User may connect, or socket-user='s.
                let owner = (group.socket_uid.unwrap_or(apache.uid), apache.gid);
                // Kept from the previous generation after a restart.
                match supervisor::listener(
                    &group.socket_path,
                    backlog,
                    apache.root.then_some(owner),
                ) {
                    Ok(fd) => group.launch.listener_fd = fd,
                    Err(e) => {
                        ::log::error!(
                            "WSGIRS302: WSGIDaemonProcess {}: {e}",
                            group.launch.spec.name
                        );
                        return ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;
                    }
                }
                (group.launch.secret, group.launch.proxy_secret) =
                    group_secrets(&group.launch.spec.name);
                match Health::create(group.launch.spec.processes as usize) {
                    Ok(health) => group.launch.health = health,
                    Err(e) => {
                        ::log::error!(
                            "WSGIRS303: WSGIDaemonProcess {}: cannot map its health records: {e}",
                            group.launch.spec.name
                        );
                        return ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;
                    }
                }
            }
            ::log::debug!(
                "WSGIRS304: mod_wsgi_rs {}: starting {} daemon process group(s)",
                env!("CARGO_PKG_VERSION"),
                plan.daemon_groups.len()
            );
            let plan = plan::publish(plan);
            // Even without groups: after a restart, those of the previous
            // generation still serve its children.
            // SAFETY: parent's post_config with its live pconf and main server.
            unsafe { supervisor::start(plan, pconf, s) };
            ffi::OK as c_int
        },
    )
}

/// Starts Python in this process if it has not been, from the current plan.
pub fn ensure_python() -> Result<(), interp::InterpError> {
    interp::initialize(&plan::current().python)
}

/// Dropped when the Apache child's pool is destroyed (the child exits):
/// the embedded application's shutdown callbacks run then, and its atexit
/// callbacks unless `WSGIDestroyInterpreter Off`, as under mod_wsgi.
struct ChildStopping;

impl Drop for ChildStopping {
    fn drop(&mut self) {
        guard("child_exit", (), || {
            if let Some(board) = super::metrics::current() {
                board.embedded_process(false);
            }
            let destroy = !plan::current().python.skip_destroy;
            interp::process_stopping("shutdown_signal", destroy);
        })
    }
}

/// child_init: closes the daemon sockets and preloads scripts.
#[no_mangle]
pub extern "C" fn wsgi_rs_child_init(p: *mut ffi::apr_pool_t, s: *mut ffi::server_rec) {
    guard("child_init", (), || {
        super::log::install(s);
        // SAFETY: p is the child's pool, live until the child exits; the
        // box is dropped by its cleanup, which then runs the application's
        // shutdown callbacks.
        unsafe { super::pool::pool_box(p, ChildStopping) };
        if let Some(board) = super::metrics::current() {
            board.embedded_process(true);
        }
        let plan = plan::current();
        for fd in supervisor::listener_fds(&plan) {
            // SAFETY: Apache children never accept on daemon sockets; this
            // closes their inherited copies.
            unsafe { libc::close(fd) };
        }
        // Under `httpd -X` too: a supervisor process of its own supervises
        // the daemon processes there.
        for group in &plan.daemon_groups {
            group.launch.health.read_only();
        }
        if !plan.daemon_groups.is_empty() {
            super::child_exit::reset_in_child();
        }
        if plan.preloads.is_empty() {
            // Python starts with the first WSGI request, if any ever comes.
            return;
        }
        if let Err(e) = ensure_python() {
            let line = e.logged();
            ::log::error!("{line}");
            return;
        }
        for key in &plan.preloads {
            // Each script loads in the interpreter of its application group.
            let loaded = interp::with_group(&key.group, |py| {
                if let Err(e) = plan::scripts().module(py, key, None, true) {
                    let message = format!("WSGIRS305: Failed to preload WSGI script: {e}");
                    log_script_error(py, &message, e.python_error(), |line| {
                        ::log::error!("{line}")
                    });
                }
            });
            if let Err(e) = loaded {
                ::log::error!(
                    "WSGIRS305: Failed to preload WSGI script '{}': {e}",
                    key.path.display()
                );
            }
        }
    })
}

/// The parent's monitor tick: the supervisor's respawns.
#[no_mangle]
pub extern "C" fn wsgi_rs_monitor(_p: *mut ffi::apr_pool_t, _s: *mut ffi::server_rec) -> c_int {
    guard("monitor", ffi::DECLINED as c_int, || {
        supervisor::monitor_tick();
        ffi::DECLINED as c_int
    })
}
