//! Why a daemon process stops: one declaration from which the log text,
//! mod_wsgi's `shutdown_reason` name and the metrics restart reason are
//! all derived, so none of them is parsed back out of another.

use std::fmt;
use std::path::PathBuf;

use crate::metrics::Reason;

/// Why a daemon process is replaced or exits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `maximum-requests` (this figure, its jitter added) was reached.
    MaximumRequests(u64),
    /// Resident memory passed `maximum-memory` (ours: mod_wsgi has none).
    MaximumMemory {
        /// The limit, in bytes.
        limit: u64,
        /// The resident memory that passed it, in bytes.
        resident: u64,
    },
    /// A request passed `request-timeout` with no `interrupt-timeout`.
    RequestTimeout,
    /// A request interrupted by `mod_wsgi.RequestTimeout` did not unwind
    /// within `interrupt-timeout`.
    RequestDidNotUnwind,
    /// The application kept failing to load for `startup-timeout`.
    StartupTimeout,
    /// `restart-interval` passed.
    RestartInterval,
    /// `inactivity-timeout` passed with no request.
    InactivityTimeout,
    /// This script changed on disk (daemon mode reloads by replacement).
    ScriptChanged(PathBuf),
    /// A process forked from a template was replaced by its successor.
    ReplacedBySuccessor,
    /// An ASGI application's lifespan startup failed (the text says how).
    AsgiStartupFailed(String),
    /// Apache asked the daemon processes to stop.
    ApacheStop,
    /// The Apache parent process has gone.
    ParentGone,
}

impl StopReason {
    /// mod_wsgi's name for it (`process_stopping`'s `shutdown_reason`).
    pub fn shutdown_name(&self) -> &'static str {
        match self {
            StopReason::MaximumRequests(_) => "maximum_requests",
            // Ours: mod_wsgi has no memory threshold.
            StopReason::MaximumMemory { .. } => "maximum_memory",
            StopReason::RequestTimeout | StopReason::RequestDidNotUnwind => "request_timeout",
            StopReason::StartupTimeout => "startup_timeout",
            StopReason::RestartInterval => "restart_interval",
            StopReason::InactivityTimeout => "inactivity_timeout",
            StopReason::ScriptChanged(_) => "script_reload",
            StopReason::ReplacedBySuccessor
            | StopReason::AsgiStartupFailed(_)
            | StopReason::ApacheStop
            | StopReason::ParentGone => "shutdown_signal",
        }
    }

    /// Whether a process stopping for this reason serves on until its
    /// successor does (without a template: see `succession::Relay`). A
    /// changed script does not: requests after a touch get the new code.
    pub fn waits_for_successor(&self) -> bool {
        matches!(
            self,
            StopReason::MaximumRequests(_)
                | StopReason::MaximumMemory { .. }
                | StopReason::RequestTimeout
                | StopReason::RequestDidNotUnwind
                | StopReason::StartupTimeout
                | StopReason::RestartInterval
                | StopReason::InactivityTimeout
        )
    }

    /// The restart it counts as on the metrics board; None for a stop that
    /// is not a restart of the process by its own rule.
    pub fn metric(&self) -> Option<Reason> {
        Some(match self {
            StopReason::MaximumRequests(_) => Reason::MaximumRequests,
            StopReason::MaximumMemory { .. } => Reason::Memory,
            StopReason::RequestTimeout | StopReason::RequestDidNotUnwind => Reason::Timeout,
            StopReason::StartupTimeout => Reason::StartupTimeout,
            StopReason::RestartInterval => Reason::RestartInterval,
            StopReason::InactivityTimeout => Reason::InactivityTimeout,
            StopReason::ScriptChanged(_) => Reason::Reload,
            StopReason::ReplacedBySuccessor
            | StopReason::AsgiStartupFailed(_)
            | StopReason::ApacheStop
            | StopReason::ParentGone => return None,
        })
    }
}

/// The text the restart and exit log lines carry.
impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::MaximumRequests(max) => write!(f, "maximum requests ({max}) reached"),
            StopReason::MaximumMemory { limit, resident } => write!(
                f,
                "maximum memory ({limit} bytes) passed: {resident} bytes resident"
            ),
            StopReason::RequestTimeout => f.write_str("request timeout"),
            StopReason::RequestDidNotUnwind => {
                f.write_str("request timeout: a request did not unwind")
            }
            StopReason::StartupTimeout => {
                f.write_str("startup timeout: the application did not load")
            }
            StopReason::RestartInterval => f.write_str("restart interval reached"),
            StopReason::InactivityTimeout => f.write_str("inactivity timeout reached"),
            StopReason::ScriptChanged(path) => write!(f, "script '{}' changed", path.display()),
            StopReason::ReplacedBySuccessor => f.write_str("replaced by its successor"),
            StopReason::AsgiStartupFailed(why) => f.write_str(why),
            StopReason::ApacheStop => f.write_str("Apache asked daemon processes to stop"),
            StopReason::ParentGone => f.write_str("the Apache parent has gone"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StopReason;
    use crate::metrics::Reason;

    #[test]
    fn each_reason_has_its_text_mod_wsgi_name_and_metric() {
        for (why, text, name, metric) in [
            (
                StopReason::MaximumRequests(5),
                "maximum requests (5) reached",
                "maximum_requests",
                Some(Reason::MaximumRequests),
            ),
            (
                StopReason::MaximumMemory {
                    limit: 1048576,
                    resident: 2097152,
                },
                "maximum memory (1048576 bytes) passed: 2097152 bytes resident",
                "maximum_memory",
                Some(Reason::Memory),
            ),
            (
                StopReason::RequestDidNotUnwind,
                "request timeout: a request did not unwind",
                "request_timeout",
                Some(Reason::Timeout),
            ),
            (
                StopReason::RequestTimeout,
                "request timeout",
                "request_timeout",
                Some(Reason::Timeout),
            ),
            (
                StopReason::StartupTimeout,
                "startup timeout: the application did not load",
                "startup_timeout",
                Some(Reason::StartupTimeout),
            ),
            (
                StopReason::RestartInterval,
                "restart interval reached",
                "restart_interval",
                Some(Reason::RestartInterval),
            ),
            (
                StopReason::InactivityTimeout,
                "inactivity timeout reached",
                "inactivity_timeout",
                Some(Reason::InactivityTimeout),
            ),
            (
                StopReason::ScriptChanged("/srv/app.wsgi".into()),
                "script '/srv/app.wsgi' changed",
                "script_reload",
                Some(Reason::Reload),
            ),
            (
                StopReason::ReplacedBySuccessor,
                "replaced by its successor",
                "shutdown_signal",
                None,
            ),
            (
                StopReason::AsgiStartupFailed("ASGI lifespan startup failed".into()),
                "ASGI lifespan startup failed",
                "shutdown_signal",
                None,
            ),
            (
                StopReason::ApacheStop,
                "Apache asked daemon processes to stop",
                "shutdown_signal",
                None,
            ),
            (
                StopReason::ParentGone,
                "the Apache parent has gone",
                "shutdown_signal",
                None,
            ),
        ] {
            assert_eq!(why.to_string(), text);
            assert_eq!(why.shutdown_name(), name, "{text}");
            assert_eq!(why.metric(), metric, "{text}");
            // The process's own limits wait for a successor; a changed
            // script (new code at once) and every stop from outside do not.
            let own_limit = metric.is_some() && !matches!(why, StopReason::ScriptChanged(_));
            assert_eq!(why.waits_for_successor(), own_limit, "{text}");
        }
    }
}
