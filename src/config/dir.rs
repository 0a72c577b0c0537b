//! The per-directory configuration record: the directives Apache stores per
//! `<Directory>`/`<Location>` (and at server level), how nested sections
//! merge, and the defaults mod_wsgi applies when nothing is set.

use super::access::{add_proxy_headers, add_trusted_proxies, AccessScript};
use super::alias::AliasOptions;
use super::args::{exactly_one, flag_directive, is_python_identifier};
use super::directive::{Directive, Scope};
use super::dispatch::Routing;
use super::error::ConfigError;
use super::group::{ApplicationGroup, ProcessGroup};
use super::trusted_proxies::{ProxyHeader, TrustedProxies};

/// `WSGIMapHEADToGET`: whether a HEAD request is passed to the application
/// as a GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MapHeadToGet {
    /// Always.
    On,
    /// Never.
    Off,
    /// Only when an output filter that needs the full body is present.
    #[default]
    Auto,
}

impl MapHeadToGet {
    /// `On`, `Off` or `Auto`, in any case.
    fn parse(value: &str) -> Option<Self> {
        [
            ("on", MapHeadToGet::On),
            ("off", MapHeadToGet::Off),
            ("auto", MapHeadToGet::Auto),
        ]
        .into_iter()
        .find(|(word, _)| value.eq_ignore_ascii_case(word))
        .map(|(_, mode)| mode)
    }
}

/// The callable's name when no `WSGICallableObject` applies.
pub const DEFAULT_CALLABLE_OBJECT: &str = "application";

/// mod_wsgi's default application group.
static DEFAULT_APPLICATION_GROUP: ApplicationGroup = ApplicationGroup::Resource;
/// mod_wsgi's default process group: embedded mode.
static DEFAULT_PROCESS_GROUP: ProcessGroup = ProcessGroup::Global;

/// Resolves a `WSGICallableObject` value for a request. mod_wsgi accepts
/// `%{ENV:variable}` there too; an unset variable (or any other `%` form)
/// falls back to "application", as in mod_wsgi.
pub fn resolve_callable_object(spec: &str, env: impl Fn(&str) -> Option<String>) -> String {
    if !spec.starts_with('%') {
        return spec.to_owned();
    }
    spec.strip_prefix("%{ENV:")
        .and_then(|rest| rest.strip_suffix('}'))
        .filter(|name| !name.is_empty())
        .and_then(env)
        .unwrap_or_else(|| DEFAULT_CALLABLE_OBJECT.to_owned())
}

/// Everything `None` means "not set here"; [`DirConfig::for_request`] gives
/// what applies to a request, with mod_wsgi's defaults for unset values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirConfig {
    /// A Python identifier, or `%{ENV:variable}`
    /// (see [`resolve_callable_object`]).
    pub callable_object: Option<String>,
    /// `WSGIPassAuthorization`.
    pub pass_authorization: Option<bool>,
    /// `WSGIScriptReloading`.
    pub script_reloading: Option<bool>,
    /// `WSGIApplicationGroup`.
    pub application_group: Option<ApplicationGroup>,
    /// `WSGIChunkedRequest`.
    pub chunked_request: Option<bool>,
    /// `WSGIMapHEADToGET`.
    pub map_head_to_get: Option<MapHeadToGet>,
    /// `WSGIProcessGroup`.
    pub process_group: Option<ProcessGroup>,
    /// `WSGIAuthUserScript`: the `wsgi` authentication provider's script.
    pub auth_user_script: Option<AccessScript>,
    /// `WSGIAuthGroupScript`: what `Require wsgi-group` asks.
    pub auth_group_script: Option<AccessScript>,
    /// `WSGIAccessScript`: the host access check.
    pub access_script: Option<AccessScript>,
    /// `WSGIGroupAuthoritative`: kept for configurations written for
    /// Apache 2.2; under 2.4 `<RequireAny>`/`<RequireAll>` decide.
    pub group_authoritative: Option<bool>,
    /// `WSGITrustedProxyHeaders`, every line of one section together.
    pub trusted_proxy_headers: Option<Vec<ProxyHeader>>,
    /// `WSGITrustedProxies`, every line of one section together.
    pub trusted_proxies: Option<TrustedProxies>,
    /// `WSGIDispatchScript`, `WSGIHandlerScript`, `WSGIRestrictProcess`.
    pub routing: Routing,
    /// `WSGIErrorOverride`: daemon mode only, default Off.
    pub error_override: Option<bool>,
    /// `WSGIEnableSendfile`: default Off.
    pub enable_sendfile: Option<bool>,
    /// `WSGIIgnoreActivity`: daemon mode only, default Off.
    pub ignore_activity: Option<bool>,
    /// `WSGIPassApacheRequest`: embedded mode only, as in mod_wsgi.
    pub pass_apache_request: Option<bool>,
}

