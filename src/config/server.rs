//! The per-server configuration record (main server or one virtual host):
//! script aliases, import scripts, daemon process groups and the
//! process-wide Python settings, plus how a virtual host merges over the
//! main server.

use std::collections::HashSet;

use super::alias::{AliasMatch, ScriptAlias};
use super::args::{exactly_one_non_empty, flag_directive, python_path_entries};
use super::compat::{CompatSettings, Notice, SERVER_METRICS_ON};
use super::daemon::DaemonProcessSpec;
use super::directive::{Directive, Scope};
use super::error::ConfigError;
use super::import::ImportScript;
use super::options_block::InterpreterOptionsBlock;
use super::python_options::PythonOptions;

/// Everything `None` or empty means "not set here".
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// In the order they are tried.
    pub script_aliases: Vec<ScriptAlias>,
    /// `WSGIPythonHome`.
    pub python_home: Option<String>,
    /// `WSGIPythonPath`.
    pub python_path: Vec<String>,
    /// `WSGIImportScript` lines.
    pub import_scripts: Vec<ImportScript>,
    /// `WSGIRestrictStdout`.
    pub restrict_stdout: Option<bool>,
    /// `WSGIRestrictStdin`.
    pub restrict_stdin: Option<bool>,
    /// `WSGIDaemonProcess` groups this server defines.
    pub daemon_processes: Vec<DaemonProcessSpec>,
    /// `WSGIRestrictEmbedded`.
    pub restrict_embedded: Option<bool>,
    /// As written; a relative prefix is relative to `ServerRoot`.
    pub socket_prefix: Option<String>,
    /// `WSGIRestrictSignal`: default On.
    pub restrict_signal: Option<bool>,
    /// `WSGISocketRotation`: default On (accepted; see the README).
    pub socket_rotation: Option<bool>,
    /// `WSGIServerMetrics`: unset, metrics are collected when the
    /// configuration names the `wsgi-rs-metrics` handler (see the plan).
    pub server_metrics: Option<bool>,
    /// `WSGISlowRequests`: a request running longer has its Python stack
    /// logged once (daemon mode; zero or unset: off).
    pub slow_requests: Option<std::time::Duration>,
    /// How Python starts (main server only).
    pub python: PythonOptions,
    /// Compatibility directives, for their start-up notices (main server only).
    pub compat: CompatSettings,
    /// `<WSGIInterpreterOptions>` containers (main server only).
    pub interpreter_blocks: Vec<InterpreterOptionsBlock>,
}

