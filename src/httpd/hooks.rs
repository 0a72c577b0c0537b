//! httpd's configuration-time entry points: creating and merging our config
//! records, the directive handler, post_config (which resolves the parsed
//! configuration into the process plan), child_init and translate_name.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::time::Duration;

use super::boundary::guard;
use super::ffi;
use super::plan::{self, DaemonGroup, ProcessPlan};
use super::pool::{pool_box, pool_str};
use super::request::Request;
use super::supervisor;
use crate::config::{
    ApplicationGroup, DirConfig, Directive, ProcessGroup, RequestFacts, Scope, ServerConfig,
};
use crate::daemon::privileges::{self, Identity};
use crate::daemon::DaemonLaunch;
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

/// Names of the `WSGIDaemonProcess` groups read so far in this
/// configuration pass: names are unique server-wide. Cleared by pre_config.
static DAEMON_NAMES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

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
    Ok(())
}

fn apply_directive(
    cmd: *mut ffi::cmd_parms,
    mconfig: *mut c_void,
    args: &[&str],
) -> Result<(), String> {
    // SAFETY: cmd is the live cmd_parms of this directive call.
    let name = unsafe { CStr::from_ptr(ffi::wsgi_rs_directive_name(cmd)) }.to_string_lossy();
    let d = Directive::from_name(&name).ok_or_else(|| format!("{name}: unknown directive"))?;
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
            if d == Directive::DaemonProcess {
                validate_daemon_process(config)?;
            }
            Ok(())
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

/// Who a daemon group runs as: its `user=`/`group=` options, else Apache's
/// `User`/`Group`. Only a root Apache can switch users.
fn resolve_identity(
    spec: &crate::config::DaemonProcessSpec,
) -> Result<(Identity, Option<String>), String> {
    // SAFETY: geteuid cannot fail; ap_unixd_config is filled by mod_unixd
    // while the configuration is read and only read here.
    let (root, apache_uid, apache_gid, apache_user) = unsafe {
        let u = &*std::ptr::addr_of!(ffi::ap_unixd_config);
        let name = if u.user_name.is_null() {
            String::new()
        } else {
            CStr::from_ptr(u.user_name).to_string_lossy().into_owned()
        };
        (libc::geteuid() == 0, u.user_id, u.group_id, name)
    };
    let err = |e: privileges::PrivilegeError| format!("WSGIDaemonProcess {}: {e}", spec.name);
    if !root {
        return Ok((Identity::default(), None));
    }
    let (uid, user_gid, name, home) = match &spec.user {
        Some(user) => privileges::lookup_user(user).map_err(err)?,
        None => (apache_uid, apache_gid, apache_user, String::new()),
    };
    if uid == 0 {
        return Err(format!(
            "WSGIDaemonProcess {}: refusing to run daemon processes as root",
            spec.name
        ));
    }
    let gid = match &spec.group {
        Some(g) => privileges::lookup_group(g).map_err(err)?,
        None if spec.user.is_some() => user_gid,
        None => apache_gid,
    };
    let supplementary = spec
        .supplementary_groups
        .iter()
        .map(|g| privileges::lookup_group(g))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let home = (spec.user.is_some() && !home.is_empty()).then_some(home);
    Ok((
        Identity {
            uid: Some(uid),
            gid: Some(gid),
            user_name: Some(name),
            supplementary,
        },
        home,
    ))
}

/// Resolves the parsed configuration of every server into the process plan.
///
/// # Safety
/// `s` must be httpd's live main server_rec and `pconf` its pool.
unsafe fn build_plan(
    s: *mut ffi::server_rec,
    pconf: *mut ffi::apr_pool_t,
) -> Result<ProcessPlan, String> {
    // SAFETY: caller's contract; the config was created by our callbacks.
    let main = unsafe { &*ffi::wsgi_rs_server_config(s).cast::<ServerConfig>() };
    let threads = mpm_query(ffi::AP_MPMQ_MAX_THREADS);
    let daemons = mpm_query(ffi::AP_MPMQ_MAX_DAEMONS);
    let threaded = mpm_query(ffi::AP_MPMQ_IS_THREADED) != ffi::AP_MPMQ_NOT_SUPPORTED as i32;
    let embedded_python = PythonSettings {
        home: main.python_home.clone(),
        path: main.python_path.clone(),
        restrict_stdout: main.effective_restrict_stdout(),
        restrict_stdin: main.effective_restrict_stdin(),
        process_group: String::new(),
        maximum_processes: daemons.max(1) as i64,
        threads_per_process: threads.max(1) as i64,
    };
    let mut plan = ProcessPlan {
        python: embedded_python.clone(),
        preloads: Vec::new(),
        multithread: threaded,
        multiprocess: daemons != 1,
        daemon_groups: Vec::new(),
        main_server: s as usize,
        restrict_embedded: main.effective_restrict_embedded(),
    };
    // SAFETY: caller's contract.
    let prefix = unsafe { socket_prefix(pconf, main) };
    // SAFETY: s is live; timeout is Apache's `Timeout` in microseconds.
    let apache_timeout = Duration::from_micros(unsafe { (*s).timeout }.max(0) as u64);
    let parent_pid = std::process::id() as i32;

    let mut servers = Vec::new();
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
        for spec in &config.daemon_processes {
            let (identity, user_home) = resolve_identity(spec)?;
            let mut path = spec.python_path.clone();
            path.extend(main.python_path.iter().cloned());
            let python = PythonSettings {
                home: spec
                    .python_home
                    .clone()
                    .or_else(|| main.python_home.clone()),
                path,
                process_group: spec.name.clone(),
                maximum_processes: spec.processes as i64,
                threads_per_process: spec.threads as i64,
                ..embedded_python.clone()
            };
            let socket_timeout = if spec.socket_timeout.is_zero() {
                apache_timeout
            } else {
                spec.socket_timeout
            };
            plan.daemon_groups.push(DaemonGroup {
                launch: DaemonLaunch {
                    spec: spec.clone(),
                    listener_fd: -1,
                    secret: String::new(),
                    proxy_secret: String::new(),
                    python,
                    identity,
                    home: spec.home.clone().or(user_home).map(Into::into),
                    preloads: Vec::new(),
                    default_script: None,
                    socket_timeout,
                    parent_pid,
                },
                socket_path: format!("{prefix}.{}.sock", spec.name).into(),
                owner: server as usize,
                connect_timeout: spec.connect_timeout,
            });
        }
        servers.push((config, facts));
        // SAFETY: walking httpd's server list.
        server = unsafe { (*server).next };
    }

    // Scripts to load at process start, in the process group they name.
    for (config, facts) in &servers {
        let wanted = config
            .import_scripts
            .iter()
            .map(|i| {
                (
                    &i.process_group,
                    i.application_group.clone(),
                    i.path.as_str(),
                    true,
                )
            })
            .chain(config.script_aliases.iter().filter(|a| a.preload).map(|a| {
                (
                    a.options
                        .process_group
                        .as_ref()
                        .unwrap_or(&ProcessGroup::Global),
                    a.options
                        .application_group
                        .clone()
                        .unwrap_or(ApplicationGroup::Resource),
                    a.target.trim_end_matches('/'),
                    false,
                )
            }));
        for (process_group, app_group, path, imported) in wanted {
            let key = plan::script_key(app_group.expand(facts), path);
            match process_group {
                ProcessGroup::Global => plan.preloads.push(key),
                other => {
                    let name = other.resolve(|v| std::env::var(v).ok());
                    let Some(group) = plan
                        .daemon_groups
                        .iter_mut()
                        .find(|g| g.launch.spec.name == name)
                    else {
                        return Err(format!(
                            "WSGIImportScript/WSGIScriptAlias '{path}': no WSGIDaemonProcess group named '{name}'"
                        ));
                    };
                    if imported && group.launch.default_script.is_none() {
                        group.launch.default_script = Some(key.clone());
                    }
                    group.launch.preloads.push(key);
                }
            }
        }
    }
    Ok(plan)
}

