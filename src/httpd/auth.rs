//! Apache access control backed by Python scripts, registered as mod_wsgi
//! registers it (see `wsgi_rs_register_hooks` in shim.c):
//!
//! - the `wsgi` authentication provider (`AuthBasicProvider wsgi`,
//!   `AuthDigestProvider wsgi`) asks `WSGIAuthUserScript`'s
//!   `check_password()` or `get_realm_hash()`;
//! - the `wsgi-group` authorization provider (`Require wsgi-group NAME`)
//!   asks `WSGIAuthGroupScript`'s `groups_for_user()`;
//! - the access checker asks `WSGIAccessScript`'s `allow_access()`.
//!
//! The scripts always run here, in the Apache child's embedded Python, even
//! for a site whose application runs in a daemon process, as in mod_wsgi.
//! A script that cannot answer (it fails to load, lacks the function,
//! raises or returns something it may not) is logged and answered 500.
//! Nothing runs for requests whose location configures none of this: the
//! providers are only called where configured, and the access checker
//! returns after one look at the directory configuration.

use std::ffi::{c_char, c_int, c_void, CStr};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

use super::backend::ApacheBackend;
use super::boundary::guard;
use super::facts::Facts;
use super::ffi;
use super::hooks::ensure_python;
use super::plan;
use super::pool::pool_bytes;
use super::request::Request;
use crate::config::{split_raw_args, AccessScript};
use crate::interp;
use crate::wsgi::{
    auth_environ, flush_thread_streams, header_var, log_exception, log_script_error,
    set_current_request, AuthFailure, LogLevel, PasswordCheck, RealmHash, RequestScope,
};

/// httpd's error level.
const APLOG_ERR: i32 = ffi::APLOG_ERR as i32;

use ffi::authn_status::{
    AUTH_DENIED, AUTH_GENERAL_ERROR, AUTH_GRANTED, AUTH_USER_FOUND, AUTH_USER_NOT_FOUND,
};
use ffi::authz_status::{AUTHZ_DENIED, AUTHZ_DENIED_NO_USER, AUTHZ_GENERAL_ERROR, AUTHZ_GRANTED};

/// Borrows a C string httpd passed for the duration of a hook call.
///
/// # Safety
/// `p` is null or NUL-terminated and lives for `'a`.
unsafe fn c_bytes<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        b""
    } else {
        // SAFETY: as promised by the caller.
        unsafe { CStr::from_ptr(p) }.to_bytes()
    }
}

/// The variables of the cut-down environ mod_wsgi gives access control
/// functions: the request headers (never `Authorization`, and never a
/// header whose name Apache would not export) and the request's basic
/// facts. `SetEnv` variables are left out on purpose, as in mod_wsgi: an
/// `.htaccess` author could set them.
fn auth_vars(req: &Request<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut vars: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (name, value) in req.header_entries() {
        let var = if name.eq_ignore_ascii_case(b"Content-Type") {
            b"CONTENT_TYPE".to_vec()
        } else if name.eq_ignore_ascii_case(b"Content-Length") {
            b"CONTENT_LENGTH".to_vec()
        } else if name.eq_ignore_ascii_case(b"Authorization")
            || name.eq_ignore_ascii_case(b"Proxy-Authorization")
        {
            continue;
        } else {
            match header_var(name) {
                Some(var) => var,
                None => continue,
            }
        };
        vars.push((var, value.to_vec()));
    }
    let port = req.server_port().to_string();
    let facts: [(&[u8], &[u8]); 10] = [
        (b"REQUEST_METHOD", req.method()),
        (b"REQUEST_URI", req.unparsed_uri()),
        (b"QUERY_STRING", req.query_string()),
        (b"SERVER_PROTOCOL", req.protocol()),
        (b"SERVER_NAME", req.server_name()),
        (b"SERVER_PORT", port.as_bytes()),
        (b"SERVER_ADDR", req.local_ip()),
        (b"REMOTE_ADDR", req.useragent_ip()),
        (b"SCRIPT_NAME", req.uri()),
        (b"PATH_INFO", b""),
    ];
    vars.extend(facts.iter().map(|(k, v)| (k.to_vec(), v.to_vec())));
    vars
}

