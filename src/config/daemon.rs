//! `WSGIDaemonProcess`: the options of a daemon process group, with
//! mod_wsgi's names, defaults and limits.

use std::time::Duration;

use super::args::{parse_on_off, parse_options, wrong_count};
use super::compat::Notice;
use super::daemon_options::{
    parse_cpu_priority, parse_switch_interval, parse_umask, OptionValue, DAEMON_OPTIONS,
    MAX_THREADS, NO_EFFECT,
};
use super::directive::Directive;
use super::error::ConfigError;

/// mod_wsgi's own default for `listen-backlog`.
const DEFAULT_LISTEN_BACKLOG: u32 = 100;
/// Default `header-timeout=`: a local peer (our Apache side, mod_proxy_uwsgi,
/// nginx) sends a request head in one write, so this only ever cuts off
/// connections that send nothing or dribble.
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `request-buffer-size=`: 1 MiB.
pub const DEFAULT_REQUEST_BUFFER_SIZE: u64 = 1 << 20;
/// Largest `request-buffer-size=`: each request being received may hold
/// this much memory on both sides.
const MAX_REQUEST_BUFFER_SIZE: u64 = 64 << 20;

/// One `WSGIDaemonProcess` definition. Zero durations and sizes mean "not
/// set / system default", as in mod_wsgi.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonProcessSpec {
    /// The group's name.
    pub name: String,
    /// Number of processes (default 1).
    pub processes: u32,
    /// True when `processes=` was given at all, even as 1: mod_wsgi then
    /// reports `wsgi.multiprocess` as True.
    pub multiprocess: bool,
    /// Request threads per process (default 15). 0 is mod_wsgi's special
    /// mode for a process that only runs a `WSGIImportScript`.
    pub threads: u32,
    /// User name or `#uid`; `None` means Apache's `User`.
    pub user: Option<String>,
    /// Group name or `#gid`; `None` means Apache's `Group`.
    pub group: Option<String>,
    /// `supplementary-groups=`.
    pub supplementary_groups: Vec<String>,
    /// Initial working directory (absolute).
    pub home: Option<String>,
    /// `umask=`.
    pub umask: Option<u32>,
    /// `chroot=`.
    pub chroot: Option<String>,
    /// `python-home=`.
    pub python_home: Option<String>,
    /// `python-path=`.
    pub python_path: Vec<String>,
    /// `python-eggs=`.
    pub python_eggs: Option<String>,
    /// `lang=`.
    pub lang: Option<String>,
    /// `locale=`.
    pub locale: Option<String>,
    /// Process title; see [`DaemonProcessSpec::process_title`].
    pub display_name: Option<String>,
    /// GIL switch interval in seconds, for `sys.setswitchinterval()`.
    pub switch_interval: Option<f64>,
    /// Thread stack size in bytes (0: system default).
    pub stack_size: u64,
    /// `maximum-requests=`; 0 for none.
    pub maximum_requests: u64,
    /// `maximum-requests-jitter=`: each process's limit is
    /// `maximum-requests` plus a random number up to this (gunicorn's
    /// `max-requests-jitter`), so processes started together do not all
    /// reach it together.
    pub maximum_requests_jitter: u64,
    /// `process-template=On`: Python starts, and the group's scripts that
    /// run in the main interpreter are imported, once in a template
    /// process; every daemon process is forked from it, and a process is
    /// replaced only once its successor serves.
    pub process_template: bool,
    /// `restart-interval=`; zero for none.
    pub restart_interval: Duration,
    /// `inactivity-timeout=`; zero for none.
    pub inactivity_timeout: Duration,
    /// `request-timeout=`; zero for none.
    pub request_timeout: Duration,
    /// `interrupt-timeout=`: zero, a request past `request-timeout` restarts
    /// the process; else its thread gets `mod_wsgi.RequestTimeout` and this
    /// long to unwind before the process is restarted (mod_wsgi 6).
    pub interrupt_timeout: Duration,
    /// `graceful-timeout=`.
    pub graceful_timeout: Duration,
    /// 0 means "use `graceful_timeout`".
    pub eviction_timeout: Duration,
    /// `shutdown-timeout=`.
    pub shutdown_timeout: Duration,
    /// `startup-timeout=`; zero for none.
    pub startup_timeout: Duration,
    /// `deadlock-timeout=`; zero for none.
    pub deadlock_timeout: Duration,
    /// `queue-timeout=`; zero for none.
    pub queue_timeout: Duration,
    /// `connect-timeout=`.
    pub connect_timeout: Duration,
    /// 0 means "use Apache's `Timeout`".
    pub socket_timeout: Duration,
    /// How long one write of the response to Apache may block (zero: as
    /// `socket_timeout`, resolved when the group is planned, as mod_wsgi does).
    pub response_socket_timeout: Duration,
    /// Given in milliseconds; default 5 ms.
    pub response_flush_delay: Duration,
    /// `listen-backlog=`.
    pub listen_backlog: u32,
    /// `socket-user=`.
    pub socket_user: Option<String>,
    /// `script-user=`.
    pub script_user: Option<String>,
    /// `script-group=`.
    pub script_group: Option<String>,
    /// `cpu-time-limit=`; zero for none.
    pub cpu_time_limit: Duration,
    /// Scheduling priority, -20 to 20.
    pub cpu_priority: i32,
    /// Bytes.
    pub memory_limit: u64,
    /// Bytes.
    pub virtual_memory_limit: u64,
    /// `maximum-memory=` bytes of resident memory past which a process is
    /// replaced gracefully; 0 for none (ours, beyond mod_wsgi).
    pub maximum_memory: u64,
    /// `send-buffer-size=`; 0 for the system's.
    pub send_buffer_size: u32,
    /// `receive-buffer-size=`; 0 for the system's.
    pub receive_buffer_size: u32,
    /// `header-buffer-size=`; 0 for the default.
    pub header_buffer_size: u32,
    /// `response-buffer-size=`; 0 for the default.
    pub response_buffer_size: u32,
    /// `server-metrics=`.
    pub server_metrics: bool,
    /// `header-timeout=` (ours): a connection to the group's socket that has
    /// not sent a complete request head this long after connecting (or
    /// after the first byte of a later request on a kept connection) is
    /// closed; zero for never. No daemon thread waits for it meanwhile.
    pub header_timeout: Duration,
    /// `request-buffer-size=` (ours): request bodies up to this many bytes
    /// are received in full before a daemon thread takes the request (by
    /// the Apache child for our own requests, by the daemon's event loop
    /// for other uwsgi peers); larger ones are streamed to the application
    /// as it reads them, holding its thread. Zero: every body is streamed.
    pub request_buffer_size: u64,
    /// The options given that have no effect here (see `NO_EFFECT`).
    pub no_effect: Vec<&'static str>,
}

