//! The command line: subcommands and their options, as clap parses them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "wsgi-rs",
    version,
    about = "Runs Python WSGI applications under Apache httpd with mod_wsgi_rs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Copy the module into Apache's module directory and write its
    /// configuration snippets (Debian's mods-available or RHEL's
    /// conf.modules.d).
    Install(InstallArgs),
    /// Print the LoadModule and WSGIPythonHome lines for the active virtualenv.
    ModuleConfig(ModuleConfigArgs),
    /// Check an Apache configuration that uses the module
    /// (`apache2 -t`), reporting errors with file and line.
    Check(CheckArgs),
}

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

#[derive(Args, Debug)]
pub struct ModuleConfigArgs {
    /// The module to load [default: mod_wsgi_rs.so next to this program,
    /// else in Apache's module directory].
    #[arg(long, value_name = "PATH")]
    pub module: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The Apache configuration file to check.
    pub config: PathBuf,

    /// The module to load when the configuration does not load it itself.
    #[arg(long, value_name = "PATH")]
    pub module: Option<PathBuf>,
}
