//! Serving one request on a daemon connection: take the uwsgi request the
//! [`intake`](super::intake) received, check it came from this Apache,
//! decide whether this process may serve it (a changed script or a pending
//! restart means "retry elsewhere"), then run the application through the WSGI core with a [`DaemonBackend`]. Our client's
//! connections are persistent: [`serve`] says whether the connection is
//! ready for the next request.

use std::io::Write;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use super::active::{self, ActiveRequest, Answer, AnswerState};
use super::asgi;
use super::backend::{Body, DaemonBackend};
use super::intake::{inline_body, plain_length, Head, Scratch};
use super::protocol::{self, error_response, Refused, Vars};
use super::state::Daemon;
use super::stop::StopReason;
use crate::interp::{self, ScriptKey};
use crate::wsgi::{run_request, EnvironSpec, WsgiFlags};

/// Whether the connection is ready for the client's next request.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    /// Park it for the next request.
    Keep,
    /// Close it.
    Close,
    /// An ASGI request: the event loop owns the connection now (see
    /// `daemon::asgi`); the worker lets go of it without closing it.
    Handed,
}

/// Serves the request `head` (with what of its body arrived, in `scratch`)
/// on `stream`. `accepting`: the process is not exiting.
pub fn serve(
    daemon: &Arc<Daemon>,
    index: usize,
    stream: &mut UnixStream,
    head: Head,
    scratch: &Scratch,
    accepting: bool,
) -> After {
    let already = scratch.body(&head);
    let admitted = daemon.admit() && accepting;
    let Some(vars) = trusted_vars(daemon, stream, head.vars) else {
        return After::Close;
    };
    // WSGIIgnoreActivity: such requests neither start nor end activity.
    let counts = !vars.flag(protocol::VAR_IGNORE_ACTIVITY);
    if counts {
        daemon.note_activity();
    }
    let framed = vars.flag(protocol::VAR_CLIENT);
    if framed && !admitted {
        let _ = stream.write_all(&[protocol::REJECT]);
        return After::Close;
    }
    let Some(body) = request_body(daemon, &vars, already, framed) else {
        return After::Close;
    };
    let Some(key) = script_of(daemon, &vars) else {
        let _ = stream.write_all(&error_response(500, "Internal Server Error", framed));
        return After::Close;
    };
    let queued = queued_for(&vars);
    if waited_too_long(daemon, queued) {
        let _ = stream.write_all(&error_response(504, "Gateway Timeout", framed));
        return After::Close;
    }
    let reloading = vars.get(protocol::VAR_RELOADING) != Some(b"0");
    let callable = vars
        .get_str(protocol::VAR_CALLABLE)
        .unwrap_or_else(|| "application".into());
    let mtime = script_mtime(&vars);
    // Busy from here until the request is done; timed for the metrics.
    let metrics = daemon.launch.metrics;
    let mut busy = metrics.map(|m| (m.taken(queued), Instant::now()));
    let lookup = asgi::Lookup {
        vars: &vars,
        key: &key,
        callable: &callable,
        mtime,
        reloading,
    };
    if let Some(known) = asgi::known(&lookup) {
        // A known ASGI application: handed over without the GIL.
        let request = asgi::KnownRequest {
            vars,
            key,
            taken: asgi::Taken { body, framed, busy },
        };
        return if asgi::hand_over_known(daemon, stream, known, request) {
            After::Handed
        } else {
            After::Close
        };
    }
    let answer = AnswerState::new();
    *daemon.slots[index]
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(ActiveRequest {
        started: Instant::now(),
        // Python's thread ident.
        thread_id: crate::sys::thread::current_id(),
        uri: vars.get_str("REQUEST_URI").unwrap_or_default(),
        app_group: key.group.clone(),
        timed_out: AtomicBool::new(false),
        interrupted: AtomicBool::new(false),
        abandoned: AtomicBool::new(false),
        reported_slow: AtomicBool::new(false),
        answer: answer.clone(),
        fd: stream.as_raw_fd(),
        framed,
    });
    let request = Request {
        vars: &vars,
        key,
        callable: &callable,
        reloading,
        body,
        framed,
        // More open connections than threads would let requests wait in
        // this process while another one has idle threads.
        keep_alive: framed && daemon.connections() <= daemon.slots.len(),
    };
    let group = request.key.group.clone();
    let ran = interp::with_group(&group, |py| {
        let _ending = active::Ending(py, &daemon.slots[index]);
        run(py, daemon, stream, request, answer.clone(), &mut busy)
    });
    if let Ok(true) = ran {
        return After::Handed;
    }
    if let (Some(m), Some((_, begun))) = (metrics, &busy) {
        m.duration(begun.elapsed());
    }
    drop(busy);
    if counts {
        daemon.note_activity();
    }
    if let Err(e) = ran {
        log::error!("WSGIRS343: (wsgi:{}) {e}", daemon.group());
        let _ = stream.write_all(&error_response(500, "Internal Server Error", framed));
        return After::Close;
    }
    if answer.get() == Answer::Kept {
        After::Keep
    } else {
        After::Close
    }
}

