//! The content handler: for a request whose handler is `wsgi-script`,
//! checks what mod_wsgi checks (ExecCGI, the script exists, body framing),
//! builds the CGI variables, and runs the script's application through the
//! WSGI core with an [`ApacheBackend`].

use std::ffi::c_int;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::backend::ApacheBackend;
use super::boundary::guard;
use super::daemon_client::{self, Forward};
use super::dispatch::{self, Route, Target};
use super::facts::Facts;
use super::ffi;
use super::hooks::ensure_python;
use super::metrics::Tally;
use super::plan;
use super::request::Request;
use super::request_hooks::ALIAS_NOTE;
use crate::asgi;
use crate::config::{
    resolve_callable_object, AliasOptions, Interface, MapHeadToGet, RequestFacts, HANDLER_CALLABLE,
};
use crate::daemon::protocol;
use crate::interp::{self, ScriptError};
use crate::script_owner;
use crate::wsgi::{run_request, EnvironSpec, Outcome, WsgiFlags};

/// httpd's error level.
const APLOG_ERR: i32 = ffi::APLOG_ERR as i32;

/// The content handler httpd calls for each request.
#[no_mangle]
pub extern "C" fn wsgi_rs_handler(r: *mut ffi::request_rec) -> c_int {
    guard("handler", ffi::HTTP_INTERNAL_SERVER_ERROR as c_int, || {
        // SAFETY: httpd passes the live request of this handler call.
        let mut req = unsafe { Request::from_raw(r) };
        if req.handler() == super::metrics::HANDLER.to_bytes() {
            return super::metrics::serve(&mut req);
        }
        if req.handler() == super::metrics::STATUS_HANDLER.to_bytes() {
            return super::metrics::serve_status(&mut req);
        }
        let mut tally = Tally::start();
        let ret = handle(&mut req, tally.as_mut());
        if let Some(tally) = tally {
            tally.finish(&req, ret);
        }
        ret
    })
}

/// An HTTP status as the handler's return value.
fn status(code: u32) -> c_int {
    code as c_int
}

