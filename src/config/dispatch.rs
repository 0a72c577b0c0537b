//! Per-request routing overrides: `WSGIDispatchScript` (a Python script
//! that picks the process group, application group and callable of each
//! request), `WSGIHandlerScript` (a script registered under a handler name
//! for `SetHandler`/`AddHandler`) and `WSGIRestrictProcess` (the process
//! groups a context may select). Parsed here; the httpd layer runs them.

use super::args::{parse_on_off, parse_options, script_and_options, wrong_count};
use super::directive::Directive;
use super::error::ConfigError;
use super::group::{ApplicationGroup, ProcessGroup};

/// The callable a `WSGIHandlerScript` script must define (fixed by
/// mod_wsgi; `WSGICallableObject` does not apply to it).
pub const HANDLER_CALLABLE: &str = "handle_request";

/// Built-in handler names: a `WSGIHandlerScript` may not take them over.
const BUILTIN_HANDLERS: [&str; 2] = ["wsgi-script", "application/x-httpd-wsgi"];

/// `WSGIDispatchScript path [application-group=name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchScript {
    /// The script file.
    pub path: String,
    /// Where the dispatch script itself runs; `None`: the application group
    /// of the request being dispatched.
    pub application_group: Option<ApplicationGroup>,
}

/// `WSGIHandlerScript name path [process-group=] [application-group=]
/// [pass-authorization=]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerScript {
    /// The handler name `SetHandler`/`AddHandler` select it by.
    pub name: String,
    /// The script file.
    pub path: String,
    /// `process-group=`.
    pub process_group: Option<ProcessGroup>,
    /// `application-group=`.
    pub application_group: Option<ApplicationGroup>,
    /// `pass-authorization=`.
    pub pass_authorization: Option<bool>,
}

/// Parses an `application-group=` value.
fn application_group(
    d: Directive,
    word: &str,
    value: &str,
) -> Result<ApplicationGroup, ConfigError> {
    ApplicationGroup::parse(value).map_err(|e| ConfigError::invalid(d.name(), word, e.to_string()))
}

impl DispatchScript {
    /// Parses the directive's arguments.
    pub fn parse(args: &[&str]) -> Result<Self, ConfigError> {
        let d = Directive::DispatchScript;
        let (path, words) = script_and_options(d, args, "takes a script path, then options")?;
        let mut script = DispatchScript {
            path: path.to_owned(),
            application_group: None,
        };
        for option in parse_options(d, words, &["application-group"])? {
            script.application_group = Some(application_group(d, option.word, option.value)?);
        }
        Ok(script)
    }
}

impl HandlerScript {
    /// Parses the directive's arguments.
    pub fn parse(args: &[&str]) -> Result<Self, ConfigError> {
        let d = Directive::HandlerScript;
        let [name, rest @ ..] = args else {
            return Err(wrong_count(
                d,
                args,
                "takes a handler name and a script path, then options",
            ));
        };
        if name.is_empty() || name.contains('=') {
            return Err(ConfigError::invalid(
                d.name(),
                *name,
                "the first argument must be the handler name",
            ));
        }
        if BUILTIN_HANDLERS
            .iter()
            .any(|b| name.eq_ignore_ascii_case(b))
        {
            return Err(ConfigError::invalid(
                d.name(),
                *name,
                "that handler name is mod_wsgi's own",
            ));
        }
        if rest.is_empty() {
            return Err(wrong_count(
                d,
                args,
                "takes a handler name and a script path, then options",
            ));
        }
        let (path, words) = script_and_options(d, rest, "takes a script path, then options")?;
        let mut script = HandlerScript {
            name: (*name).to_owned(),
            path: path.to_owned(),
            process_group: None,
            application_group: None,
            pass_authorization: None,
        };
        let allowed = ["process-group", "application-group", "pass-authorization"];
        for option in parse_options(d, words, &allowed)? {
            let invalid = |reason: &str| ConfigError::invalid(d.name(), option.word, reason);
            match option.name {
                "process-group" => {
                    let group =
                        ProcessGroup::parse(option.value).map_err(|e| invalid(&e.to_string()))?;
                    script.process_group = Some(group);
                }
                "application-group" => {
                    script.application_group =
                        Some(application_group(d, option.word, option.value)?);
                }
                _ => {
                    let on =
                        parse_on_off(option.value).ok_or_else(|| invalid("expected On or Off"))?;
                    script.pass_authorization = Some(on);
                }
            }
        }
        Ok(script)
    }
}