/// The group's (client, proxy) secrets: random, made once per Apache parent
/// and kept across restarts, so children of the previous generation still
/// finishing requests during a graceful restart are not refused.
fn group_secrets(name: &str) -> (String, String) {
    static SECRETS: std::sync::Mutex<Vec<(String, String, String)>> =
        std::sync::Mutex::new(Vec::new());
    let mut all = SECRETS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, client, proxy)) = all.iter().find(|(n, ..)| n == name) {
        return (client.clone(), proxy.clone());
    }
    let pair = (random_secret(), random_secret());
    all.push((name.to_owned(), pair.0.clone(), pair.1.clone()));
    pair
}

fn random_secret() -> String {
    let mut bytes = [0u8; 16];
    // SAFETY: getrandom fills the buffer we own.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        // Fall back to something unpredictable enough to a local attacker
        // who cannot read our memory.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes.copy_from_slice(&(t ^ ((std::process::id() as u128) << 64)).to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[no_mangle]
pub extern "C" fn wsgi_rs_pre_config(
    _pconf: *mut ffi::apr_pool_t,
    _plog: *mut ffi::apr_pool_t,
    _ptemp: *mut ffi::apr_pool_t,
) -> c_int {
    guard("pre_config", ffi::OK as c_int, || {
        DAEMON_NAMES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        ffi::OK as c_int
    })
}

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
                    ::log::error!("{msg}");
                    return ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;
                }
            };
            // httpd reads the configuration twice at start-up; the first pass
            // only checks it, so daemons start in the second.
            // SAFETY: plain query.
            let dry_run = unsafe { ffi::ap_state_query(ffi::AP_SQ_MAIN_STATE as c_int) }
                == ffi::AP_SQ_MS_CREATE_PRE_CONFIG as c_int;
            if dry_run || plan.daemon_groups.is_empty() {
                plan::publish(plan);
                return ffi::OK as c_int;
            }
            // SAFETY: as in resolve_identity.
            let (root, apache_uid, apache_gid) = unsafe {
                let u = &*std::ptr::addr_of!(ffi::ap_unixd_config);
                (libc::geteuid() == 0, u.user_id, u.group_id)
            };
            for group in &mut plan.daemon_groups {
                let backlog = group.launch.spec.listen_backlog;
                match supervisor::create_listener(
                    &group.socket_path,
                    backlog,
                    root.then_some((apache_uid, apache_gid)),
                ) {
                    Ok(fd) => group.launch.listener_fd = fd,
                    Err(e) => {
                        ::log::error!("WSGIDaemonProcess {}: {e}", group.launch.spec.name);
                        return ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;
                    }
                }
                (group.launch.secret, group.launch.proxy_secret) =
                    group_secrets(&group.launch.spec.name);
            }
            ::log::debug!(
                "mod_wsgi_rs {}: starting {} daemon process group(s)",
                env!("CARGO_PKG_VERSION"),
                plan.daemon_groups.len()
            );
            let plan = plan::publish(plan);
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