impl Default for DaemonProcessSpec {
    /// mod_wsgi's defaults, with an empty name.
    fn default() -> Self {
        DaemonProcessSpec {
            name: String::new(),
            processes: 1,
            multiprocess: false,
            threads: 15,
            user: None,
            group: None,
            supplementary_groups: Vec::new(),
            home: None,
            umask: None,
            chroot: None,
            python_home: None,
            python_path: Vec::new(),
            python_eggs: None,
            lang: None,
            locale: None,
            display_name: None,
            switch_interval: None,
            stack_size: 0,
            maximum_requests: 0,
            maximum_requests_jitter: 0,
            process_template: false,
            restart_interval: Duration::ZERO,
            inactivity_timeout: Duration::ZERO,
            request_timeout: Duration::ZERO,
            interrupt_timeout: Duration::ZERO,
            graceful_timeout: Duration::from_secs(15),
            eviction_timeout: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(5),
            startup_timeout: Duration::ZERO,
            deadlock_timeout: Duration::from_secs(300),
            queue_timeout: Duration::ZERO,
            connect_timeout: Duration::from_secs(15),
            socket_timeout: Duration::ZERO,
            response_socket_timeout: Duration::ZERO,
            response_flush_delay: Duration::from_millis(5),
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            socket_user: None,
            script_user: None,
            script_group: None,
            cpu_time_limit: Duration::ZERO,
            cpu_priority: 0,
            memory_limit: 0,
            virtual_memory_limit: 0,
            maximum_memory: 0,
            send_buffer_size: 0,
            receive_buffer_size: 0,
            header_buffer_size: 0,
            response_buffer_size: 0,
            server_metrics: false,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            request_buffer_size: DEFAULT_REQUEST_BUFFER_SIZE,
            no_effect: Vec::new(),
        }
    }
}

