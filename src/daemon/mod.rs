//! Daemon mode: process groups forked and supervised by the Apache parent
//! (see `httpd::supervisor`), each process running the group's WSGI
//! application on worker threads fed by the group's UNIX socket.
//!
//! - [`protocol`]: the uwsgi wire format and our client's extensions.
//! - [`health`]: whether the group can serve, shared with Apache's children.
//! - [`privileges`]: turning a forked root process into the group's user.
//! - [`process`]: a daemon process's life: set-up and the worker threads.
//! - [`template`]: a group's template process (`process-template=On`),
//!   which forks the group's processes from a started Python and replaces
//!   each one only once its successor serves.
//! - [`succession`]: what a process tells its template, or without one
//!   the Apache parent, to be replaced by a successor that serves first.
//! - [`monitor`]: the main thread that applies signals, timeouts and
//!   recycling, and the graceful exit.
//! - [`inspect`]: the monitor's Python work, on a thread that may wait for
//!   the GIL.
//! - [`state`]: what workers and monitor share.
//! - [`stop`]: why a process stops, and what each reason is called.
//! - [`poller`]: the epoll set workers wait on (listener, and connections
//!   no worker holds).
//! - [`intake`]: receiving a request without waiting, so a thread is taken
//!   only by a request ready to run.
//! - [`connection`]: checking one received request, then running it.
//! - [`backend`]: the request's body and response on the socket.
//! - [`active`]: the running request as the monitor sees it, and who answers.
//! - `asgi`: ASGI requests handed to the application group's event loop.
//! - [`websocket`]: the ASGI `websocket` scope on a connection Apache
//!   tunnels to us.

pub mod active;
mod asgi;
pub mod backend;
pub mod connection;
pub mod health;
pub mod inspect;
pub mod intake;
pub mod monitor;
pub mod poller;
pub mod privileges;
pub mod process;
pub mod protocol;
#[cfg(test)]
mod protocol_props;
pub mod state;
pub mod stop;
pub mod succession;
pub mod template;
pub mod websocket;

use std::path::PathBuf;
use std::time::Duration;

use crate::config::DaemonProcessSpec;
use crate::interp::{PythonSettings, ScriptKey};

/// Everything a freshly forked daemon process needs, resolved by the parent.
#[derive(Clone, Debug)]
pub struct DaemonLaunch {
    /// The group's `WSGIDaemonProcess` options.
    pub spec: DaemonProcessSpec,
    /// The group's listening socket, inherited across fork.
    pub listener_fd: i32,
    /// The secret our own client's requests carry: they may name the script,
    /// application group and callable to run.
    pub secret: String,
    /// The secret given to this Apache's mod_proxy_uwsgi requests: they get
    /// the group's default application only, whatever vars they carry (an
    /// .htaccess author can make mod_proxy send any vars).
    pub proxy_secret: String,
    /// How Python starts in the process.
    pub python: PythonSettings,
    /// Who the process runs as.
    pub identity: privileges::Identity,
    /// The directory it starts in.
    pub home: Option<PathBuf>,
    /// Scripts loaded at start (`WSGIImportScript`, preloading aliases).
    pub preloads: Vec<ScriptKey>,
    /// The application a plain uwsgi peer (which names no script) gets: the
    /// group's first `WSGIImportScript`.
    pub default_script: Option<ScriptKey>,
    /// Its `WSGIImportScript interface=`, if given.
    pub default_interface: Option<crate::config::Interface>,
    /// How long a read or write on a connection may block.
    pub socket_timeout: Duration,
    /// How long one write of a response may block (`response-socket-timeout`,
    /// else `socket_timeout`).
    pub response_timeout: Duration,
    /// `WSGISlowRequests`: a request running longer has its Python stack
    /// logged once (zero: off).
    pub slow_requests: Duration,
    /// The Apache parent: the daemon exits when it goes away.
    pub parent_pid: i32,
    /// The group's shared health records (made with the listener).
    pub health: health::Health,
    /// Its place on the metrics board, when metrics are collected (set by
    /// the parent as it forks the process).
    pub metrics: Option<crate::metrics::ProcessMetrics>,
    /// The line to the template process that forked this process, when the
    /// group has one (set by the template as it forks the process).
    pub succession: Option<std::sync::Arc<succession::Link>>,
    /// Without a template: the line to the Apache parent for replacing
    /// the process by a successor (set by the parent as it forks it).
    pub relay: Option<succession::Relay>,
    /// Sets the process title (`display-name`); given by the Apache parent
    /// to a template, whose processes take the group's title back.
    pub retitle: Option<fn(&str)>,
}
