//! Every message the module writes to Apache's error log, declared once:
//! its stable identifier `WSGIRSnnn`, its level, what it means and what to
//! do about it. `docs/messages.md` is written from this table (a unit test
//! checks it and rewrites it on request), so operators can search and alert
//! on an id and find its meaning.
//!
//! To add a message (see CONTRIBUTING.md, "Adding a log message"):
//! 1. Start the logged text with `WSGIRSnnn: ` (a free number of your range),
//!    e.g. `log::warn!("WSGIRS341: (wsgi:{group}) ...")` or
//!    `req.log(APLOG_ERR, &format!("WSGIRS362: ..."))`.
//! 2. Add one `msg(nnn, Level, meaning, remedy)` line to [`MESSAGES`], in
//!    number order.
//! 3. Run `WSGI_RS_WRITE_DOCS=1 cargo test --lib messages` to rewrite
//!    `docs/messages.md`; commit both.
//!
//! The tests below check that ids are unique and in order, that every
//! `WSGIRSnnn` written anywhere under `src/` is in the table, that every
//! entry is used.
//!
//! Each area of the module has its range of numbers ([`RANGES`]); numbers
//! are never reused, even when a message goes away.

/// The Apache log level a message is written at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `error`: a request or a process failed.
    Error,
    /// `warn`: something is not as configured or expected, service goes on.
    Warn,
    /// `info`: a normal event worth a line (process start and exit).
    Info,
    /// `debug`: detail for `LogLevel wsgi_rs:debug`.
    Debug,
}