/// Stores one option's value in `spec`; `Err` carries the reason only.
fn set_option(spec: &mut DaemonProcessSpec, name: &str, value: &str) -> Result<(), String> {
    let v = OptionValue { value };
    let text = || value.to_owned();
    match name {
        "user" => spec.user = Some(v.non_root_user()?),
        "group" => spec.group = Some(text()),
        "supplementary-groups" => spec.supplementary_groups = v.list(',')?,
        "processes" => {
            spec.processes = v.count_u32(1)?;
            spec.multiprocess = true;
        }
        "threads" => spec.threads = v.number(0, MAX_THREADS)? as u32,
        "umask" => spec.umask = Some(parse_umask(value)?),
        "chroot" => spec.chroot = Some(v.absolute_path()?),
        "home" => spec.home = Some(v.absolute_path()?),
        "lang" => spec.lang = Some(text()),
        "locale" => spec.locale = Some(text()),
        "python-home" => spec.python_home = Some(text()),
        "python-path" => {
            spec.python_path = value
                .split(':')
                .filter(|entry| !entry.is_empty())
                .map(str::to_owned)
                .collect();
        }
        "python-eggs" => spec.python_eggs = Some(text()),
        "switch-interval" => {
            spec.switch_interval = Some(parse_switch_interval(value)?);
        }
        "stack-size" => spec.stack_size = v.number(1, u64::MAX)?,
        "maximum-requests" => spec.maximum_requests = v.number(0, u64::MAX)?,
        "maximum-requests-jitter" => spec.maximum_requests_jitter = v.number(0, u64::MAX)?,
        "process-template" => {
            spec.process_template =
                parse_on_off(value).ok_or_else(|| "expected On or Off".to_owned())?;
        }
        "startup-timeout" => spec.startup_timeout = v.seconds()?,
        "shutdown-timeout" => spec.shutdown_timeout = v.seconds()?,
        "deadlock-timeout" => spec.deadlock_timeout = v.seconds()?,
        "inactivity-timeout" => spec.inactivity_timeout = v.seconds()?,
        "request-timeout" => spec.request_timeout = v.seconds()?,
        "interrupt-timeout" => spec.interrupt_timeout = v.seconds()?,
        "graceful-timeout" => spec.graceful_timeout = v.seconds()?,
        "eviction-timeout" => spec.eviction_timeout = v.seconds()?,
        "restart-interval" => spec.restart_interval = v.seconds()?,
        "connect-timeout" => spec.connect_timeout = v.seconds()?,
        "socket-timeout" => spec.socket_timeout = v.seconds()?,
        "queue-timeout" => spec.queue_timeout = v.seconds()?,
        "listen-backlog" => spec.listen_backlog = v.count_u32(0)?,
        "display-name" => spec.display_name = Some(text()),
        "send-buffer-size" => spec.send_buffer_size = v.buffer_size(512)?,
        "receive-buffer-size" => spec.receive_buffer_size = v.buffer_size(512)?,
        "header-buffer-size" => spec.header_buffer_size = v.buffer_size(8192)?,
        "response-buffer-size" => {
            spec.response_buffer_size = v.buffer_size(65536)?;
        }
        "response-socket-timeout" => {
            spec.response_socket_timeout = v.seconds()?;
        }
        "response-flush-delay" => {
            spec.response_flush_delay = Duration::from_millis(v.number(0, u64::MAX)?);
        }
        "socket-user" => spec.socket_user = Some(text()),
        "script-user" => spec.script_user = Some(text()),
        "script-group" => spec.script_group = Some(text()),
        "cpu-time-limit" => spec.cpu_time_limit = v.seconds()?,
        "cpu-priority" => spec.cpu_priority = parse_cpu_priority(value)?,
        "memory-limit" => spec.memory_limit = v.number(0, u64::MAX)?,
        "virtual-memory-limit" => {
            spec.virtual_memory_limit = v.number(0, u64::MAX)?;
        }
        "maximum-memory" => spec.maximum_memory = v.memory_threshold()?,
        "server-metrics" => {
            spec.server_metrics =
                parse_on_off(value).ok_or_else(|| "expected On or Off".to_owned())?;
        }
        "header-timeout" => spec.header_timeout = v.seconds()?,
        "request-buffer-size" => spec.request_buffer_size = v.number(0, MAX_REQUEST_BUFFER_SIZE)?,
        "newrelic-config-file" | "newrelic-environment" => {
            if value.is_empty() {
                return Err("must not be empty".to_owned());
            }
        }
        _ => unreachable!("parse_options only yields names from DAEMON_OPTIONS"),
    }
    Ok(())
}

