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
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// What a message is about: the notices of settings accepted for
/// compatibility are made by `config` from its tables of those settings
/// (which value has no effect, and why), and so are their meanings here,
/// so that each reason is written once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// Any other message: its text is its meaning.
    Other,
    /// A notice whose text is the whole log line (`config` holds it).
    Notice,
    /// A directive with no effect: its row of `config::compat::NO_EFFECT`
    /// (found by id) says which value and why.
    Directive,
    /// A `WSGIDaemonProcess` option with no effect: the option at place
    /// id - 200 of mod_wsgi's list, with its reason in
    /// `config::daemon_options::NO_EFFECT`.
    DaemonOption,
}

/// One log message: `WSGIRS{id}` at `level`.
#[derive(Debug, Clone, Copy)]
pub struct Message {
    /// The number after `WSGIRS`.
    pub id: u16,
    /// The level it is logged at.
    pub level: Level,
    /// What the message is about.
    pub subject: Subject,
    /// What it means, in a sentence (empty where `config` says it).
    pub text: &'static str,
    /// What the operator can do about it.
    pub remedy: &'static str,
}

impl Message {
    /// What the message means, as `docs/messages.md` says it (empty when
    /// `config` has no row for a notice: a test fails on it).
    pub fn meaning(&self) -> String {
        match self.subject {
            Subject::Other => self.text.to_owned(),
            Subject::Notice => format!("{}.", self.text),
            Subject::Directive => {
                NO_EFFECT
                    .iter()
                    .find(|row| row.id == self.id)
                    .map_or_else(String::new, |row| {
                        let name = spelling(row.directive);
                        let sep = if row.value.is_empty() { "" } else { " " };
                        format!("{name}{sep}{} has no effect: {}.", row.value, row.why)
                    })
            }
            Subject::DaemonOption => DAEMON_OPTIONS
                .get(usize::from(self.id) - 200)
                .and_then(|option| NO_EFFECT_OPTIONS.iter().find(|(o, _)| o == option))
                .map_or_else(String::new, |(option, why)| {
                    format!("WSGIDaemonProcess {option}= has no effect: {why}.")
                }),
        }
    }
}

/// A table row (keeps each row on a line or two).
const fn msg(id: u16, level: Level, text: &'static str, remedy: &'static str) -> Message {
    Message {
        id,
        level,
        subject: Subject::Other,
        text,
        remedy,
    }
}

/// The row of a warning whose whole text `config` logs.
const fn notice(id: u16, text: &'static str, remedy: &'static str) -> Message {
    Message {
        id,
        level: Level::Warn,
        subject: Subject::Notice,
        text,
        remedy,
    }
}

/// The row of a directive that has no effect: a warning (what it says is
/// in `config::compat::NO_EFFECT`).
const fn directive(id: u16, remedy: &'static str) -> Message {
    Message {
        id,
        level: Level::Warn,
        subject: Subject::Directive,
        text: "",
        remedy,
    }
}

/// The row of a `WSGIDaemonProcess` option that has no effect: a warning
/// whose remedy is to remove the option (what it says is in
/// `config::daemon_options::NO_EFFECT`).
const fn option(id: u16) -> Message {
    Message {
        id,
        level: Level::Warn,
        subject: Subject::DaemonOption,
        text: "",
        remedy: REMOVE_OPTION,
    }
}

/// Remedy of every compatibility notice.
const REMOVE_DIRECTIVE: &str = "Nothing is wrong; remove the directive (or the value) to \
     silence the notice.";
/// Remedy of every compatibility notice of a `WSGIDaemonProcess` option.
const REMOVE_OPTION: &str = "Nothing is wrong; remove the option from WSGIDaemonProcess to \
     silence the notice.";

use crate::config::{Directive, DAEMON_OPTIONS, NO_EFFECT, NO_EFFECT_OPTIONS, SERVER_METRICS_ON};

/// Directive `d` as a configuration spells it (a container with its `>`).
fn spelling(d: Directive) -> String {
    let name = d.name();
    if name.starts_with('<') {
        format!("{name}>")
    } else {
        name.to_owned()
    }
}

