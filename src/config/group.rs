//! Application groups (which Python interpreter runs a request) and process
//! groups (which daemon process group runs it): their `%{...}` syntax and
//! how each form is expanded for a request.

use std::fmt;

use thiserror::Error;

/// What a group expansion needs to know about the request being served.
/// The FFI side implements this over `request_rec`.
pub trait RequestFacts {
    /// `r->server->server_hostname`.
    fn server_hostname(&self) -> String;
    /// `ap_get_server_port(r)`.
    fn server_port(&self) -> u16;
    /// The host the client asked for (`r->hostname`, or the raw `Host`
    /// header); any `:port` part is ignored.
    fn host_header(&self) -> Option<String>;
    /// The request's `SCRIPT_NAME`, as mod_wsgi computes it (repeated
    /// slashes collapsed, lower-cased when `WSGICaseSensitivity Off`).
    fn script_name(&self) -> String;
    /// Looks a variable up the way mod_wsgi does: `r->notes`, then
    /// `r->subprocess_env`, then the server process environment.
    fn env(&self, name: &str) -> Option<String>;
}

/// Why a `%{...}` group specification was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GroupSpecError {
    /// `%{` without its `}`.
    #[error("'%{{' is not closed by '}}'")]
    Unterminated,
    /// Text after the closing `}`.
    #[error("unexpected text after the closing '}}'")]
    TrailingText,
    /// `%{ENV:}`.
    #[error("%{{ENV:}} needs a variable name")]
    EmptyEnvName,
    /// A `%{...}` form not allowed here.
    #[error("unknown keyword %{{{keyword}}} (expected {allowed})")]
    UnknownKeyword {
        /// The form given.
        keyword: String,
        /// The forms allowed.
        allowed: &'static str,
    },
}

/// The keyword forms before they are narrowed to what each group allows.
enum Keyword<'a> {
    /// `%{GLOBAL}`.
    Global,
    /// `%{SERVER}`.
    Server,
    /// `%{RESOURCE}`.
    Resource,
    /// `%{HOST}`.
    Host,
    /// `%{ENV:name}`.
    Env(&'a str),
}

/// Reads a `%{...}` form. `Ok(None)` means the value is a plain name:
/// anything not starting with `%{`, exactly as mod_wsgi treats it.
fn parse_keyword(spec: &str) -> Result<Option<(Keyword<'_>, &str)>, GroupSpecError> {
    let Some(inner) = spec.strip_prefix("%{") else {
        return Ok(None);
    };
    let close = inner.find('}').ok_or(GroupSpecError::Unterminated)?;
    if close + 1 != inner.len() {
        return Err(GroupSpecError::TrailingText);
    }
    let body = &inner[..close];
    let keyword = match body {
        "GLOBAL" => Keyword::Global,
        "SERVER" => Keyword::Server,
        "RESOURCE" => Keyword::Resource,
        "HOST" => Keyword::Host,
        _ => match body.strip_prefix("ENV:") {
            Some("") => return Err(GroupSpecError::EmptyEnvName),
            Some(name) => Keyword::Env(name),
            None => return Err(unknown(body, "")),
        },
    };
    Ok(Some((keyword, body)))
}

/// The error for a `%{...}` form not allowed here.
fn unknown(keyword: &str, allowed: &'static str) -> GroupSpecError {
    GroupSpecError::UnknownKeyword {
        keyword: keyword.to_owned(),
        allowed,
    }
}

/// The forms an application group may take, for error messages.
const APPLICATION_KEYWORDS: &str = "%{GLOBAL}, %{SERVER}, %{RESOURCE}, %{HOST} or %{ENV:variable}";
/// The forms a process group may take, for error messages.
const PROCESS_KEYWORDS: &str = "%{GLOBAL} or %{ENV:variable}";

/// Attaches the right list of allowed keywords to an unknown-keyword error.
fn with_allowed(error: GroupSpecError, allowed: &'static str) -> GroupSpecError {
    match error {
        GroupSpecError::UnknownKeyword { keyword, .. } => {
            GroupSpecError::UnknownKeyword { keyword, allowed }
        }
        other => other,
    }
}