impl DaemonProcessSpec {
    /// Parses the arguments of `WSGIDaemonProcess`: a name, then options.
    pub fn parse(args: &[&str]) -> Result<Self, ConfigError> {
        let d = Directive::DaemonProcess;
        let [name, words @ ..] = args else {
            return Err(wrong_count(
                d,
                args,
                "takes a process group name, then options",
            ));
        };
        if name.is_empty() {
            return Err(ConfigError::invalid(d.name(), *name, "must not be empty"));
        }
        if name.contains('=') {
            return Err(ConfigError::invalid(
                d.name(),
                *name,
                "the first argument is the process group name, not an option",
            ));
        }

        let mut spec = DaemonProcessSpec {
            name: (*name).to_owned(),
            ..DaemonProcessSpec::default()
        };
        let options = parse_options(d, words, &DAEMON_OPTIONS)?;
        for option in &options {
            set_option(&mut spec, option.name, option.value)
                .map_err(|reason| ConfigError::invalid(d.name(), option.word, reason))?;
            let off = option.name == "server-metrics" && !spec.server_metrics;
            if let Some((name, _)) = NO_EFFECT.iter().find(|(n, _)| *n == option.name) {
                if !off {
                    spec.no_effect.push(name);
                }
            }
        }

        if spec.script_user.is_some() && spec.script_group.is_some() {
            return Err(ConfigError::invalid(
                d.name(),
                spec.name,
                "only one of script-user= and script-group= may be given",
            ));
        }
        // mod_wsgi treats an unset (zero) response-socket-timeout as
        // "same as socket-timeout".
        if spec.response_socket_timeout.is_zero() {
            spec.response_socket_timeout = spec.socket_timeout;
        }
        Ok(spec)
    }

    /// One start-up notice per option given that has no effect here; the
    /// id is `WSGIRS2nn`, nn the option's place in mod_wsgi's option list.
    pub fn notices(&self) -> Vec<Notice> {
        self.no_effect
            .iter()
            .map(|option| {
                let why = NO_EFFECT
                    .iter()
                    .find(|(o, _)| o == option)
                    .map_or("", |(_, why)| why);
                let setting = format!("WSGIDaemonProcess {} {option}=", self.name);
                Notice::no_effect(option_notice_number(option), &setting, why)
            })
            .collect()
    }