/// Every message, in number order. (`Level::Info` and plain `Info` both
/// read well in a row: neither is refused.)
#[allow(unused_qualifications)]
pub const MESSAGES: &[Message] = {
    use Level::{Debug, Error, Info, Warn};
    &[
    // 100-199: start-up notices of directives accepted for compatibility.
    // 100 was the notice of a compatibility directive without a row of its
    // own; every one has its row now (a unit test of config::compat checks).
    directive(101, REMOVE_DIRECTIVE),
    directive(102, REMOVE_DIRECTIVE),
    directive(103, REMOVE_DIRECTIVE),
    directive(104, REMOVE_DIRECTIVE),
    directive(105, "Wrap the application in the WSGI script instead, then remove the directive."),
    directive(106, "Initialise the New Relic agent in the WSGI script, then remove the directive."),
    directive(107, "Initialise the New Relic agent in the WSGI script, then remove the directive."),
    directive(108, REMOVE_DIRECTIVE),
    directive(109, REMOVE_DIRECTIVE),
    directive(110, "Set the options at server level or on WSGIDaemonProcess, then remove the container."),
    directive(111, "Use SetHandler wsgi-rs-metrics and wsgi-rs-status (README, Metrics), then remove the directive."),
    directive(112, "Use SetHandler wsgi-rs-metrics and wsgi-rs-status (README, Metrics), then remove the directive."),
    // 113 was WSGISlowRequests' notice before the directive took effect.
    directive(114, REMOVE_DIRECTIVE),
    notice(115, SERVER_METRICS_ON, "Nothing is wrong; read the metrics from SetHandler wsgi-rs-metrics."),
    msg(116, Warn, "A daemon-mode request has run longer than WSGISlowRequests; the line names group, pid, thread and URL, and the Python stack follows.", "Look at the stack for what the request waits on; raise WSGISlowRequests if such requests are expected."),
    directive(117, "Express the policy with <RequireAny>/<RequireAll>, then remove the directive."),
    // 200-299: WSGIDaemonProcess options accepted for compatibility (200 + the option's index).
    // 221 was interrupt-timeout='s notice before the option took effect.
    option(223),
    // 230 was send-buffer-size='s notice before the option took effect.
    // 231 was receive-buffer-size='s notice before the option took effect.
    // 232 was header-buffer-size='s notice before the option took effect.
    option(233),
    // 234 was response-socket-timeout='s notice before the option took effect.
    option(235),
    // 236 was socket-user='s notice before the option took effect.
    // 237 was script-user='s notice before the option took effect.
    // 238 was script-group='s notice before the option took effect.
    option(243),
    option(244),
    option(245),
    // 300-399: the core (start-up, supervisor, daemon processes, requests).
    msg(300, Error, "The Apache parent could not map the shared memory for the metrics; metrics are off for this run.", "Check the memory limits of the Apache parent (ulimit -v, the container's memory) and restart Apache."),
    msg(301, Error, "The configuration could not be resolved at start-up (a WSGIDaemonProcess user or group that does not exist or is root, a script naming a daemon group nobody defined); Apache does not start.", "Correct what the line names and start Apache again."),
    msg(302, Error, "The listening socket of a daemon process group could not be created; Apache does not start.", "Check that the directory of WSGISocketPrefix exists and is writable by root, and that no other server uses the path."),
    msg(303, Error, "The shared health records of a daemon process group could not be mapped; Apache does not start.", "Check the memory limits of the Apache parent and restart Apache."),
    msg(304, Debug, "Start-up: how many daemon process groups this Apache starts.", "None; for information."),
    msg(305, Error, "A script of WSGIImportScript (or WSGIScriptAlias with both process-group= and application-group=) could not be preloaded in an Apache child; its traceback follows. Requests load it again when they come.", "Correct the script (the traceback says where); the next request, or a touch of the script, loads it again."),
    msg(306, Error, "A panic (a bug of mod_wsgi_rs) was caught at the boundary with Apache; the request or hook answered an error and the process goes on.", "Report it with the line and what led to it."),
    msg(310, Error, "The Apache parent could not fork a daemon process.", "Check the process and memory limits (ulimit -u, the container's pids limit, free memory)."),
    msg(311, Error, "A daemon process hit an internal error (a bug of mod_wsgi_rs) and exits; the supervisor starts another.", "Report it with the lines before it."),
    msg(312, Info, "A daemon process exited, with its status; unless Apache is stopping, the supervisor starts another.", "None when the exit was asked for (recycling, reload, restart); otherwise see the lines before it from the same pid."),
    msg(313, Warn, "A daemon process group keeps dying at start-up; its next start is delayed (doubling up to a minute) and requests are answered 503 meanwhile.", "See the start-up error of the group (WSGIRS330, a preload's traceback) and correct it."),
    msg(314, Warn, "A daemon process did not stop within its shutdown time and was killed.", "See what its requests were doing (WSGIRS337, the status page); raise shutdown-timeout= if they need longer."),
    msg(330, Error, "A daemon process could not start (privileges, Python, its socket); it exits and the supervisor retries with back-off.", "Correct the cause the line names (user=, group=, home=, python-home=, the permissions of the socket directory)."),
    msg(331, Warn, "A resource limit of WSGIDaemonProcess (memory-limit=, virtual-memory-limit=, cpu-time-limit=, stack-size=) could not be set; the process runs without it.", "Check the hard limits Apache itself runs under (ulimit -H) and lower the option below them."),
    msg(332, Error, "A daemon process could not preload a script of WSGIImportScript; its traceback follows. The process keeps running and loads the script with the first request.", "Correct the script (the traceback says where); touching it reloads it."),
    msg(333, Info, "A daemon process started, with its number of threads.", "None; for information."),
    msg(334, Error, "A daemon process could not start its heartbeat thread; the Apache parent cannot tell it is alive.", "Check the thread limits of the daemon user (ulimit -u)."),
    msg(335, Warn, "A daemon process failed to accept a connection from Apache (it retries).", "Check the file descriptor limit (ulimit -n) and the load."),
    msg(336, Error, "A daemon process hit an internal error (a bug of mod_wsgi_rs) while serving a request; the request was answered 500 and the process goes on.", "Report it with the lines before it."),
    msg(337, Warn, "A daemon process exits with requests still running: they timed out or outlived its shutdown or graceful time.", "Look at what those requests wait on; raise the timeout that applies if they need longer."),
    msg(338, Info, "A daemon process exits, and why (maximum requests, inactivity, restart interval, reload, shutdown).", "None; for information."),
    msg(340, Error, "A daemon process's Python interpreter has been deadlocked (the GIL not released) for longer than deadlock-timeout=; the process restarts.", "Find the C extension or code that holds the GIL (a stack from the slow-request report helps)."),
    msg(341, Info, "A daemon process will restart once its requests finish, and why (maximum requests, reload, signal).", "None; for information."),
    msg(342, Debug, "A daemon process read an unreadable request from its socket and closed the connection.", "None unless it repeats; then check what else connects to the daemon socket."),
    msg(343, Error, "A daemon process could not enter the Python interpreter of the request's application group; the request was answered 500.", "See the Python error the line names (WSGIRS391)."),
    msg(344, Warn, "A daemon process refused a request that did not come from this Apache (wrong or missing secret); it was answered 403.", "Check what else connects to the daemon socket (WSGISocketPrefix's directory should be private)."),
    msg(345, Debug, "Apache sent a request body before the daemon process asked for it; the connection was closed.", "None unless it repeats; then report it."),
    msg(346, Debug, "A daemon process could not read a request's body from Apache (the client went away, or Apache timed out).", "None; the client is gone."),
    msg(347, Error, "A request reached a daemon process without naming a WSGI script, and the group has no WSGIImportScript to fall back on.", "Route the request with WSGIScriptAlias, or give the group a WSGIImportScript."),
    msg(348, Error, "A daemon-mode request waited longer than queue-timeout= for a daemon thread and was answered 503.", "Add processes= or threads= to the group, or find what keeps its threads busy (the status page)."),
    msg(349, Debug, "A request past request-timeout could not be interrupted with mod_wsgi.RequestTimeout yet (its interpreter's GIL is busy, or the request has just ended); the monitor tries again.", "None; for information."),
    msg(350, Error, "An atexit callback of the application raised while Python shut down; the traceback's text is on the line.", "Correct the callback."),
    msg(351, Info, "The Python switch interval was set from switch-interval= or WSGISwitchInterval.", "None; for information."),
    msg(352, Error, "The Python sub-interpreter of an application group could not be created; its requests are answered 500.", "See the Python error; an extension module that refuses sub-interpreters needs WSGIApplicationGroup %{GLOBAL}."),
    msg(353, Info, "A Python sub-interpreter was created for an application group.", "None; for information."),
    msg(354, Error, "A daemon process could not start the thread that takes Python stacks and interrupts timed-out requests for its monitor; slow-request and request-timeout reports come without stacks, and timed-out requests are not interrupted.", "Check the thread limits of the daemon user (ulimit -u)."),
    msg(370, Error, "The WSGI application raised while it handled a request (or while its response was sent or closed); the traceback follows.", "Correct the application (the traceback says where)."),
    msg(371, Error, "A WSGI script could not be loaded: importing it raised; the traceback follows. The request was answered 500.", "Correct the script (the traceback says where); the next request loads it again."),
    msg(372, Error, "A WSGI script has no callable of the name WSGICallableObject (or callable-object=) gives; the request was answered 500.", "Define the callable (`application` by default) or name the one the script has."),
    msg(373, Error, "The WSGI environ of a request (or of an access script's call) could not be built; the traceback follows.", "Report it with the request that caused it."),
    msg(374, Error, "The start_response callable of a request could not be created; the traceback follows.", "Report it."),
    msg(375, Error, "The WSGI application returned without calling start_response; the request was answered 500.", "Correct the application: it must call start_response before (or while) it returns its body."),
    msg(376, Info, "The client closed the connection while the application's response was being sent; the rest was dropped.", "None; the client went away."),
    msg(377, Error, "The application produced fewer bytes than the Content-Length it declared; the connection was aborted so the client does not take the body as complete.", "Correct the application's Content-Length (or leave it out)."),
    msg(378, Error, "A callback subscribed with mod_wsgi.subscribe_events() raised; the traceback follows. The other callbacks still ran.", "Correct the callback."),
    msg(390, Error, "Python could not be initialised in this process; requests to it are answered 500.", "Check WSGIPythonHome (or python-home=): it must be a virtualenv or installation of the Python mod_wsgi_rs was built with."),
    msg(391, Error, "Python was initialised but setting it up failed (the mod_wsgi module, the settings, or a sub-interpreter); requests to it are answered 500.", "See the Python error on the line."),
    msg(392, Error, "mod_wsgi is loaded in the same Apache as mod_wsgi_rs; they answer the same directives, so Apache refuses to start (\"Pre-configuration failed\").", "Load only one of the two: a2dismod wsgi (or a2dismod wsgi_rs), then start Apache again."),
    // 400-419: graceful restarts.
    msg(400, Level::Info, "Apache restarts (graceful or not): the daemon processes of the previous generation keep serving, on the same sockets, until the new generation's processes of their group are ready.", "Nothing is wrong."),
    msg(401, Level::Info, "A daemon process of an earlier generation is asked to stop (it finishes its requests first): its group's new processes are ready, or its group was removed from the configuration and no Apache child of an earlier generation is left.", "Nothing is wrong."),
    msg(402, Level::Info, "A daemon process of an earlier generation exited after a restart.", "Nothing is wrong; a non-zero status means it did not finish its requests within shutdown-timeout."),
    msg(403, Error, "Under httpd -X the process that supervises the daemon processes could not be forked; daemon groups do not run.", "Check the process limits (ulimit -u) and start again."),
    msg(404, Level::Info, "Under httpd -X a supervisor process of its own starts, reaps and replaces the daemon processes, and stops them when the -X process exits.", "Nothing is wrong."),
    msg(405, Level::Info, "After a restart of Apache the metrics table had no room for the new configuration's daemon groups or processes (each table keeps room for 16 more groups, and for twice the daemon processes of the configuration it was made for): a larger table is made and its counters start again from zero. The processes of earlier generations still serving count into the old one, no longer read.", "Nothing is wrong; Prometheus' rate() reads it as a counter reset. A full stop and start makes a table sized for the configuration as it is now."),
    // 420-439: recycling daemon processes.
    msg(420, Error, "A daemon group's template process (process-template=On) could not start; the line gives the cause, and the group's requests are answered as for a group that cannot start.", "Fix the cause (user, home, python-home, chroot); the Apache parent tries again with back-off."),
    msg(421, Info, "A daemon group's template process has started Python (and imported the group's start-up scripts of the main interpreter) and forks the group's processes.", "Nothing to do."),
    msg(422, Info, "A WSGI script of a group with a template changed: the template stops its processes and exits, and the Apache parent starts a fresh one that imports the new code.", "Nothing to do; requests wait for the new processes."),
    msg(423, Info, "A template starts the successor of a process that is to be replaced (maximum-requests near, restart-interval, inactivity-timeout, request-timeout); the old process serves meanwhile.", "Nothing to do."),
    msg(424, Info, "A successor serves in place of the process it replaces (pid 0: a slot that was empty); the old process finishes its requests and exits.", "Nothing to do."),
    msg(425, Error, "A template could not fork a daemon process; it tries again a second later.", "Check the process and memory limits of the group's user (ulimit -u, the cgroup's pids.max)."),
    msg(426, Warn, "A successor died before it served; the line gives its exit status and when it is tried again.", "Look at the lines before it for the cause (a failing import in a sub-interpreter, a resource limit)."),
    msg(427, Info, "A template process exits (Apache stops or restarts, the parent went away, or a script changed); its processes finish their requests within shutdown-timeout.", "Nothing to do."),
    msg(428, Info, "A daemon process forked by a template exited; the line gives its exit status.", "Nothing to do unless the status is not 0: then look at the lines before it."),
    msg(429, Warn, "A daemon process forked by a template keeps dying at start-up; its next start is held off.", "Look at the lines before it for the cause; the group's requests get 503 while no process serves."),
    msg(430, Error, "A daemon process forked by a template could not start serving; the line gives the cause.", "Fix the cause named; the template starts the process again with back-off."),
    msg(431, Level::Debug, "A template could not freeze its Python objects (gc.freeze()) before forking; the fork goes ahead, sharing fewer memory pages.", "Nothing to do."),
    msg(432, Info, "Without a template: the Apache parent starts the successor of a daemon process that is to be replaced (maximum-requests near, restart-interval, inactivity-timeout, request-timeout, maximum-memory, startup-timeout); the old process serves meanwhile, past its maximum-requests if need be, and one successor of a group starts at a time.", "Nothing to do."),
    msg(433, Warn, "A daemon process to be replaced saw no successor serve within the bound (60 s, or startup-timeout if longer): it stops without one, and the Apache parent starts a process after it exits.", "Look at the lines before it (WSGIRS435: the successor died) for why its successor did not start."),
    msg(434, Info, "A successor serves; the process it replaces stops taking work, finishes its requests and exits.", "Nothing to do."),
    msg(435, Warn, "A successor died before (or as) it began serving; the process it was to replace serves on until its own bound, then is replaced after it exits.", "Look at the lines before it for the cause (a failing import, a resource limit)."),
    msg(436, Error, "The Apache parent could not create the pipe daemon processes wake it with: without a template, a recycled process is replaced only after it exits, as before.", "Check the parent's open file limit (ulimit -n)."),
    msg(437, Debug, "A successor could not load the script its predecessor served before it began serving; it serves anyway, and requests load the script (and report its error) as usual.", "Look at the error the group's requests report."),
    // 440-459: timeouts and limits.
    msg(440, Error, "A daemon-mode request ran past request-timeout (scaled by the process's threads as in mod_wsgi 6); the line names group, pid, thread and URL, says whether it was answered 504 and how the process recovers (interrupting the thread with mod_wsgi.RequestTimeout, or replacing the process), and the thread's Python stack follows.", "Look at the stack for what the request waits on: give that call a timeout of its own (HTTP client, database statement); raise request-timeout if such requests are legitimate."),
    msg(441, Error, "A request interrupted with mod_wsgi.RequestTimeout was still running interrupt-timeout later (a thread blocked in one long C call, or code that swallowed the exception): its process is replaced gracefully.", "Give the blocking call a timeout of its own, and re-raise mod_wsgi.RequestTimeout after any clean-up that catches it."),
    msg(442, Warn, "A daemon process's resident memory passed maximum-memory; the line gives the figure, and the process is replaced gracefully.", "Nothing is lost; if it happens often, find what grows (the status page and the memory gauge show it) or raise maximum-memory."),
    msg(445, Error, "Writing a response from the daemon to Apache blocked for response-socket-timeout (Apache stopped reading, usually because its client did): the request is abandoned and its thread serves again.", "Nothing to do for one slow client; raise response-socket-timeout if legitimate clients read this slowly."),
    // 460-479: slow clients.
    msg(460, Level::Info, "Connections to a daemon group's socket that sent no complete request head within header-timeout were closed; the line gives how many. No daemon thread waited for them.", "Nothing to do for a stray client. If a legitimate peer (a proxy sending heads slowly) is cut off, raise header-timeout; if many, find who connects to the socket."),
    msg(461, Level::Info, "Connections whose request body, buffered by the daemon before running (a uwsgi peer such as mod_proxy_uwsgi, up to request-buffer-size), stopped arriving for socket-timeout were closed; the line gives how many.", "Nothing to do for a client that went away; raise socket-timeout if legitimate clients pause this long."),
    msg(463, Level::Debug, "A daemon process went away (killed, or exiting) while it still held part of a request unread, so it never ran it; the Apache child sends the request again, to another process or the replacement.", "Nothing to do; look for why the process went away if it repeats."),
    // 500-539: ASGI.
    msg(500, Error, "interface=asgi on a WSGIScriptAlias or WSGIImportScript line without a daemon process group: ASGI applications run in daemon mode only, so Apache refuses to start.", "Add process-group=NAME, naming a WSGIDaemonProcess group, to the line."),
    msg(501, Error, "A request reached an ASGI application in embedded mode (no daemon process group); it is answered 500.", "Mount the script with process-group=NAME (a WSGIDaemonProcess group) on its WSGIScriptAlias, or set WSGIProcessGroup."),
    msg(502, Error, "An ASGI application raised while serving a request: answered 500 if its response had not started, else the connection is aborted; the traceback follows.", "Fix the application; the traceback says where it failed."),
    msg(503, Error, "An ASGI application returned without starting its response (answered 500) or before ending it (connection aborted).", "Make the application send http.response.start and a last http.response.body without more_body."),
    msg(504, Error, "An ASGI request ran longer than request-timeout: its task was cancelled, answered 504 when no response had started (else the connection is aborted).", "Look for what the request awaits; raise request-timeout if such requests are expected."),
    msg(505, Info, "A daemon process started the ASGI event loop of an application group; the line names the loop (uvloop or asyncio) and its executor's size (threads=).", "Nothing is wrong."),
    msg(506, Error, "The ASGI event loop of an application group stopped; that process can no longer serve its ASGI requests.", "Look at the lines before it for the cause; restart Apache (or touch the script) to replace the process."),
    msg(507, Error, "A request could not be handed to the ASGI event loop; it is answered 500 and the Python error follows.", "Look at the Python error; it usually means the process is out of memory or descriptors."),
    msg(508, Error, "The lifespan of an ASGI start-up script (WSGIImportScript, or an alias naming both groups) could not be started when the process started; it starts before the first request instead.", "Look at the error; it usually means the process is out of memory or threads."),
    msg(510, Error, "An ASGI application's lifespan startup failed (lifespan.startup.failed); its requests are answered 500 and the process stops to be replaced, the traceback follows when there is one.", "Fix what the startup needs (database, configuration); the message and traceback say what failed."),
    msg(511, Info, "An ASGI application raised on the lifespan scope before answering it, which per the ASGI spec means it does not support lifespan; it is served without.", "Nothing is wrong (Django's ASGI handler does this)."),
    msg(512, Error, "An ASGI application's lifespan shutdown failed or raised while the process stopped.", "Fix the application's shutdown code; the message or traceback says what failed."),
    msg(530, Error, "A daemon worker could not wake the ASGI event loop to hand it requests (its wake-up pipe failed); the waiting requests' connections are closed.", "Restart the process group (touch the script or restart Apache); look for descriptor exhaustion on the lines before."),
    // 540-559: WebSockets.
    msg(540, Error, "A WebSocket the daemon accepted could not be tunnelled: the client's connection has no socket Apache can poll (a connection filter replaced it).", "Serve WebSockets from a virtual host without connection-replacing modules; the client gets its 101 and then a closed connection."),
    msg(541, Info, "A WebSocket tunnel ended other than by either side closing: idle past Timeout (or the daemon group's socket-timeout, the larger), the client gone while data was sent to it, or the daemon connection failing; the line says which.", "Nothing to do for idle sockets (the application may send pings to keep them open, or raise Timeout/socket-timeout); a failing daemon connection is logged by the daemon too."),
    msg(542, Error, "A daemon process answered 101 Switching Protocols to a request that did not ask for a WebSocket (or without Upgrade: websocket); the client gets 502.", "A WSGI application must not answer 101; WebSockets are served by ASGI applications."),
    msg(543, Info, "A WebSocket request's handshake was malformed (no valid Sec-WebSocket-Key, or a version other than 13): answered 400 without running the application.", "Nothing to do on the server: the client is not a conforming WebSocket client."),
    msg(544, Error, "An ASGI application raised while serving a WebSocket; the traceback follows. Before the handshake was accepted the client got 500, after it the close code 1011.", "Fix the application; the traceback names the line."),
    // 560-599: requests in Apache's children.
    msg(560, Error, "A request for a WSGI script in a directory without Options ExecCGI was refused with 403.", "Add Options ExecCGI to the directory (WSGIScriptAlias does not need it)."),
    msg(561, Error, "A request tried to run a directory as a WSGI application and was refused with 403.", "Correct the WSGIScriptAlias target or the URL."),
    msg(562, Error, "The WSGI script a request maps to does not exist or cannot be read; the request was answered 404.", "Check the path of WSGIScriptAlias and that Apache's user can read the file."),
    msg(563, Info, "A request with a chunked body was answered 411 because WSGIChunkedRequest is Off.", "Set WSGIChunkedRequest On where the application reads chunked bodies."),
    msg(564, Error, "A request names a daemon process group (WSGIProcessGroup) that no WSGIDaemonProcess of this server defines; it was answered 500.", "Define the group, or correct the name."),
    msg(565, Error, "A request would run in embedded mode but WSGIRestrictEmbedded On forbids it; it was answered 500.", "Delegate the application to a daemon process group with WSGIProcessGroup."),
    msg(566, Error, "The request may not use the daemon process group it names: WSGIRestrictProcess does not list it; it was answered 403.", "Add the group to WSGIRestrictProcess or route the request to an allowed group."),
    msg(567, Error, "The WSGIDispatchScript raised; the traceback follows. The request was answered 500.", "Correct the dispatch script."),
    msg(568, Error, "A function of the WSGIDispatchScript returned a value that cannot be used (wrong type, or a group that does not exist); the request was answered 500.", "Correct the dispatch script."),
    msg(570, Error, "AuthBasicProvider or AuthDigestProvider names wsgi, but no WSGIAuthUserScript applies to the request.", "Add WSGIAuthUserScript for the location, or remove the wsgi provider."),
    msg(571, Error, "Require wsgi-group is used, but no WSGIAuthGroupScript applies to the request.", "Add WSGIAuthGroupScript for the location, or remove the Require line."),
    msg(572, Error, "A user was refused by Require wsgi-group: WSGIAuthGroupScript did not put them in any of the groups.", "None when the refusal is right; otherwise correct the groups the script returns."),
    msg(573, Error, "A client was refused by WSGIAccessScript (allow_access() returned False); it was answered 403.", "None when the refusal is right; otherwise correct the script."),
    msg(574, Error, "An access control script (WSGIAccessScript, WSGIAuthUserScript, WSGIAuthGroupScript) lacks the function the request needs.", "Define the function (allow_access, check_password, get_realm_hash or groups_for_user)."),
    msg(575, Error, "A function of an access control script raised; the traceback follows. The request was refused.", "Correct the script."),
    msg(576, Error, "A function of an access control script returned a value of the wrong type; the request was refused.", "Return what the line says the function must return."),
    msg(580, Info, "Reading a request's body from the client failed (the client went away or was too slow); the request was answered 400.", "None; the client is gone."),
    msg(581, Error, "A request's variables are too large for the daemon protocol (more than 64 KiB of headers); it was answered 500.", "Find the client that sends such headers; LimitRequestFieldSize keeps them smaller."),
    msg(582, Error, "A request could not be encoded for its daemon process; it was answered 500.", "Report it with the request that caused it."),
    msg(583, Debug, "A daemon process was restarting when the request came; the request is tried again on another.", "None; for information."),
    msg(584, Error, "The daemon processes of a group kept refusing the request (all restarting) until connect-timeout=; it was answered 503.", "See why the group restarts (WSGIRS338, WSGIRS341); raise connect-timeout= if restarts take longer."),
    msg(585, Error, "An Apache child could not connect to the daemon process group's socket within connect-timeout=; the request was answered 503.", "Check that the group runs (WSGIRS330, WSGIRS313) and is not overloaded (listen-backlog=, processes=, threads=)."),
    msg(586, Error, "The daemon process group cannot start, so the request was answered 503 at once; the line gives the cause recorded at start-up.", "Correct the cause the line names."),
    msg(587, Debug, "Sending a request to its daemon process failed; the request is tried again or answered 502.", "None unless it repeats; then see the daemon's lines for that time."),
    msg(588, Error, "Reading the response from the daemon process failed; the request was answered 502.", "See the daemon's lines for that time (a crash, WSGIRS440)."),
    msg(589, Error, "The daemon process closed the connection before it sent complete response headers (it may have crashed); the request was answered 502.", "See the daemon's lines for that time (a crash, a timeout, WSGIRS337)."),
    msg(590, Error, "The daemon process did not send the response headers within socket-timeout=; the request was answered 504.", "Find what the application waits on; raise socket-timeout= if such requests are expected."),
    msg(591, Error, "The response head from the daemon process is longer than the client takes (64 KiB, or twice header-buffer-size= when that is more); the request was answered 500.", "Correct the application's response headers."),
    msg(592, Error, "A response header from the daemon process is malformed; the request was answered 502.", "Report it with the application's response."),
    msg(593, Error, "The response from the daemon process ended before it was complete; the client's connection was aborted.", "See the daemon's lines for that time (a crash, a timeout, WSGIRS337)."),
    msg(594, Error, "A daemon process refused a request from this Apache's mod_proxy_uwsgi because the trusted proxy rules (WSGITrustedProxyHeaders, WSGITrustedProxies) that came with it did not parse; it was answered 500.", "Report it: only this Apache writes those rules. Check that the Apache children and the daemon processes run the same module build (a full restart)."),
    msg(600, Error, "A request to a daemon process group with script-user= or script-group= was refused with 403: the owner of its WSGI script file was not known (Apache's stat did not give it), or the script's directory could not be stat()ed.", "Check that the script and its directory exist and Apache's user can reach them."),
    msg(601, Error, "A request to a daemon process group with script-user= (or script-group=) was refused with 403: its WSGI script file is owned by another user (group); the line gives the script, its owner's id and the one required.", "Give the script to the user (group) the option names (chown), or correct the option."),
    msg(602, Error, "A request to a daemon process group with script-user= (script-group=) was refused with 403: its WSGI script file may be written by its group or anyone (by anyone).", "Remove the write permission (chmod go-w, or o-w for script-group=)."),
    msg(603, Error, "A request to a daemon process group with script-user= (or script-group=) was refused with 403: the directory holding its WSGI script file is owned by another user (group), who could replace the script.", "Give the directory to the user (group) the option names, or move the script."),
    msg(604, Error, "A request to a daemon process group with script-user= (script-group=) was refused with 403: the directory holding its WSGI script file may be written by its group or anyone (by anyone), who could replace the script.", "Remove the write permission of the directory (chmod go-w, or o-w for script-group=)."),
    msg(605, Warn, "The system refused send-buffer-size= or receive-buffer-size= on a connection of the daemon process group; the connection keeps the system's buffer size. Said once per process.", "Use a size the system allows (Linux: up to net.core.wmem_max and rmem_max)."),
    msg(606, Error, "A response header line from the daemon process (name, value and line end) is longer than the group's header-buffer-size= (32768 bytes when not given, as in mod_wsgi); the request was answered 500.", "Make the header shorter, or raise header-buffer-size= (the whole head may then take twice that, at least 64 KiB)."),
    ]
};

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
    (560, 599, "Requests in Apache's children: the handler, access control, the dispatch script, forwarding to daemon processes"),
    (600, 619, "`WSGIDaemonProcess` options"),
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
                m.meaning().replace('|', "\\|"),
                m.remedy.replace('|', "\\|")
            ));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
