//! Directives kept so that existing mod_wsgi configurations load: their
//! syntax is checked like mod_wsgi checks it, and where a setting has no
//! effect in mod_wsgi_rs, [`Notice`]s say so once at start-up (never
//! silence, never a refusal that stops the site).

use super::args::{exactly_one, exactly_one_non_empty, flag_directive, wrong_count};
use super::directive::Directive;
use super::error::ConfigError;

/// A start-up warning with a stable identifier (`WSGIRS1nn` for a
/// directive, see [`notice_id`]; `WSGIRS2nn` for a `WSGIDaemonProcess`
/// option, nn the option's index), so it can be searched for and filtered on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The notice's stable identifier (in the log line).
    pub id: String,
    /// What the notice says.
    pub message: String,
}

/// The id of a directive's notice. Fixed here, apart from the directive
/// table's order, so that adding directives never renumbers a notice.
pub fn notice_id(d: Directive) -> String {
    match d {
        Directive::VerboseDebugging => "WSGIRS101",
        Directive::AcceptMutex => "WSGIRS102",
        Directive::LazyInitialization => "WSGIRS103",
        Directive::CaseSensitivity => "WSGIRS104",
        Directive::ApplicationWrapper => "WSGIRS105",
        Directive::NewRelicConfigFile => "WSGIRS106",
        Directive::NewRelicEnvironment => "WSGIRS107",
        Directive::PerInterpreterGil => "WSGIRS108",
        Directive::FreeThreading => "WSGIRS109",
        Directive::InterpreterOptions => "WSGIRS110",
        Directive::TelemetryService => "WSGIRS111",
        Directive::TelemetryOptions => "WSGIRS112",
        // 113 was WSGISlowRequests' notice before the directive took effect.
        Directive::SocketRotation => "WSGIRS114",
        Directive::ServerMetrics => "WSGIRS115",
        // Directives with an effect have no notice; a new compatibility
        // directive takes the next free number of the table in
        // src/messages.rs (until it does, its notice has the family's id).
        _ => "WSGIRS100",
    }
    .to_owned()
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.id, self.message)
    }
}

impl Notice {
    /// A notice that directive `d` with `value` is accepted but does nothing here, and why.
    pub fn for_directive(d: Directive, value: &str, why: &str) -> Notice {
        Notice {
            id: notice_id(d),
            message: format!("{} {value}: {why}", d.name()),
        }
    }
}

/// The compatibility directives given, in order, with their arguments as
/// written (the last of a kind wins, as in mod_wsgi).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompatSettings {
    /// The compatibility directives given, with their values.
    pub given: Vec<(Directive, String)>,
}

/// The mutex mechanisms `WSGIAcceptMutex` may name.
const ACCEPT_MUTEXES: [&str; 6] = [
    "default", "flock", "fcntl", "sysvsem", "posixsem", "pthread",
];

impl CompatSettings {
    /// Checks and records one compatibility directive; `Ok(false)` when `d`
    /// is not one of them.
    pub fn apply(&mut self, d: Directive, args: &[&str]) -> Result<bool, ConfigError> {
        let name = d.name();
        match d {
            Directive::VerboseDebugging
            | Directive::LazyInitialization
            | Directive::CaseSensitivity
            | Directive::PerInterpreterGil
            | Directive::FreeThreading => {
                flag_directive(d, args)?;
            }
            Directive::AcceptMutex => {
                let value = exactly_one(d, args)?;
                if !ACCEPT_MUTEXES.iter().any(|m| m.eq_ignore_ascii_case(value)) {
                    return Err(ConfigError::invalid(
                        name,
                        value,
                        format!("expected one of {}", ACCEPT_MUTEXES.join(", ")),
                    ));
                }
            }
            Directive::ApplicationWrapper
            | Directive::NewRelicConfigFile
            | Directive::NewRelicEnvironment => {
                exactly_one_non_empty(d, args)?;
            }
            Directive::TelemetryService => check_telemetry_service(d, args)?,
            Directive::TelemetryOptions => check_telemetry_options(d, args)?,
            _ => return Ok(false),
        }
        self.given.push((d, args.join(" ")));
        Ok(true)
    }

    /// One notice per compatibility directive whose setting does nothing
    /// here, for the last value given.
    pub fn notices(&self) -> Vec<Notice> {
        let mut seen = Vec::new();
        let mut notices = Vec::new();
        for (d, value) in self.given.iter().rev() {
            if seen.contains(d) {
                continue;
            }
            seen.push(*d);
            if let Some(why) = no_effect(*d, value) {
                notices.push(Notice::for_directive(*d, value, why));
            }
        }
        notices.reverse();
        notices
    }
}

