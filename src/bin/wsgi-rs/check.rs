//! `wsgi-rs check CONFIG`: Apache's own syntax check (`httpd -t`) of a
//! configuration, with the module loaded first when the configuration does
//! not load it itself, and every error shown as `file:line: message`.

use std::path::Path;
use std::process::ExitCode;

use crate::apache;
use crate::cli::CheckArgs;
use crate::failure::{Failure, Outcome};

/// Whether the file itself has an active `LoadModule wsgi_rs_module`.
/// Files it includes are not followed: a second LoadModule of the same
/// module is only skipped by Apache, with a warning that is filtered out.
fn loads_module_itself(text: &str) -> bool {
    text.lines().any(|line| {
        let mut words = line.split_whitespace();
        matches!(
            (words.next(), words.next()),
            (Some(directive), Some("wsgi_rs_module")) if directive.eq_ignore_ascii_case("LoadModule")
        )
    })
}

/// `wsgi-rs check`.
pub fn run(args: &CheckArgs) -> Outcome<ExitCode> {
    let config = std::path::absolute(&args.config).unwrap_or_else(|_| args.config.clone());
    let text = std::fs::read_to_string(&config).map_err(|e| {
        Failure::new(
            format!("cannot read the configuration {}: {e}", config.display()),
            "give the path of an Apache configuration file",
        )
    })?;
    let httpd = apache::find_httpd()?;
    let mut early = Vec::new();
    if !loads_module_itself(&text) {
        let module = apache::resolve_module(args.module.as_deref())?;
        early.push(apache::load_module_line(&module));
    }
    // Debian's apache2.conf refers to variables apachectl takes from the
    // envvars file beside it.
    let envvars = config
        .parent()
        .map(|dir| dir.join("envvars"))
        .filter(|path| path.is_file());
    let test = apache::test_config(&httpd, &config, &early, envvars.as_deref())?;
    for note in &test.notes {
        if !note.contains("wsgi_rs_module is already loaded") {
            eprintln!("{note}");
        }
    }
    for error in &test.errors {
        eprintln!("{}", located(error, &config));
    }
    if test.ok {
        println!("{}: Syntax OK", config.display());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{}: {} error(s)", config.display(), test.errors.len());
        Ok(ExitCode::FAILURE)
    }
}

/// An error as `file:line: message`; one Apache did not locate is put on
/// the checked file.
fn located(error: &apache::ConfigError, config: &Path) -> String {
    match &error.location {
        Some(_) => error.to_string(),
        None => format!("{}: {}", config.display(), error.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_an_active_load_module_line() {
        assert!(loads_module_itself(
            "ServerRoot /x\n  loadmodule wsgi_rs_module /m.so\n"
        ));
        assert!(!loads_module_itself("#LoadModule wsgi_rs_module /m.so\n"));
        assert!(!loads_module_itself("LoadModule wsgi_module /m.so\n"));
    }
}