/// `WSGIRestrictProcess group ...`: the process group names a context may
/// select, `""` standing for `%{GLOBAL}` (embedded mode).
pub fn parse_restrict_process(args: &[&str]) -> Result<Vec<String>, ConfigError> {
    let d = Directive::RestrictProcess;
    if args.is_empty() {
        return Err(wrong_count(
            d,
            args,
            "takes at least one process group name",
        ));
    }
    args.iter()
        .map(|&name| match name {
            "%{GLOBAL}" => Ok(String::new()),
            "" => Err(ConfigError::invalid(
                d.name(),
                name,
                "must not be empty (use %{GLOBAL} for embedded mode)",
            )),
            n if n.starts_with("%{") => Err(ConfigError::invalid(
                d.name(),
                name,
                "expected a daemon process group name or %{GLOBAL}",
            )),
            n => Ok(n.to_owned()),
        })
        .collect()
}

/// The routing directives of one configuration section (stored in the
/// per-directory record; at server level in the server's default one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    /// `WSGIDispatchScript`.
    pub dispatch_script: Option<DispatchScript>,
    /// In lookup order: nested sections' definitions first.
    pub handler_scripts: Vec<HandlerScript>,
    /// `None`: any group the virtual host may use.
    pub restrict_process: Option<Vec<String>>,
}