/// `host` plus `:port`, except on the standard HTTP and HTTPS ports.
fn with_port(host: &str, port: u16) -> String {
    if port == 80 || port == 443 {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    }
}

/// Drops a `:port` suffix, leaving a bracketed IPv6 literal whole.
fn without_port(host: &str) -> &str {
    if host.starts_with('[') {
        match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        host.split(':').next().unwrap_or(host)
    }
}

/// Which Python (sub-)interpreter handles a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum ApplicationGroup {
    /// `%{GLOBAL}`: the main interpreter, named "".
    Global,
    /// `%{SERVER}`: one interpreter per virtual host.
    Server,
    /// `%{RESOURCE}`: one interpreter per mounted application; mod_wsgi's
    /// default.
    #[default]
    Resource,
    /// `%{HOST}`: one interpreter per requested host name.
    Host,
    /// `%{ENV:variable}`: named by a request variable.
    Env(String),
    /// Any other value is used as the interpreter name as is.
    Named(String),
}

impl ApplicationGroup {
    /// Parses a group as written in a directive.
    pub fn parse(spec: &str) -> Result<Self, GroupSpecError> {
        let keyword = parse_keyword(spec).map_err(|e| with_allowed(e, APPLICATION_KEYWORDS))?;
        Ok(match keyword {
            None => ApplicationGroup::Named(spec.to_owned()),
            Some((Keyword::Global, _)) => ApplicationGroup::Global,
            Some((Keyword::Server, _)) => ApplicationGroup::Server,
            Some((Keyword::Resource, _)) => ApplicationGroup::Resource,
            Some((Keyword::Host, _)) => ApplicationGroup::Host,
            Some((Keyword::Env(name), _)) => ApplicationGroup::Env(name.to_owned()),
        })
    }

    /// The interpreter name for this request, as mod_wsgi computes it.
    ///
    /// For `%{ENV:variable}`, a value that is itself one of the other
    /// `%{...}` keywords is expanded in turn, and an unset variable leaves
    /// the literal `%{ENV:variable}` as the name; both as mod_wsgi does.
    pub fn expand(&self, ctx: &dyn RequestFacts) -> String {
        match self {
            ApplicationGroup::Global => String::new(),
            ApplicationGroup::Server => with_port(&ctx.server_hostname(), ctx.server_port()),
            ApplicationGroup::Host => {
                let requested = ctx.host_header().unwrap_or_default();
                let host = match without_port(&requested) {
                    "" => ctx.server_hostname(),
                    name => name.to_owned(),
                };
                with_port(&host, ctx.server_port())
            }
            ApplicationGroup::Resource => format!(
                "{}|{}",
                ApplicationGroup::Server.expand(ctx),
                ctx.script_name()
            ),
            ApplicationGroup::Env(name) => match ctx.env(name) {
                None => self.to_string(),
                Some(value) if value.starts_with("%{ENV:") => value,
                Some(value) => match ApplicationGroup::parse(&value) {
                    Ok(
                        indirect @ (ApplicationGroup::Global
                        | ApplicationGroup::Server
                        | ApplicationGroup::Resource
                        | ApplicationGroup::Host),
                    ) => indirect.expand(ctx),
                    _ => value,
                },
            },
            ApplicationGroup::Named(name) => name.clone(),
        }
    }

    /// True when the name does not depend on the request, so a script can
    /// be preloaded into it at process start.
    pub fn is_fixed(&self) -> bool {
        match self {
            ApplicationGroup::Global => true,
            ApplicationGroup::Named(name) => !name.contains("%{"),
            _ => false,
        }
    }
}

/// Formats the group back in configuration syntax.
impl fmt::Display for ApplicationGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplicationGroup::Global => f.write_str("%{GLOBAL}"),
            ApplicationGroup::Server => f.write_str("%{SERVER}"),
            ApplicationGroup::Resource => f.write_str("%{RESOURCE}"),
            ApplicationGroup::Host => f.write_str("%{HOST}"),
            ApplicationGroup::Env(name) => write!(f, "%{{ENV:{name}}}"),
            ApplicationGroup::Named(name) => f.write_str(name),
        }
    }
}