#[no_mangle]
pub extern "C" fn wsgi_rs_child_init(_p: *mut ffi::apr_pool_t, s: *mut ffi::server_rec) {
    guard("child_init", (), || {
        super::log::install(s);
        let plan = plan::current();
        for fd in supervisor::listener_fds(&plan) {
            // SAFETY: Apache children never accept on daemon sockets; this
            // closes their inherited copies.
            unsafe { libc::close(fd) };
        }
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

/// The UNIX socket a mod_proxy request is bound for, if any: named in
/// r->filename (`proxy:unix:PATH|…`) or r->handler (`SetHandler
/// "proxy:unix:PATH|…"`), or, for `ProxyPass /x unix:PATH|uwsgi://…`, known
/// only to the proxy worker, because httpd strips the socket from the
/// mapped filename when it reads the configuration.
fn proxy_socket(req: &Request<'_>) -> Option<Vec<u8>> {
    let named = [req.filename(), req.handler()]
        .into_iter()
        .find_map(|s| s.strip_prefix(b"proxy:unix:"));
    if let Some(target) = named {
        return target.split(|&b| b == b'|').next().map(<[u8]>::to_vec);
    }
    if !req.filename().starts_with(b"proxy:") {
        return None;
    }
    // SAFETY: a live request; the result is null or a string in the
    // worker's configuration memory, which outlives the request.
    unsafe {
        let p = ffi::wsgi_rs_proxy_uds_path(req.raw());
        (!p.is_null()).then(|| CStr::from_ptr(p).to_bytes().to_vec())
    }
}

/// Requests that mod_proxy_uwsgi sends to one of our daemon sockets get the
/// configuration secret, so our daemons serve this Apache's proxied
/// requests and refuse anyone else's.
#[no_mangle]
pub extern "C" fn wsgi_rs_fixups(r: *mut ffi::request_rec) -> c_int {
    guard("fixups", ffi::DECLINED as c_int, || {
        // SAFETY: httpd passes the live request of this hook call.
        let mut req = unsafe { Request::from_raw(r) };
        let Some(path) = proxy_socket(&req) else {
            return ffi::DECLINED as c_int;
        };
        let path = path.as_slice();
        let plan = plan::current();
        let ours = plan
            .daemon_groups
            .iter()
            .find(|g| g.socket_path.as_os_str().as_encoded_bytes() == path);
        if let Some(group) = ours {
            req.set_env(c"WSGI_RS_SECRET", &group.launch.proxy_secret);
        }
        ffi::DECLINED as c_int
    })
}

#[no_mangle]
pub extern "C" fn wsgi_rs_monitor(_p: *mut ffi::apr_pool_t, _s: *mut ffi::server_rec) -> c_int {
    guard("monitor", ffi::DECLINED as c_int, || {
        supervisor::monitor_tick();
        ffi::DECLINED as c_int
    })
}