impl Routing {
    /// Applies one routing directive; false for any other directive.
    pub fn apply(&mut self, d: Directive, args: &[&str]) -> Result<bool, ConfigError> {
        match d {
            Directive::DispatchScript => {
                self.dispatch_script = Some(DispatchScript::parse(args)?);
            }
            Directive::HandlerScript => {
                let script = HandlerScript::parse(args)?;
                self.handler_scripts.retain(|h| h.name != script.name);
                self.handler_scripts.insert(0, script);
            }
            Directive::RestrictProcess => {
                self.restrict_process = Some(parse_restrict_process(args)?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `add` (a nested section) over `base`.
    pub fn merge(base: &Self, add: &Self) -> Self {
        Routing {
            dispatch_script: add
                .dispatch_script
                .clone()
                .or_else(|| base.dispatch_script.clone()),
            handler_scripts: merge_handler_scripts(&base.handler_scripts, &add.handler_scripts),
            restrict_process: add
                .restrict_process
                .clone()
                .or_else(|| base.restrict_process.clone()),
        }
    }

    /// The handler script registered under `handler` (Apache lower-cases
    /// the names `SetHandler` and `AddHandler` give).
    pub fn handler_script(&self, handler: &str) -> Option<&HandlerScript> {
        self.handler_scripts
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(handler))
    }

    /// Whether this context may select process group `name` (`""`:
    /// embedded).
    pub fn may_select(&self, name: &str) -> bool {
        self.restrict_process
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|a| a == name))
    }
}

/// Merges the handler scripts of a nested section over its parent's: a
/// name defined in both takes the nested definition.
pub fn merge_handler_scripts(base: &[HandlerScript], add: &[HandlerScript]) -> Vec<HandlerScript> {
    add.iter()
        .chain(
            base.iter()
                .filter(|b| !add.iter().any(|a| a.name == b.name)),
        )
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_script_with_and_without_group() {
        let s = DispatchScript::parse(&["/srv/d.py"]).unwrap();
        assert_eq!(s.path, "/srv/d.py");
        assert_eq!(s.application_group, None);
        let s = DispatchScript::parse(&["/srv/d.py", "application-group=%{GLOBAL}"]).unwrap();
        assert_eq!(s.application_group, Some(ApplicationGroup::Global));
    }

    #[test]
    fn handler_script_options() {
        let s = HandlerScript::parse(&[
            "wsgi-resource",
            "/srv/r.wsgi",
            "process-group=site",
            "application-group=%{GLOBAL}",
            "pass-authorization=On",
        ])
        .unwrap();
        assert_eq!(s.name, "wsgi-resource");
        assert_eq!(s.path, "/srv/r.wsgi");
        assert_eq!(s.process_group, Some(ProcessGroup::Named("site".into())));
        assert_eq!(s.application_group, Some(ApplicationGroup::Global));
        assert_eq!(s.pass_authorization, Some(true));
    }

    #[test]
    fn restrict_process_lists_names() {
        assert_eq!(
            parse_restrict_process(&["a", "%{GLOBAL}", "b:1"]).unwrap(),
            ["a", "", "b:1"]
        );
    }

    #[test]
    fn errors_name_directive_and_value() {
        let cases: Vec<(Result<(), ConfigError>, &str)> = vec![
            (
                DispatchScript::parse(&[]).map(drop),
                "WSGIDispatchScript: wrong number of arguments (none): takes a script path, then options",
            ),
            (
                DispatchScript::parse(&["/d.py", "process-group=x"]).map(drop),
                "WSGIDispatchScript: unknown option 'process-group=x' (expected application-group=)",
            ),
            (
                DispatchScript::parse(&["application-group=x"]).map(drop),
                "WSGIDispatchScript: invalid value 'application-group=x': the first argument must be the script's file path",
            ),
            (
                DispatchScript::parse(&["/d.py", "application-group=%{NOPE}"]).map(drop),
                "WSGIDispatchScript: invalid value 'application-group=%{NOPE}': unknown keyword %{NOPE} (expected %{GLOBAL}, %{SERVER}, %{RESOURCE}, %{HOST} or %{ENV:variable})",
            ),
            (
                HandlerScript::parse(&["h"]).map(drop),
                "WSGIHandlerScript: wrong number of arguments ('h'): takes a handler name and a script path, then options",
            ),
            (
                HandlerScript::parse(&["wsgi-script", "/h.wsgi"]).map(drop),
                "WSGIHandlerScript: invalid value 'wsgi-script': that handler name is mod_wsgi's own",
            ),
            (
                HandlerScript::parse(&["h", "/h.wsgi", "pass-authorization=yes"]).map(drop),
                "WSGIHandlerScript: invalid value 'pass-authorization=yes': expected On or Off",
            ),
            (
                HandlerScript::parse(&["h", "/h.wsgi", "callable-object=x"]).map(drop),
                "WSGIHandlerScript: unknown option 'callable-object=x' (expected process-group=, application-group=, pass-authorization=)",
            ),
            (
                HandlerScript::parse(&["h", "/h.wsgi", "process-group=%{RESOURCE}"]).map(drop),
                "WSGIHandlerScript: invalid value 'process-group=%{RESOURCE}': unknown keyword %{RESOURCE} (expected %{GLOBAL} or %{ENV:variable})",
            ),
            (
                parse_restrict_process(&[]).map(drop),
                "WSGIRestrictProcess: wrong number of arguments (none): takes at least one process group name",
            ),
            (
                parse_restrict_process(&["a", "%{ENV:X}"]).map(drop),
                "WSGIRestrictProcess: invalid value '%{ENV:X}': expected a daemon process group name or %{GLOBAL}",
            ),
        ];
        for (result, expected) in cases {
            assert_eq!(result.unwrap_err().to_string(), expected);
        }
    }

    #[test]
    fn routing_applies_merges_and_restricts() {
        let mut base = Routing::default();
        assert!(base.apply(Directive::HandlerScript, &["a", "/1"]).unwrap());
        assert!(base
            .apply(Directive::HandlerScript, &["A-2", "/2"])
            .unwrap());
        assert!(base.apply(Directive::HandlerScript, &["a", "/3"]).unwrap());
        assert!(base.apply(Directive::DispatchScript, &["/d.py"]).unwrap());
        assert!(!base.apply(Directive::ProcessGroup, &["x"]).unwrap());
        assert_eq!(base.handler_script("a").unwrap().path, "/3");
        assert_eq!(base.handler_script("a-2").unwrap().path, "/2");
        assert!(base.handler_script("b").is_none());
        assert!(base.may_select("anything") && base.may_select(""));
        let mut add = Routing::default();
        add.apply(Directive::RestrictProcess, &["p", "%{GLOBAL}"])
            .unwrap();
        let merged = Routing::merge(&base, &add);
        assert_eq!(merged.dispatch_script.as_ref().unwrap().path, "/d.py");
        assert_eq!(merged.handler_scripts.len(), 2);
        assert!(merged.may_select("p") && merged.may_select(""));
        assert!(!merged.may_select("q"));
        assert_eq!(Routing::merge(&merged, &Routing::default()), merged);
    }

    #[test]
    fn nested_handler_scripts_win_by_name() {
        let h = |name: &str, path: &str| HandlerScript::parse(&[name, path]).unwrap();
        let merged = merge_handler_scripts(&[h("a", "/1"), h("b", "/2")], &[h("b", "/3")]);
        let got: Vec<(&str, &str)> = merged
            .iter()
            .map(|s| (s.name.as_str(), s.path.as_str()))
            .collect();
        assert_eq!(got, [("b", "/3"), ("a", "/1")]);
    }
}
