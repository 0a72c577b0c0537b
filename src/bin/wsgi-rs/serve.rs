//! `wsgi-rs serve`: checks everything it can before Apache starts (files,
//! module, port, the application's import), writes the private server root,
//! then either runs Apache in the foreground until Ctrl-C or, with
//! `--setup-only`, leaves start/stop scripts behind.

use std::ffi::CString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::accounts::{self, Account};
use crate::apache;
use crate::cli::{Mpm, ServeArgs};
use crate::failure::{Failure, Outcome};
use crate::httpd_conf::{host_port, HttpdConf, Logs, RunAs};
use crate::preflight;
use crate::supervise::{self, Apache, Ending};
use crate::target::{shim_source, Target};

/// mod_wsgi-express's default: a few threads suit most apps in development.
const DEFAULT_THREADS: u32 = 5;

/// Accounts Apache's children run as when wsgi-rs is started by root and
/// no --user is given: Debian's, then RHEL's.
const DEFAULT_USERS: [&str; 2] = ["www-data", "apache"];

/// The generated WSGI script's name in the server root.
const SHIM_NAME: &str = "app.wsgi";

/// The private directory holding the configuration, pid file, lock files
/// and daemon sockets. A temporary one is removed when wsgi-rs ends.
struct ServerRoot {
    /// The directory.
    path: PathBuf,
    /// We made it and remove it at the end.
    temporary: bool,
}

impl ServerRoot {
    /// The server root given, or a new temporary one.
    fn prepare(given: Option<&Path>, keep: bool) -> Outcome<ServerRoot> {
        let cannot = |path: &Path, e: std::io::Error| {
            Failure::new(
                format!("cannot create the server root {}: {e}", path.display()),
                "pass --server-root a directory you can write to",
            )
        };
        let root = match given {
            Some(dir) => {
                let dir = std::path::absolute(dir).map_err(|e| cannot(dir, e))?;
                std::fs::create_dir_all(&dir).map_err(|e| cannot(&dir, e))?;
                ServerRoot {
                    path: dir,
                    temporary: false,
                }
            }
            None => {
                let template = std::env::temp_dir().join("wsgi-rs-XXXXXX");
                let path = make_temp_dir(&template).map_err(|e| cannot(&template, e))?;
                ServerRoot {
                    path,
                    temporary: !keep,
                }
            }
        };
        // Apache's children (www-data when started as root) read the
        // configuration's files from here.
        std::fs::set_permissions(&root.path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| cannot(&root.path, e))?;
        Ok(root)
    }
}

impl Drop for ServerRoot {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A fresh directory from a `mkdtemp` template.
fn make_temp_dir(template: &Path) -> std::io::Result<PathBuf> {
    let template = CString::new(template.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("temporary directory name contains a NUL"))?;
    let mut bytes = template.into_bytes_with_nul();
    // SAFETY: bytes is a writable NUL-terminated template ending in XXXXXX,
    // which mkdtemp fills in place.
    let made = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
    if made.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    bytes.pop();
    Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

/// Writes a file with the given mode.
fn write_file(path: &Path, contents: &str, mode: u32) -> Outcome<()> {
    std::fs::write(path, contents)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)))
        .map_err(|e| {
            Failure::new(
                format!("cannot write {}: {e}", path.display()),
                "check the permissions of the server root",
            )
        })
}

/// Refuses what cannot be written into Apache's configuration or a Python
/// source: non-UTF-8 names and line breaks.
fn plain_path(path: &Path, what: &str) -> Outcome<()> {
    match path.to_str() {
        Some(text) if !text.contains(['\n', '\r']) => Ok(()),
        _ => Err(Failure::new(
            format!(
                "the {what} path {} cannot be used in a configuration file",
                path.display()
            ),
            "use a path without line breaks that is valid UTF-8",
        )),
    }
}

