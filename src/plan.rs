//! The process plan: what post_config resolves, once, from the whole parsed
//! configuration (Python settings, each daemon group's launch, the scripts
//! to preload, MPM facts). It is immutable once published; children
//! inherit it across fork. httpd gathers the facts it is resolved from
//! ([`PlanInputs`]); resolving them is plain code, unit tested here.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{
    ApplicationGroup, DaemonProcessSpec, HashSeed, ProcessGroup, RequestFacts, ServerConfig,
};
use crate::daemon::privileges::{self, Identity};
use crate::daemon::DaemonLaunch;
use crate::interp::{PythonSettings, ScriptKey};
use crate::script_owner::{OwnerKind, ScriptOwner};

/// One `WSGIDaemonProcess` group, resolved.
#[derive(Debug, Clone)]
pub struct DaemonGroup {
    /// What each of its processes is started with (the listener fd is
    /// filled in once the socket exists).
    pub launch: DaemonLaunch,
    /// The group's UNIX socket.
    pub socket_path: PathBuf,
    /// The server_rec (by address) whose configuration defined the group:
    /// requests of that virtual host, or of any host when it is the main
    /// server, may use it.
    pub owner: usize,
    /// That server's `ServerName`: virtual hosts of the same name (one site
    /// on several ports) may use the group too, as in mod_wsgi.
    pub owner_name: String,
    /// How long Apache tries to reach a process of the group.
    pub connect_timeout: Duration,
    /// `script-user=`/`script-group=`: who must own the WSGI script files
    /// of the requests delegated to the group (checked by the Apache child
    /// before it forwards one).
    pub script_owner: Option<ScriptOwner>,
    /// `socket-user=`: the uid the group's socket is given to in place of
    /// Apache's `User` (for MPMs whose children serve as other users).
    pub socket_uid: Option<u32>,
}

/// The group's `script-user=` or `script-group=` resolved to its id (the
/// parser allows one of them at most).
pub fn resolve_script_owner(spec: &DaemonProcessSpec) -> Result<Option<ScriptOwner>, String> {
    let err = |e: privileges::PrivilegeError| format!("WSGIDaemonProcess {}: {e}", spec.name);
    if let Some(user) = &spec.script_user {
        let (uid, ..) = privileges::lookup_user(user).map_err(err)?;
        return Ok(Some(ScriptOwner {
            by: OwnerKind::User,
            id: uid,
            value: user.clone(),
        }));
    }
    if let Some(group) = &spec.script_group {
        let gid = privileges::lookup_group(group).map_err(err)?;
        return Ok(Some(ScriptOwner {
            by: OwnerKind::Group,
            id: gid,
            value: group.clone(),
        }));
    }
    Ok(None)
}

/// Everything a process needs to know about the configuration, resolved.
#[derive(Debug, Default)]
pub struct ProcessPlan {
    /// Python settings of the Apache children (embedded mode).
    pub python: PythonSettings,
    /// Scripts loaded when a child starts (`WSGIImportScript`, and
    /// `WSGIScriptAlias` naming both groups).
    pub preloads: Vec<ScriptKey>,
    /// The MPM runs several threads per child.
    pub multithread: bool,
    /// The MPM runs several children.
    pub multiprocess: bool,
    /// Every daemon group of every server.
    pub daemon_groups: Vec<DaemonGroup>,
    /// Address of the main server_rec.
    pub main_server: usize,
    /// `WSGIRestrictEmbedded On`.
    pub restrict_embedded: bool,
    /// Metrics are collected: `WSGIServerMetrics On`, or unset and the
    /// configuration names the `wsgi-rs-metrics` handler.
    pub metrics: bool,
}

impl ProcessPlan {
    /// The daemon group `name` as seen from the server at `server`;
    /// `server_name` (asked only for a group of another virtual host) is
    /// that server's `ServerName`.
    pub fn daemon_group(
        &self,
        name: &str,
        server: usize,
        server_name: impl Fn() -> String,
    ) -> Option<&DaemonGroup> {
        self.daemon_groups.iter().find(|g| {
            g.launch.spec.name == name
                && (g.owner == server
                    || g.owner == self.main_server
                    || g.owner_name == server_name())
        })
    }
}