/// Why a compatibility setting has no effect here, or `None` when what it
/// asks for is what mod_wsgi_rs does anyway.
fn no_effect(d: Directive, value: &str) -> Option<&'static str> {
    let on = value.eq_ignore_ascii_case("on");
    match d {
        Directive::VerboseDebugging if on => Some(
            "accepted for compatibility, no effect: mod_wsgi_rs's debugging messages \
             are enabled with LogLevel wsgi_rs:debug",
        ),
        Directive::LazyInitialization if !on => Some(
            "accepted for compatibility, no effect: Python always starts in the child \
             and daemon processes, never in the Apache parent (mod_wsgi's default, On)",
        ),
        Directive::CaseSensitivity if !on => Some(
            "accepted for compatibility, no effect: file names are compared as the \
             file system stores them (case-sensitive on Linux)",
        ),
        Directive::PerInterpreterGil if on => Some(
            "accepted for compatibility, no effect: all interpreters of a process \
             share one GIL here",
        ),
        Directive::FreeThreading if on => Some(
            "accepted for compatibility, no effect: the embedded Python keeps its GIL \
             (free threading needs a free-threaded Python build)",
        ),
        Directive::AcceptMutex => Some(
            "accepted for compatibility, no effect: daemon processes take connections \
             through epoll without an accept mutex",
        ),
        Directive::ApplicationWrapper => Some(
            "accepted for compatibility, no effect: not supported; wrap the application \
             in the WSGI script instead",
        ),
        Directive::NewRelicConfigFile | Directive::NewRelicEnvironment => Some(
            "accepted for compatibility, no effect: the New Relic agent integration was \
             removed in mod_wsgi 6; initialise the agent in the WSGI script instead",
        ),
        Directive::TelemetryService | Directive::TelemetryOptions => Some(
            "accepted for compatibility, no effect: mod_wsgi 6's telemetry service \
                 is not implemented",
        ),
        _ => None,
    }
}

/// `unix:/path [interval=seconds]`, the interval at least 0.5 s.
fn check_telemetry_service(d: Directive, args: &[&str]) -> Result<(), ConfigError> {
    let (target, interval) = match args {
        [target] => (*target, None),
        [target, interval] => (*target, Some(*interval)),
        _ => return Err(wrong_count(d, args, "takes one or two arguments")),
    };
    if !target.starts_with("unix:/") {
        return Err(ConfigError::invalid(
            d.name(),
            target,
            "the target must be unix:/path",
        ));
    }
    if let Some(word) = interval {
        let seconds = word
            .strip_prefix("interval=")
            .ok_or_else(|| {
                ConfigError::invalid(d.name(), word, "second argument must be interval=seconds")
            })?
            .parse::<f64>();
        match seconds {
            Ok(s) if s.is_finite() && s >= 0.5 => {}
            _ => {
                return Err(ConfigError::invalid(
                    d.name(),
                    word,
                    "interval must be at least 0.5 seconds",
                ))
            }
        }
    }
    Ok(())
}

