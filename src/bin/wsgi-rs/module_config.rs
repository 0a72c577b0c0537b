//! `wsgi-rs module-config`: the two lines that make a system Apache load the
//! module and use the active virtualenv, to paste into its configuration.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use crate::apache::{self, conf_quote};
use crate::cli::ModuleConfigArgs;
use crate::failure::{Failure, Outcome};
use crate::preflight;

/// `$VIRTUAL_ENV`, else the prefix of `python3` on PATH when that is a
/// virtualenv (its prefix differs from its base prefix).
fn active_virtualenv() -> Option<PathBuf> {
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(venv));
    }
    let output = Command::new("python3")
        .args([
            "-c",
            "import sys; print(sys.prefix); print(sys.base_prefix)",
        ])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let (prefix, base) = (lines.next()?, lines.next()?);
    (prefix != base).then(|| PathBuf::from(prefix))
}

/// `wsgi-rs module-config`.
pub fn run(args: &ModuleConfigArgs) -> Outcome<ExitCode> {
    let module = apache::resolve_module(args.module.as_deref())?;
    let venv = active_virtualenv();
    if let Some(venv) = &venv {
        if !venv.is_dir() {
            return Err(Failure::new(
                format!("the virtualenv {} does not exist", venv.display()),
                "activate an existing virtualenv, or deactivate this one",
            ));
        }
        let python = preflight::home_interpreter(venv)?;
        preflight::check_versions_agree(&python, venv, &module)?;
    }
    println!("{}", apache::load_module_line(&module));
    match venv {
        Some(venv) => println!("WSGIPythonHome {}", conf_quote(&venv.to_string_lossy())),
        None => log::info!(
            "no virtualenv is active, so no WSGIPythonHome: the module uses its own Python's prefix"
        ),
    }
    Ok(ExitCode::SUCCESS)
}