impl DirConfig {
    /// Applies one per-directory directive to this record.
    pub fn apply(&mut self, d: Directive, args: &[&str]) -> Result<(), ConfigError> {
        let name = d.name();
        if self.routing.apply(d, args)? {
            return Ok(());
        }
        match d {
            Directive::ErrorOverride => self.error_override = Some(flag_directive(d, args)?),
            Directive::EnableSendfile => self.enable_sendfile = Some(flag_directive(d, args)?),
            Directive::IgnoreActivity => self.ignore_activity = Some(flag_directive(d, args)?),
            Directive::CallableObject => {
                let value = exactly_one(d, args)?;
                // The same %{ENV:...} syntax as the group directives.
                let is_env_form = ApplicationGroup::parse(value)
                    .is_ok_and(|g| matches!(g, ApplicationGroup::Env(_)));
                if !is_python_identifier(value) && !is_env_form {
                    return Err(ConfigError::invalid(
                        name,
                        value,
                        "expected a Python identifier or %{ENV:variable}",
                    ));
                }
                self.callable_object = Some(value.to_owned());
            }
            Directive::PassAuthorization => {
                self.pass_authorization = Some(flag_directive(d, args)?);
            }
            Directive::PassApacheRequest => {
                self.pass_apache_request = Some(flag_directive(d, args)?);
            }
            Directive::ScriptReloading => self.script_reloading = Some(flag_directive(d, args)?),
            Directive::ChunkedRequest => self.chunked_request = Some(flag_directive(d, args)?),
            Directive::ApplicationGroup => {
                let value = exactly_one(d, args)?;
                if value.is_empty() {
                    return Err(ConfigError::invalid(
                        name,
                        value,
                        "must not be empty (use %{GLOBAL} for the main interpreter)",
                    ));
                }
                let group = ApplicationGroup::parse(value)
                    .map_err(|e| ConfigError::invalid(name, value, e.to_string()))?;
                self.application_group = Some(group);
            }
            Directive::ProcessGroup => {
                let value = exactly_one(d, args)?;
                if value.is_empty() {
                    return Err(ConfigError::invalid(
                        name,
                        value,
                        "must not be empty (use %{GLOBAL} for embedded mode)",
                    ));
                }
                let group = ProcessGroup::parse(value)
                    .map_err(|e| ConfigError::invalid(name, value, e.to_string()))?;
                self.process_group = Some(group);
            }
            Directive::MapHeadToGet => {
                let value = exactly_one(d, args)?;
                let mode = MapHeadToGet::parse(value)
                    .ok_or_else(|| ConfigError::invalid(name, value, "expected On, Off or Auto"))?;
                self.map_head_to_get = Some(mode);
            }
            Directive::AuthUserScript => {
                self.auth_user_script = Some(AccessScript::parse(d, args)?);
            }
            Directive::AuthGroupScript => {
                self.auth_group_script = Some(AccessScript::parse(d, args)?);
            }
            Directive::AccessScript => self.access_script = Some(AccessScript::parse(d, args)?),
            Directive::GroupAuthoritative => {
                self.group_authoritative = Some(flag_directive(d, args)?);
            }
            Directive::TrustedProxyHeaders => {
                let headers = self.trusted_proxy_headers.get_or_insert_with(Vec::new);
                add_proxy_headers(d, headers, args)?;
            }
            Directive::TrustedProxies => {
                let proxies = self.trusted_proxies.get_or_insert_with(Default::default);
                add_trusted_proxies(d, proxies, args)?;
            }
            _ => {
                debug_assert_eq!(d.scope(), Scope::Server);
                return Err(ConfigError::WrongConfig {
                    directive: name,
                    config: "per-directory",
                    belongs: "per-server",
                });
            }
        }
        Ok(())
    }

