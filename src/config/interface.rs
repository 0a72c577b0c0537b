//! The `interface=asgi|wsgi` option of `WSGIScriptAlias`,
//! `WSGIScriptAliasMatch` and `WSGIImportScript`: which protocol the
//! script's callable speaks. Without it the daemon process decides by the
//! callable itself (an ASGI 3 application is a coroutine function, or an
//! object whose `__call__` is one). ASGI runs in daemon mode only, so an
//! explicit `interface=asgi` without a daemon group is refused here, where
//! Apache still knows the file and line.

use super::directive::Directive;
use super::error::ConfigError;
use super::group::ProcessGroup;

/// The option's name.
pub const OPTION: &str = "interface";

/// The protocol a script's callable speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// PEP 3333: `application(environ, start_response)`.
    Wsgi,
    /// ASGI 3: `await app(scope, receive, send)`, daemon mode only.
    Asgi,
}

impl Interface {
    /// Parses the option's value (`asgi` or `wsgi`, any case).
    pub fn parse(value: &str) -> Result<Interface, String> {
        if value.eq_ignore_ascii_case("asgi") {
            Ok(Interface::Asgi)
        } else if value.eq_ignore_ascii_case("wsgi") {
            Ok(Interface::Wsgi)
        } else {
            Err("expected asgi or wsgi".to_owned())
        }
    }

    /// Its name as the option and the daemon protocol spell it.
    pub fn name(self) -> &'static str {
        match self {
            Interface::Wsgi => "wsgi",
            Interface::Asgi => "asgi",
        }
    }

    /// Refuses `interface=asgi` on a line whose process group is missing
    /// or `%{GLOBAL}` (embedded mode), saying how to fix it.
    pub fn check_daemon(
        self,
        d: Directive,
        process_group: Option<&ProcessGroup>,
    ) -> Result<(), ConfigError> {
        let embedded = match process_group {
            None => true,
            Some(group) => *group == ProcessGroup::Global,
        };
        if self == Interface::Asgi && embedded {
            return Err(ConfigError::invalid(
                d.name(),
                "interface=asgi",
                "WSGIRS500: ASGI applications run in daemon mode only; add \
                 process-group=NAME naming a WSGIDaemonProcess group to this line",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_names_in_any_case() {
        assert_eq!(Interface::parse("ASGI"), Ok(Interface::Asgi));
        assert_eq!(Interface::parse("wsgi"), Ok(Interface::Wsgi));
        assert!(Interface::parse("rsgi").is_err());
        assert_eq!(Interface::Asgi.name(), "asgi");
    }

    #[test]
    fn asgi_needs_a_daemon_group() {
        let d = Directive::ScriptAlias;
        let named = ProcessGroup::Named("api".into());
        assert!(Interface::Asgi.check_daemon(d, Some(&named)).is_ok());
        assert!(Interface::Wsgi.check_daemon(d, None).is_ok());
        let refused = Interface::Asgi.check_daemon(d, None).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "WSGIScriptAlias: invalid value 'interface=asgi': WSGIRS500: ASGI applications run \
             in daemon mode only; add process-group=NAME naming a WSGIDaemonProcess group to \
             this line"
        );
        assert!(Interface::Asgi
            .check_daemon(d, Some(&ProcessGroup::Global))
            .is_err());
    }
}