impl Level {
    /// The level as Apache's error log names it (`[wsgi_rs:warn]`).
    pub fn apache_name(self) -> &'static str {
        match self {
            Error => "error",
            Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// One log message: `WSGIRS{id}` at `level`.
#[derive(Debug, Clone, Copy)]
pub struct Message {
    /// The number after `WSGIRS`.
    pub id: u16,
    /// The level it is logged at.
    pub level: Level,
    /// What it means, in a sentence.
    pub meaning: &'static str,
    /// What the operator can do about it.
    pub remedy: &'static str,
}

/// A table row (keeps each row on a line or two).
const fn msg(id: u16, level: Level, meaning: &'static str, remedy: &'static str) -> Message {
    Message {
        id,
        level,
        meaning,
        remedy,
    }
}

use Level::{Error, Warn};

/// Remedy of every compatibility notice.
const REMOVE_DIRECTIVE: &str = "Nothing is wrong; remove the directive (or the value) to \
     silence the notice.";
/// Remedy of every compatibility notice of a `WSGIDaemonProcess` option.
const REMOVE_OPTION: &str = "Nothing is wrong; remove the option from WSGIDaemonProcess to \
     silence the notice.";

/// Every message, in number order.
pub const MESSAGES: &[Message] = &[
    // 100-199: start-up notices of directives accepted for compatibility.
    msg(100, Warn, "A directive accepted for compatibility has no effect here; the line names the directive and says why.", REMOVE_DIRECTIVE),
    msg(101, Warn, "WSGIVerboseDebugging On has no effect: debugging messages are enabled with LogLevel wsgi_rs:debug.", REMOVE_DIRECTIVE),
    msg(102, Warn, "WSGIAcceptMutex has no effect: daemon processes take connections through epoll without an accept mutex.", REMOVE_DIRECTIVE),
    msg(103, Warn, "WSGILazyInitialization Off has no effect: Python never starts in the Apache parent.", REMOVE_DIRECTIVE),
    msg(104, Warn, "WSGICaseSensitivity Off has no effect: file names are compared as the file system stores them.", REMOVE_DIRECTIVE),
    msg(105, Warn, "WSGIApplicationWrapper has no effect: it is not supported.", "Wrap the application in the WSGI script instead, then remove the directive."),
    msg(106, Warn, "WSGINewRelicConfigFile has no effect: the New Relic integration was removed in mod_wsgi 6.", "Initialise the New Relic agent in the WSGI script, then remove the directive."),
    msg(107, Warn, "WSGINewRelicEnvironment has no effect: the New Relic integration was removed in mod_wsgi 6.", "Initialise the New Relic agent in the WSGI script, then remove the directive."),
    msg(108, Warn, "WSGIPerInterpreterGIL On has no effect: all interpreters of a process share one GIL.", REMOVE_DIRECTIVE),
    msg(109, Warn, "WSGIFreeThreading On has no effect: the embedded Python keeps its GIL.", REMOVE_DIRECTIVE),
    msg(110, Warn, "A <WSGIInterpreterOptions> container is accepted but its settings are not applied.", "Set the options at server level or on WSGIDaemonProcess, then remove the container."),
    msg(111, Warn, "WSGITelemetryService has no effect: mod_wsgi 6's telemetry service is not implemented.", "Use SetHandler wsgi-rs-metrics and wsgi-rs-status (README, Metrics), then remove the directive."),
    msg(112, Warn, "WSGITelemetryOptions has no effect: mod_wsgi 6's telemetry service is not implemented.", "Use SetHandler wsgi-rs-metrics and wsgi-rs-status (README, Metrics), then remove the directive."),
    // 113 was WSGISlowRequests' notice before the directive took effect.
    msg(114, Warn, "WSGISocketRotation On has no effect: daemon socket names never change across restarts.", REMOVE_DIRECTIVE),
    msg(115, Warn, "WSGIServerMetrics On collects the metrics, but mod_wsgi.server_metrics() still answers None (Apache's scoreboard is not read).", "Nothing is wrong; read the metrics from SetHandler wsgi-rs-metrics."),
    msg(116, Warn, "A daemon-mode request has run longer than WSGISlowRequests; the line names group, pid, thread and URL, and the Python stack follows.", "Look at the stack for what the request waits on; raise WSGISlowRequests if such requests are expected."),
    // 200-299: WSGIDaemonProcess options accepted for compatibility (200 + the option's index).
    // 221 was interrupt-timeout='s notice before the option took effect.
    msg(223, Warn, "WSGIDaemonProcess eviction-timeout= has no effect: graceful-timeout applies to every graceful restart.", REMOVE_OPTION),
    msg(230, Warn, "WSGIDaemonProcess send-buffer-size= has no effect: daemon sockets keep the system's buffer sizes.", REMOVE_OPTION),
    msg(231, Warn, "WSGIDaemonProcess receive-buffer-size= has no effect: daemon sockets keep the system's buffer sizes.", REMOVE_OPTION),
    msg(232, Warn, "WSGIDaemonProcess header-buffer-size= has no effect: response headers are relayed without a fixed buffer.", REMOVE_OPTION),
    msg(233, Warn, "WSGIDaemonProcess response-buffer-size= has no effect: responses are relayed without a fixed buffer.", REMOVE_OPTION),
    // 234 was response-socket-timeout='s notice before the option took effect.
    msg(235, Warn, "WSGIDaemonProcess response-flush-delay= has no effect: responses are not held back for flushing.", REMOVE_OPTION),
    msg(236, Warn, "WSGIDaemonProcess socket-user= has no effect: the daemon socket is owned by Apache's User.", REMOVE_OPTION),
    msg(237, Warn, "WSGIDaemonProcess script-user= has no effect: the owner of WSGI script files is not checked.", REMOVE_OPTION),
    msg(238, Warn, "WSGIDaemonProcess script-group= has no effect: the group of WSGI script files is not checked.", REMOVE_OPTION),
    msg(243, Warn, "WSGIDaemonProcess server-metrics= has no effect: Apache's scoreboard is not read.", REMOVE_OPTION),
    msg(244, Warn, "WSGIDaemonProcess newrelic-config-file= has no effect: the New Relic integration was removed in mod_wsgi 6.", REMOVE_OPTION),
    msg(245, Warn, "WSGIDaemonProcess newrelic-environment= has no effect: the New Relic integration was removed in mod_wsgi 6.", REMOVE_OPTION),
    // 300-399: the core (start-up, supervisor, daemon processes, requests).
    msg(300, Error, "The Apache parent could not map the shared memory for the metrics; metrics are off for this run.", "Check the memory limits of the Apache parent (ulimit -v, the container's memory) and restart Apache."),
    // 400-419: graceful restarts.
    // 420-439: recycling daemon processes.
    msg(420, Error, "A daemon group's template process (process-template=On) could not start; the line gives the cause, and the group's requests are answered as for a group that cannot start.", "Fix the cause (user, home, python-home, chroot); the Apache parent tries again with back-off."),
    msg(421, Level::Info, "A daemon group's template process has started Python (and imported the group's start-up scripts of the main interpreter) and forks the group's processes.", "Nothing to do."),
    msg(422, Level::Info, "A WSGI script of a group with a template changed: the template stops its processes and exits, and the Apache parent starts a fresh one that imports the new code.", "Nothing to do; requests wait for the new processes."),
    msg(423, Level::Info, "A template starts the successor of a process that is to be replaced (maximum-requests near, restart-interval, inactivity-timeout, request-timeout); the old process serves meanwhile.", "Nothing to do."),
    msg(424, Level::Info, "A successor serves in place of the process it replaces (pid 0: a slot that was empty); the old process finishes its requests and exits.", "Nothing to do."),
    msg(425, Error, "A template could not fork a daemon process; it tries again a second later.", "Check the process and memory limits of the group's user (ulimit -u, the cgroup's pids.max)."),
    msg(426, Warn, "A successor died before it served; the line gives its exit status and when it is tried again.", "Look at the lines before it for the cause (a failing import in a sub-interpreter, a resource limit)."),
    msg(427, Level::Info, "A template process exits (Apache stops or restarts, the parent went away, or a script changed); its processes finish their requests within shutdown-timeout.", "Nothing to do."),
    msg(428, Level::Info, "A daemon process forked by a template exited; the line gives its exit status.", "Nothing to do unless the status is not 0: then look at the lines before it."),
    msg(429, Warn, "A daemon process forked by a template keeps dying at start-up; its next start is held off.", "Look at the lines before it for the cause; the group's requests get 503 while no process serves."),
    msg(430, Error, "A daemon process forked by a template could not start serving; the line gives the cause.", "Fix the cause named; the template starts the process again with back-off."),
    // 440-459: timeouts and limits.
    msg(440, Error, "A daemon-mode request ran past request-timeout (scaled by the process's threads as in mod_wsgi 6); the line names group, pid, thread and URL, says whether it was answered 504 and how the process recovers (interrupting the thread with mod_wsgi.RequestTimeout, or replacing the process), and the thread's Python stack follows.", "Look at the stack for what the request waits on: give that call a timeout of its own (HTTP client, database statement); raise request-timeout if such requests are legitimate."),
    msg(441, Error, "A request interrupted with mod_wsgi.RequestTimeout was still running interrupt-timeout later (a thread blocked in one long C call, or code that swallowed the exception): its process is replaced gracefully.", "Give the blocking call a timeout of its own, and re-raise mod_wsgi.RequestTimeout after any clean-up that catches it."),
    msg(442, Warn, "A daemon process's resident memory passed maximum-memory; the line gives the figure, and the process is replaced gracefully.", "Nothing is lost; if it happens often, find what grows (the status page and the memory gauge show it) or raise maximum-memory."),
    msg(445, Error, "Writing a response from the daemon to Apache blocked for response-socket-timeout (Apache stopped reading, usually because its client did): the request is abandoned and its thread serves again.", "Nothing to do for one slow client; raise response-socket-timeout if legitimate clients read this slowly."),
    // 460-479: slow clients.
    // 500-539: ASGI.
    msg(500, Error, "interface=asgi on a WSGIScriptAlias or WSGIImportScript line without a daemon process group: ASGI applications run in daemon mode only, so Apache refuses to start.", "Add process-group=NAME, naming a WSGIDaemonProcess group, to the line."),
    msg(501, Error, "A request reached an ASGI application in embedded mode (no daemon process group); it is answered 500.", "Mount the script with process-group=NAME (a WSGIDaemonProcess group) on its WSGIScriptAlias, or set WSGIProcessGroup."),
    msg(502, Error, "An ASGI application raised while serving a request: answered 500 if its response had not started, else the connection is aborted; the traceback follows.", "Fix the application; the traceback says where it failed."),
    msg(503, Error, "An ASGI application returned without starting its response (answered 500) or before ending it (connection aborted).", "Make the application send http.response.start and a last http.response.body without more_body."),
    msg(504, Error, "An ASGI request ran longer than request-timeout: its task was cancelled, answered 504 when no response had started (else the connection is aborted).", "Look for what the request awaits; raise request-timeout if such requests are expected."),
    msg(505, Level::Info, "A daemon process started the ASGI event loop of an application group; the line names the loop (uvloop or asyncio) and its executor's size (threads=).", "Nothing is wrong."),
    msg(506, Error, "The ASGI event loop of an application group stopped; that process can no longer serve its ASGI requests.", "Look at the lines before it for the cause; restart Apache (or touch the script) to replace the process."),
    msg(507, Error, "A request could not be handed to the ASGI event loop; it is answered 500 and the Python error follows.", "Look at the Python error; it usually means the process is out of memory or descriptors."),
    msg(508, Error, "The lifespan of an ASGI start-up script (WSGIImportScript, or an alias naming both groups) could not be started when the process started; it starts before the first request instead.", "Look at the error; it usually means the process is out of memory or threads."),
    msg(510, Error, "An ASGI application's lifespan startup failed (lifespan.startup.failed); its requests are answered 500 and the process stops to be replaced, the traceback follows when there is one.", "Fix what the startup needs (database, configuration); the message and traceback say what failed."),
    msg(511, Level::Info, "An ASGI application raised on the lifespan scope before answering it, which per the ASGI spec means it does not support lifespan; it is served without.", "Nothing is wrong (Django's ASGI handler does this)."),
    msg(512, Error, "An ASGI application's lifespan shutdown failed or raised while the process stopped.", "Fix the application's shutdown code; the message or traceback says what failed."),
    // 540-559: WebSockets.
    msg(540, Error, "A WebSocket the daemon accepted could not be tunnelled: the client's connection has no socket Apache can poll (a connection filter replaced it).", "Serve WebSockets from a virtual host without connection-replacing modules; the client gets its 101 and then a closed connection."),
    msg(541, Level::Info, "A WebSocket tunnel ended other than by either side closing: idle past Timeout (or the daemon group's socket-timeout, the larger), the client gone while data was sent to it, or the daemon connection failing; the line says which.", "Nothing to do for idle sockets (the application may send pings to keep them open, or raise Timeout/socket-timeout); a failing daemon connection is logged by the daemon too."),
    msg(542, Error, "A daemon process answered 101 Switching Protocols to a request that did not ask for a WebSocket (or without Upgrade: websocket); the client gets 502.", "A WSGI application must not answer 101; WebSockets are served by ASGI applications."),
    msg(543, Level::Info, "A WebSocket request's handshake was malformed (no valid Sec-WebSocket-Key, or a version other than 13): answered 400 without running the application.", "Nothing to do on the server: the client is not a conforming WebSocket client."),
    msg(544, Error, "An ASGI application raised while serving a WebSocket; the traceback follows. Before the handshake was accepted the client got 500, after it the close code 1011.", "Fix the application; the traceback names the line."),
];

/// The table entry of `WSGIRS{id}`.
pub fn lookup(id: u16) -> Option<&'static Message> {
    MESSAGES.iter().find(|m| m.id == id)
}

/// The ranges of ids, each kept for one area, with its heading in
/// `docs/messages.md`.
pub const RANGES: &[(u16, u16, &str)] = &[
    (100, 199, "Start-up notices: directives accepted for compatibility"),
    (200, 299, "Start-up notices: `WSGIDaemonProcess` options accepted for compatibility (200 + the option's place in mod_wsgi's list)"),
    (300, 399, "The core: start-up, the daemon supervisor, daemon processes, requests"),
    (400, 419, "Graceful restarts"),
    (420, 439, "Recycling daemon processes"),
    (440, 459, "Timeouts and limits"),
    (460, 479, "Slow clients"),
    (500, 539, "ASGI applications"),
    (540, 559, "WebSockets"),
];

/// The reference part of `docs/messages.md`: one section per range, one
/// row per message.
pub fn reference() -> String {
    let mut out = String::new();
    for (first, last, what) in RANGES {
        out.push_str(&format!("\n### {first}-{last}: {what}\n\n"));
        let rows: Vec<&Message> = MESSAGES
            .iter()
            .filter(|m| (*first..=*last).contains(&m.id))
            .collect();
        if rows.is_empty() {
            out.push_str("None yet.\n");
            continue;
        }
        out.push_str("| Id | Level | Meaning | Remedy |\n|---|---|---|---|\n");
        for m in rows {
            out.push_str(&format!(
                "| `WSGIRS{}` | {} | {} | {} |\n",
                m.id,
                m.level.apache_name(),
                m.meaning.replace('|', "\\|"),
                m.remedy.replace('|', "\\|")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
