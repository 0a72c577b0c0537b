//! `wsgi-rs`: the command-line launcher of mod_wsgi_rs. It serves a WSGI
//! application with a private Apache (`serve`), installs the module into a
//! system Apache (`install`), prints the lines that load it
//! (`module-config`), checks configurations that use it (`check`) and
//! watches a running server's metrics (`top`).
//!
//! It deliberately never uses the `mod_wsgi_rs` library crate: the library
//! refers to httpd's own symbols, which only exist inside a running Apache,
//! so an executable that linked it could not be built. Everything the
//! launcher knows about the module it learns from files and from Apache.

// The launcher's own few OS calls (account lookups, the process group it
// supervises, mkdtemp); it cannot use the library's src/sys.
#[allow(unsafe_code)]
mod accounts;
mod apache;
mod check;
mod cli;
mod failure;
mod httpd_conf;
mod install;
mod module_config;
mod preflight;
mod prometheus;
mod serve;
#[allow(unsafe_code)] // fork, setpgid, kill, waitpid: see accounts.
mod supervise;
mod target;
mod top;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(&args),
        Command::Install(args) => install::run(&args),
        Command::ModuleConfig(args) => module_config::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Top(args) => top::run(&args),
    };
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            // Not through `log`: an error must show even with RUST_LOG=off.
            eprintln!("wsgi-rs: error: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// The launcher's own messages go to stderr as `wsgi-rs: …` lines, so they
/// stand apart from Apache's error log, which shares the terminal.
fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|out, record| {
            let level = match record.level() {
                log::Level::Error => "error: ",
                log::Level::Warn => "warning: ",
                _ => "",
            };
            writeln!(out, "wsgi-rs: {level}{}", record.args())
        })
        .init();
}