    /// Merges a nested section (`add`) over its parent (`base`): each
    /// setting of `add` wins, unset ones are inherited.
    pub fn merge(base: &Self, add: &Self) -> Self {
        DirConfig {
            callable_object: add
                .callable_object
                .clone()
                .or_else(|| base.callable_object.clone()),
            pass_authorization: add.pass_authorization.or(base.pass_authorization),
            script_reloading: add.script_reloading.or(base.script_reloading),
            application_group: add
                .application_group
                .clone()
                .or_else(|| base.application_group.clone()),
            chunked_request: add.chunked_request.or(base.chunked_request),
            map_head_to_get: add.map_head_to_get.or(base.map_head_to_get),
            process_group: add
                .process_group
                .clone()
                .or_else(|| base.process_group.clone()),
            auth_user_script: add
                .auth_user_script
                .clone()
                .or_else(|| base.auth_user_script.clone()),
            auth_group_script: add
                .auth_group_script
                .clone()
                .or_else(|| base.auth_group_script.clone()),
            access_script: add
                .access_script
                .clone()
                .or_else(|| base.access_script.clone()),
            group_authoritative: add.group_authoritative.or(base.group_authoritative),
            trusted_proxy_headers: add
                .trusted_proxy_headers
                .clone()
                .or_else(|| base.trusted_proxy_headers.clone()),
            trusted_proxies: add
                .trusted_proxies
                .clone()
                .or_else(|| base.trusted_proxies.clone()),
            routing: Routing::merge(&base.routing, &add.routing),
            error_override: add.error_override.or(base.error_override),
            enable_sendfile: add.enable_sendfile.or(base.enable_sendfile),
            ignore_activity: add.ignore_activity.or(base.ignore_activity),
            pass_apache_request: add.pass_apache_request.or(base.pass_apache_request),
        }
    }

    /// The settings that apply to a request: these, under the options of
    /// the script alias that mapped it, if any.
    pub fn for_request<'a>(&'a self, alias: Option<&'a AliasOptions>) -> RequestSettings<'a> {
        RequestSettings { dir: self, alias }
    }
}

/// The settings of one request, read without copying: a script alias's
/// own options override the per-directory ones (as in mod_wsgi), and
/// mod_wsgi's defaults apply to what neither sets.
#[derive(Debug, Clone, Copy)]
pub struct RequestSettings<'a> {
    /// The directory's settings.
    dir: &'a DirConfig,
    /// The options of the alias (or handler script) that mapped the request.
    alias: Option<&'a AliasOptions>,
}