/// The key of a script as loaded in application group `group`.
pub fn script_key(group: String, path: &str) -> ScriptKey {
    ScriptKey {
        group,
        path: PathBuf::from(path),
    }
}

/// What the MPM says about the server.
#[derive(Debug, Clone, Copy)]
pub struct MpmFacts {
    /// Threads per child.
    pub threads: i32,
    /// Children at most.
    pub daemons: i32,
    /// Whether the MPM is threaded at all.
    pub threaded: bool,
}

/// Apache's own user (`User`/`Group`), and whether Apache runs as root:
/// only then can daemon processes switch users.
#[derive(Debug, Clone, Default)]
pub struct ApacheUser {
    /// The parent runs as root.
    pub root: bool,
    /// `User`'s uid.
    pub uid: u32,
    /// `Group`'s gid.
    pub gid: u32,
    /// `User`'s name.
    pub name: String,
}

/// One server (the main one or a virtual host) as httpd holds it.
pub struct Server<'a> {
    /// Its configuration record.
    pub config: &'a ServerConfig,
    /// `ServerName`, for groups named after the server.
    pub hostname: String,
    /// Its port, likewise.
    pub port: u16,
    /// The server_rec's address, which requests of this server carry.
    pub address: usize,
}

impl RequestFacts for Server<'_> {
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

/// Everything the plan is resolved from.
pub struct PlanInputs<'a> {
    /// Every server, the main one first.
    pub servers: Vec<Server<'a>>,
    /// The MPM's sizing.
    pub mpm: MpmFacts,
    /// Who Apache runs as.
    pub apache_user: ApacheUser,
    /// Daemon sockets are `PREFIX.GROUP.sock`.
    pub socket_prefix: String,
    /// Apache's `Timeout`, the default socket timeout.
    pub apache_timeout: Duration,
    /// The Apache parent's pid: daemons exit when it goes.
    pub parent_pid: i32,
    /// Some directive of the configuration names the `wsgi-rs-metrics` or
    /// the `wsgi-rs-status` handler.
    pub metrics_handler: bool,
}

/// Resolves the parsed configuration of every server into the process plan.
pub fn build_plan(inputs: &PlanInputs<'_>) -> Result<ProcessPlan, String> {
    let Some(main_server) = inputs.servers.first() else {
        return Err("no server configuration to resolve".into());
    };
    let main = main_server.config;
    let mpm = inputs.mpm;
    let embedded_python = PythonSettings {
        home: main.python_home.clone(),
        path: main.python_path.clone(),
        restrict_stdout: main.effective_restrict_stdout(),
        restrict_stdin: main.effective_restrict_stdin(),
        restrict_signal: main.effective_restrict_signal(),
        process_group: String::new(),
        maximum_processes: mpm.daemons.max(1) as i64,
        threads_per_process: mpm.threads.max(1) as i64,
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
        multithread: mpm.threaded,
        multiprocess: mpm.daemons != 1,
        daemon_groups: Vec::new(),
        main_server: main_server.address,
        restrict_embedded: main.effective_restrict_embedded(),
        metrics: main.server_metrics.unwrap_or(inputs.metrics_handler),
    };
    for server in &inputs.servers {
        for spec in &server.config.daemon_processes {
            let group = daemon_group(inputs, main, &embedded_python, spec, server)?;
            plan.daemon_groups.push(group);
        }
    }
    for server in &inputs.servers {
        add_preloads(&mut plan, server)?;
    }
    Ok(plan)
}