    /// The process title to set, if any: `display-name=%{GROUP}` becomes
    /// `(wsgi:NAME)` as in mod_wsgi; any other value is used as is.
    pub fn process_title(&self) -> Option<String> {
        self.display_name.as_deref().map(|title| {
            if title == "%{GROUP}" {
                format!("(wsgi:{})", self.name)
            } else {
                title.to_owned()
            }
        })
    }
}

/// The number of the notice of a `WSGIDaemonProcess` option with no
/// effect: 200 + its place in mod_wsgi's option list, so that adding options
/// at the end never renumbers one (each is in `src/messages.rs`).
pub(crate) fn option_notice_number(option: &str) -> usize {
    200 + DAEMON_OPTIONS
        .iter()
        .position(|o| *o == option)
        .unwrap_or(99)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> DaemonProcessSpec {
        DaemonProcessSpec::parse(args).unwrap()
    }

    fn error(args: &[&str]) -> String {
        DaemonProcessSpec::parse(args).unwrap_err().to_string()
    }

    #[test]
    fn defaults_follow_mod_wsgi() {
        let spec = parse(&["site"]);
        assert_eq!(
            spec,
            DaemonProcessSpec {
                name: "site".into(),
                ..DaemonProcessSpec::default()
            }
        );
        assert_eq!(spec.processes, 1);
        assert!(!spec.multiprocess);
        assert_eq!(spec.threads, 15);
        assert_eq!(spec.maximum_requests, 0);
        assert_eq!(spec.graceful_timeout, Duration::from_secs(15));
        assert_eq!(spec.shutdown_timeout, Duration::from_secs(5));
        assert_eq!(spec.deadlock_timeout, Duration::from_secs(300));
        assert_eq!(spec.connect_timeout, Duration::from_secs(15));
        assert_eq!(spec.startup_timeout, Duration::ZERO);
        assert_eq!(spec.request_timeout, Duration::ZERO);
        assert_eq!(spec.inactivity_timeout, Duration::ZERO);
        assert_eq!(spec.restart_interval, Duration::ZERO);
        assert_eq!(spec.queue_timeout, Duration::ZERO);
        assert_eq!(spec.socket_timeout, Duration::ZERO);
        assert_eq!(spec.listen_backlog, 100);
        assert_eq!(spec.memory_limit, 0);
        assert_eq!(spec.maximum_memory, 0);
        assert_eq!(spec.interrupt_timeout, Duration::ZERO);
        assert_eq!(spec.cpu_time_limit, Duration::ZERO);
        assert_eq!(spec.response_flush_delay, Duration::from_millis(5));
        assert_eq!(spec.umask, None);
        assert_eq!(spec.process_title(), None);
        assert_eq!(spec.header_timeout, Duration::from_secs(10));
        assert_eq!(spec.request_buffer_size, 1 << 20);
    }

    #[test]
    fn slow_client_options() {
        let spec = parse(&["s", "header-timeout=3", "request-buffer-size=0"]);
        assert_eq!(spec.header_timeout, Duration::from_secs(3));
        assert_eq!(spec.request_buffer_size, 0);
        let spec = parse(&["s", "header-timeout=0", "request-buffer-size=67108864"]);
        assert_eq!(spec.header_timeout, Duration::ZERO);
        assert_eq!(spec.request_buffer_size, 64 << 20);
        assert!(spec.notices().is_empty());
    }

    #[test]
    fn parses_every_option() {
        let spec = parse(&[
            "site",
            "processes=1",
            "threads=4",
            "user=www",
            "group=#33",
            "supplementary-groups=a,b",
            "home=/srv/site",
            "umask=0027",
            "chroot=/jail",
            "python-home=/venv",
            "python-path=/a:/b::/c",
            "python-eggs=/tmp/eggs",
            "lang=en_US.UTF-8",
            "locale=en_US.UTF-8",
            "display-name=%{GROUP}",
            "switch-interval=0.002",
            "stack-size=524288",
            "maximum-requests=1000",
            "maximum-requests-jitter=100",
            "process-template=On",
            "restart-interval=3600",
            "inactivity-timeout=60",
            "request-timeout=30",
            "interrupt-timeout=3",
            "graceful-timeout=10",
            "eviction-timeout=20",
            "shutdown-timeout=7",
            "startup-timeout=12",
            "deadlock-timeout=100",
            "queue-timeout=45",
            "connect-timeout=9",
            "socket-timeout=60",
            "listen-backlog=0",
            "send-buffer-size=512",
            "receive-buffer-size=0",
            "header-buffer-size=65536",
            "response-buffer-size=65536",
            "response-flush-delay=0",
            "socket-user=#48",
            "script-user=nobody",
            "cpu-time-limit=600",
            "cpu-priority=-5",
            "memory-limit=1000000000",
            "virtual-memory-limit=2000000000",
            "maximum-memory=536870912",
            "server-metrics=On",
        ]);
        assert_eq!(spec.processes, 1);
        assert!(spec.multiprocess);
        assert_eq!(spec.threads, 4);
        assert_eq!(spec.user.as_deref(), Some("www"));
        assert_eq!(spec.group.as_deref(), Some("#33"));
        assert_eq!(spec.supplementary_groups, ["a", "b"]);
        assert_eq!(spec.home.as_deref(), Some("/srv/site"));
        assert_eq!(spec.umask, Some(0o027));
        assert_eq!(spec.chroot.as_deref(), Some("/jail"));
        assert_eq!(spec.python_home.as_deref(), Some("/venv"));
        assert_eq!(spec.python_path, ["/a", "/b", "/c"]);
        assert_eq!(spec.python_eggs.as_deref(), Some("/tmp/eggs"));
        assert_eq!(spec.lang.as_deref(), Some("en_US.UTF-8"));
        assert_eq!(spec.locale.as_deref(), Some("en_US.UTF-8"));
        assert_eq!(spec.process_title().as_deref(), Some("(wsgi:site)"));
        assert_eq!(spec.switch_interval, Some(0.002));
        assert_eq!(spec.stack_size, 524_288);
        assert_eq!(spec.maximum_requests, 1000);
        assert_eq!(spec.maximum_requests_jitter, 100);
        assert!(spec.process_template);
        assert_eq!(spec.restart_interval, Duration::from_secs(3600));
        assert_eq!(spec.inactivity_timeout, Duration::from_secs(60));
        assert_eq!(spec.request_timeout, Duration::from_secs(30));
        assert_eq!(spec.interrupt_timeout, Duration::from_secs(3));
        assert_eq!(spec.graceful_timeout, Duration::from_secs(10));
        assert_eq!(spec.eviction_timeout, Duration::from_secs(20));
        assert_eq!(spec.shutdown_timeout, Duration::from_secs(7));
        assert_eq!(spec.startup_timeout, Duration::from_secs(12));
        assert_eq!(spec.deadlock_timeout, Duration::from_secs(100));
        assert_eq!(spec.queue_timeout, Duration::from_secs(45));
        assert_eq!(spec.connect_timeout, Duration::from_secs(9));
        assert_eq!(spec.socket_timeout, Duration::from_secs(60));
        assert_eq!(spec.response_socket_timeout, Duration::from_secs(60));
        assert_eq!(spec.listen_backlog, 0);
        assert_eq!(spec.send_buffer_size, 512);
        assert_eq!(spec.receive_buffer_size, 0);
        assert_eq!(spec.header_buffer_size, 65536);
        assert_eq!(spec.response_buffer_size, 65536);
        assert_eq!(spec.response_flush_delay, Duration::ZERO);
        assert_eq!(spec.socket_user.as_deref(), Some("#48"));
        assert_eq!(spec.script_user.as_deref(), Some("nobody"));
        assert_eq!(spec.cpu_time_limit, Duration::from_secs(600));
        assert_eq!(spec.cpu_priority, -5);
        assert_eq!(spec.memory_limit, 1_000_000_000);
        assert_eq!(spec.virtual_memory_limit, 2_000_000_000);
        assert_eq!(spec.maximum_memory, 536_870_912);
        assert!(spec.server_metrics);
    }

    #[test]
    fn explicit_response_socket_timeout_wins() {
        let spec = parse(&["s", "socket-timeout=60", "response-socket-timeout=5"]);
        assert_eq!(spec.response_socket_timeout, Duration::from_secs(5));
        let spec = parse(&["s", "socket-timeout=60", "response-socket-timeout=0"]);
        assert_eq!(spec.response_socket_timeout, Duration::from_secs(60));
    }

    #[test]
    fn other_display_names_are_used_as_is() {
        let spec = parse(&["s", "display-name=\"wsgi site\""]);
        assert_eq!(spec.process_title().as_deref(), Some("wsgi site"));
    }

    #[test]
    fn threads_zero_is_mod_wsgis_import_only_mode() {
        assert_eq!(parse(&["s", "threads=0"]).threads, 0);
    }

    #[test]
    fn name_errors() {
        assert_eq!(
            error(&[]),
            "WSGIDaemonProcess: wrong number of arguments (none): takes a process group name, \
             then options"
        );
        assert_eq!(
            error(&[""]),
            "WSGIDaemonProcess: invalid value '': must not be empty"
        );
        assert_eq!(
            error(&["threads=2"]),
            "WSGIDaemonProcess: invalid value 'threads=2': the first argument is the process \
             group name, not an option"
        );
    }

    #[test]
    fn option_errors() {
        assert!(error(&["s", "thread=2"])
            .starts_with("WSGIDaemonProcess: unknown option 'thread=2' (expected user=, group="));
        assert_eq!(
            error(&["s", "threads=2", "threads=3"]),
            "WSGIDaemonProcess: duplicate option 'threads=3': threads= was already given"
        );
        assert_eq!(
            error(&["s", "threads="]),
            "WSGIDaemonProcess: invalid value 'threads=': the option needs a value after '='"
        );
        let cases = [
            ("processes=0", "must be at least 1"),
            ("processes=-2", "must not be negative"),
            ("processes=two", "expected a whole number"),
            ("threads=-1", "must not be negative"),
            ("threads=65534", "must be at most 65533"),
            ("maximum-requests=1e3", "expected a whole number"),
            ("maximum-requests-jitter=-3", "must not be negative"),
            ("maximum-requests-jitter=ten", "expected a whole number"),
            ("process-template=yes", "expected On or Off"),
            ("request-timeout=-5", "must not be negative"),
            ("graceful-timeout=1.5", "expected a whole number"),
            ("socket-timeout=10s", "expected a whole number"),
            ("header-timeout=-1", "must not be negative"),
            ("header-timeout=5m", "expected a whole number"),
            ("request-buffer-size=1M", "expected a whole number"),
            ("request-buffer-size=67108865", "must be at most 67108864"),
            ("memory-limit=-1", "must not be negative"),
            ("cpu-time-limit=x", "expected a whole number"),
            ("listen-backlog=-1", "must not be negative"),
            ("umask=0999", "expected an octal number such as 0022"),
            ("umask=-022", "expected an octal number such as 0022"),
            ("umask=77777", "must be at most 07777"),
            ("home=relative/dir", "must be an absolute path"),
            ("chroot=jail", "must be an absolute path"),
            (
                "user=root",
                "daemon processes are not allowed to run as root",
            ),
            ("user=#0", "daemon processes are not allowed to run as root"),
            (
                "supplementary-groups=a,,b",
                "empty entry in ','-separated list",
            ),
            ("switch-interval=0", "expected a positive number of seconds"),
            (
                "switch-interval=abc",
                "expected a positive number of seconds",
            ),
            ("stack-size=0", "must be at least 1"),
            (
                "send-buffer-size=100",
                "must be 0 (default) or at least 512 bytes",
            ),
            (
                "receive-buffer-size=511",
                "must be 0 (default) or at least 512 bytes",
            ),
            (
                "header-buffer-size=8191",
                "must be 0 (default) or at least 8192 bytes",
            ),
            (
                "response-buffer-size=1024",
                "must be 0 (default) or at least 65536 bytes",
            ),
            ("cpu-priority=21", "must be between -20 and 20"),
            (
                "cpu-priority=low",
                "expected a whole number between -20 and 20",
            ),
            ("server-metrics=yes", "expected On or Off"),
            ("maximum-memory=512M", "expected a whole number"),
            ("maximum-memory=-1", "must not be negative"),
            (
                "maximum-memory=1048575",
                "must be 0 (off) or at least 1048576 bytes",
            ),
            ("processes=4294967296", "must be at most 4294967295"),
        ];
        for (option, reason) in cases {
            assert_eq!(
                error(&["s", option]),
                format!("WSGIDaemonProcess: invalid value '{option}': {reason}"),
            );
        }
    }

    #[test]
    fn script_user_and_group_are_exclusive() {
        assert_eq!(
            error(&["s", "script-user=a", "script-group=b"]),
            "WSGIDaemonProcess: invalid value 's': only one of script-user= and script-group= \
             may be given"
        );
    }

    #[test]
    fn options_with_no_effect_give_one_notice_each_with_a_stable_id() {
        let spec = parse(&["g", "eviction-timeout=5", "server-metrics=Off", "threads=2"]);
        let notices: Vec<String> = spec.notices().iter().map(|n| n.to_string()).collect();
        assert_eq!(
            notices,
            [
                "WSGIRS223: WSGIDaemonProcess g eviction-timeout=: accepted for compatibility, \
              no effect: SIGUSR1 stops a daemon process as SIGTERM does, within \
              shutdown-timeout; the replacements the module orders wait graceful-timeout"
            ]
        );
        let spec = parse(&["g", "server-metrics=On"]);
        let ids: Vec<String> = spec.notices().into_iter().map(|n| n.id).collect();
        assert_eq!(ids, ["WSGIRS243"]);
        // These take effect: no notice.
        let spec = parse(&[
            "g",
            "interrupt-timeout=10",
            "response-socket-timeout=5",
            "maximum-memory=0",
            "socket-user=#33",
            "header-buffer-size=8192",
        ]);
        assert!(spec.notices().is_empty());
        for (option, _) in NO_EFFECT {
            assert!(DAEMON_OPTIONS.contains(&option), "{option}");
        }
    }

    /// The README's `WSGIDaemonProcess` section names every option.
    #[test]
    fn readme_lists_every_option() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("### `WSGIDaemonProcess` options")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("README has the WSGIDaemonProcess options");
        // Its paragraph of options with no effect names exactly those of
        // NO_EFFECT (the reasons are in docs/messages.md).
        let compat = section
            .split("Compatibility only, accepted so existing configurations load")
            .nth(1)
            .and_then(|s| s.split("\n\n").next())
            .expect("README has the paragraph of options with no effect");
        for option in DAEMON_OPTIONS {
            assert!(
                section.contains(&format!("`{option}="))
                    || section.contains(&format!("`{option}`")),
                "README does not list {option}="
            );
            assert_eq!(
                compat.contains(&format!("`{option}")),
                NO_EFFECT.iter().any(|(o, _)| *o == option),
                "README's paragraph of options with no effect and NO_EFFECT disagree \
                 on {option}="
            );
        }
    }
}
