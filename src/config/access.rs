//! The access control directives: `WSGIAuthUserScript`,
//! `WSGIAuthGroupScript` and `WSGIAccessScript` (a script path and the
//! application group it loads in) and `WSGITrustedProxyHeaders` /
//! `WSGITrustedProxies` (the words they list).

use super::args::{parse_options, script_and_options};
use super::directive::Directive;
use super::error::ConfigError;
use super::group::ApplicationGroup;
use super::trusted_proxies::{ProxyHeader, TrustedProxies};

/// A script of Python access control functions. mod_wsgi always runs these
/// in the Apache child processes (never in a daemon process), by default in
/// the main interpreter (`%{GLOBAL}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessScript {
    /// The script file.
    pub path: String,
    /// The interpreter it runs in.
    pub application_group: ApplicationGroup,
}

impl AccessScript {
    /// Parses `file-path [application-group=name]`.
    pub fn parse(d: Directive, args: &[&str]) -> Result<Self, ConfigError> {
        let (path, words) = script_and_options(
            d,
            args,
            "takes a script file path, then optionally application-group=",
        )?;
        if let Some(word) = words.iter().find(|w| w.starts_with("process-group=")) {
            return Err(ConfigError::invalid(
                d.name(),
                *word,
                "access control scripts always run in Apache's child processes, never in a \
                 daemon process (only application-group= may be given)",
            ));
        }
        let mut application_group = ApplicationGroup::Global;
        for option in parse_options(d, words, &["application-group"])? {
            let invalid = |reason: String| ConfigError::invalid(d.name(), option.word, reason);
            application_group = match ApplicationGroup::parse(option.value) {
                Ok(ApplicationGroup::Resource | ApplicationGroup::Env(_)) => {
                    return Err(invalid(
                        "an access control script takes %{GLOBAL}, %{SERVER}, %{HOST} or a name"
                            .to_owned(),
                    ))
                }
                Ok(group) => group,
                Err(e) => return Err(invalid(e.to_string())),
            };
        }
        Ok(AccessScript {
            path: (*path).to_owned(),
            application_group,
        })
    }
}

/// Adds the words of one `WSGITrustedProxyHeaders` line to `headers`.
pub fn add_proxy_headers(
    d: Directive,
    headers: &mut Vec<ProxyHeader>,
    args: &[&str],
) -> Result<(), ConfigError> {
    if args.is_empty() {
        return Err(super::args::wrong_count(
            d,
            args,
            "takes one or more header names",
        ));
    }
    for word in args {
        let header = ProxyHeader::parse(word)
            .map_err(|reason| ConfigError::invalid(d.name(), *word, reason))?;
        if !headers.contains(&header) {
            headers.push(header);
        }
    }
    Ok(())
}

/// Adds the words of one `WSGITrustedProxies` line to `proxies`.
pub fn add_trusted_proxies(
    d: Directive,
    proxies: &mut TrustedProxies,
    args: &[&str],
) -> Result<(), ConfigError> {
    if args.is_empty() {
        return Err(super::args::wrong_count(
            d,
            args,
            "takes one or more addresses or networks",
        ));
    }
    for word in args {
        proxies
            .push(word)
            .map_err(|reason| ConfigError::invalid(d.name(), *word, reason))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_with_and_without_group() {
        let s = AccessScript::parse(Directive::AuthUserScript, &["/srv/auth.wsgi"]).unwrap();
        assert_eq!(s.path, "/srv/auth.wsgi");
        assert_eq!(s.application_group, ApplicationGroup::Global);
        let s = AccessScript::parse(
            Directive::AccessScript,
            &["/srv/a.wsgi", "application-group=django"],
        )
        .unwrap();
        assert_eq!(
            s.application_group,
            ApplicationGroup::Named("django".into())
        );
        let s = AccessScript::parse(
            Directive::AuthGroupScript,
            &["/srv/a.wsgi", "application-group=%{SERVER}"],
        )
        .unwrap();
        assert_eq!(s.application_group, ApplicationGroup::Server);
    }

    #[test]
    fn script_errors_name_directive_and_value() {
        let err = |args: &[&str]| {
            AccessScript::parse(Directive::AuthUserScript, args)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&[]),
            "WSGIAuthUserScript: wrong number of arguments (none): takes a script file path, \
             then optionally application-group="
        );
        assert_eq!(
            err(&["application-group=x"]),
            "WSGIAuthUserScript: invalid value 'application-group=x': the first argument must \
             be the script's file path"
        );
        assert!(err(&["/a.wsgi", "process-group=site"]).starts_with(
            "WSGIAuthUserScript: invalid value 'process-group=site': access control scripts \
             always run in Apache's child processes"
        ));
        assert_eq!(
            err(&["/a.wsgi", "callable-object=x"]),
            "WSGIAuthUserScript: unknown option 'callable-object=x' (expected application-group=)"
        );
        assert!(err(&["/a.wsgi", "application-group=%{RESOURCE}"])
            .contains("takes %{GLOBAL}, %{SERVER}, %{HOST} or a name"));
        assert!(err(&["/a.wsgi", "application-group=%{ENV:X}"])
            .contains("takes %{GLOBAL}, %{SERVER}, %{HOST} or a name"));
        assert!(err(&["/a.wsgi", "application-group=%{NOPE}"])
            .starts_with("WSGIAuthUserScript: invalid value 'application-group=%{NOPE}'"));
    }

    #[test]
    fn proxy_headers_accumulate_without_repeats() {
        let mut h = Vec::new();
        add_proxy_headers(Directive::TrustedProxyHeaders, &mut h, &["X-Forwarded-For"]).unwrap();
        add_proxy_headers(
            Directive::TrustedProxyHeaders,
            &mut h,
            &["x-forwarded-proto", "X-Forwarded-For"],
        )
        .unwrap();
        let names: Vec<&str> = h.iter().map(|h| h.name()).collect();
        assert_eq!(names, ["X-Forwarded-For", "X-Forwarded-Proto"]);
        let err = add_proxy_headers(Directive::TrustedProxyHeaders, &mut h, &["X-Forwarded-Fro"])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "WSGITrustedProxyHeaders: invalid value 'X-Forwarded-Fro': not a forwarding \
                 header mod_wsgi knows"
            ),
            "{err}"
        );
        assert!(add_proxy_headers(Directive::TrustedProxyHeaders, &mut h, &[]).is_err());
    }

    #[test]
    fn trusted_proxies_accumulate_and_refuse_malformed_words() {
        let mut p = TrustedProxies::default();
        add_trusted_proxies(Directive::TrustedProxies, &mut p, &["10.0.0.1", "fd00::/8"]).unwrap();
        assert!(p.contains("10.0.0.1") && p.contains("fd00::5"));
        let err = add_trusted_proxies(Directive::TrustedProxies, &mut p, &["10.0.0.0/33"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "WSGITrustedProxies: invalid value '10.0.0.0/33': not an IP address or network: \
             prefix length must be 0-32"
        );
        assert!(add_trusted_proxies(Directive::TrustedProxies, &mut p, &[]).is_err());
    }
}