/// One daemon group of the server `owner`, resolved.
fn daemon_group(
    inputs: &PlanInputs<'_>,
    main: &ServerConfig,
    embedded_python: &PythonSettings,
    spec: &DaemonProcessSpec,
    owner: &Server<'_>,
) -> Result<DaemonGroup, String> {
    let (identity, user_home) = resolve_identity(spec, &inputs.apache_user)?;
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
        inputs.apache_timeout
    } else {
        spec.socket_timeout
    };
    Ok(DaemonGroup {
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
            default_interface: None,
            socket_timeout,
            // mod_wsgi: unset, response writes get socket-timeout too.
            response_timeout: Some(spec.response_socket_timeout)
                .filter(|t| !t.is_zero())
                .unwrap_or(socket_timeout),
            slow_requests: main.slow_requests.unwrap_or_default(),
            parent_pid: inputs.parent_pid,
            health: Default::default(),
            metrics: None,
            succession: None,
            relay: None,
            retitle: None,
        },
        socket_path: format!("{}.{}.sock", inputs.socket_prefix, spec.name).into(),
        owner: owner.address,
        owner_name: owner.hostname.clone(),
        connect_timeout: spec.connect_timeout,
        script_owner: resolve_script_owner(spec)?,
        socket_uid: match &spec.socket_user {
            Some(user) => Some(
                privileges::lookup_user(user)
                    .map_err(|e| format!("WSGIDaemonProcess {}: {e}", spec.name))?
                    .0,
            ),
            None => None,
        },
    })
}

/// Scripts of `server` to load at process start, in the process group they
/// name: `WSGIImportScript`, and aliases naming both groups.
fn add_preloads(plan: &mut ProcessPlan, server: &Server<'_>) -> Result<(), String> {
    let config = server.config;
    let wanted = config
        .import_scripts
        .iter()
        .map(|i| {
            (
                &i.process_group,
                i.application_group.clone(),
                i.path.as_str(),
                Some(i.interface),
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
                None,
            )
        }));
    // `imported`: a WSGIImportScript line, with its interface= option.
    for (process_group, app_group, path, imported) in wanted {
        let key = script_key(app_group.expand(server), path);
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
                if let (Some(interface), None) = (imported, &group.launch.default_script) {
                    group.launch.default_script = Some(key.clone());
                    group.launch.default_interface = interface;
                }
                group.launch.preloads.push(key);
            }
        }
    }
    Ok(())
}