/// Serves a request meant for us, in this process or through its daemon
/// group; `tally` learns the group when metrics are collected.
fn handle(req: &mut Request<'_>, tally: Option<&mut Tally>) -> c_int {
    let dir = req.dir_config();
    let Some(target) = dispatch::target(req.handler(), dir) else {
        return ffi::DECLINED as c_int;
    };
    let mut tally = tally;
    if let Some(t) = tally.as_deref_mut() {
        t.list(req);
    }
    let server_config = req.server_config();
    let alias = req
        .note(ALIAS_NOTE)
        .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok())
        .and_then(|i| server_config.script_aliases.get(i));
    let handler_script = match target {
        Target::Handler(h) => Some(h),
        Target::Script => None,
    };
    // A handler script serves whatever URL its handler is given: neither
    // ExecCGI nor the requested file matters, as in mod_wsgi.
    let filename = match handler_script {
        Some(h) => h.path.clone(),
        None => String::from_utf8_lossy(req.filename()).into_owned(),
    };
    if handler_script.is_none() && alias.is_none() && !req.exec_cgi_allowed() {
        req.log(
            APLOG_ERR,
            &format!("WSGIRS560: Options ExecCGI is off in this directory: {filename}"),
        );
        return status(ffi::HTTP_FORBIDDEN);
    }
    match req.file_type() {
        _ if handler_script.is_some() => {}
        ffi::apr_filetype_e::APR_REG => {}
        ffi::apr_filetype_e::APR_DIR => {
            req.log(
                APLOG_ERR,
                &format!("WSGIRS561: Attempt to invoke directory as WSGI application: {filename}"),
            );
            return status(ffi::HTTP_FORBIDDEN);
        }
        _ => {
            req.log(
                APLOG_ERR,
                &format!("WSGIRS562: Target WSGI script not found or unable to stat: {filename}"),
            );
            return status(ffi::HTTP_NOT_FOUND);
        }
    }

    let handler_options = handler_script.map(|h| AliasOptions {
        process_group: h.process_group.clone(),
        application_group: h.application_group.clone(),
        callable_object: Some(HANDLER_CALLABLE.to_owned()),
        pass_authorization: h.pass_authorization,
        interface: None,
    });
    let settings = dir.for_request(handler_options.as_ref().or(alias.map(|a| &a.options)));
    let callable =
        resolve_callable_object(settings.callable_object(), |name| Facts { req }.env(name));
    let reloading = settings.script_reloading();

    // Body framing, checked before the application runs.
    let chunked = match req.header_in(c"Transfer-Encoding") {
        None => false,
        Some(te) if te.eq_ignore_ascii_case(b"chunked") => true,
        Some(_) => return status(ffi::HTTP_NOT_IMPLEMENTED),
    };
    if chunked && !settings.chunked_request() {
        req.log(
            ffi::APLOG_INFO as i32,
            "WSGIRS563: Chunked request body refused (411): enable it with WSGIChunkedRequest On",
        );
        return status(ffi::HTTP_LENGTH_REQUIRED);
    }
    let limit = req.limit_request_body();
    let declared = req
        .header_in(c"Content-Length")
        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok());
    if limit > 0 && declared.is_some_and(|n| n > limit) {
        return status(ffi::HTTP_REQUEST_ENTITY_TOO_LARGE);
    }

    req.add_cgi_vars();
    // Where the request runs is decided from what Apache computed, before
    // trusted proxy headers rewrite SCRIPT_NAME and the rest, as mod_wsgi
    // decides it: a forwarded X-Script-Name must not pick the interpreter
    // (`%{RESOURCE}`), nor make a new one for every value sent.
    let (process_group, application_group) = {
        let facts = Facts { req };
        (
            settings.process_group().resolve(|name| facts.env(name)),
            settings.application_group().expand(&facts),
        )
    };
    super::proxy_headers::apply(req);
    let head = req.method() == b"HEAD";
    let map_head = head
        && match settings.map_head_to_get() {
            MapHeadToGet::On => true,
            MapHeadToGet::Off => false,
            MapHeadToGet::Auto => req.has_content_filters(),
        };
    let mut vars: Vec<(&[u8], &[u8])> = req
        .env_entries()
        .into_iter()
        // Authorization only by WSGIPassAuthorization (below); WSGI_RS_* are
        // the daemon protocol's private vars, which only we may set.
        .filter(|(k, _)| {
            !matches!(*k, b"HTTP_AUTHORIZATION" | b"HTTP_PROXY_AUTHORIZATION")
                && !protocol::is_private(k)
        })
        .collect();
    if map_head {
        for v in vars.iter_mut().filter(|(k, _)| *k == b"REQUEST_METHOD") {
            v.1 = b"GET";
        }
    }
    if settings.pass_authorization() {
        if let Some(auth) = req.header_in(c"Authorization") {
            vars.push((b"HTTP_AUTHORIZATION", auth));
        }
    }

    let facts = Facts { req };
    let mut route = Route {
        process_group,
        application_group,
        callable,
    };
    if let Some(script) = &dir.routing.dispatch_script {
        if let Err(code) =
            dispatch::run_dispatch_script(req, script, &facts, &vars, reloading, &mut route)
        {
            return code;
        }
    }
    if let Err(code) = dispatch::check_restricted(req, dir, &route.process_group) {
        return code;
    }
    let Route {
        process_group,
        application_group,
        callable,
    } = route;
    // The script's own mtime, when Apache stat()ed it as the request's file.
    let script_mtime = handler_script.is_none().then(|| req.file_mtime());

    let plan = plan::current();
    if !process_group.is_empty() {
        let Some(group) =
            plan.daemon_group(&process_group, req.server_addr(), || req.server_hostname())
        else {
            req.log(
                APLOG_ERR,
                &format!("WSGIRS564: No WSGI daemon process called '{process_group}' has been configured: {filename}"),
            );
            return status(ffi::HTTP_INTERNAL_SERVER_ERROR);
        };
        // script-user=/script-group=: the only per-request cost is the
        // stat of the script's directory, for groups that set one.
        if let Some(owner) = &group.script_owner {
            let path = String::from_utf8_lossy(req.filename());
            let file = req.file_owner();
            if let Some(line) = script_owner::refusal(owner, file, &path, &process_group) {
                // The line starts with its id (WSGIRS600-604, all errors).
                req.log(APLOG_ERR, &line);
                return status(ffi::HTTP_FORBIDDEN);
            }
        }
        let flag = |on: bool| if on { "1" } else { "0" }.to_owned();
        let mut private = vec![
            (protocol::VAR_SECRET, group.launch.secret.clone()),
            (protocol::VAR_CLIENT, "1".to_owned()),
            (protocol::VAR_SCRIPT, filename.clone()),
            (protocol::VAR_APPLICATION_GROUP, application_group),
            (protocol::VAR_CALLABLE, callable),
            (protocol::VAR_RELOADING, flag(reloading)),
            (protocol::VAR_CHUNKED, flag(chunked)),
        ];
        if let Some(mtime) = script_mtime {
            private.push((protocol::VAR_SCRIPT_MTIME, mtime.to_string()));
        }
        // Only when set: requests that do not use them send nothing more.
        if dir.enable_sendfile == Some(true) {
            private.push((protocol::VAR_SENDFILE, "1".to_owned()));
        }
        if dir.ignore_activity == Some(true) {
            private.push((protocol::VAR_IGNORE_ACTIVITY, "1".to_owned()));
        }
        if let Some(interface) = settings.interface() {
            private.push((protocol::VAR_INTERFACE, interface.name().to_owned()));
        }
        if let Some(tally) = tally {
            tally.route_daemon(
                plan.daemon_groups
                    .iter()
                    .position(|g| std::ptr::eq(g, group))
                    .unwrap_or_default(),
            );
        }
        let forward = Forward {
            vars,
            private,
            chunked,
            content_length: declared.unwrap_or(0),
            error_override: dir.error_override == Some(true),
            upgrade: daemon_client::is_websocket_request(req),
        };
        return daemon_client::forward(req, group, forward, group.launch.socket_timeout);
    }
    if plan.restrict_embedded {
        req.log(
            APLOG_ERR,
            &format!("WSGIRS565: Embedded mode of mod_wsgi_rs disabled by runtime configuration (WSGIRestrictEmbedded On): {filename}"),
        );
        return status(ffi::HTTP_INTERNAL_SERVER_ERROR);
    }
    if let Err(e) = ensure_python() {
        req.log(APLOG_ERR, &e.logged());
        return status(ffi::HTTP_INTERNAL_SERVER_ERROR);
    }
    let flags = WsgiFlags {
        multithread: plan.multithread,
        multiprocess: plan.multiprocess,
        process_group: String::new(),
        application_group: application_group.clone(),
        callable_object: callable.clone(),
        script_reloading: reloading,
        input_chunked: chunked,
    };
    let key = plan::script_key(application_group, &filename);
    // SAFETY: the backend lives in the exchange, which run_request closes
    // (dropping the backend) on every way out, before this function returns.
    let backend = unsafe { ApacheBackend::new(req.raw(), req.is_head() && !map_head) }
        .with_sendfile(dir.enable_sendfile == Some(true));
    // Busy from here until the application is done; timed for the metrics.
    if let Some(t) = tally.as_deref_mut() {
        t.route(0);
    }
    let running = tally.as_ref().map(|t| t.running());
    // In the interpreter of the request's application group.
    let interface = settings.interface();
    let ran = interp::with_group(&key.group, |py| {
        let load = || {
            let app = plan::scripts().application(py, &key, &callable, script_mtime, reloading)?;
            // ASGI needs a daemon process's event loop.
            match interface {
                Some(Interface::Wsgi) => Ok(app),
                Some(Interface::Asgi) => Err(ScriptError::AsgiNeedsDaemon(filename.clone())),
                None if plan::scripts().classify(py, &key, &callable, &app, asgi::is_asgi_app) => {
                    Err(ScriptError::AsgiNeedsDaemon(filename.clone()))
                }
                None => Ok(app),
            }
        };
        let environ = EnvironSpec {
            cgi: vars.iter().copied(),
            flags: &flags,
        };
        // WSGIPassApacheRequest On: the request_rec as an unnamed capsule.
        let amend = |environ: &Bound<'_, PyDict>| {
            if settings.pass_apache_request() {
                environ.set_item("apache.request_rec", request_capsule(py, req)?)?;
            }
            Ok(())
        };
        run_request(py, Box::new(backend), load, environ, amend, &filename)
    });
    if let (Some(t), Some((_, begun))) = (&tally, &running) {
        t.ran(begun.elapsed());
    }
    drop(running);
    match ran {
        Ok(Outcome::Done | Outcome::Aborted) => ffi::OK as c_int,
        Ok(Outcome::Failed) => status(ffi::HTTP_INTERNAL_SERVER_ERROR),
        Ok(Outcome::BodyRefused) => ffi::AP_FILTER_ERROR,
        Err(e) => {
            req.log(APLOG_ERR, &e.logged());
            status(ffi::HTTP_INTERNAL_SERVER_ERROR)
        }
    }
}

/// `WSGIPassApacheRequest On`: the request_rec as an unnamed capsule, as
/// mod_wsgi passes it (embedded mode only: a daemon has no request_rec).
fn request_capsule<'py>(py: Python<'py>, req: &Request<'_>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: PyCapsule_New only stores the pointer (no destructor); the
    // request outlives the application call that sees the environ.
    unsafe {
        let capsule = pyo3::ffi::PyCapsule_New(req.raw().cast(), std::ptr::null(), None);
        Bound::from_owned_ptr_or_err(py, capsule)
    }
}