/// `[+|-]Flag ...` or `None`/`All`, not mixing the absolute and the
/// incremental forms (Apache's `Options` convention).
fn check_telemetry_options(d: Directive, args: &[&str]) -> Result<(), ConfigError> {
    const FLAGS: [&str; 1] = ["CaptureUserAgent"];
    if args.is_empty() {
        return Err(wrong_count(d, args, "takes at least one flag"));
    }
    let (mut absolute, mut incremental) = (false, false);
    for word in args {
        let (sign, flag) = match word.strip_prefix(['+', '-']) {
            Some(flag) => (true, flag),
            None => (false, *word),
        };
        let pseudo = flag.eq_ignore_ascii_case("none") || flag.eq_ignore_ascii_case("all");
        if !pseudo && !FLAGS.iter().any(|f| f.eq_ignore_ascii_case(flag)) {
            return Err(ConfigError::invalid(
                d.name(),
                *word,
                "unknown flag (expected CaptureUserAgent, None or All)",
            ));
        }
        if pseudo && sign {
            return Err(ConfigError::invalid(
                d.name(),
                *word,
                "None and All take no + or -",
            ));
        }
        if sign {
            incremental = true;
        } else {
            absolute = true;
        }
    }
    if absolute && incremental {
        return Err(ConfigError::invalid(
            d.name(),
            args.join(" "),
            "either all flags take + or -, or none do",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(d: Directive, args: &[&str]) -> String {
        CompatSettings::default()
            .apply(d, args)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn accepts_mod_wsgi_syntax() {
        let mut c = CompatSettings::default();
        for (d, args) in [
            (Directive::AcceptMutex, &["fcntl"][..]),
            (Directive::LazyInitialization, &["On"]),
            (Directive::CaseSensitivity, &["On"]),
            (Directive::ApplicationWrapper, &["wrap:app"]),
            (Directive::NewRelicConfigFile, &["/etc/newrelic.ini"]),
            (Directive::NewRelicEnvironment, &["production"]),
            (Directive::PerInterpreterGil, &["Off"]),
            (Directive::FreeThreading, &["off"]),
            (Directive::VerboseDebugging, &["Off"]),
            (
                Directive::TelemetryService,
                &["unix:/run/t.sock", "interval=2"],
            ),
            (Directive::TelemetryOptions, &["+CaptureUserAgent"]),
            (Directive::TelemetryOptions, &["None"]),
        ] {
            assert!(c.apply(d, args).unwrap(), "{}", d.name());
        }
        assert!(!c.apply(Directive::ScriptAlias, &["/"]).unwrap());
    }

    #[test]
    fn notices_only_where_a_setting_does_nothing_once_each_with_stable_ids() {
        let mut c = CompatSettings::default();
        c.apply(Directive::LazyInitialization, &["On"]).unwrap();
        c.apply(Directive::PerInterpreterGil, &["Off"]).unwrap();
        c.apply(Directive::AcceptMutex, &["flock"]).unwrap();
        c.apply(Directive::AcceptMutex, &["default"]).unwrap();
        c.apply(Directive::FreeThreading, &["On"]).unwrap();
        let notices = c.notices();
        let ids: Vec<&str> = notices.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["WSGIRS102", "WSGIRS109"]);
        assert_eq!(
            notices[0].to_string(),
            "WSGIRS102: WSGIAcceptMutex default: accepted for compatibility, no effect: \
             daemon processes take connections through epoll without an accept mutex"
        );
    }

    #[test]
    fn every_notice_has_its_own_fixed_id() {
        let mut ids: Vec<String> = Directive::all()
            .filter(|d| {
                ["On", "Off", "x"]
                    .iter()
                    .any(|v| no_effect(*d, v).is_some())
            })
            .map(notice_id)
            .collect();
        for d in [
            Directive::InterpreterOptions,
            Directive::SocketRotation,
            Directive::ServerMetrics,
        ] {
            ids.push(notice_id(d));
        }
        assert!(!ids.contains(&"WSGIRS100".to_owned()), "{ids:?}");
        for id in &ids {
            let n: u16 = id["WSGIRS".len()..].parse().unwrap();
            let entry =
                crate::messages::lookup(n).unwrap_or_else(|| panic!("{id} not in the table"));
            assert_eq!(entry.level, crate::messages::Level::Warn, "{id}");
        }
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "duplicate notice ids");
    }

    #[test]
    fn errors_name_directive_and_value() {
        for (d, args, expected) in [
            (
                Directive::AcceptMutex,
                &["spin"][..],
                "WSGIAcceptMutex: invalid value 'spin': expected one of default, flock, \
                 fcntl, sysvsem, posixsem, pthread",
            ),
            (
                Directive::LazyInitialization,
                &["yes"],
                "WSGILazyInitialization: invalid value 'yes': expected On or Off",
            ),
            (
                Directive::TelemetryService,
                &["udp:host:1"],
                "WSGITelemetryService: invalid value 'udp:host:1': the target must be unix:/path",
            ),
            (
                Directive::TelemetryService,
                &["unix:/s", "interval=0.1"],
                "WSGITelemetryService: invalid value 'interval=0.1': interval must be at \
                 least 0.5 seconds",
            ),
            (
                Directive::TelemetryOptions,
                &["+CaptureUserAgent", "All"],
                "WSGITelemetryOptions: invalid value '+CaptureUserAgent All': either all \
                 flags take + or -, or none do",
            ),
            (
                Directive::TelemetryOptions,
                &["Bogus"],
                "WSGITelemetryOptions: invalid value 'Bogus': unknown flag (expected \
                 CaptureUserAgent, None or All)",
            ),
            (
                Directive::NewRelicConfigFile,
                &[],
                "WSGINewRelicConfigFile: wrong number of arguments (none): takes exactly one argument",
            ),
        ] {
            assert_eq!(error(d, args), expected);
        }
    }
}