/// A mount point: `/` or a path without a trailing slash.
fn mount_point(given: &str) -> Outcome<String> {
    if !given.starts_with('/') || given.contains(char::is_whitespace) {
        return Err(Failure::new(
            format!("the mount point '{given}' is not a URL path"),
            "give --mount-point a path starting with /, such as /app",
        ));
    }
    let trimmed = given.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_owned())
}

/// `--url-alias URL PATH` pairs, paths made absolute.
fn url_aliases(pairs: &[String], cwd: &Path) -> Outcome<Vec<(String, PathBuf)>> {
    pairs
        .chunks(2)
        .map(|pair| {
            let (url, path) = (&pair[0], cwd.join(&pair[1]));
            if !url.starts_with('/') || url.contains(char::is_whitespace) {
                return Err(Failure::new(
                    format!("the --url-alias URL '{url}' is not a URL path"),
                    "give a path starting with /, such as --url-alias /static ./static",
                ));
            }
            if !path.exists() {
                return Err(Failure::new(
                    format!("the --url-alias path {} does not exist", path.display()),
                    "give an existing directory or file",
                ));
            }
            plain_path(&path, "--url-alias")?;
            let path = std::path::absolute(&path).unwrap_or(path);
            Ok((url.trim_end_matches('/').to_owned(), path))
        })
        .collect()
}

/// `--python-home`, else the active virtualenv.
fn python_home(args: &ServeArgs, cwd: &Path) -> Outcome<Option<PathBuf>> {
    let (home, source) = match (&args.python_home, std::env::var_os("VIRTUAL_ENV")) {
        (Some(home), _) => (cwd.join(home), "--python-home"),
        (None, Some(venv)) if !venv.is_empty() => (PathBuf::from(venv), "VIRTUAL_ENV"),
        _ => return Ok(None),
    };
    if !home.is_dir() {
        return Err(Failure::new(
            format!(
                "the python home {} ({source}) is not a directory",
                home.display()
            ),
            "pass --python-home a virtualenv or Python prefix, or deactivate the virtualenv",
        ));
    }
    plain_path(&home, "python home")?;
    if source == "VIRTUAL_ENV" {
        log::info!("using the active virtualenv {}", home.display());
    }
    Ok(Some(std::path::absolute(&home).unwrap_or(home)))
}

/// The `sys.path` entries to add, absolute.
fn python_path(args: &ServeArgs, cwd: &Path) -> Outcome<Vec<PathBuf>> {
    args.python_path
        .iter()
        .map(|dir| {
            let dir = cwd.join(dir);
            if !dir.is_dir() {
                return Err(Failure::new(
                    format!(
                        "the --python-path directory {} does not exist",
                        dir.display()
                    ),
                    "give an existing directory",
                ));
            }
            plain_path(&dir, "--python-path")?;
            if dir.to_string_lossy().contains(':') {
                return Err(Failure::new(
                    format!("the --python-path directory {} contains ':'", dir.display()),
                    "Apache's python-path is colon-separated: use a directory without ':' \
                     (a symlink to it will do)",
                ));
            }
            Ok(std::path::absolute(&dir).unwrap_or(dir))
        })
        .collect()
}

/// The account Apache's children switch to, when started as root.
struct Identity {
    /// Names for the configuration.
    run_as: RunAs,
    /// The user.
    account: Account,
    /// The group.
    gid: u32,
}

