//! httpd's configuration-time entry points: creating and merging our config
//! records, the directive handler, post_config (which resolves the parsed
//! configuration into the process plan), child_init and translate_name.

use std::ffi::{c_char, c_int, c_void, CStr};

use super::boundary::guard;
use super::ffi;
use super::plan::{self, ProcessPlan};
use super::pool::{pool_box, pool_str};
use super::request::Request;
use crate::config::{
    ApplicationGroup, DirConfig, Directive, ProcessGroup, RequestFacts, Scope, ServerConfig,
};
use crate::interp::{self, PythonSettings};

/// The handler name WSGIScriptAlias assigns and `SetHandler` may name.
pub const HANDLER: &CStr = c"wsgi-script";
/// The note that marks a request as mapped by a WSGIScriptAlias: its index.
pub const ALIAS_NOTE: &CStr = c"mod_wsgi_rs.script_alias";

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

/// Daemon mode is the next milestone; until it lands these are refused
/// loudly rather than ignored, so nobody believes their app is isolated.
fn refuse_daemon_mode(d: Directive, args: &[&str]) -> Option<String> {
    let unsupported = matches!(
        d,
        Directive::DaemonProcess
            | Directive::ProcessGroup
            | Directive::RestrictEmbedded
            | Directive::SocketPrefix
    );
    unsupported.then(|| {
        format!(
            "{}: daemon mode is not supported yet by mod_wsgi_rs (value '{}'); \
             remove the directive to run the application embedded",
            d.name(),
            args.join(" ")
        )
    })
}

fn refuse_daemon_option(config: &ServerConfig, d: Directive) -> Option<String> {
    let last_alias = matches!(d, Directive::ScriptAlias | Directive::ScriptAliasMatch)
        .then(|| config.script_aliases.last())
        .flatten();
    if let Some(alias) = last_alias {
        if let Some(pg) = &alias.options.process_group {
            if *pg != ProcessGroup::Global {
                return Some(format!(
                    "{}: process-group={} needs daemon mode, which is not supported yet by mod_wsgi_rs",
                    d.name(),
                    pg
                ));
            }
        }
    }
    if d == Directive::ImportScript {
        if let Some(script) = config.import_scripts.last() {
            if script.process_group != ProcessGroup::Global {
                return Some(format!(
                    "{}: process-group={} needs daemon mode, which is not supported yet by mod_wsgi_rs",
                    d.name(),
                    script.process_group
                ));
            }
        }
    }
    None
}

fn apply_directive(
    cmd: *mut ffi::cmd_parms,
    mconfig: *mut c_void,
    args: &[&str],
) -> Result<(), String> {
    // SAFETY: cmd is the live cmd_parms of this directive call.
    let name = unsafe { CStr::from_ptr(ffi::wsgi_rs_directive_name(cmd)) }.to_string_lossy();
    let d = Directive::from_name(&name).ok_or_else(|| format!("{name}: unknown directive"))?;
    if let Some(msg) = refuse_daemon_mode(d, args) {
        return Err(msg);
    }
    if d.global_only() {
        // SAFETY: live cmd_parms.
        let err = unsafe { ffi::wsgi_rs_check_global(cmd) };
        if !err.is_null() {
            // SAFETY: httpd returns a NUL-terminated pool string.
            return Err(unsafe { CStr::from_ptr(err) }
                .to_string_lossy()
                .into_owned());
        }
    }
    match d.scope() {
        Scope::Server => {
            // SAFETY: cmd->server is live and carries our ServerConfig.
            let config =
                unsafe { &mut *ffi::wsgi_rs_server_config((*cmd).server).cast::<ServerConfig>() };
            config.apply(d, args).map_err(|e| e.to_string())?;
            refuse_daemon_option(config, d).map_or(Ok(()), Err)
        }
        Scope::Dir => {
            // SAFETY: for per-dir directives httpd passes our DirConfig.
            let config = unsafe { &mut *mconfig.cast::<DirConfig>() };
            config.apply(d, args).map_err(|e| e.to_string())
        }
    }
}

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

fn mpm_query(what: u32) -> i32 {
    let mut value: c_int = 0;
    // SAFETY: ap_mpm_query writes one int.
    unsafe { ffi::ap_mpm_query(what as c_int, &mut value) };
    value
}

/// Facts about a server (not a request), for expanding groups of scripts
/// that are loaded at start-up.
struct ServerFacts {
    hostname: String,
    port: u16,
}