/// Loads `script` and runs `call` with its module and a fresh environ.
/// `None` when the script could not answer; the reason has been logged
/// against the request, with the traceback of any Python exception.
fn run_script<T>(
    req: &Request<'_>,
    script: &AccessScript,
    call: impl for<'py> FnOnce(
        Python<'py>,
        &Bound<'py, PyModule>,
        Bound<'py, PyDict>,
    ) -> Result<T, AuthFailure>,
) -> Option<T> {
    if let Err(e) = ensure_python() {
        req.log(APLOG_ERR, &e.logged());
        return None;
    }
    let group = script.application_group.expand(&Facts { req });
    let vars = auth_vars(req);
    let reloading = req.dir_config().for_request(None).script_reloading();
    let key = plan::script_key(group.clone(), &script.path);
    // SAFETY: the backend only serves logging for this call, and the
    // exchange holding it is closed (the backend dropped) before return.
    let backend = unsafe { ApacheBackend::new(req.raw(), false) };
    // In the interpreter of the script's application group.
    let ran = interp::with_group(&key.group, |py| {
        // Closes the exchange however this ends, a panic included, so no
        // Python object can reach the request after httpd frees it.
        let scope = RequestScope::open(Box::new(backend));
        let exchange = scope.exchange();
        let module = match plan::scripts().module(py, &key, None, reloading) {
            Ok(module) => module,
            Err(e) => {
                log_script_error(py, &e.logged(), e.python_error(), |line| {
                    exchange.log(py, LogLevel::Error, line)
                });
                return None;
            }
        };
        let refs: Vec<(&[u8], &[u8])> = vars
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        let environ = match auth_environ(py, &refs, &group) {
            Ok(environ) => environ,
            Err(err) => {
                log_exception(
                    py,
                    exchange,
                    "WSGIRS373: Could not build the WSGI environ",
                    &err,
                );
                return None;
            }
        };
        set_current_request(Some(exchange.clone()));
        let result = call(py, &module, environ);
        flush_thread_streams(py, Some(exchange));
        match result {
            Ok(answer) => Some(answer),
            Err(failure) => {
                let line = failure.describe(&script.path);
                log_script_error(py, &line, failure.python_error(), |line| {
                    exchange.log(py, LogLevel::Error, line)
                });
                None
            }
        }
    });
    ran.unwrap_or_else(|e| {
        req.log(APLOG_ERR, &e.logged());
        None
    })
}

/// The `WSGIAuthUserScript` of this request's location, or a log line.
fn user_script<'r>(req: &Request<'r>, provider: &str) -> Option<&'r AccessScript> {
    let script = req.dir_config().auth_user_script.as_ref();
    if script.is_none() {
        req.log(
            APLOG_ERR,
            &format!("WSGIRS570: {provider} wsgi is used here, but no WSGIAuthUserScript applies"),
        );
    }
    script
}

/// `check_password` of the `wsgi` authn provider (Basic authentication).
#[no_mangle]
pub extern "C" fn wsgi_rs_check_password(
    r: *mut ffi::request_rec,
    user: *const c_char,
    password: *const c_char,
) -> ffi::authn_status::Type {
    guard("check_password", AUTH_GENERAL_ERROR, || {
        // SAFETY: httpd passes the live request and two NUL-terminated
        // strings of this call.
        let (mut req, user, password) =
            unsafe { (Request::from_raw(r), c_bytes(user), c_bytes(password)) };
        let Some(script) = user_script(&req, "AuthBasicProvider") else {
            return AUTH_GENERAL_ERROR;
        };
        let answer = run_script(&req, script, |py, module, environ| {
            crate::wsgi::check_password(py, module, environ, user, password)
        });
        match answer {
            Some(PasswordCheck::Granted) => AUTH_GRANTED,
            Some(PasswordCheck::GrantedAs(name)) => {
                req.set_user(&name);
                AUTH_GRANTED
            }
            Some(PasswordCheck::Denied) => AUTH_DENIED,
            Some(PasswordCheck::UnknownUser) => AUTH_USER_NOT_FOUND,
            None => AUTH_GENERAL_ERROR,
        }
    })
}