/// Who the children run as when we are root.
fn identity(args: &ServeArgs) -> Outcome<Option<Identity>> {
    if !accounts::running_as_root() {
        if args.user.is_some() || args.group.is_some() {
            return Err(Failure::new(
                "--user and --group only apply when wsgi-rs runs as root",
                "leave them out: without root, Apache and the application run as you",
            ));
        }
        return Ok(None);
    }
    let account = match &args.user {
        Some(name) => accounts::lookup_user(name).ok_or_else(|| {
            Failure::new(
                format!("the user '{name}' does not exist"),
                "pass --user an existing account",
            )
        })?,
        None => DEFAULT_USERS
            .iter()
            .find_map(|name| accounts::lookup_user(name))
            .ok_or_else(|| {
                Failure::new(
                    "started as root, but neither www-data nor apache exists to run Apache's children",
                    "pass --user an unprivileged account",
                )
            })?,
    };
    if account.uid == 0 {
        return Err(Failure::new(
            "Apache will not run its children as root",
            "pass --user an unprivileged account",
        ));
    }
    let (group, gid) = match &args.group {
        Some(name) => {
            let gid = accounts::lookup_group(name).ok_or_else(|| {
                Failure::new(
                    format!("the group '{name}' does not exist"),
                    "pass --group an existing group",
                )
            })?;
            (name.clone(), gid)
        }
        None => (
            accounts::group_name(account.gid).unwrap_or_else(|| format!("#{}", account.gid)),
            account.gid,
        ),
    };
    Ok(Some(Identity {
        run_as: RunAs {
            user: account.name.clone(),
            group,
        },
        account,
        gid,
    }))
}

/// Warns about what Apache's user will not be able to read: the request
/// would fail later with a bare "Permission denied" in the log.
fn warn_unreadable(identity: &Identity, needed: &[(&Path, &str)]) {
    for (path, what) in needed {
        if let Some(blocked) = accounts::unreadable_part(path, identity.account.uid, identity.gid) {
            log::warn!(
                "Apache runs the application as {}, which cannot read {} (needed for {what}); \
                 make it readable (chmod o+rX) or pass --user",
                identity.run_as.user,
                blocked.display()
            );
        }
    }
}

/// `sh` single-quoting.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The start and stop scripts of `--setup-only`, like `apachectl start`
/// and `apachectl stop` for this one configuration.
fn control_scripts(httpd: &Path, root: &Path) -> (String, String) {
    let httpd = sh_quote(&httpd.to_string_lossy());
    let root_q = sh_quote(&root.to_string_lossy());
    let conf = sh_quote(&root.join("httpd.conf").to_string_lossy());
    let pidfile = sh_quote(&root.join("httpd.pid").to_string_lossy());
    let start = format!(
        "#!/bin/sh\n\
         # Starts the Apache that wsgi-rs configured in this directory, in the\n\
         # background. Its logs are error_log and access_log here; ./stop stops it.\n\
         exec {httpd} -d {root_q} -f {conf} -k start \"$@\"\n"
    );
    let stop = format!(
        r#"#!/bin/sh
# Stops the Apache started by ./start and waits until it has exited.
pidfile={pidfile}
if [ ! -s "$pidfile" ]; then
    echo "not running: $pidfile does not exist" >&2
    exit 0
fi
pid=$(cat "$pidfile")
{httpd} -d {root_q} -f {conf} -k stop || exit $?

running() {{
    if [ -r "/proc/$1/stat" ]; then
        # A zombie has exited already; only its parent has yet to reap it.
        state=$(sed 's/^.*) //' "/proc/$1/stat" | cut -c1)
        [ "$state" != Z ]
    else
        kill -0 "$1" 2>/dev/null
    fi
}}

tries=0
while running "$pid"; do
    tries=$((tries + 1))
    if [ "$tries" -gt 300 ]; then
        echo "Apache (pid $pid) has not stopped after 30 seconds" >&2
        exit 1
    fi
    sleep 0.1
done
"#
    );
    (start, stop)
}

/// Refuses `--interrupt-timeout` where it could do nothing: it changes
/// what a daemon process does when `--request-timeout` fires.
fn interrupt_timeout_applies(args: &ServeArgs) -> Outcome<()> {
    if args.interrupt_timeout.is_none() {
        Ok(())
    } else if args.embedded {
        Err(Failure::new(
            "--interrupt-timeout applies to daemon processes, and --embedded runs none",
            "drop --interrupt-timeout, or --embedded (daemon mode is the default)",
        ))
    } else if args.request_timeout.is_none() {
        Err(Failure::new(
            "--interrupt-timeout acts when --request-timeout fires, and none is given",
            "add --request-timeout SECONDS",
        ))
    } else {
        Ok(())
    }
}