impl RequestFacts for ServerFacts {
    fn server_hostname(&self) -> String {
        self.hostname.clone()
    }
    fn server_port(&self) -> u16 {
        self.port
    }
    fn host_header(&self) -> Option<String> {
        None
    }
    fn script_name(&self) -> String {
        String::new()
    }
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Resolves the parsed configuration of every server into the process plan.
///
/// # Safety
/// `s` must be httpd's live main server_rec.
unsafe fn build_plan(s: *mut ffi::server_rec) -> ProcessPlan {
    // SAFETY: caller's contract; the config was created by our callbacks.
    let main = unsafe { &*ffi::wsgi_rs_server_config(s).cast::<ServerConfig>() };
    let threads = mpm_query(ffi::AP_MPMQ_MAX_THREADS);
    let daemons = mpm_query(ffi::AP_MPMQ_MAX_DAEMONS);
    let threaded = mpm_query(ffi::AP_MPMQ_IS_THREADED) != ffi::AP_MPMQ_NOT_SUPPORTED as i32;
    let mut plan = ProcessPlan {
        python: PythonSettings {
            home: main.python_home.clone(),
            path: main.python_path.clone(),
            restrict_stdout: main.effective_restrict_stdout(),
            restrict_stdin: main.effective_restrict_stdin(),
            process_group: String::new(),
            maximum_processes: daemons.max(1) as i64,
            threads_per_process: threads.max(1) as i64,
        },
        preloads: Vec::new(),
        multithread: threaded,
        multiprocess: daemons != 1,
    };
    let mut server = s;
    while !server.is_null() {
        // SAFETY: the server list and each config live in pconf.
        let (config, facts) = unsafe {
            let sr = &*server;
            let host = if sr.server_hostname.is_null() {
                String::new()
            } else {
                CStr::from_ptr(sr.server_hostname)
                    .to_string_lossy()
                    .into_owned()
            };
            (
                &*ffi::wsgi_rs_server_config(server).cast::<ServerConfig>(),
                ServerFacts {
                    hostname: host,
                    port: sr.port,
                },
            )
        };
        for script in &config.import_scripts {
            plan.preloads.push(plan::script_key(
                script.application_group.expand(&facts),
                &script.path,
            ));
        }
        for alias in config.script_aliases.iter().filter(|a| a.preload) {
            let group = alias
                .options
                .application_group
                .clone()
                .unwrap_or(ApplicationGroup::Resource)
                .expand(&facts);
            plan.preloads
                .push(plan::script_key(group, alias.target.trim_end_matches('/')));
        }
        // SAFETY: walking httpd's server list.
        server = unsafe { (*server).next };
    }
    plan
}

#[no_mangle]
pub extern "C" fn wsgi_rs_post_config(
    _pconf: *mut ffi::apr_pool_t,
    _plog: *mut ffi::apr_pool_t,
    _ptemp: *mut ffi::apr_pool_t,
    s: *mut ffi::server_rec,
) -> c_int {
    guard(
        "post_config",
        ffi::HTTP_INTERNAL_SERVER_ERROR as c_int,
        || {
            super::log::install(s);
            // SAFETY: httpd passes the live main server.
            let plan = unsafe { build_plan(s) };
            ::log::debug!(
                "mod_wsgi_rs {} configured: {} script(s) to preload",
                env!("CARGO_PKG_VERSION"),
                plan.preloads.len()
            );
            plan::publish(plan);
            ffi::OK as c_int
        },
    )
}

/// Starts Python in this process if it has not been, from the current plan.
pub fn ensure_python() -> Result<(), interp::InterpError> {
    interp::initialize(&plan::current().python)
}

#[no_mangle]
pub extern "C" fn wsgi_rs_child_init(_p: *mut ffi::apr_pool_t, s: *mut ffi::server_rec) {
    guard("child_init", (), || {
        super::log::install(s);
        let plan = plan::current();
        if plan.preloads.is_empty() {
            // Python starts with the first WSGI request, if any ever comes.
            return;
        }
        if let Err(e) = ensure_python() {
            ::log::error!("{e}");
            return;
        }
        interp::with_python(|py| {
            for key in &plan.preloads {
                if let Err(e) = plan::scripts().module(py, key, None, true) {
                    ::log::error!("Failed to preload WSGI script: {e}");
                    if let Some(err) = e.python_error() {
                        for line in crate::wsgi::format_exception(py, err) {
                            ::log::error!("{line}");
                        }
                    }
                }
            }
        });
    })
}

#[no_mangle]
pub extern "C" fn wsgi_rs_translate_name(r: *mut ffi::request_rec) -> c_int {
    guard("translate_name", ffi::DECLINED as c_int, || {
        // SAFETY: httpd passes the live request of this hook call.
        let mut req = unsafe { Request::from_raw(r) };
        let uri = req.uri();
        if !uri.starts_with(b"/") {
            return ffi::DECLINED as c_int;
        }
        let uri = String::from_utf8_lossy(uri).into_owned();
        let config = req.server_config();
        for (index, alias) in config.script_aliases.iter().enumerate() {
            if let Some(m) = alias.match_uri(&uri) {
                req.set_filename(&m.filename);
                req.set_handler(HANDLER);
                req.set_note(ALIAS_NOTE, &index.to_string());
                return ffi::OK as c_int;
            }
        }
        ffi::DECLINED as c_int
    })
}