/// The request's vars if it came from this Apache, else None (answered
/// 403). Our handler may choose script, group and callable; a proxied
/// request (or anything else) only ever gets the group's default
/// application, so its private vars are dropped, and its forwarding
/// headers are judged by the rules of its location (see `protocol::admit`).
fn trusted_vars(daemon: &Daemon, stream: &mut UnixStream, vars: Vars) -> Option<Vars> {
    let framed = vars.flag(protocol::VAR_CLIENT);
    let admitted = protocol::admit(
        vars,
        daemon.launch.secret.as_bytes(),
        daemon.launch.proxy_secret.as_bytes(),
    );
    match admitted {
        Ok(vars) => return Some(vars),
        Err(Refused::Secret) => {
            log::warn!(
                "WSGIRS344: (wsgi:{}) refused a request that did not come from this Apache (wrong or missing secret)",
                daemon.group()
            );
            let _ = stream.write_all(&error_response(403, "Forbidden", framed));
        }
        Err(Refused::ProxyRules(why)) => {
            log::error!(
                "WSGIRS594: (wsgi:{}) refused a proxied request whose trusted proxy rules did not parse: {why}",
                daemon.group()
            );
            let _ = stream.write_all(&error_response(500, "Internal Server Error", framed));
        }
    }
    None
}

/// Where the body comes from; None when the request cannot be served (the
/// connection then closes). `already`: body bytes that came with the vars
/// (all of an inline body: the intake waited for it).
fn request_body(daemon: &Daemon, vars: &Vars, already: &[u8], framed: bool) -> Option<Body> {
    if !framed {
        return Some(Body::Plain {
            early: already.to_vec(),
            at: 0,
            left: plain_length(vars),
        });
    }
    if vars.flag(protocol::VAR_EXPECT) {
        if !already.is_empty() {
            log::debug!(
                "WSGIRS345: (wsgi:{}) body sent before the go-ahead",
                daemon.group()
            );
            return None;
        }
        return Some(Body::Framed {
            asked: false,
            frame_left: 0,
            done: false,
        });
    }
    Some(Body::Memory {
        data: inline_body(already),
        at: 0,
    })
}

/// The script the request names, or the group's default one; None (logged)
/// when there is neither.
fn script_of(daemon: &Daemon, vars: &Vars) -> Option<ScriptKey> {
    match vars.get_str(protocol::VAR_SCRIPT) {
        Some(script) => Some(ScriptKey {
            group: vars
                .get_str(protocol::VAR_APPLICATION_GROUP)
                .unwrap_or_default(),
            path: PathBuf::from(script),
        }),
        None => {
            let key = daemon.launch.default_script.clone();
            if key.is_none() {
                log::error!(
                    "WSGIRS347: (wsgi:{}) a request named no WSGI script and the group has no WSGIImportScript",
                    daemon.group()
                );
            }
            key
        }
    }
}

/// The script's mtime as Apache saw it, when it says.
fn script_mtime(vars: &Vars) -> Option<i64> {
    vars.get_str(protocol::VAR_SCRIPT_MTIME)
        .and_then(|m| m.parse::<i64>().ok())
}

/// How long the request waited between our client passing it on and this
/// thread taking it, when our client said when it did.
fn queued_for(vars: &Vars) -> Option<Duration> {
    let start = vars
        .get_str(protocol::VAR_QUEUE_START)?
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_micros(
        protocol::micros_now().saturating_sub(start),
    ))
}

