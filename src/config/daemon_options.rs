//! The options of `WSGIDaemonProcess`: mod_wsgi's names, which ones have no
//! effect here, and the readers that check each kind of value.

use std::time::Duration;

use super::args::parse_whole_number;

/// mod_wsgi caps threads one below its internal stack marker (0xffff).
pub(super) const MAX_THREADS: u64 = 0xfffd;

/// Every option `WSGIDaemonProcess` accepts, as mod_wsgi spells them.
pub(crate) const DAEMON_OPTIONS: [&str; 51] = [
    "user",
    "group",
    "supplementary-groups",
    "processes",
    "threads",
    "umask",
    "chroot",
    "home",
    "lang",
    "locale",
    "python-home",
    "python-path",
    "python-eggs",
    "switch-interval",
    "stack-size",
    "maximum-requests",
    "startup-timeout",
    "shutdown-timeout",
    "deadlock-timeout",
    "inactivity-timeout",
    "request-timeout",
    "interrupt-timeout",
    "graceful-timeout",
    "eviction-timeout",
    "restart-interval",
    "connect-timeout",
    "socket-timeout",
    "queue-timeout",
    "listen-backlog",
    "display-name",
    "send-buffer-size",
    "receive-buffer-size",
    "header-buffer-size",
    "response-buffer-size",
    "response-socket-timeout",
    "response-flush-delay",
    "socket-user",
    "script-user",
    "script-group",
    "cpu-time-limit",
    "cpu-priority",
    "memory-limit",
    "virtual-memory-limit",
    "server-metrics",
    // mod_wsgi 4.9 only (removed in 6).
    "newrelic-config-file",
    "newrelic-environment",
    // Ours, beyond mod_wsgi (last, so the notice ids above keep their numbers).
    "maximum-memory",
    "maximum-requests-jitter",
    "process-template",
    "header-timeout",
    "request-buffer-size",
];

/// Options accepted for compatibility that do nothing here, and why: each
/// given one is reported once at start-up (see [`DaemonProcessSpec::notices`])
/// as `WSGIRS` 200 + its place in [`DAEMON_OPTIONS`]. `src/messages.rs`
/// makes each one's entry in `docs/messages.md` from this table.
pub(crate) const NO_EFFECT: [(&str, &str); 6] = [
    (
        "eviction-timeout",
        "SIGUSR1 stops a daemon process as SIGTERM does, within shutdown-timeout; \
         the replacements the module orders wait graceful-timeout",
    ),
    (
        "response-buffer-size",
        "the response is passed to Apache as it is read and flushed whenever the daemon \
         has no more ready; no flush is forced after a number of bytes",
    ),
    (
        "response-flush-delay",
        "the response is flushed as soon as the daemon has no more ready, without \
         waiting for more",
    ),
    (
        "newrelic-config-file",
        "the New Relic integration was removed in mod_wsgi 6",
    ),
    (
        "newrelic-environment",
        "the New Relic integration was removed in mod_wsgi 6",
    ),
    // Reported only when On (Off is what happens anyway).
    (
        "server-metrics",
        "mod_wsgi.server_metrics() answers None; SetHandler wsgi-rs-metrics serves \
         every daemon group's metrics without it",
    ),
];
/// Reads one option's value; `Err` carries the reason only.
pub(super) struct OptionValue<'a> {
    /// The text after `=`.
    pub(super) value: &'a str,
}

impl OptionValue<'_> {
    /// The value as an integer within `min..=max`.
    pub(super) fn number(&self, min: u64, max: u64) -> Result<u64, String> {
        let n = parse_whole_number(self.value).map_err(str::to_owned)?;
        if n < min {
            return Err(format!("must be at least {min}"));
        }
        if n > max {
            return Err(format!("must be at most {max}"));
        }
        Ok(n)
    }

    /// The value as a count of at least `min`.
    pub(super) fn count_u32(&self, min: u32) -> Result<u32, String> {
        self.number(u64::from(min), u64::from(u32::MAX))
            .map(|n| n as u32)
    }

    /// The value as whole seconds.
    pub(super) fn seconds(&self) -> Result<Duration, String> {
        self.number(0, u64::MAX).map(Duration::from_secs)
    }

    /// A buffer size that is either 0 (system default) or at least `min`.
    pub(super) fn buffer_size(&self, min: u32) -> Result<u32, String> {
        let size = self.count_u32(0)?;
        if size != 0 && size < min {
            return Err(format!("must be 0 (default) or at least {min} bytes"));
        }
        Ok(size)
    }

    /// A resident-memory threshold in bytes: 0 (off) or at least 1 MiB, as
    /// no Python process is smaller (a tiny value is a unit mistake).
    pub(super) fn memory_threshold(&self) -> Result<u64, String> {
        const MIN: u64 = 1 << 20;
        let bytes = self.number(0, u64::MAX)?;
        if bytes != 0 && bytes < MIN {
            return Err(format!("must be 0 (off) or at least {MIN} bytes"));
        }
        Ok(bytes)
    }

    /// The value, which must be an absolute path.
    pub(super) fn absolute_path(&self) -> Result<String, String> {
        if !self.value.starts_with('/') {
            return Err("must be an absolute path".to_owned());
        }
        Ok(self.value.to_owned())
    }

    /// A user as mod_wsgi accepts it, refusing root up front; the caller
    /// must still refuse a name that resolves to uid 0.
    pub(super) fn non_root_user(&self) -> Result<String, String> {
        let is_root = self.value == "root"
            || self
                .value
                .strip_prefix('#')
                .is_some_and(|uid| uid.parse::<u64>() == Ok(0));
        if is_root {
            return Err("daemon processes are not allowed to run as root".to_owned());
        }
        Ok(self.value.to_owned())
    }

    /// The value split at `separator`, empty parts dropped.
    pub(super) fn list(&self, separator: char) -> Result<Vec<String>, String> {
        let items: Vec<String> = self.value.split(separator).map(str::to_owned).collect();
        if items.iter().any(String::is_empty) {
            return Err(format!("empty entry in '{separator}'-separated list"));
        }
        Ok(items)
    }
}

/// An octal umask such as `0007`.
pub(super) fn parse_umask(value: &str) -> Result<u32, String> {
    if value.is_empty() || !value.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err("expected an octal number such as 0022".to_owned());
    }
    match u32::from_str_radix(value, 8) {
        Ok(mask) if mask <= 0o7777 => Ok(mask),
        _ => Err("must be at most 07777".to_owned()),
    }
}

/// `sys.setswitchinterval` seconds: a positive number.
pub(crate) fn parse_switch_interval(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 => Ok(seconds),
        _ => Err("expected a positive number of seconds".to_owned()),
    }
}

/// A nice value, -20 to 19.
pub(super) fn parse_cpu_priority(value: &str) -> Result<i32, String> {
    match value.parse::<i32>() {
        Ok(priority) if (-20..=20).contains(&priority) => Ok(priority),
        Ok(_) => Err("must be between -20 and 20".to_owned()),
        Err(_) => Err("expected a whole number between -20 and 20".to_owned()),
    }
}