impl ServerConfig {
    /// Applies one per-server directive to this record. Refusing
    /// global-only directives inside `<VirtualHost>` is the caller's job
    /// (see [`Directive::global_only`]).
    pub fn apply(&mut self, d: Directive, args: &[&str]) -> Result<(), ConfigError> {
        let name = d.name();
        match d {
            Directive::ScriptAlias => self.script_aliases.push(ScriptAlias::parse_prefix(args)?),
            Directive::ScriptAliasMatch => {
                self.script_aliases.push(ScriptAlias::parse_regex(args)?);
            }
            Directive::PythonHome => {
                let path = exactly_one_non_empty(d, args)?;
                if !path.starts_with('/') {
                    return Err(ConfigError::invalid(name, path, "must be an absolute path"));
                }
                self.python_home = Some(path.to_owned());
            }
            Directive::PythonPath => {
                let entries = python_path_entries(d, args)?;
                // A later WSGIPythonPath replaces an earlier one, as in mod_wsgi.
                self.python_path = entries;
            }
            Directive::ImportScript => self.import_scripts.push(ImportScript::parse(args)?),
            Directive::RestrictStdout => self.restrict_stdout = Some(flag_directive(d, args)?),
            Directive::RestrictStdin => self.restrict_stdin = Some(flag_directive(d, args)?),
            Directive::RestrictEmbedded => {
                self.restrict_embedded = Some(flag_directive(d, args)?);
            }
            Directive::SocketPrefix => {
                self.socket_prefix = Some(exactly_one_non_empty(d, args)?.to_owned());
            }
            Directive::RestrictSignal => self.restrict_signal = Some(flag_directive(d, args)?),
            Directive::SocketRotation => self.socket_rotation = Some(flag_directive(d, args)?),
            Directive::ServerMetrics => self.server_metrics = Some(flag_directive(d, args)?),
            Directive::SlowRequests => {
                let value = exactly_one_non_empty(d, args)?;
                match value.parse::<f64>() {
                    Ok(s) if s.is_finite() && (0.0..=1e9).contains(&s) => {
                        self.slow_requests = Some(std::time::Duration::from_secs_f64(s));
                    }
                    _ => {
                        return Err(ConfigError::invalid(
                            name,
                            value,
                            "expected a non-negative number of seconds",
                        ))
                    }
                }
            }
            Directive::DaemonProcess => {
                let spec = DaemonProcessSpec::parse(args)?;
                if self.daemon_processes.iter().any(|p| p.name == spec.name) {
                    return Err(ConfigError::DuplicateDaemonName {
                        directive: name,
                        name: spec.name,
                    });
                }
                self.daemon_processes.push(spec);
            }
            _ if self.python.apply(d, args)? || self.compat.apply(d, args)? => {}
            _ => {
                debug_assert_eq!(d.scope(), Scope::Dir);
                return Err(ConfigError::WrongConfig {
                    directive: name,
                    config: "per-server",
                    belongs: "per-directory",
                });
            }
        }
        Ok(())
    }

    /// Merges a virtual host (`add`) over the main server (`base`).
    ///
    /// Aliases: the virtual host's first, then the main server's, as
    /// mod_alias does. Settings: the virtual host's if set, else the main
    /// server's. Global-only lists come from the main server. Import
    /// scripts and daemon groups stay with the server that declared them
    /// (mod_wsgi keeps one server-wide list of each), so walking every
    /// server's merged record visits each exactly once.
    pub fn merge(base: &Self, add: &Self) -> Self {
        ServerConfig {
            script_aliases: add
                .script_aliases
                .iter()
                .chain(&base.script_aliases)
                .cloned()
                .collect(),
            python_home: add.python_home.clone().or_else(|| base.python_home.clone()),
            python_path: base.python_path.clone(),
            import_scripts: add.import_scripts.clone(),
            restrict_stdout: add.restrict_stdout.or(base.restrict_stdout),
            restrict_stdin: add.restrict_stdin.or(base.restrict_stdin),
            daemon_processes: add.daemon_processes.clone(),
            restrict_embedded: add.restrict_embedded.or(base.restrict_embedded),
            socket_prefix: add
                .socket_prefix
                .clone()
                .or_else(|| base.socket_prefix.clone()),
            restrict_signal: add.restrict_signal.or(base.restrict_signal),
            socket_rotation: add.socket_rotation.or(base.socket_rotation),
            server_metrics: add.server_metrics.or(base.server_metrics),
            slow_requests: base.slow_requests,
            python: base.python.clone(),
            compat: base.compat.clone(),
            interpreter_blocks: base.interpreter_blocks.clone(),
        }
    }

    /// The first alias that maps `uri` (by index), and where it lands.
    pub fn match_uri(&self, uri: &str) -> Option<(usize, AliasMatch)> {
        self.script_aliases
            .iter()
            .enumerate()
            .find_map(|(index, alias)| alias.match_uri(uri).map(|m| (index, m)))
    }

    /// `WSGIRestrictStdout`, off by default.
    pub fn effective_restrict_stdout(&self) -> bool {
        self.restrict_stdout.unwrap_or(false)
    }

    /// `WSGIRestrictStdin`, off by default.
    pub fn effective_restrict_stdin(&self) -> bool {
        self.restrict_stdin.unwrap_or(false)
    }

