//! Resolving the parsed configuration of every server into the process
//! plan at post_config: MPM facts, the Python settings, each daemon group's
//! identity, socket and timeouts, the scripts to preload, and the secrets
//! our daemons check.

use std::ffi::{c_int, CStr};
use std::time::Duration;

use super::ffi;
use super::plan::{self, DaemonGroup, ProcessPlan};
use crate::config::HashSeed;
use crate::config::{ApplicationGroup, ProcessGroup, RequestFacts, ServerConfig};
use crate::daemon::privileges::{self, Identity};
use crate::daemon::DaemonLaunch;
use crate::interp::PythonSettings;

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

/// Accepted settings that change nothing here, said once, in the pass that
/// starts the server.
///
/// `WSGISocketRotation On` asks for new socket names on each restart; ours
/// keep theirs (what `Off` gives under mod_wsgi), which `ProxyPass` lines
/// naming a socket need, and the group secrets survive graceful restarts, so
/// the old children rotation protects against keep working.
/// `WSGIServerMetrics On` is kept in the plan for `mod_wsgi.server_metrics()`,
/// which this version does not provide yet.
fn warn_no_effect(main: &ServerConfig, plan: &ProcessPlan) {
    // SAFETY: plain query.
    let checking = unsafe { ffi::ap_state_query(ffi::AP_SQ_MAIN_STATE as c_int) }
        == ffi::AP_SQ_MS_CREATE_PRE_CONFIG as c_int;
    if checking {
        return;
    }
    if plan.server_metrics {
        ::log::warn!(
            "WSGIServerMetrics On has no effect yet: mod_wsgi.server_metrics() is not provided \
             by this version"
        );
    }
    if main.socket_rotation == Some(true) {
        ::log::warn!(
            "WSGISocketRotation On has no effect: daemon sockets keep their names across \
             restarts (PREFIX.GROUP.sock), as with WSGISocketRotation Off, and requests from \
             the previous generation's children are still served"
        );
    }
}

/// Resolves the parsed configuration of every server into the process plan.
///
/// # Safety
/// `s` must be httpd's live main server_rec and `pconf` its pool.
pub(super) unsafe fn build_plan(
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
        restrict_signal: main.effective_restrict_signal(),
        process_group: String::new(),
        maximum_processes: daemons.max(1) as i64,
        threads_per_process: threads.max(1) as i64,
        optimize: main.python.optimize,
        warnings: main.python.warnings.clone(),
        hash_seed: match main.python.hash_seed {
            Some(HashSeed::Fixed(seed)) => Some(seed),
            Some(HashSeed::Random) | None => None,
        },
        dont_write_bytecode: main.python.dont_write_bytecode.unwrap_or(false),
        eggs: main.python.eggs.clone(),
        switch_interval: main.python.switch_interval,
        skip_destroy: main.python.destroy_interpreter == Some(false),
    };
    let mut plan = ProcessPlan {
        python: embedded_python.clone(),
        preloads: Vec::new(),
        multithread: threaded,
        multiprocess: daemons != 1,
        daemon_groups: Vec::new(),
        main_server: s as usize,
        restrict_embedded: main.effective_restrict_embedded(),
        server_metrics: main.effective_server_metrics(),
    };
    warn_no_effect(main, &plan);
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
                // As in mod_wsgi, WSGIPythonEggs and WSGISwitchInterval are
                // embedded mode's; a daemon group has its own options.
                eggs: spec.python_eggs.clone(),
                switch_interval: spec.switch_interval,
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
                owner_name: facts.hostname.clone(),
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
pub(super) fn group_secrets(name: &str) -> (String, String) {
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