/// Which daemon process group handles a request; "" means the Apache
/// child processes themselves (embedded mode).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum ProcessGroup {
    /// `%{GLOBAL}`: embedded mode; mod_wsgi's default.
    #[default]
    Global,
    /// `%{ENV:variable}`: named by a request variable.
    Env(String),
    /// The name of a `WSGIDaemonProcess` group.
    Named(String),
}

impl ProcessGroup {
    /// Parses a group as written in a directive.
    pub fn parse(spec: &str) -> Result<Self, GroupSpecError> {
        let keyword = parse_keyword(spec).map_err(|e| with_allowed(e, PROCESS_KEYWORDS))?;
        match keyword {
            None => Ok(ProcessGroup::Named(spec.to_owned())),
            Some((Keyword::Global, _)) => Ok(ProcessGroup::Global),
            Some((Keyword::Env(name), _)) => Ok(ProcessGroup::Env(name.to_owned())),
            Some((_, body)) => Err(unknown(body, PROCESS_KEYWORDS)),
        }
    }

    /// The daemon group name for this request ("" for embedded mode).
    ///
    /// `env` looks a variable up as [`RequestFacts::env`] does. A variable
    /// holding `%{GLOBAL}` selects embedded mode; an unset variable leaves
    /// the literal `%{ENV:variable}`, which names no daemon group, so the
    /// request fails instead of silently running embedded (as in mod_wsgi).
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> String {
        match self {
            ProcessGroup::Global => String::new(),
            ProcessGroup::Env(name) => match env(name) {
                None => self.to_string(),
                Some(value) if value == "%{GLOBAL}" => String::new(),
                Some(value) => value,
            },
            ProcessGroup::Named(name) => name.clone(),
        }
    }

    /// True when the group does not depend on the request.
    pub fn is_fixed(&self) -> bool {
        match self {
            ProcessGroup::Global => true,
            ProcessGroup::Named(name) => !name.contains("%{"),
            ProcessGroup::Env(_) => false,
        }
    }
}

