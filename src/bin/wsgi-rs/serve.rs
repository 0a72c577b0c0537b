//! `wsgi-rs serve`: checks everything it can before Apache starts (files,
//! module, port, the application's import), writes the private server root,
//! then either runs Apache in the foreground until Ctrl-C or, with
//! `--setup-only`, leaves start/stop scripts behind.

mod identity;
mod options;
#[allow(unsafe_code)] // mkdtemp: see accounts in main.rs.
mod root;
mod scripts;

use std::path::Path;
use std::process::ExitCode;

use crate::accounts;
use crate::apache;
use crate::cli::{Mpm, ServeArgs};
use crate::failure::{Failure, Outcome};
use crate::httpd_conf::{host_port, HttpdConf, Logs};
use crate::preflight;
use crate::supervise::{self, Apache, Ending};
use crate::target::{shim_source, Target};
use identity::{identity, warn_unreadable};
use options::{
    interrupt_timeout_applies, mount_point, plain_path, python_home, python_path, url_aliases,
};
use root::{write_file, ServerRoot};
use scripts::control_scripts;

/// mod_wsgi-express's default: a few threads suit most apps in development.
const DEFAULT_THREADS: u32 = 5;

/// The generated WSGI script's name in the server root.
const SHIM_NAME: &str = "app.wsgi";

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