impl<'a> RequestSettings<'a> {
    /// The raw callable object (see [`resolve_callable_object`]), or
    /// "application".
    pub fn callable_object(&self) -> &'a str {
        self.alias
            .and_then(|a| a.callable_object.as_deref())
            .or(self.dir.callable_object.as_deref())
            .unwrap_or(DEFAULT_CALLABLE_OBJECT)
    }

    /// The alias's `interface=` option, if it has one.
    pub fn interface(&self) -> Option<crate::config::Interface> {
        self.alias.and_then(|a| a.interface)
    }

    /// `WSGIPassAuthorization`, off by default.
    pub fn pass_authorization(&self) -> bool {
        self.alias
            .and_then(|a| a.pass_authorization)
            .or(self.dir.pass_authorization)
            .unwrap_or(false)
    }

    /// `WSGIScriptReloading`, on by default.
    pub fn script_reloading(&self) -> bool {
        self.dir.script_reloading.unwrap_or(true)
    }

    /// `WSGIApplicationGroup`, `%{RESOURCE}` by default.
    pub fn application_group(&self) -> &'a ApplicationGroup {
        self.alias
            .and_then(|a| a.application_group.as_ref())
            .or(self.dir.application_group.as_ref())
            .unwrap_or(&DEFAULT_APPLICATION_GROUP)
    }

    /// `WSGIChunkedRequest`, off by default.
    pub fn chunked_request(&self) -> bool {
        self.dir.chunked_request.unwrap_or(false)
    }

    /// `WSGIMapHEADToGET`, `Auto` by default.
    pub fn map_head_to_get(&self) -> MapHeadToGet {
        self.dir.map_head_to_get.unwrap_or_default()
    }

    /// `WSGIPassApacheRequest`, off by default.
    pub fn pass_apache_request(&self) -> bool {
        self.dir.pass_apache_request.unwrap_or(false)
    }

    /// `WSGIProcessGroup`, `%{GLOBAL}` (embedded mode) by default.
    pub fn process_group(&self) -> &'a ProcessGroup {
        self.alias
            .and_then(|a| a.process_group.as_ref())
            .or(self.dir.process_group.as_ref())
            .unwrap_or(&DEFAULT_PROCESS_GROUP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(d: Directive, args: &[&str]) -> DirConfig {
        let mut config = DirConfig::default();
        config.apply(d, args).unwrap();
        config
    }

    fn error(d: Directive, args: &[&str]) -> String {
        DirConfig::default().apply(d, args).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_mod_wsgis() {
        let config = DirConfig::default();
        let settings = config.for_request(None);
        assert_eq!(settings.callable_object(), "application");
        assert!(!settings.pass_authorization());
        assert!(settings.script_reloading());
        assert_eq!(settings.application_group(), &ApplicationGroup::Resource);
        assert!(!settings.chunked_request());
        assert_eq!(settings.map_head_to_get(), MapHeadToGet::Auto);
        assert_eq!(settings.process_group(), &ProcessGroup::Global);
    }

    #[test]
    fn applies_each_directive() {
        let c = applied(Directive::CallableObject, &["app"]);
        assert_eq!(c.for_request(None).callable_object(), "app");
        let c = applied(Directive::CallableObject, &["%{ENV:CALLABLE}"]);
        assert_eq!(c.callable_object.as_deref(), Some("%{ENV:CALLABLE}"));
        let c = applied(Directive::PassAuthorization, &["On"]);
        assert_eq!(c.pass_authorization, Some(true));
        let c = applied(Directive::ScriptReloading, &["off"]);
        assert_eq!(c.script_reloading, Some(false));
        assert!(!c.for_request(None).script_reloading());
        let c = applied(Directive::ErrorOverride, &["On"]);
        assert_eq!(c.error_override, Some(true));
        let c = applied(Directive::EnableSendfile, &["off"]);
        assert_eq!(c.enable_sendfile, Some(false));
        let c = applied(Directive::IgnoreActivity, &["ON"]);
        assert_eq!(c.ignore_activity, Some(true));
        let c = applied(Directive::RestrictProcess, &["a", "%{GLOBAL}"]);
        assert!(c.routing.may_select("a") && !c.routing.may_select("b"));
        assert!(DirConfig::default()
            .apply(Directive::ErrorOverride, &["maybe"])
            .is_err());
        let c = applied(Directive::ChunkedRequest, &["ON"]);
        assert!(c.for_request(None).chunked_request());
        let c = applied(Directive::ApplicationGroup, &["%{GLOBAL}"]);
        assert_eq!(c.application_group, Some(ApplicationGroup::Global));
        let c = applied(Directive::ApplicationGroup, &["%{ENV:G}"]);
        assert_eq!(c.application_group, Some(ApplicationGroup::Env("G".into())));
        let c = applied(Directive::ProcessGroup, &["site"]);
        assert_eq!(c.process_group, Some(ProcessGroup::Named("site".into())));
        for (word, mode) in [
            ("On", MapHeadToGet::On),
            ("off", MapHeadToGet::Off),
            ("AUTO", MapHeadToGet::Auto),
        ] {
            let c = applied(Directive::MapHeadToGet, &[word]);
            assert_eq!(c.map_head_to_get, Some(mode));
        }
    }

    #[test]
    fn later_directives_replace_earlier_ones() {
        let mut c = DirConfig::default();
        c.apply(Directive::CallableObject, &["first"]).unwrap();
        c.apply(Directive::CallableObject, &["second"]).unwrap();
        assert_eq!(c.for_request(None).callable_object(), "second");
    }

    #[test]
    fn every_error_names_the_directive_and_value() {
        let cases: [(Directive, &[&str], &str); 14] = [
            (
                Directive::CallableObject,
                &["my-app"],
                "WSGICallableObject: invalid value 'my-app': expected a Python identifier or %{ENV:variable}",
            ),
            (
                Directive::CallableObject,
                &["%{ENV:}"],
                "WSGICallableObject: invalid value '%{ENV:}': expected a Python identifier or %{ENV:variable}",
            ),
            (
                Directive::CallableObject,
                &["a", "b"],
                "WSGICallableObject: wrong number of arguments ('a' 'b'): takes exactly one argument",
            ),
            (
                Directive::PassAuthorization,
                &["yes"],
                "WSGIPassAuthorization: invalid value 'yes': expected On or Off",
            ),
            (
                Directive::PassAuthorization,
                &[],
                "WSGIPassAuthorization: wrong number of arguments (none): takes exactly one argument",
            ),
            (
                Directive::ScriptReloading,
                &["1"],
                "WSGIScriptReloading: invalid value '1': expected On or Off",
            ),
            (
                Directive::ChunkedRequest,
                &["true"],
                "WSGIChunkedRequest: invalid value 'true': expected On or Off",
            ),
            (
                Directive::MapHeadToGet,
                &["sometimes"],
                "WSGIMapHEADToGET: invalid value 'sometimes': expected On, Off or Auto",
            ),
            (
                Directive::ApplicationGroup,
                &["%{NOPE}"],
                "WSGIApplicationGroup: invalid value '%{NOPE}': unknown keyword %{NOPE} (expected %{GLOBAL}, %{SERVER}, %{RESOURCE}, %{HOST} or %{ENV:variable})",
            ),
            (
                Directive::ApplicationGroup,
                &["%{ENV:"],
                "WSGIApplicationGroup: invalid value '%{ENV:': '%{' is not closed by '}'",
            ),
            (
                Directive::ApplicationGroup,
                &[""],
                "WSGIApplicationGroup: invalid value '': must not be empty (use %{GLOBAL} for the main interpreter)",
            ),
            (
                Directive::ProcessGroup,
                &["%{RESOURCE}"],
                "WSGIProcessGroup: invalid value '%{RESOURCE}': unknown keyword %{RESOURCE} (expected %{GLOBAL} or %{ENV:variable})",
            ),
            (
                Directive::ProcessGroup,
                &["%{ENV:}"],
                "WSGIProcessGroup: invalid value '%{ENV:}': %{ENV:} needs a variable name",
            ),
            (
                Directive::ProcessGroup,
                &["a", "b"],
                "WSGIProcessGroup: wrong number of arguments ('a' 'b'): takes exactly one argument",
            ),
        ];
        for (d, args, expected) in cases {
            assert_eq!(error(d, args), expected);
        }
    }

    #[test]
    fn access_control_directives_apply_and_lines_accumulate() {
        let mut c = DirConfig::default();
        c.apply(Directive::AuthUserScript, &["/srv/auth.wsgi"])
            .unwrap();
        c.apply(
            Directive::AuthGroupScript,
            &["/srv/groups.wsgi", "application-group=admin"],
        )
        .unwrap();
        c.apply(Directive::AccessScript, &["/srv/access.wsgi"])
            .unwrap();
        c.apply(Directive::GroupAuthoritative, &["Off"]).unwrap();
        c.apply(Directive::TrustedProxyHeaders, &["X-Forwarded-For"])
            .unwrap();
        c.apply(Directive::TrustedProxyHeaders, &["X-Forwarded-Proto"])
            .unwrap();
        c.apply(Directive::TrustedProxies, &["10.0.0.1"]).unwrap();
        c.apply(Directive::TrustedProxies, &["192.168.0.0/16"])
            .unwrap();
        assert_eq!(c.auth_user_script.as_ref().unwrap().path, "/srv/auth.wsgi");
        assert_eq!(
            c.auth_group_script.as_ref().unwrap().application_group,
            ApplicationGroup::Named("admin".into())
        );
        assert_eq!(c.access_script.as_ref().unwrap().path, "/srv/access.wsgi");
        assert_eq!(c.group_authoritative, Some(false));
        assert_eq!(c.trusted_proxy_headers.as_ref().unwrap().len(), 2);
        let proxies = c.trusted_proxies.as_ref().unwrap();
        assert!(proxies.contains("10.0.0.1") && proxies.contains("192.168.3.4"));
        assert_eq!(
            DirConfig::default()
                .apply(Directive::GroupAuthoritative, &["maybe"])
                .unwrap_err()
                .to_string(),
            "WSGIGroupAuthoritative: invalid value 'maybe': expected On or Off"
        );
    }

    #[test]
    fn server_directives_are_refused() {
        let err = DirConfig::default()
            .apply(Directive::ScriptAlias, &["/", "/x"])
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::WrongConfig {
                directive: "WSGIScriptAlias",
                config: "per-directory",
                belongs: "per-server",
            }
        );
    }

    #[test]
    fn merge_lets_the_nested_section_win_field_by_field() {
        let base = DirConfig {
            callable_object: Some("base_app".into()),
            pass_authorization: Some(true),
            script_reloading: Some(false),
            application_group: Some(ApplicationGroup::Global),
            chunked_request: Some(true),
            map_head_to_get: Some(MapHeadToGet::Off),
            process_group: Some(ProcessGroup::Named("base".into())),
            auth_user_script: Some(AccessScript {
                path: "/base/auth.wsgi".into(),
                application_group: ApplicationGroup::Global,
            }),
            auth_group_script: None,
            access_script: None,
            group_authoritative: Some(true),
            trusted_proxy_headers: Some(vec![ProxyHeader::parse("X-Real-IP").unwrap()]),
            trusted_proxies: Some(TrustedProxies::default()),
            routing: Routing::default(),
            error_override: Some(true),
            enable_sendfile: Some(true),
            ignore_activity: Some(false),
            pass_apache_request: Some(true),
        };
        let add = DirConfig {
            callable_object: Some("inner_app".into()),
            pass_authorization: Some(false),
            process_group: Some(ProcessGroup::Named("inner".into())),
            ..DirConfig::default()
        };
        let merged = DirConfig::merge(&base, &add);
        assert_eq!(merged.callable_object.as_deref(), Some("inner_app"));
        assert_eq!(merged.pass_authorization, Some(false));
        assert_eq!(merged.script_reloading, Some(false));
        assert_eq!(merged.application_group, Some(ApplicationGroup::Global));
        assert_eq!(merged.chunked_request, Some(true));
        assert_eq!(merged.map_head_to_get, Some(MapHeadToGet::Off));
        assert_eq!(merged.error_override, Some(true));
        assert_eq!(merged.enable_sendfile, Some(true));
        assert_eq!(merged.ignore_activity, Some(false));
        assert!(merged.for_request(None).pass_apache_request());
        assert_eq!(
            merged.process_group,
            Some(ProcessGroup::Named("inner".into()))
        );
        assert_eq!(merged.auth_user_script, base.auth_user_script);
        assert_eq!(merged.group_authoritative, Some(true));
        assert_eq!(merged.trusted_proxy_headers, base.trusted_proxy_headers);
        assert_eq!(DirConfig::merge(&base, &DirConfig::default()), base);
        assert_eq!(DirConfig::merge(&DirConfig::default(), &base), base);
    }

    #[test]
    fn alias_options_override_directory_settings() {
        let dir = DirConfig {
            callable_object: Some("dir_app".into()),
            pass_authorization: Some(true),
            application_group: Some(ApplicationGroup::Server),
            script_reloading: Some(false),
            ..DirConfig::default()
        };
        let options = AliasOptions {
            process_group: Some(ProcessGroup::Named("p".into())),
            callable_object: Some("alias_app".into()),
            pass_authorization: Some(false),
            application_group: None,
            interface: None,
        };
        let effective = dir.for_request(Some(&options));
        assert_eq!(effective.callable_object(), "alias_app");
        assert!(!effective.pass_authorization());
        assert_eq!(effective.application_group(), &ApplicationGroup::Server);
        assert_eq!(effective.process_group(), &ProcessGroup::Named("p".into()));
        assert!(!effective.script_reloading());
        // Without the alias, the directory's own settings.
        let plain = dir.for_request(None);
        assert_eq!(plain.callable_object(), "dir_app");
        assert!(plain.pass_authorization());
        assert_eq!(plain.process_group(), &ProcessGroup::Global);
    }

    #[test]
    fn callable_object_resolution() {
        let env = |name: &str| (name == "CALLABLE").then(|| "from_env".to_owned());
        assert_eq!(resolve_callable_object("app", env), "app");
        assert_eq!(resolve_callable_object("%{ENV:CALLABLE}", env), "from_env");
        assert_eq!(resolve_callable_object("%{ENV:UNSET}", env), "application");
        assert_eq!(resolve_callable_object("%{ENV:}", env), "application");
        assert_eq!(resolve_callable_object("%junk", env), "application");
    }
}