    /// `WSGIRestrictEmbedded`, off by default.
    pub fn effective_restrict_embedded(&self) -> bool {
        self.restrict_embedded.unwrap_or(false)
    }

    /// `WSGIRestrictSignal`, on by default.
    pub fn effective_restrict_signal(&self) -> bool {
        self.restrict_signal.unwrap_or(true)
    }

    /// The start-up notices: settings accepted for compatibility that do
    /// nothing here, each once. `self` is the main server's record (the
    /// compatibility directives are main-server only); `daemons` are the
    /// daemon groups of every server.
    pub fn startup_notices<'a>(
        &self,
        daemons: impl IntoIterator<Item = &'a DaemonProcessSpec>,
    ) -> Vec<Notice> {
        let mut notices = self.compat.notices();
        // Stored switches that do nothing (or not all mod_wsgi did) when On.
        if self.socket_rotation == Some(true) {
            let d = Directive::SocketRotation;
            notices.extend(Notice::for_directive(d, "On", &format!("{} On", d.name())));
        }
        if self.server_metrics == Some(true) {
            notices.push(Notice {
                id: "WSGIRS115".to_owned(),
                message: SERVER_METRICS_ON.to_owned(),
            });
        }
        notices.extend(
            self.interpreter_blocks
                .iter()
                .filter_map(InterpreterOptionsBlock::notice),
        );
        let mut seen = HashSet::new();
        for spec in daemons {
            notices.extend(
                spec.notices()
                    .into_iter()
                    .filter(|n| seen.insert(n.id.clone())),
            );
        }
        notices
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::group::{ApplicationGroup, ProcessGroup};

    fn apply(config: &mut ServerConfig, d: Directive, args: &[&str]) {
        config.apply(d, args).unwrap();
    }

    fn error(d: Directive, args: &[&str]) -> String {
        ServerConfig::default()
            .apply(d, args)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn applies_each_directive() {
        let mut c = ServerConfig::default();
        apply(&mut c, Directive::ScriptAlias, &["/app", "/srv/app.wsgi"]);
        apply(
            &mut c,
            Directive::ScriptAliasMatch,
            &["^/x/(.*)", "/srv/$1.wsgi"],
        );
        apply(&mut c, Directive::PythonHome, &["/opt/venv"]);
        apply(&mut c, Directive::PythonPath, &["/a:/b", "/c"]);
        apply(
            &mut c,
            Directive::ImportScript,
            &[
                "/srv/app.wsgi",
                "process-group=site",
                "application-group=%{GLOBAL}",
            ],
        );
        apply(&mut c, Directive::RestrictStdout, &["On"]);
        apply(&mut c, Directive::RestrictStdin, &["off"]);
        apply(&mut c, Directive::RestrictEmbedded, &["ON"]);
        apply(&mut c, Directive::SocketPrefix, &["run/wsgi"]);
        apply(&mut c, Directive::DaemonProcess, &["site", "threads=2"]);
        apply(&mut c, Directive::RestrictSignal, &["Off"]);
        apply(&mut c, Directive::SocketRotation, &["off"]);
        apply(&mut c, Directive::ServerMetrics, &["On"]);
        apply(&mut c, Directive::SlowRequests, &["2.5"]);
        assert_eq!(
            c.slow_requests,
            Some(std::time::Duration::from_millis(2500))
        );
        for bad in ["-1", "soon", "inf"] {
            let e = ServerConfig::default()
                .apply(Directive::SlowRequests, &[bad])
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                format!("WSGISlowRequests: invalid value '{bad}': expected a non-negative number of seconds")
            );
        }
        assert!(!c.effective_restrict_signal());
        assert_eq!(c.socket_rotation, Some(false));
        assert_eq!(c.server_metrics, Some(true));
        assert!(ServerConfig::default().effective_restrict_signal());
        assert_eq!(ServerConfig::default().server_metrics, None);

        assert_eq!(c.script_aliases.len(), 2);
        assert_eq!(c.python_home.as_deref(), Some("/opt/venv"));
        assert_eq!(c.python_path, ["/a", "/b", "/c"]);
        assert_eq!(
            c.import_scripts,
            [ImportScript {
                path: "/srv/app.wsgi".into(),
                process_group: ProcessGroup::Named("site".into()),
                application_group: ApplicationGroup::Global,
                interface: None,
            }]
        );
        assert_eq!(c.restrict_stdout, Some(true));
        assert_eq!(c.restrict_stdin, Some(false));
        assert!(c.effective_restrict_embedded());
        assert_eq!(c.socket_prefix.as_deref(), Some("run/wsgi"));
        assert_eq!(c.daemon_processes[0].name, "site");
        assert_eq!(c.daemon_processes[0].threads, 2);
    }

    #[test]
    fn socket_rotation_and_server_metrics_notices_only_when_on() {
        let mut c = ServerConfig::default();
        apply(&mut c, Directive::SocketRotation, &["Off"]);
        apply(&mut c, Directive::ServerMetrics, &["off"]);
        assert!(c.startup_notices([]).is_empty());
        apply(&mut c, Directive::SocketRotation, &["on"]);
        apply(&mut c, Directive::ServerMetrics, &["On"]);
        let ids: Vec<String> = c.startup_notices([]).into_iter().map(|n| n.id).collect();
        assert_eq!(ids, ["WSGIRS114", "WSGIRS115"]);
        assert!(c.startup_notices([])[0]
            .to_string()
            .starts_with("WSGIRS114: WSGISocketRotation On: accepted for compatibility"));
    }

    #[test]
    fn unset_flags_default_to_off() {
        let c = ServerConfig::default();
        assert!(!c.effective_restrict_stdout());
        assert!(!c.effective_restrict_stdin());
        assert!(!c.effective_restrict_embedded());
    }

    #[test]
    fn python_path_collects_entries_and_later_lines_replace() {
        let mut c = ServerConfig::default();
        apply(&mut c, Directive::PythonPath, &["/a::/b:", "/c"]);
        assert_eq!(c.python_path, ["/a", "/b", "/c"]);
        apply(&mut c, Directive::PythonPath, &["/d"]);
        assert_eq!(c.python_path, ["/d"]);
    }

    #[test]
    fn every_error_names_the_directive_and_value() {
        let cases: [(Directive, &[&str], &str); 19] = [
            (
                Directive::PythonHome,
                &["venv"],
                "WSGIPythonHome: invalid value 'venv': must be an absolute path",
            ),
            (
                Directive::PythonHome,
                &["/a", "/b"],
                "WSGIPythonHome: wrong number of arguments ('/a' '/b'): takes exactly one argument",
            ),
            (
                Directive::PythonHome,
                &[""],
                "WSGIPythonHome: invalid value '': must not be empty",
            ),
            (
                Directive::PythonPath,
                &[],
                "WSGIPythonPath: wrong number of arguments (none): takes at least one argument",
            ),
            (
                Directive::PythonPath,
                &[":", ""],
                "WSGIPythonPath: invalid value ': ': no directory given",
            ),
            (
                Directive::RestrictStdout,
                &["maybe"],
                "WSGIRestrictStdout: invalid value 'maybe': expected On or Off",
            ),
            (
                Directive::RestrictStdin,
                &["2"],
                "WSGIRestrictStdin: invalid value '2': expected On or Off",
            ),
            (
                Directive::RestrictEmbedded,
                &["yes"],
                "WSGIRestrictEmbedded: invalid value 'yes': expected On or Off",
            ),
            (
                Directive::RestrictEmbedded,
                &[],
                "WSGIRestrictEmbedded: wrong number of arguments (none): takes exactly one argument",
            ),
            (
                Directive::SocketPrefix,
                &["a", "b"],
                "WSGISocketPrefix: wrong number of arguments ('a' 'b'): takes exactly one argument",
            ),
            (
                Directive::SocketPrefix,
                &[""],
                "WSGISocketPrefix: invalid value '': must not be empty",
            ),
            (
                Directive::ImportScript,
                &[],
                "WSGIImportScript: wrong number of arguments (none): takes a file path, then process-group= and application-group=",
            ),
            (
                Directive::ImportScript,
                &["process-group=a"],
                "WSGIImportScript: invalid value 'process-group=a': the first argument must be the script's file path",
            ),
            (
                Directive::ImportScript,
                &["/s.wsgi", "application-group=a"],
                "WSGIImportScript: incomplete definition for '/s.wsgi': option process-group= is required",
            ),
            (
                Directive::ImportScript,
                &["/s.wsgi", "process-group=p"],
                "WSGIImportScript: incomplete definition for '/s.wsgi': option application-group= is required",
            ),
            (
                Directive::ImportScript,
                &["/s.wsgi", "process-group=p", "application-group=a", "callable-object=x"],
                "WSGIImportScript: unknown option 'callable-object=x' (expected process-group=, application-group=, interface=)",
            ),
            (
                Directive::ImportScript,
                &["/s.wsgi", "process-group=p", "process-group=q"],
                "WSGIImportScript: duplicate option 'process-group=q': process-group= was already given",
            ),
            (
                Directive::ImportScript,
                &["/s.wsgi", "process-group=%{ENV:P}", "application-group=a"],
                "WSGIImportScript: invalid value 'process-group=%{ENV:P}': a preloaded script needs a fixed process group name",
            ),
            (
                Directive::ImportScript,
                &["/s.wsgi", "process-group=p", "application-group=%{RESOURCE}"],
                "WSGIImportScript: invalid value 'application-group=%{RESOURCE}': a preloaded script needs a fixed application group name",
            ),
        ];
        for (d, args, expected) in cases {
            assert_eq!(error(d, args), expected);
        }
        assert!(error(
            Directive::ImportScript,
            &["/s.wsgi", "process-group=p", "application-group=%{X}"]
        )
        .starts_with("WSGIImportScript: invalid value 'application-group=%{X}': unknown keyword"));
    }

    #[test]
    fn alias_and_daemon_errors_pass_through() {
        assert_eq!(
            error(Directive::ScriptAlias, &["/a", "/s", "proces-group=foo"]),
            "WSGIScriptAlias: unknown option 'proces-group=foo' (expected process-group=, \
             application-group=, callable-object=, pass-authorization=, interface=)"
        );
        assert!(error(Directive::ScriptAliasMatch, &["(", "/s"])
            .starts_with("WSGIScriptAliasMatch: invalid regular expression '('"));
        assert!(error(Directive::DaemonProcess, &["s", "threads=x"])
            .starts_with("WSGIDaemonProcess: invalid value 'threads=x'"));
    }

    #[test]
    fn duplicate_daemon_names_in_one_server_are_refused() {
        let mut c = ServerConfig::default();
        apply(&mut c, Directive::DaemonProcess, &["site"]);
        let err = c
            .apply(Directive::DaemonProcess, &["site", "processes=2"])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIDaemonProcess: duplicate name 'site': a daemon process group of that name is \
             already defined (names must be unique across the whole server)"
        );
        assert_eq!(c.daemon_processes.len(), 1);
    }

    #[test]
    fn dir_directives_are_refused() {
        let err = ServerConfig::default()
            .apply(Directive::ProcessGroup, &["x"])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIProcessGroup: not accepted by the per-server configuration (it is stored in \
             the per-directory one)"
        );
    }

    #[test]
    fn merge_keeps_daemon_groups_with_the_server_that_defines_them() {
        // Copying the main server's groups into a virtual host would make
        // every group look defined twice.
        let mut main = ServerConfig::default();
        apply(&mut main, Directive::DaemonProcess, &["a"]);
        let mut vhost = ServerConfig::default();
        apply(&mut vhost, Directive::DaemonProcess, &["b"]);
        let merged = ServerConfig::merge(&main, &vhost);
        let names: Vec<&str> = merged
            .daemon_processes
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["b"]);
    }

    #[test]
    fn merge_puts_the_virtual_hosts_aliases_first() {
        let mut main = ServerConfig::default();
        apply(&mut main, Directive::ScriptAlias, &["/", "/srv/main.wsgi"]);
        apply(
            &mut main,
            Directive::ScriptAlias,
            &["/shared", "/srv/shared.wsgi"],
        );
        let mut vhost = ServerConfig::default();
        apply(
            &mut vhost,
            Directive::ScriptAlias,
            &["/app", "/srv/vhost.wsgi"],
        );

        let merged = ServerConfig::merge(&main, &vhost);
        let order: Vec<&str> = merged
            .script_aliases
            .iter()
            .map(|a| a.pattern.as_str())
            .collect();
        assert_eq!(order, ["/app", "/", "/shared"]);

        let (index, m) = merged.match_uri("/app/x").unwrap();
        assert_eq!(merged.script_aliases[index].target, "/srv/vhost.wsgi");
        assert_eq!(m.filename, "/srv/vhost.wsgi/x");
        // The root alias of the main server shadows its later "/shared".
        let (index, _) = merged.match_uri("/shared/y").unwrap();
        assert_eq!(merged.script_aliases[index].target, "/srv/main.wsgi");
        assert!(ServerConfig::default().match_uri("/").is_none());
    }

    #[test]
    fn merge_settings_prefer_the_virtual_host() {
        let mut main = ServerConfig::default();
        apply(&mut main, Directive::PythonHome, &["/opt/py"]);
        apply(&mut main, Directive::PythonPath, &["/lib"]);
        apply(&mut main, Directive::RestrictStdout, &["On"]);
        apply(&mut main, Directive::RestrictStdin, &["On"]);
        apply(&mut main, Directive::RestrictEmbedded, &["On"]);
        apply(&mut main, Directive::SocketPrefix, &["/run/wsgi"]);
        apply(
            &mut main,
            Directive::ImportScript,
            &[
                "/m.wsgi",
                "process-group=%{GLOBAL}",
                "application-group=%{GLOBAL}",
            ],
        );
        apply(&mut main, Directive::DaemonProcess, &["main"]);

        let mut vhost = ServerConfig::default();
        apply(&mut vhost, Directive::RestrictStdin, &["Off"]);
        apply(&mut vhost, Directive::DaemonProcess, &["vhost"]);
        apply(
            &mut vhost,
            Directive::ImportScript,
            &[
                "/v.wsgi",
                "process-group=vhost",
                "application-group=%{GLOBAL}",
            ],
        );

        let merged = ServerConfig::merge(&main, &vhost);
        assert_eq!(merged.python_home.as_deref(), Some("/opt/py"));
        assert_eq!(merged.python_path, ["/lib"]);
        assert_eq!(merged.restrict_stdout, Some(true));
        assert_eq!(merged.restrict_stdin, Some(false));
        assert_eq!(merged.restrict_embedded, Some(true));
        assert_eq!(merged.socket_prefix.as_deref(), Some("/run/wsgi"));
        let daemons: Vec<&str> = merged
            .daemon_processes
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(daemons, ["vhost"]);
        let scripts: Vec<&str> = merged
            .import_scripts
            .iter()
            .map(|s| s.path.as_str())
            .collect();
        assert_eq!(scripts, ["/v.wsgi"]);

        let unchanged = ServerConfig::merge(&main, &ServerConfig::default());
        assert_eq!(unchanged.restrict_stdin, Some(true));
        assert_eq!(unchanged.script_aliases.len(), 0);
    }
}
