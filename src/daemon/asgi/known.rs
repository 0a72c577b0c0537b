//! The ASGI applications a daemon process's requests have reached, so
//! that the next request for the same script goes to the event loop
//! without the GIL ([`super::hand_over_known`]): a lookup by script,
//! callable and `interface=`, checked against the script's mtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::sync::MutexExt;

use crate::asgi::Server;
use crate::daemon::protocol::{self, Vars};
use crate::daemon::websocket;
use crate::interp::ScriptKey;

/// The ASGI applications requests have reached, remembered so that the
/// next request for the same script hands over without the GIL: the slow
/// path (a worker thread holding the GIL to look the script up, tell ASGI
/// from WSGI and build the scope) competes for the GIL with the event
/// loop's thread, which holds it whenever Python runs there.
static KNOWN: Mutex<Vec<Known>> = Mutex::new(Vec::new());

/// Whether [`KNOWN`] has ever had an entry: a process serving only WSGI
/// applications then never takes the table's lock, which every one of its
/// requests would otherwise do.
static ANY_KNOWN: AtomicBool = AtomicBool::new(false);

/// A script whose callable is an ASGI application, as the slow path found.
struct Known {
    /// The script and application group.
    key: ScriptKey,
    /// The callable's name.
    callable: String,
    /// The request's `interface=` and whether it named its script: the
    /// decision depends on both.
    interface: Option<Vec<u8>>,
    /// The request named its script (else the group's default one).
    named: bool,
    /// The script's mtime when it was found, so a changed script takes the
    /// slow path (which replaces the process when script reloading is on).
    mtime: Option<i64>,
    /// The application.
    app: Arc<Py<PyAny>>,
    /// Its group's server.
    server: Arc<Server>,
}

impl Known {
    /// Whether this is the entry of such a request.
    fn matches(&self, vars: &Vars, key: &ScriptKey, callable: &str) -> bool {
        self.key == *key
            && self.callable == callable
            && self.named == vars.get(protocol::VAR_SCRIPT).is_some()
            && self.interface.as_deref() == vars.get(protocol::VAR_INTERFACE)
    }
}

/// What the fast hand-over needs of a request.
pub(in crate::daemon) struct Lookup<'a> {
    /// Its vars.
    pub vars: &'a Vars,
    /// The script and application group.
    pub key: &'a ScriptKey,
    /// The callable's name.
    pub callable: &'a str,
    /// The script's mtime as Apache saw it.
    pub mtime: Option<i64>,
    /// `WSGIScriptReloading`.
    pub reloading: bool,
}

/// The application and server of a request that can be handed over
/// without the GIL: its script is known to hold an ASGI application and
/// has not changed since (with script reloading on, only when Apache gave
/// the script's mtime, else finding out would take a stat the slow path
/// does). A WebSocket takes the slow path.
pub(in crate::daemon) fn known(request: &Lookup<'_>) -> Option<(Arc<Py<PyAny>>, Arc<Server>)> {
    if !ANY_KNOWN.load(Ordering::Acquire) || websocket::requested(request.vars) {
        return None;
    }
    let known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    let entry = known
        .iter()
        .find(|k| k.matches(request.vars, request.key, request.callable))?;
    if request.reloading && (request.mtime.is_none() || request.mtime != entry.mtime) {
        return None;
    }
    Some((entry.app.clone(), entry.server.clone()))
}

/// Remembers the application the slow path found for such a request.
pub(super) fn remember(
    py: Python<'_>,
    request: &Lookup<'_>,
    app: &Arc<Py<PyAny>>,
    server: &Arc<Server>,
) {
    let mut known = KNOWN
        .lock_py_attached(py)
        .unwrap_or_else(|p| p.into_inner());
    let entry = Known {
        key: request.key.clone(),
        callable: request.callable.to_owned(),
        interface: request
            .vars
            .get(protocol::VAR_INTERFACE)
            .map(<[u8]>::to_vec),
        named: request.vars.get(protocol::VAR_SCRIPT).is_some(),
        mtime: request.mtime,
        app: app.clone(),
        server: server.clone(),
    };
    match known
        .iter_mut()
        .find(|k| k.matches(request.vars, request.key, request.callable))
    {
        Some(old) => *old = entry,
        None => known.push(entry),
    }
    ANY_KNOWN.store(true, Ordering::Release);
}
