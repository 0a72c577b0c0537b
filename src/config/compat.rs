//! Directives kept so that existing mod_wsgi configurations load: their
//! syntax is checked like mod_wsgi checks it, and where a setting has no
//! effect in mod_wsgi_rs, [`Notice`]s say so once at start-up (never
//! silence, never a refusal that stops the site).

use super::args::{exactly_one, exactly_one_non_empty, flag_directive, wrong_count};
use super::directive::Directive;
use super::error::ConfigError;

/// A start-up warning with a stable identifier (`WSGIRS1nn` for a
/// directive, `WSGIRS2nn` for a `WSGIDaemonProcess` option), so it can be
/// searched for and filtered on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The notice's stable identifier (in the log line).
    pub id: String,
    /// What the notice says.
    pub message: String,
}

/// A directive accepted for compatibility whose setting has no effect here.
/// Its notice is made from this row, and so is its entry in
/// `docs/messages.md` (`src/messages.rs` adds the remedy): the reason is
/// written once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NoEffect {
    /// The directive.
    pub(crate) directive: Directive,
    /// Its notice's number after `WSGIRS`, fixed here apart from the
    /// directive table's order so that adding directives renumbers nothing.
    pub(crate) id: u16,
    /// The value that has no effect (`On`, `Off`), or empty for any value.
    pub(crate) value: &'static str,
    /// Why it has none (the end of the notice; no full stop).
    pub(crate) why: &'static str,
}

/// A row of [`NO_EFFECT`].
const fn no_effect(
    directive: Directive,
    id: u16,
    value: &'static str,
    why: &'static str,
) -> NoEffect {
    NoEffect {
        directive,
        id,
        value,
        why,
    }
}

/// Every directive accepted for compatibility that has no effect here, in
/// number order (a compatibility directive without a row here gives no
/// notice: a unit test below checks every one has its row).
pub(crate) const NO_EFFECT: &[NoEffect] = &[
    no_effect(
        Directive::VerboseDebugging,
        101,
        "On",
        "debugging messages are enabled with LogLevel wsgi_rs:debug",
    ),
    no_effect(
        Directive::AcceptMutex,
        102,
        "",
        "daemon processes take connections through epoll without an accept mutex",
    ),
    no_effect(
        Directive::LazyInitialization,
        103,
        "Off",
        "Python always starts in the child and daemon processes, never in the Apache parent \
         (mod_wsgi's default, On)",
    ),
    no_effect(
        Directive::CaseSensitivity,
        104,
        "Off",
        "file names are compared as the file system stores them (case-sensitive on Linux)",
    ),
    no_effect(
        Directive::ApplicationWrapper,
        105,
        "",
        "it is not supported",
    ),
    no_effect(
        Directive::NewRelicConfigFile,
        106,
        "",
        "the New Relic integration was removed in mod_wsgi 6",
    ),
    no_effect(
        Directive::NewRelicEnvironment,
        107,
        "",
        "the New Relic integration was removed in mod_wsgi 6",
    ),
    no_effect(
        Directive::PerInterpreterGil,
        108,
        "On",
        "all interpreters of a process share one GIL",
    ),
    no_effect(
        Directive::FreeThreading,
        109,
        "On",
        "the embedded Python keeps its GIL (free threading needs a free-threaded Python build)",
    ),
    no_effect(
        Directive::InterpreterOptions,
        110,
        "",
        "the settings inside the container are checked but not applied",
    ),
    no_effect(
        Directive::TelemetryService,
        111,
        "",
        "mod_wsgi 6's telemetry service is not implemented",
    ),
    no_effect(
        Directive::TelemetryOptions,
        112,
        "",
        "mod_wsgi 6's telemetry service is not implemented",
    ),
    // 113 was WSGISlowRequests' notice before the directive took effect.
    no_effect(
        Directive::SocketRotation,
        114,
        "On",
        "daemon sockets keep their names across restarts (PREFIX.GROUP.sock, which ProxyPass \
         lines need), as with WSGISocketRotation Off, and requests from the previous \
         generation's children are still served",
    ),
    // 115 is SERVER_METRICS_ON below; 116 is no notice.
    no_effect(
        Directive::GroupAuthoritative,
        117,
        "",
        "under Apache 2.4 (with mod_wsgi there neither) <RequireAny>/<RequireAll> decide \
         whether another Require line may grant what Require wsgi-group refused",
    ),
];

