//! Why a daemon process was replaced: the reasons the metrics board counts
//! restarts by, and the label each has in the Prometheus text.

/// Why a daemon process was replaced (`wsgi_rs_process_restarts_total`'s
/// `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `maximum-requests` reached.
    MaximumRequests,
    /// The WSGI script changed (touch-to-reload).
    Reload,
    /// A request ran past `request-timeout`.
    Timeout,
    /// The application did not load within `startup-timeout`.
    StartupTimeout,
    /// `restart-interval` passed.
    RestartInterval,
    /// `inactivity-timeout` passed without requests.
    InactivityTimeout,
    /// The interpreter stayed deadlocked past `deadlock-timeout`.
    Deadlock,
    /// Resident memory passed `maximum-memory`.
    Memory,
    /// The process died without saying why (a signal, an abort, the kernel's
    /// out-of-memory killer, a failed start).
    Crash,
    /// Apache restarted: a process of the earlier generation finished its
    /// requests and stopped once its group's new processes were ready (or,
    /// its group gone, once no earlier Apache child was left).
    Graceful,
}

impl Reason {
    /// Every reason, in label order.
    pub const ALL: [Reason; 10] = [
        Reason::MaximumRequests,
        Reason::Reload,
        Reason::Timeout,
        Reason::StartupTimeout,
        Reason::RestartInterval,
        Reason::InactivityTimeout,
        Reason::Deadlock,
        Reason::Memory,
        Reason::Crash,
        Reason::Graceful,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Reason::MaximumRequests => "maximum-requests",
            Reason::Reload => "reload",
            Reason::Timeout => "timeout",
            Reason::StartupTimeout => "startup-timeout",
            Reason::RestartInterval => "restart-interval",
            Reason::InactivityTimeout => "inactivity-timeout",
            Reason::Deadlock => "deadlock",
            Reason::Memory => "memory",
            Reason::Crash => "crash",
            Reason::Graceful => "graceful",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_reason_labels_are_distinct() {
        let labels: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), Reason::ALL.len());
    }
}