/// Who a daemon group runs as: its `user=`/`group=` options, else Apache's
/// `User`/`Group`, and the user's home directory when `user=` names one.
/// Only a root Apache can switch users.
pub fn resolve_identity(
    spec: &DaemonProcessSpec,
    apache: &ApacheUser,
) -> Result<(Identity, Option<String>), String> {
    let err = |e: privileges::PrivilegeError| format!("WSGIDaemonProcess {}: {e}", spec.name);
    if !apache.root {
        return Ok((Identity::default(), None));
    }
    let (uid, user_gid, name, home) = match &spec.user {
        Some(user) => privileges::lookup_user(user).map_err(err)?,
        None => (apache.uid, apache.gid, apache.name.clone(), String::new()),
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
        None => apache.gid,
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

/// The group's (client, proxy) secrets: random, made once per Apache parent
/// and kept across restarts, so children of the previous generation still
/// finishing requests during a graceful restart are not refused.
pub fn group_secrets(name: &str) -> (String, String) {
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

/// 128 random bits from the kernel, as hex.
fn random_secret() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Directive;

    fn config(directives: &[(Directive, &[&str])]) -> ServerConfig {
        let mut c = ServerConfig::default();
        for (d, args) in directives {
            c.apply(*d, args).unwrap();
        }
        c
    }

    fn inputs<'a>(servers: Vec<Server<'a>>) -> PlanInputs<'a> {
        PlanInputs {
            servers,
            mpm: MpmFacts {
                threads: 25,
                daemons: 4,
                threaded: true,
            },
            apache_user: ApacheUser::default(),
            socket_prefix: "/run/apache2/wsgi_rs".into(),
            apache_timeout: Duration::from_secs(300),
            parent_pid: 42,
            metrics_handler: false,
        }
    }

    fn server(config: &ServerConfig, address: usize) -> Server<'_> {
        Server {
            config,
            hostname: "example.com".into(),
            port: 8080,
            address,
        }
    }

    #[test]
    fn embedded_settings_come_from_the_main_server_and_the_mpm() {
        let main = config(&[
            (Directive::PythonHome, &["/opt/venv"]),
            (Directive::PythonPath, &["/srv/lib"]),
            (Directive::RestrictEmbedded, &["On"]),
        ]);
        let plan = build_plan(&inputs(vec![server(&main, 1)])).unwrap();
        assert_eq!(plan.python.home.as_deref(), Some("/opt/venv"));
        assert_eq!(plan.python.path, ["/srv/lib"]);
        assert_eq!(plan.python.maximum_processes, 4);
        assert_eq!(plan.python.threads_per_process, 25);
        assert!(plan.multithread && plan.multiprocess && plan.restrict_embedded);
        assert_eq!(plan.main_server, 1);
        assert!(plan.daemon_groups.is_empty() && plan.preloads.is_empty());
    }

    #[test]
    fn a_daemon_group_gets_its_socket_python_and_timeouts() {
        let main = config(&[(Directive::PythonPath, &["/srv/shared"])]);
        let vhost = config(&[(
            Directive::DaemonProcess,
            &["site", "processes=3", "threads=5", "python-path=/srv/site"],
        )]);
        let plan = build_plan(&inputs(vec![server(&main, 1), server(&vhost, 2)])).unwrap();
        let group = plan
            .daemon_group("site", 2, String::new)
            .expect("the vhost's group");
        assert_eq!(
            group.socket_path,
            PathBuf::from("/run/apache2/wsgi_rs.site.sock")
        );
        assert_eq!(group.owner, 2);
        let launch = &group.launch;
        assert_eq!(launch.python.path, ["/srv/site", "/srv/shared"]);
        assert_eq!(launch.python.process_group, "site");
        assert_eq!(launch.python.maximum_processes, 3);
        assert_eq!(launch.python.threads_per_process, 5);
        assert_eq!(launch.socket_timeout, Duration::from_secs(300));
        assert_eq!(launch.response_timeout, Duration::from_secs(300));
        assert_eq!(launch.parent_pid, 42);
        assert_eq!(launch.listener_fd, -1);
        // Another virtual host does not see it, unless it has the same
        // ServerName (one site on several ports).
        assert!(plan
            .daemon_group("site", 3, || "other.example".into())
            .is_none());
        assert!(plan
            .daemon_group("site", 3, || "example.com".into())
            .is_some());
    }

    #[test]
    fn the_main_servers_groups_serve_every_virtual_host() {
        let main = config(&[(Directive::DaemonProcess, &["shared", "socket-timeout=7"])]);
        let plan = build_plan(&inputs(vec![server(&main, 1)])).unwrap();
        let group = plan
            .daemon_group("shared", 9, || "other.example".into())
            .expect("visible everywhere");
        assert_eq!(group.launch.socket_timeout, Duration::from_secs(7));
        assert_eq!(group.launch.response_timeout, Duration::from_secs(7));
    }

    #[test]
    fn response_socket_timeout_applies_to_response_writes_only() {
        let main = config(&[(
            Directive::DaemonProcess,
            &["g", "socket-timeout=7", "response-socket-timeout=2"],
        )]);
        let plan = build_plan(&inputs(vec![server(&main, 1)])).unwrap();
        let launch = &plan.daemon_group("g", 1, String::new).unwrap().launch;
        assert_eq!(launch.socket_timeout, Duration::from_secs(7));
        assert_eq!(launch.response_timeout, Duration::from_secs(2));
    }

    #[test]
    fn scripts_preload_in_the_group_they_name() {
        let main = config(&[
            (Directive::DaemonProcess, &["site"]),
            (
                Directive::ImportScript,
                &[
                    "/srv/first.wsgi",
                    "process-group=site",
                    "application-group=%{GLOBAL}",
                    "interface=asgi",
                ],
            ),
            (
                Directive::ImportScript,
                &[
                    "/srv/second.wsgi",
                    "process-group=site",
                    "application-group=%{GLOBAL}",
                ],
            ),
            (
                Directive::ImportScript,
                &[
                    "/srv/embedded.wsgi",
                    "process-group=%{GLOBAL}",
                    "application-group=shared",
                ],
            ),
            (
                Directive::ScriptAlias,
                &[
                    "/app",
                    "/srv/app.wsgi",
                    "process-group=site",
                    "application-group=%{GLOBAL}",
                ],
            ),
        ]);
        let plan = build_plan(&inputs(vec![server(&main, 1)])).unwrap();
        assert_eq!(
            plan.preloads,
            [script_key("shared".into(), "/srv/embedded.wsgi")]
        );
        let launch = &plan.daemon_group("site", 1, String::new).unwrap().launch;
        let paths: Vec<_> = launch.preloads.iter().map(|k| k.path.clone()).collect();
        assert_eq!(
            paths,
            [
                PathBuf::from("/srv/first.wsgi"),
                PathBuf::from("/srv/second.wsgi"),
                PathBuf::from("/srv/app.wsgi"),
            ]
        );
        // A plain uwsgi peer gets the first imported script.
        assert_eq!(
            launch.default_script,
            Some(script_key(String::new(), "/srv/first.wsgi"))
        );
        assert_eq!(
            launch.default_interface,
            Some(crate::config::Interface::Asgi)
        );
    }

    #[test]
    fn a_preload_for_an_unknown_group_is_an_error() {
        let main = config(&[(
            Directive::ImportScript,
            &[
                "/srv/app.wsgi",
                "process-group=nowhere",
                "application-group=%{GLOBAL}",
            ],
        )]);
        let err = build_plan(&inputs(vec![server(&main, 1)])).unwrap_err();
        assert!(
            err.contains("no WSGIDaemonProcess group named 'nowhere'"),
            "{err}"
        );
    }

    #[test]
    fn identity_follows_apache_unless_the_group_names_a_user() {
        let spec = |args: &[&str]| {
            let c = config(&[(Directive::DaemonProcess, args)]);
            c.daemon_processes[0].clone()
        };
        // A non-root Apache cannot switch: the process keeps its user.
        let (identity, home) = resolve_identity(&spec(&["g"]), &ApacheUser::default()).unwrap();
        assert_eq!(identity, Identity::default());
        assert_eq!(home, None);
        let apache = ApacheUser {
            root: true,
            uid: 33,
            gid: 33,
            name: "www-data".into(),
        };
        let (identity, home) = resolve_identity(&spec(&["g"]), &apache).unwrap();
        assert_eq!(identity.uid, Some(33));
        assert_eq!(identity.gid, Some(33));
        assert_eq!(identity.user_name.as_deref(), Some("www-data"));
        assert_eq!(home, None);
        let (identity, home) =
            resolve_identity(&spec(&["g", "user=nobody", "group=#99"]), &apache).unwrap();
        assert_eq!((identity.uid, identity.gid), (Some(65534), Some(99)));
        assert_eq!(identity.user_name.as_deref(), Some("nobody"));
        assert_eq!(home.as_deref(), Some("/nonexistent"));
        let root = ApacheUser { uid: 0, ..apache };
        let err = resolve_identity(&spec(&["g"]), &root).unwrap_err();
        assert!(
            err.contains("refusing to run daemon processes as root"),
            "{err}"
        );
    }

    #[test]
    fn secrets_are_random_per_group_and_kept_for_the_parents_life() {
        let (client, proxy) = group_secrets("plan-test-a");
        assert_eq!(client.len(), 32);
        assert!(client.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(client, proxy);
        assert_eq!(group_secrets("plan-test-a"), (client.clone(), proxy));
        assert_ne!(group_secrets("plan-test-b").0, client);
    }

    #[test]
    fn metrics_are_on_by_the_directive_or_else_by_the_handler() {
        let plan_of = |directives: &[(Directive, &[&str])], handler: bool| {
            let main = config(directives);
            let mut inputs = inputs(vec![server(&main, 1)]);
            inputs.metrics_handler = handler;
            build_plan(&inputs).unwrap().metrics
        };
        assert!(!plan_of(&[], false));
        assert!(plan_of(&[], true));
        assert!(plan_of(&[(Directive::ServerMetrics, &["On"])], false));
        // An explicit Off wins: the handler then answers without figures.
        assert!(!plan_of(&[(Directive::ServerMetrics, &["Off"])], true));
    }
}