/// Formats the group back in configuration syntax.
impl fmt::Display for ProcessGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessGroup::Global => f.write_str("%{GLOBAL}"),
            ProcessGroup::Env(name) => write!(f, "%{{ENV:{name}}}"),
            ProcessGroup::Named(name) => f.write_str(name),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    pub(crate) struct FakeRequest {
        pub hostname: String,
        pub port: u16,
        pub host_header: Option<String>,
        pub script_name: String,
        pub env: HashMap<String, String>,
    }

    impl FakeRequest {
        pub(crate) fn new(hostname: &str, port: u16, script_name: &str) -> Self {
            FakeRequest {
                hostname: hostname.to_owned(),
                port,
                script_name: script_name.to_owned(),
                ..FakeRequest::default()
            }
        }

        fn with_env(mut self, name: &str, value: &str) -> Self {
            self.env.insert(name.to_owned(), value.to_owned());
            self
        }

        fn with_host(mut self, host: &str) -> Self {
            self.host_header = Some(host.to_owned());
            self
        }
    }

    impl RequestFacts for FakeRequest {
        fn server_hostname(&self) -> String {
            self.hostname.clone()
        }
        fn server_port(&self) -> u16 {
            self.port
        }
        fn host_header(&self) -> Option<String> {
            self.host_header.clone()
        }
        fn script_name(&self) -> String {
            self.script_name.clone()
        }
        fn env(&self, name: &str) -> Option<String> {
            self.env.get(name).cloned()
        }
    }

    fn app(spec: &str) -> ApplicationGroup {
        ApplicationGroup::parse(spec).unwrap()
    }

    #[test]
    fn application_group_forms_parse() {
        assert_eq!(app("%{GLOBAL}"), ApplicationGroup::Global);
        assert_eq!(app("%{SERVER}"), ApplicationGroup::Server);
        assert_eq!(app("%{RESOURCE}"), ApplicationGroup::Resource);
        assert_eq!(app("%{HOST}"), ApplicationGroup::Host);
        assert_eq!(app("%{ENV:APP}"), ApplicationGroup::Env("APP".into()));
        assert_eq!(app("myapp"), ApplicationGroup::Named("myapp".into()));
        // Only a leading "%{" is syntax, as in mod_wsgi.
        assert_eq!(app("%GLOBAL"), ApplicationGroup::Named("%GLOBAL".into()));
        assert_eq!(
            app("a%{GLOBAL}"),
            ApplicationGroup::Named("a%{GLOBAL}".into())
        );
        assert_eq!(ApplicationGroup::default(), ApplicationGroup::Resource);
    }

    #[test]
    fn malformed_application_groups_are_refused() {
        assert_eq!(
            ApplicationGroup::parse("%{global}").unwrap_err().to_string(),
            "unknown keyword %{global} (expected %{GLOBAL}, %{SERVER}, %{RESOURCE}, %{HOST} or %{ENV:variable})"
        );
        assert_eq!(
            ApplicationGroup::parse("%{ENV:}"),
            Err(GroupSpecError::EmptyEnvName)
        );
        assert_eq!(
            ApplicationGroup::parse("%{ENV:X"),
            Err(GroupSpecError::Unterminated)
        );
        assert_eq!(
            ApplicationGroup::parse("%{GLOBAL}x"),
            Err(GroupSpecError::TrailingText)
        );
        assert_eq!(
            ApplicationGroup::parse("%{}"),
            Err(GroupSpecError::UnknownKeyword {
                keyword: String::new(),
                allowed: APPLICATION_KEYWORDS
            })
        );
    }

    #[test]
    fn display_round_trips() {
        for spec in [
            "%{GLOBAL}",
            "%{SERVER}",
            "%{RESOURCE}",
            "%{HOST}",
            "%{ENV:X}",
            "name",
        ] {
            assert_eq!(app(spec).to_string(), spec);
        }
        for spec in ["%{GLOBAL}", "%{ENV:X}", "name"] {
            assert_eq!(ProcessGroup::parse(spec).unwrap().to_string(), spec);
        }
    }

    #[test]
    fn global_and_named_expand_to_themselves() {
        let req = FakeRequest::new("example.com", 8080, "/app");
        assert_eq!(ApplicationGroup::Global.expand(&req), "");
        assert_eq!(app("mine").expand(&req), "mine");
    }

    #[test]
    fn server_group_adds_non_standard_ports() {
        for (port, expected) in [
            (80, "example.com"),
            (443, "example.com"),
            (8080, "example.com:8080"),
        ] {
            let req = FakeRequest::new("example.com", port, "/app");
            assert_eq!(ApplicationGroup::Server.expand(&req), expected);
        }
    }

    #[test]
    fn resource_group_is_server_bar_script_name() {
        for (port, expected) in [
            (80, "example.com|/app"),
            (443, "example.com|/app"),
            (8080, "example.com:8080|/app"),
        ] {
            let req = FakeRequest::new("example.com", port, "/app");
            assert_eq!(ApplicationGroup::Resource.expand(&req), expected);
        }
        let root = FakeRequest::new("example.com", 80, "");
        assert_eq!(ApplicationGroup::Resource.expand(&root), "example.com|");
    }

    #[test]
    fn host_group_uses_the_requested_host_without_its_port() {
        for (port, expected) in [
            (80, "www.example.org"),
            (443, "www.example.org"),
            (8080, "www.example.org:8080"),
        ] {
            let req = FakeRequest::new("example.com", port, "/").with_host("www.example.org:9999");
            assert_eq!(ApplicationGroup::Host.expand(&req), expected);
        }
        let ipv6 = FakeRequest::new("example.com", 8080, "/").with_host("[::1]:8080");
        assert_eq!(ApplicationGroup::Host.expand(&ipv6), "[::1]:8080");
        let no_host = FakeRequest::new("example.com", 8080, "/");
        assert_eq!(ApplicationGroup::Host.expand(&no_host), "example.com:8080");
        let empty_host = FakeRequest::new("example.com", 80, "/").with_host("");
        assert_eq!(ApplicationGroup::Host.expand(&empty_host), "example.com");
        let port_only = FakeRequest::new("example.com", 443, "/").with_host(":443");
        assert_eq!(ApplicationGroup::Host.expand(&port_only), "example.com");
    }

    #[test]
    fn env_group_uses_the_variable_and_expands_keywords_in_it() {
        let group = app("%{ENV:APP}");
        let req = FakeRequest::new("example.com", 8080, "/app").with_env("APP", "tenant1");
        assert_eq!(group.expand(&req), "tenant1");

        let req = FakeRequest::new("example.com", 8080, "/app").with_env("APP", "%{GLOBAL}");
        assert_eq!(group.expand(&req), "");
        let req = FakeRequest::new("example.com", 8080, "/app").with_env("APP", "%{RESOURCE}");
        assert_eq!(group.expand(&req), "example.com:8080|/app");
        // No recursion through a second variable, and junk stays literal.
        let req = FakeRequest::new("example.com", 80, "/").with_env("APP", "%{ENV:OTHER}");
        assert_eq!(group.expand(&req), "%{ENV:OTHER}");
        let req = FakeRequest::new("example.com", 80, "/").with_env("APP", "%{bogus");
        assert_eq!(group.expand(&req), "%{bogus");
        let req = FakeRequest::new("example.com", 80, "/").with_env("APP", "");
        assert_eq!(group.expand(&req), "");

        let unset = FakeRequest::new("example.com", 80, "/");
        assert_eq!(group.expand(&unset), "%{ENV:APP}");
    }

    #[test]
    fn process_group_forms() {
        assert_eq!(ProcessGroup::parse("%{GLOBAL}"), Ok(ProcessGroup::Global));
        assert_eq!(
            ProcessGroup::parse("%{ENV:PG}"),
            Ok(ProcessGroup::Env("PG".into()))
        );
        assert_eq!(
            ProcessGroup::parse("site1"),
            Ok(ProcessGroup::Named("site1".into()))
        );
        assert_eq!(ProcessGroup::default(), ProcessGroup::Global);
        assert_eq!(
            ProcessGroup::parse("%{SERVER}").unwrap_err().to_string(),
            "unknown keyword %{SERVER} (expected %{GLOBAL} or %{ENV:variable})"
        );
        assert_eq!(
            ProcessGroup::parse("%{ENV:}"),
            Err(GroupSpecError::EmptyEnvName)
        );
        assert_eq!(
            ProcessGroup::parse("%{GLOBAL"),
            Err(GroupSpecError::Unterminated)
        );
        assert!(matches!(
            ProcessGroup::parse("%{NOPE}"),
            Err(GroupSpecError::UnknownKeyword { .. })
        ));
    }

    #[test]
    fn process_group_resolution() {
        let env = |name: &str| match name {
            "PG" => Some("site1".to_owned()),
            "EMBEDDED" => Some("%{GLOBAL}".to_owned()),
            _ => None,
        };
        assert_eq!(ProcessGroup::Global.resolve(env), "");
        assert_eq!(ProcessGroup::Named("x".into()).resolve(env), "x");
        assert_eq!(ProcessGroup::Env("PG".into()).resolve(env), "site1");
        assert_eq!(ProcessGroup::Env("EMBEDDED".into()).resolve(env), "");
        assert_eq!(
            ProcessGroup::Env("UNSET".into()).resolve(env),
            "%{ENV:UNSET}"
        );
    }

    #[test]
    fn fixed_groups() {
        assert!(ApplicationGroup::Global.is_fixed());
        assert!(app("x").is_fixed());
        assert!(!app("x%{y}").is_fixed());
        assert!(!ApplicationGroup::Resource.is_fixed());
        assert!(!app("%{ENV:X}").is_fixed());
        assert!(ProcessGroup::Global.is_fixed());
        assert!(ProcessGroup::Named("x".into()).is_fixed());
        assert!(!ProcessGroup::Env("X".into()).is_fixed());
    }
}
