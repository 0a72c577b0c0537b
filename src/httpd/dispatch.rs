//! Per-request routing beyond the static configuration: which requests are
//! ours (`wsgi-script`, or a handler name a `WSGIHandlerScript` registered),
//! `WSGIDispatchScript` choosing the process group, application group and
//! callable of a request (run in this Apache child's interpreter, as mod_wsgi
//! does), and `WSGIRestrictProcess` refusing groups a context may not select.
//! A request that uses none of them pays one empty-list check.

use std::ffi::c_int;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use super::ffi;
use super::hooks::ensure_python;
use super::plan;
use super::request::Request;
use crate::config::{
    resolve_callable_object, ApplicationGroup, DirConfig, DispatchScript, HandlerScript,
    ProcessGroup, RequestFacts,
};
use crate::interp;

/// httpd's error level.
const APLOG_ERR: i32 = ffi::APLOG_ERR as i32;

/// 500 as the handler's return value.
fn server_error() -> c_int {
    ffi::HTTP_INTERNAL_SERVER_ERROR as c_int
}

/// What serves a request whose handler is ours.
pub enum Target<'a> {
    /// `wsgi-script`: the request's file is the WSGI script.
    Script,
    /// A `WSGIHandlerScript` registered under the request's handler name.
    Handler(&'a HandlerScript),
}

/// Whether the request's handler is ours, and how it is served.
pub fn target<'a>(handler: &[u8], dir: &'a DirConfig) -> Option<Target<'a>> {
    if handler == b"wsgi-script" || handler == b"application/x-httpd-wsgi" {
        return Some(Target::Script);
    }
    if dir.routing.handler_scripts.is_empty() {
        return None;
    }
    let name = std::str::from_utf8(handler).ok()?;
    dir.routing.handler_script(name).map(Target::Handler)
}

/// Where a request runs: the resolved names, `""` process group for
/// embedded mode.
pub struct Route {
    /// The daemon group, or "" for embedded mode.
    pub process_group: String,
    /// The interpreter.
    pub application_group: String,
    /// The callable's name.
    pub callable: String,
}

/// Refuses a process group this context may not select
/// (`WSGIRestrictProcess`), as mod_wsgi does: 500 and a log line.
pub fn check_restricted(
    req: &Request<'_>,
    dir: &DirConfig,
    process_group: &str,
) -> Result<(), c_int> {
    if dir.routing.may_select(process_group) {
        return Ok(());
    }
    req.log(
        APLOG_ERR,
        &format!(
            "WSGIRS566: Daemon process called '{process_group}' cannot be accessed by this WSGI \
             application as not a member of allowed groups (WSGIRestrictProcess)"
        ),
    );
    Err(server_error())
}

/// Logs a failed dispatch: the message, then the Python traceback.
fn log_failure(req: &Request<'_>, py: Python<'_>, message: &str, err: Option<&PyErr>) {
    crate::wsgi::log_script_error(py, message, err, |line| req.log(APLOG_ERR, line));
}

/// Runs the dispatch script and applies what its functions return to
/// `route`. Any failure is logged with its traceback and answered 500.
pub fn run_dispatch_script(
    req: &Request<'_>,
    script: &DispatchScript,
    facts: &dyn RequestFacts,
    vars: &[(&[u8], &[u8])],
    reloading: bool,
    route: &mut Route,
) -> Result<(), c_int> {
    if let Err(e) = ensure_python() {
        req.log(APLOG_ERR, &e.logged());
        return Err(server_error());
    }
    let group = match &script.application_group {
        Some(g) => g.expand(facts),
        None => route.application_group.clone(),
    };
    let key = plan::script_key(group.clone(), &script.path);
    let context = || {
        format!(
            "WSGIRS567: Exception occurred processing WSGI dispatch script '{}'.",
            script.path
        )
    };
    // In the dispatch group's interpreter, as mod_wsgi runs it.
    let ran = interp::with_group(&group, |py| {
        let module = match plan::scripts().module(py, &key, None, reloading) {
            Ok(m) => m,
            Err(e) => {
                log_failure(req, py, &e.logged(), e.python_error());
                return Err(server_error());
            }
        };
        let call = || -> PyResult<[Option<String>; 3]> {
            let environ = PyDict::new(py);
            for (k, v) in vars {
                environ.set_item(latin1(py, k), latin1(py, v))?;
            }
            environ.set_item("mod_wsgi.process_group", "")?;
            environ.set_item("mod_wsgi.application_group", group.as_str())?;
            environ.set_item("wsgi.errors", py.import("sys")?.getattr("stderr")?)?;
            let mut chosen = [None, None, None];
            for (slot, name) in
                chosen
                    .iter_mut()
                    .zip(["process_group", "application_group", "callable_object"])
            {
                if let Some(function) = module.getattr_opt(name)? {
                    *slot = name_value(name, &function.call1((&environ,))?)?;
                }
            }
            Ok(chosen)
        };
        call().map_err(|e| {
            // Pass-through: context() starts with its id.
            log_failure(req, py, &context(), Some(&e));
            server_error()
        })
    });
    let chosen = ran
        .map_err(|e| {
            req.log(APLOG_ERR, &e.logged());
            server_error()
        })
        .and_then(|chosen| chosen)?;
    let [process_group, application_group, callable] = chosen;
    let refuse = |what: &str, value: &str, why: String| {
        req.log(
            APLOG_ERR,
            &format!(
                "WSGIRS568: WSGIDispatchScript '{}': {what}() returned '{value}': {why}",
                script.path
            ),
        );
        server_error()
    };
    if let Some(value) = process_group {
        let group = ProcessGroup::parse(&value)
            .map_err(|e| refuse("process_group", &value, e.to_string()))?;
        route.process_group = group.resolve(|name| facts.env(name));
    }
    if let Some(value) = application_group {
        let group = ApplicationGroup::parse(&value)
            .map_err(|e| refuse("application_group", &value, e.to_string()))?;
        route.application_group = group.expand(facts);
    }
    if let Some(value) = callable {
        route.callable = resolve_callable_object(&value, |name| facts.env(name));
    }
    Ok(())
}

/// Bytes as a latin-1 `str`.
fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    let text: String = bytes.iter().map(|&b| b as char).collect();
    PyString::new(py, &text)
}

/// A dispatch function's answer: `None` keeps the configured value; a
/// `str` (latin-1) or `bytes` replaces it; anything else is a TypeError.
fn name_value(function: &str, value: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if value.is_none() {
        return Ok(None);
    }
    let bytes = if let Ok(b) = value.cast::<PyBytes>() {
        b.as_bytes().to_vec()
    } else if let Ok(s) = value.cast::<PyString>() {
        s.call_method1("encode", ("latin-1",))?
            .cast::<PyBytes>()?
            .as_bytes()
            .to_vec()
    } else {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{function}() must return a string or None, not {}",
            value.get_type().name()?
        )));
    };
    Ok(Some(bytes.iter().map(|&b| b as char).collect()))
}