/// `wsgi-rs serve`.
pub fn run(args: &ServeArgs) -> Outcome<ExitCode> {
    // Caught from the start, so a Ctrl-C during the checks still removes
    // the temporary server root.
    supervise::catch_stop_signals();
    interrupt_timeout_applies(args)?;
    let cwd = std::env::current_dir().map_err(|e| {
        Failure::new(
            format!("the current directory is not accessible: {e}"),
            "run wsgi-rs from an existing directory",
        )
    })?;
    let target = Target::parse(&args.target, &cwd)?;
    if let Target::Script(path) | Target::PasteIni(path) = &target {
        plain_path(path, "application")?;
    }
    plain_path(&cwd, "current directory")?;
    let httpd = apache::find_httpd()?;
    let module = apache::resolve_module(args.module.as_deref())?;
    plain_path(&module, "module")?;
    let modules_dir = apache::modules_dir()?;
    let mount_point = mount_point(&args.mount_point)?;
    let url_aliases = url_aliases(&args.url_alias, &cwd)?;
    let python_home = python_home(args, &cwd)?;
    let python_path = python_path(args, &cwd)?;
    let identity = identity(args)?;
    let daemon = !args.embedded;

    let threads = match (args.threads, args.mpm, daemon) {
        (Some(threads), Mpm::Prefork, false) if threads > 1 => {
            log::warn!(
                "prefork runs one request at a time per process: --threads {threads} is ignored"
            );
            1
        }
        (threads, _, _) => threads.unwrap_or(DEFAULT_THREADS),
    };
    if args.request_timeout.is_some() && !daemon {
        log::warn!(
            "--request-timeout only applies to daemon processes; it is ignored with --embedded"
        );
    }

    let addresses = supervise::resolve(&args.host, args.port)?;
    if !args.setup_only {
        supervise::ensure_port_free(&args.host, args.port, &addresses)?;
    }

    let python = preflight::interpreter(python_home.as_deref(), &module)?;
    if let Some(home) = &python_home {
        preflight::check_versions_agree(&python, home, &module)?;
    }

    let root = ServerRoot::prepare(args.server_root.as_deref(), args.setup_only)?;
    plain_path(&root.path, "server root")?;
    let script = match shim_source(&target, args.reload_on_changes) {
        Some(source) => {
            let shim = root.path.join(SHIM_NAME);
            write_file(&shim, &source, 0o644)?;
            if let (Some(identity), true) = (&identity, args.reload_on_changes) {
                // The reload monitor touches the shim from inside the
                // application's processes, which run as this account.
                accounts::chown(&shim, identity.account.uid, identity.gid).map_err(|e| {
                    Failure::new(
                        format!(
                            "cannot hand {} to {}: {e}",
                            shim.display(),
                            identity.run_as.user
                        ),
                        "check the server root's file system",
                    )
                })?;
            }
            shim
        }
        None => match &target {
            Target::Script(path) => path.clone(),
            _ => unreachable!("only a plain script is served without a shim"),
        },
    };
    let interface = preflight::check_import(&python, &script, &python_path)?;
    if interface == preflight::Interface::Asgi && !daemon {
        return Err(Failure::new(
            format!(
                "{} is an ASGI application, which runs in daemon mode only",
                target.describe()
            ),
            "drop --embedded (daemon mode is the default)",
        ));
    }
    if interface == preflight::Interface::Asgi && apache::module_symbol(&module) != "wsgi_rs_module"
    {
        return Err(Failure::new(
            format!(
                "{} is an ASGI application, which {} cannot serve",
                target.describe(),
                module.display()
            ),
            "serve it with mod_wsgi_rs (leave out --module)",
        ));
    }
    if supervise::stop_requested() {
        log::info!("stopped before Apache was started");
        return Ok(ExitCode::SUCCESS);
    }

    let app_directory = target.directory();
    if let Some(identity) = &identity {
        let mut needed: Vec<(&Path, &str)> = vec![
            (&root.path, "the server root"),
            (&script, "the WSGI script"),
            (&app_directory, "the application's directory"),
        ];
        if let Some(home) = &python_home {
            needed.push((home, "the python home"));
        }
        needed.extend(python_path.iter().map(|p| (p.as_path(), "the python path")));
        needed.extend(
            url_aliases
                .iter()
                .map(|(_, p)| (p.as_path(), "a --url-alias")),
        );
        warn_unreadable(identity, &needed);
    }

    let config = HttpdConf {
        server_root: root.path.clone(),
        host: args.host.clone(),
        port: args.port,
        run_as: identity.as_ref().map(|i| i.run_as.clone()),
        modules_dir,
        mpm: args.mpm,
        module: module.clone(),
        logs: if args.setup_only {
            Logs::Files
        } else {
            Logs::Terminal
        },
        log_level: args.log_level.clone(),
        daemon,
        processes: args.processes,
        threads,
        python_home,
        python_path,
        script,
        app_directory,
        mount_point: mount_point.clone(),
        url_aliases,
        pass_authorization: args.pass_authorization,
        maximum_requests: args.maximum_requests,
        request_timeout: args.request_timeout,
        interrupt_timeout: args.interrupt_timeout,
        metrics_url: args.metrics_url.clone(),
        reload_on_changes: args.reload_on_changes,
    };
    let config_path = root.path.join("httpd.conf");
    write_file(&config_path, &config.render(), 0o644)?;

    let test = apache::test_config(&httpd, &config_path, &[], None)?;
    if supervise::stop_requested() {
        log::info!("stopped before Apache was started");
        return Ok(ExitCode::SUCCESS);
    }
    for note in &test.notes {
        log::debug!("{note}");
    }
    if !test.ok {
        for extra in test.errors.iter().skip(1) {
            log::error!("{extra}");
        }
        let first = test
            .errors
            .first()
            .map(ToString::to_string)
            .unwrap_or_else(|| "no reason given".to_owned());
        let remedy = if daemon {
            "add --embedded if this module lacks daemon mode \
             (--setup-only --server-root DIR keeps the configuration to inspect)"
        } else {
            "--setup-only --server-root DIR keeps the configuration to inspect"
        };
        return Err(Failure::new(
            format!("Apache refused the generated configuration: {first}"),
            remedy,
        ));
    }

    let url = format!(
        "http://{}{}",
        host_port(&args.host, args.port),
        if mount_point == "/" {
            "/".to_owned()
        } else {
            format!("{mount_point}/")
        }
    );

    if args.setup_only {
        let (start, stop) = control_scripts(&httpd, &root.path);
        let start_path = root.path.join("start");
        let stop_path = root.path.join("stop");
        write_file(&start_path, &start, 0o755)?;
        write_file(&stop_path, &stop, 0o755)?;
        println!("config: {}", config_path.display());
        println!("start: {}", start_path.display());
        println!("stop: {}", stop_path.display());
        log::info!("./start serves {url}; ./stop stops it");
        return Ok(ExitCode::SUCCESS);
    }

    let mut apache = Apache::start(&httpd, &root.path, &config_path)?;
    let ending = match apache.wait_until_listening(&addresses)? {
        Some(ending) => ending,
        None => {
            println!(
                "wsgi-rs: serving {} at {url} ({} mode; Ctrl-C stops)",
                target.describe(),
                if daemon { "daemon" } else { "embedded" }
            );
            apache.wait()
        }
    };
    apache.stop();
    match ending {
        Ending::Stopped => Ok(ExitCode::SUCCESS),
        Ending::Exited(status) => Err(Failure::new(
            format!("Apache stopped by itself ({status})"),
            "see its messages above",
        )),
    }
}
