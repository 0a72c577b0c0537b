//! `WSGIImportScript`: a script loaded when a process of the named group
//! starts, before any request.

use super::args::{parse_options, script_and_options};
use super::directive::Directive;
use super::error::ConfigError;
use super::group::{ApplicationGroup, ProcessGroup};
use super::interface::{self, Interface};

/// One `WSGIImportScript`: a script to load when a process of the given
/// group starts. Both groups are fixed names (`%{GLOBAL}` or a literal),
/// since no request exists at that point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportScript {
    /// The script file.
    pub path: String,
    /// `Global` for the Apache child processes, else a daemon group name.
    pub process_group: ProcessGroup,
    /// `Global` for the main interpreter, else an interpreter name.
    pub application_group: ApplicationGroup,
    /// `interface=`: the script's `application` speaks WSGI or ASGI (None:
    /// told by the callable when a request runs it).
    pub interface: Option<Interface>,
}

impl ImportScript {
    /// Parses `file-path process-group=name application-group=name`.
    pub fn parse(args: &[&str]) -> Result<Self, ConfigError> {
        let d = Directive::ImportScript;
        let (path, words) = script_and_options(
            d,
            args,
            "takes a file path, then process-group= and application-group=",
        )?;
        let mut process_group = None;
        let mut application_group = None;
        let mut interface = None;
        let options = ["process-group", "application-group", interface::OPTION];
        for option in parse_options(d, words, &options)? {
            let invalid = |reason: String| ConfigError::invalid(d.name(), option.word, reason);
            if option.name == interface::OPTION {
                interface = Some(Interface::parse(option.value).map_err(invalid)?);
            } else if option.name == "process-group" {
                let group =
                    ProcessGroup::parse(option.value).map_err(|e| invalid(e.to_string()))?;
                if !group.is_fixed() {
                    return Err(invalid(
                        "a preloaded script needs a fixed process group name".to_owned(),
                    ));
                }
                process_group = Some(group);
            } else {
                let group =
                    ApplicationGroup::parse(option.value).map_err(|e| invalid(e.to_string()))?;
                if !group.is_fixed() {
                    return Err(invalid(
                        "a preloaded script needs a fixed application group name".to_owned(),
                    ));
                }
                application_group = Some(group);
            }
        }
        let missing = |option| ConfigError::MissingOption {
            directive: d.name(),
            value: (*path).to_owned(),
            option,
        };
        let process_group = process_group.ok_or_else(|| missing("process-group"))?;
        if let Some(interface) = interface {
            interface.check_daemon(d, Some(&process_group))?;
        }
        Ok(ImportScript {
            path: (*path).to_owned(),
            process_group,
            application_group: application_group.ok_or_else(|| missing("application-group"))?,
            interface,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_script_with_named_groups() {
        let script = ImportScript::parse(&[
            "/srv/app.wsgi",
            "application-group=app",
            "process-group=%{GLOBAL}",
        ])
        .unwrap();
        assert_eq!(script.process_group, ProcessGroup::Global);
        assert_eq!(
            script.application_group,
            ApplicationGroup::Named("app".into())
        );
    }
}