/// Whether the request waited (`queued`) longer than `queue-timeout` for a
/// thread (logged when it did).
fn waited_too_long(daemon: &Daemon, queued: Option<Duration>) -> bool {
    let queue_limit = daemon.launch.spec.queue_timeout;
    if queue_limit.is_zero() {
        return false;
    }
    let Some(waited) = queued else {
        return false;
    };
    if waited <= queue_limit {
        return false;
    }
    log::error!(
        "WSGIRS348: (wsgi:{}) queue timeout: request waited {:.1}s for a daemon thread",
        daemon.group(),
        waited.as_secs_f64()
    );
    true
}

/// One request, read and checked, ready to run.
struct Request<'a> {
    /// The request's variables (private ones only from our own client).
    vars: &'a Vars,
    /// The script to run and its application group.
    key: ScriptKey,
    /// The callable's name in the script.
    callable: &'a str,
    /// `WSGIScriptReloading`: a changed script replaces the process.
    reloading: bool,
    /// Where the body comes from.
    body: Body,
    /// The peer is our client.
    framed: bool,
    /// The connection may carry the client's next request.
    keep_alive: bool,
}

/// Runs a checked request: restarts the process if its script changed,
/// else hands it to the event loop (ASGI: true) or the runner.
fn run(
    py: Python<'_>,
    daemon: &Arc<Daemon>,
    stream: &mut UnixStream,
    request: Request<'_>,
    answer: Arc<AnswerState>,
    busy: &mut asgi::BusyMark,
) -> bool {
    let Request {
        vars,
        key,
        callable,
        reloading,
        body,
        framed,
        keep_alive,
    } = request;
    let mtime = script_mtime(vars);
    let stale = reloading && daemon.scripts.is_stale(py, &key, mtime);
    if stale {
        // Daemon mode reloads by replacing the process, so every module is
        // imported afresh, as mod_wsgi does.
        daemon.request_restart(StopReason::ScriptChanged(key.path.clone()));
        if framed {
            let _ = py.detach(|| stream.write_all(&[protocol::REJECT]));
            return false;
        }
    }
    let load = || {
        let loaded = daemon.scripts.application(py, &key, callable, mtime, false);
        // Until an application has loaded, failed loads count against
        // startup-timeout.
        match loaded {
            Ok(_) => daemon.loaded(&key),
            Err(_) => daemon.load_failed.store(true, Ordering::SeqCst),
        }
        loaded
    };
    let loaded = load();
    if let Some(app) = asgi::application(py, daemon, vars, &key, callable, mtime, &loaded) {
        let request = asgi::AsgiRequest {
            lookup: asgi::Lookup {
                vars,
                key: &key,
                callable,
                mtime,
                reloading,
            },
            fresh: !stale,
            taken: asgi::Taken {
                body,
                framed,
                busy: busy.take(),
            },
        };
        return asgi::hand_over(py, daemon, stream, app, request);
    }
    let head = vars.get("REQUEST_METHOD") == Some(b"HEAD");
    let client = vars.get_str("REMOTE_ADDR").unwrap_or_default();
    // Not yet at the edge (issue 12): the worker's socket seen by number
    // while the worker owns it; sound by the protocol the SAFETY states, not
    // by the types (an Arc'd socket would be, at an allocation per
    // connection).
    #[allow(unsafe_code)]
    let backend = DaemonBackend {
        // SAFETY: the backend is dropped (when run_request ends the
        // request's scope, on every way out) before this function returns,
        // while the worker still owns the descriptor; ManuallyDrop never
        // closes it.
        stream: ManuallyDrop::new(unsafe { UnixStream::from_raw_fd(stream.as_raw_fd()) }),
        framed,
        keep_alive,
        body,
        head,
        out: Vec::new(),
        answer,
        client,
        group: daemon.group().to_owned(),
        aborted: false,
        sendfile: vars.flag(protocol::VAR_SENDFILE),
    };
    let spec = &daemon.launch.spec;
    let flags = WsgiFlags {
        multithread: spec.threads > 1,
        multiprocess: spec.multiprocess || spec.processes > 1,
        process_group: spec.name.clone(),
        application_group: key.group.clone(),
        callable_object: callable.to_owned(),
        script_reloading: reloading,
        input_chunked: vars.flag(protocol::VAR_CHUNKED),
    };
    let environ = EnvironSpec {
        cgi: vars.public(),
        flags: &flags,
    };
    run_request(
        py,
        Box::new(backend),
        || loaded,
        environ,
        |_| Ok(()),
        &key.path.display().to_string(),
    );
    false
}