/// `get_realm_hash` of the `wsgi` authn provider (Digest authentication).
#[no_mangle]
pub extern "C" fn wsgi_rs_get_realm_hash(
    r: *mut ffi::request_rec,
    user: *const c_char,
    realm: *const c_char,
    rethash: *mut *mut c_char,
) -> ffi::authn_status::Type {
    guard("get_realm_hash", AUTH_GENERAL_ERROR, || {
        // SAFETY: httpd passes the live request and two NUL-terminated
        // strings of this call.
        let (req, user, realm) = unsafe { (Request::from_raw(r), c_bytes(user), c_bytes(realm)) };
        let Some(script) = user_script(&req, "AuthDigestProvider") else {
            return AUTH_GENERAL_ERROR;
        };
        let answer = run_script(&req, script, |py, module, environ| {
            crate::wsgi::get_realm_hash(py, module, environ, user, realm)
        });
        match answer {
            Some(RealmHash::Found(hash)) => {
                // SAFETY: rethash is mod_auth_digest's out-parameter; the
                // hash is copied into the request pool, which outlives it.
                unsafe { *rethash = pool_bytes((*r).pool, &hash).cast_mut() };
                AUTH_USER_FOUND
            }
            Some(RealmHash::UnknownUser) => AUTH_USER_NOT_FOUND,
            None => AUTH_GENERAL_ERROR,
        }
    })
}

/// Latin-1 bytes as a `String` of the same code points, so group names
/// compare exactly whatever bytes they hold.
fn latin1_string(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

/// `Require wsgi-group NAME...`: granted when `groups_for_user()` names
/// one of the groups.
#[no_mangle]
pub extern "C" fn wsgi_rs_check_authorization(
    r: *mut ffi::request_rec,
    require_args: *const c_char,
    _parsed_require_line: *const c_void,
) -> ffi::authz_status::Type {
    guard("check_authorization", AUTHZ_GENERAL_ERROR, || {
        // SAFETY: httpd passes the live request and the Require line's
        // arguments as a NUL-terminated configuration string.
        let (req, args) = unsafe { (Request::from_raw(r), c_bytes(require_args)) };
        let Some(user) = req.user() else {
            return AUTHZ_DENIED_NO_USER;
        };
        let Some(script) = req.dir_config().auth_group_script.as_ref() else {
            req.log(
                APLOG_ERR,
                "WSGIRS571: Require wsgi-group is used here, but no WSGIAuthGroupScript applies",
            );
            return AUTHZ_GENERAL_ERROR;
        };
        let Some(groups) = run_script(&req, script, |py, module, environ| {
            crate::wsgi::groups_for_user(py, module, environ, user)
        }) else {
            return AUTHZ_GENERAL_ERROR;
        };
        let groups: Vec<String> = groups.iter().map(|g| latin1_string(g)).collect();
        let wanted = split_raw_args(&latin1_string(args));
        if wanted.iter().any(|w| groups.contains(w)) {
            return AUTHZ_GRANTED;
        }
        req.log(
            APLOG_ERR,
            &format!(
                "WSGIRS572: Authorization of user '{}' to access '{}' failed. User is not a member of \
                 designated groups.",
                latin1_string(user),
                latin1_string(req.uri())
            ),
        );
        AUTHZ_DENIED
    })
}

/// `WSGIAccessScript`: `allow_access()` True lets the request on, False
/// refuses it with 403, None leaves it to the rest of the configuration.
#[no_mangle]
pub extern "C" fn wsgi_rs_access_checker(r: *mut ffi::request_rec) -> c_int {
    guard(
        "access_checker",
        ffi::HTTP_INTERNAL_SERVER_ERROR as c_int,
        || {
            // SAFETY: httpd passes the live request of this hook call.
            let req = unsafe { Request::from_raw(r) };
            let Some(script) = req.dir_config().access_script.as_ref() else {
                return ffi::DECLINED as c_int;
            };
            let host = req.remote_host();
            let answer = run_script(&req, script, |py, module, environ| {
                crate::wsgi::allow_access(py, module, environ, host)
            });
            match answer {
                Some(None) => ffi::DECLINED as c_int,
                Some(Some(true)) => ffi::OK as c_int,
                Some(Some(false)) => {
                    req.log(
                        APLOG_ERR,
                        &format!(
                            "WSGIRS573: Client denied by WSGIAccessScript '{}': {}",
                            script.path,
                            latin1_string(req.uri())
                        ),
                    );
                    ffi::HTTP_FORBIDDEN as c_int
                }
                None => ffi::HTTP_INTERNAL_SERVER_ERROR as c_int,
            }
        },
    )
}