/// The notice (`WSGIRS115`) of `WSGIServerMetrics On`, which has an effect,
/// but not all it has in mod_wsgi.
pub(crate) const SERVER_METRICS_ON: &str = "WSGIServerMetrics On collects the metrics \
    SetHandler wsgi-rs-metrics serves, but mod_wsgi.server_metrics() still answers None \
    (Apache's scoreboard is not read)";

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.id, self.message)
    }
}

impl Notice {
    /// The notice `WSGIRS{id}` that `setting`, as given, has no effect,
    /// because `why`.
    pub fn no_effect(id: usize, setting: &str, why: &str) -> Notice {
        Notice {
            id: format!("WSGIRS{id}"),
            message: format!("{setting}: accepted for compatibility, no effect: {why}"),
        }
    }

    /// The notice that directive `d` given `value` has no effect here, or
    /// `None` when it has (or is no compatibility directive). `setting` is
    /// how the notice names it (`WSGIAcceptMutex flock`).
    pub fn for_directive(d: Directive, value: &str, setting: &str) -> Option<Notice> {
        let row = NO_EFFECT.iter().find(|row| row.directive == d)?;
        (row.value.is_empty() || row.value.eq_ignore_ascii_case(value))
            .then(|| Notice::no_effect(usize::from(row.id), setting, row.why))
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
            let setting = format!("{} {value}", d.name());
            notices.extend(Notice::for_directive(*d, value, &setting));
        }
        notices.reverse();
        notices
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

    /// Every compatibility directive has its row in `NO_EFFECT` and no
    /// other directive has one; ids are unique and in order.
    #[test]
    fn every_compatibility_directive_has_its_row() {
        // Those stored elsewhere, whose notices are made elsewhere.
        let others = [
            Directive::InterpreterOptions,
            Directive::SocketRotation,
            Directive::GroupAuthoritative,
        ];
        let compat = |d: Directive| {
            others.contains(&d) || !matches!(CompatSettings::default().apply(d, &["On"]), Ok(false))
        };
        for d in Directive::all() {
            assert_eq!(
                NO_EFFECT.iter().any(|row| row.directive == d),
                compat(d),
                "{}: a directive accepted for compatibility has a row in NO_EFFECT, \
                 and no other does",
                d.name()
            );
        }
        for pair in NO_EFFECT.windows(2) {
            assert!(pair[0].id < pair[1].id, "WSGIRS{}", pair[1].id);
        }
        for row in NO_EFFECT {
            assert!((100..200).contains(&row.id), "WSGIRS{}", row.id);
            assert!(["", "On", "Off"].contains(&row.value), "WSGIRS{}", row.id);
        }
    }

    /// A directive's notice is made from its row: the value the row names
    /// is reported, others are not.
    #[test]
    fn a_notice_says_what_its_row_says() {
        let notice = Notice::for_directive(Directive::FreeThreading, "on", "WSGIFreeThreading on")
            .expect("On has no effect");
        assert_eq!(
            notice.to_string(),
            "WSGIRS109: WSGIFreeThreading on: accepted for compatibility, no effect: the \
             embedded Python keeps its GIL (free threading needs a free-threaded Python build)"
        );
        assert_eq!(
            Notice::for_directive(Directive::FreeThreading, "Off", "WSGIFreeThreading Off"),
            None
        );
        assert_eq!(
            Notice::for_directive(Directive::ScriptAlias, "/", "WSGIScriptAlias /"),
            None
        );
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
