//! The command line: subcommands and their options, as clap parses them.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "wsgi-rs",
    version,
    about = "Runs Python WSGI applications under Apache httpd with mod_wsgi_rs"
)]
/// The command line.
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve a WSGI application with a private Apache in the foreground
    /// (Ctrl-C stops it).
    Serve(Box<ServeArgs>),
    /// Copy the module into Apache's module directory and write its
    /// configuration snippets (Debian's mods-available or RHEL's
    /// conf.modules.d).
    Install(InstallArgs),
    /// Print the LoadModule and WSGIPythonHome lines for the active virtualenv.
    ModuleConfig(ModuleConfigArgs),
    /// Check an Apache configuration that uses the module
    /// (`apache2 -t`), reporting errors with file and line.
    Check(CheckArgs),
    /// Watch a running server's metrics in the terminal: per group,
    /// processes, busy/idle threads, requests/s, queue wait p50/p99 and
    /// restarts, redrawn every interval.
    Top(TopArgs),
}

/// Apache's multi-processing modules the launcher can configure.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mpm {
    /// The event MPM.
    Event,
    /// The worker MPM.
    Worker,
    /// The prefork MPM.
    Prefork,
}

impl Mpm {
    /// The MPM's module name.
    pub fn name(self) -> &'static str {
        match self {
            Mpm::Event => "event",
            Mpm::Worker => "worker",
            Mpm::Prefork => "prefork",
        }
    }
}

/// Apache's `LogLevel` values.
const LOG_LEVELS: [&str; 16] = [
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug", "trace1", "trace2",
    "trace3", "trace4", "trace5", "trace6", "trace7", "trace8",
];

/// `wsgi-rs serve`'s options.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// What to serve: a WSGI script (app.wsgi), a `package.module:callable`,
    /// or a PasteDeploy configuration (app.ini).
    pub target: String,

    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on.
    #[arg(long, default_value_t = 8000, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,

    /// Processes that run the application.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub processes: u32,

    /// Request threads in each process [default: 5; prefork with --embedded
    /// always runs 1].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub threads: Option<u32>,

    /// Serve the files under PATH (a directory or a file) at URL, e.g.
    /// `--url-alias /static ./static`. Repeatable.
    #[arg(long, num_args = 2, value_names = ["URL", "PATH"], action = ArgAction::Append)]
    pub url_alias: Vec<String>,

    /// URL path the application is mounted at.
    #[arg(long, default_value = "/")]
    pub mount_point: String,

    /// Python prefix or virtualenv the application runs in [default: the
    /// active virtualenv, $VIRTUAL_ENV].
    #[arg(long, value_name = "DIR")]
    pub python_home: Option<PathBuf>,

    /// Directory to add to sys.path (.pth files in it are honoured). Repeatable.
    #[arg(long, value_name = "DIR", action = ArgAction::Append)]
    pub python_path: Vec<PathBuf>,

    /// User the application runs as (only when started as root) [default: www-data].
    #[arg(long)]
    pub user: Option<String>,

    /// Group the application runs as (only when started as root) [default:
    /// the user's group].
    #[arg(long)]
    pub group: Option<String>,

    /// Restart the application when the file of any module it imported changes.
    #[arg(long)]
    pub reload_on_changes: bool,

    /// Give the Authorization header to the application.
    #[arg(long)]
    pub pass_authorization: bool,

    /// Restart a process after it has served this many requests.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub maximum_requests: Option<u64>,

    /// Answer 504 to a request running longer than this many seconds (per
    /// thread, scaled by 1 + ln threads, as request-timeout=) and restart
    /// its daemon process, unless --interrupt-timeout is given (daemon mode
    /// only).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: Option<u64>,

    /// When --request-timeout fires, keep the daemon process: raise
    /// mod_wsgi.RequestTimeout in the request's thread and give it this many
    /// seconds to unwind (then the thread serves again); only a request
    /// still running then gets its process restarted (interrupt-timeout=;
    /// needs --request-timeout; daemon mode only) [default: off].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub interrupt_timeout: Option<u64>,

    /// Write the configuration and start/stop scripts into the server root,
    /// print their paths and exit without starting Apache.
    #[arg(long)]
    pub setup_only: bool,

    /// Directory for the generated configuration, pid file and sockets
    /// [default: a new temporary directory, removed on exit].
    #[arg(long, value_name = "DIR")]
    pub server_root: Option<PathBuf>,

    /// The Apache module to load [default: mod_wsgi_rs.so next to this
    /// program, else in Apache's module directory].
    #[arg(long, value_name = "PATH")]
    pub module: Option<PathBuf>,

    /// Apache's multi-processing module.
    #[arg(long, value_enum, default_value_t = Mpm::Event)]
    pub mpm: Mpm,

    /// Apache's LogLevel.
    #[arg(long, default_value = "warn", value_parser = LOG_LEVELS)]
    pub log_level: String,

    /// Serve the metrics (`SetHandler wsgi-rs-metrics`, this machine only)
    /// at this URL, for `wsgi-rs top`.
    #[arg(long, value_name = "URL")]
    pub metrics_url: Option<String>,

    /// Run the application inside Apache's own worker processes instead of
    /// in a separate daemon process group.
    #[arg(long)]
    pub embedded: bool,
}

/// `wsgi-rs install`'s options.
#[derive(Args, Debug)]
pub struct InstallArgs {
    /// The module to install [default: mod_wsgi_rs.so next to this program].
    #[arg(long, value_name = "PATH")]
    pub module: Option<PathBuf>,

    /// Apache's module directory [default: `apxs -q LIBEXECDIR`].
    #[arg(long, value_name = "DIR")]
    pub libexecdir: Option<PathBuf>,

    /// Install under this directory instead of / (for packaging and tests);
    /// the written configuration still names the final paths.
    #[arg(long, value_name = "DIR")]
    pub destdir: Option<PathBuf>,
}

/// `wsgi-rs module-config`'s options.
#[derive(Args, Debug)]
pub struct ModuleConfigArgs {
    /// The module to load [default: mod_wsgi_rs.so next to this program,
    /// else in Apache's module directory].
    #[arg(long, value_name = "PATH")]
    pub module: Option<PathBuf>,
}

/// `wsgi-rs check`'s options.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The Apache configuration file to check.
    pub config: PathBuf,

    /// The module to load when the configuration does not load it itself.
    #[arg(long, value_name = "PATH")]
    pub module: Option<PathBuf>,
}

/// `wsgi-rs top`'s options.
#[derive(Args, Debug)]
pub struct TopArgs {
    /// The metrics URL: a `SetHandler wsgi-rs-metrics` location (or a
    /// `wsgi-rs-status` one with `?format=prometheus`), http only.
    pub url: String,

    /// Print one view (rates over one interval, queue wait since start)
    /// and exit.
    #[arg(long)]
    pub once: bool,

    /// Seconds between two reads of the metrics.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub interval: f64,
}
