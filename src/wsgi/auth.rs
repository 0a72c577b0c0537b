//! The Python side of Apache's access control: calling the functions of a
//! `WSGIAuthUserScript` (`check_password`, `get_realm_hash`), a
//! `WSGIAuthGroupScript` (`groups_for_user`) or a `WSGIAccessScript`
//! (`allow_access`) and reading their answers the way mod_wsgi 6 does.
//!
//! Like the rest of the WSGI core this knows nothing about Apache: the
//! caller hands over the request's variables and the loaded script module.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyModule, PyString};

use super::describe::type_name;
use super::environ::{latin1, version_tuple};
use super::log_stream::errors_stream;

/// Why a script could not give an answer. Each is logged and answered 500.
#[derive(Debug)]
pub enum AuthFailure {
    /// The script has no such function.
    Missing(&'static str),
    /// The function raised.
    Raised(&'static str, PyErr),
    /// The function returned something it may not.
    BadResult {
        /// The function.
        function: &'static str,
        /// What it should return.
        expected: &'static str,
        /// The type it returned.
        got: String,
    },
}

impl AuthFailure {
    /// The Python exception behind the failure, for its traceback.
    pub fn python_error(&self) -> Option<&PyErr> {
        match self {
            AuthFailure::Raised(_, err) => Some(err),
            _ => None,
        }
    }

    /// One log line naming the script and what went wrong.
    pub fn describe(&self, script: &str) -> String {
        match self {
            AuthFailure::Missing(function) => {
                format!("WSGIRS574: WSGI access control script '{script}' does not provide '{function}()'.")
            }
            AuthFailure::Raised(function, _) => {
                format!("WSGIRS575: Exception occurred calling '{function}()' of WSGI access control script '{script}'.")
            }
            AuthFailure::BadResult {
                function,
                expected,
                got,
            } => format!(
                "WSGIRS576: '{function}()' of WSGI access control script '{script}' returned {got}; it must \
                 return {expected}."
            ),
        }
    }
}

/// What `check_password(environ, user, password)` decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordCheck {
    /// `True`.
    Granted,
    /// A non-empty string (mod_wsgi 6): granted, and the request's user is
    /// that name instead of the one the client sent.
    GrantedAs(String),
    /// `False`: the user exists, the password is wrong.
    Denied,
    /// `None`: no such user.
    UnknownUser,
}

/// What `get_realm_hash(environ, user, realm)` decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RealmHash {
    /// The hex MD5 of `user:realm:password`.
    Found(Vec<u8>),
    /// No such user.
    UnknownUser,
}

/// Calls `function` of the script with `args`.
fn call<'py>(
    module: &Bound<'py, PyModule>,
    function: &'static str,
    args: impl pyo3::call::PyCallArgs<'py>,
) -> Result<Bound<'py, PyAny>, AuthFailure> {
    let f = module
        .getattr_opt(function)
        .map_err(|e| AuthFailure::Raised(function, e))?
        .ok_or(AuthFailure::Missing(function))?;
    f.call1(args).map_err(|e| AuthFailure::Raised(function, e))
}

/// A request string (latin-1 bytes) as the `str` argument of `function`.
fn text<'py>(
    py: Python<'py>,
    function: &'static str,
    bytes: &[u8],
) -> Result<Bound<'py, PyString>, AuthFailure> {
    latin1(py, bytes).map_err(|e| AuthFailure::Raised(function, e))
}

/// The failure for a result of the wrong type.
fn bad(function: &'static str, expected: &'static str, got: &Bound<'_, PyAny>) -> AuthFailure {
    AuthFailure::BadResult {
        function,
        expected,
        got: type_name(got),
    }
}

/// A `str` that fits latin-1, or `bytes`, as the bytes Apache wants.
fn native_bytes(obj: &Bound<'_, PyAny>) -> Option<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Some(b.as_bytes().to_vec());
    }
    let s = obj.cast::<PyString>().ok()?.to_cow().ok()?;
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// Calls the script's `check_password(environ, user, password)`.
pub fn check_password(
    py: Python<'_>,
    module: &Bound<'_, PyModule>,
    environ: Bound<'_, PyDict>,
    user: &[u8],
    password: &[u8],
) -> Result<PasswordCheck, AuthFailure> {
    const F: &str = "check_password";
    const EXPECTED: &str = "True, False, None or a non-empty user name";
    let result = call(
        module,
        F,
        (environ, text(py, F, user)?, text(py, F, password)?),
    )?;
    if result.is_none() {
        return Ok(PasswordCheck::UnknownUser);
    }
    if let Ok(b) = result.cast::<PyBool>() {
        return Ok(if b.is_true() {
            PasswordCheck::Granted
        } else {
            PasswordCheck::Denied
        });
    }
    match result.cast::<PyString>() {
        Ok(name) => {
            let name = name.to_cow().map_err(|e| AuthFailure::Raised(F, e))?;
            if name.is_empty() || name.contains('\0') {
                Err(bad(F, EXPECTED, &result))
            } else {
                Ok(PasswordCheck::GrantedAs(name.into_owned()))
            }
        }
        Err(_) => Err(bad(F, EXPECTED, &result)),
    }
}

/// Calls the script's `get_realm_hash(environ, user, realm)`.
pub fn get_realm_hash(
    py: Python<'_>,
    module: &Bound<'_, PyModule>,
    environ: Bound<'_, PyDict>,
    user: &[u8],
    realm: &[u8],
) -> Result<RealmHash, AuthFailure> {
    const F: &str = "get_realm_hash";
    const EXPECTED: &str = "None or a non-empty hash string";
    let result = call(
        module,
        F,
        (environ, text(py, F, user)?, text(py, F, realm)?),
    )?;
    if result.is_none() {
        return Ok(RealmHash::UnknownUser);
    }
    match native_bytes(&result) {
        Some(hash) if !hash.is_empty() && !hash.contains(&0) => Ok(RealmHash::Found(hash)),
        _ => Err(bad(F, EXPECTED, &result)),
    }
}

/// The groups `groups_for_user(environ, user)` names, as latin-1 bytes.
pub fn groups_for_user(
    py: Python<'_>,
    module: &Bound<'_, PyModule>,
    environ: Bound<'_, PyDict>,
    user: &[u8],
) -> Result<Vec<Vec<u8>>, AuthFailure> {
    const F: &str = "groups_for_user";
    const EXPECTED: &str = "an iterable of group names (str or bytes)";
    let result = call(module, F, (environ, text(py, F, user)?))?;
    let iter = result.try_iter().map_err(|_| bad(F, EXPECTED, &result))?;
    let mut groups = Vec::new();
    for item in iter {
        let item = item.map_err(|e| AuthFailure::Raised(F, e))?;
        groups.push(native_bytes(&item).ok_or_else(|| bad(F, EXPECTED, &item))?);
    }
    Ok(groups)
}

/// `allow_access(environ, host)`: `Some(allowed)`, or `None` when the
/// script leaves the decision to the rest of Apache's configuration.
pub fn allow_access(
    py: Python<'_>,
    module: &Bound<'_, PyModule>,
    environ: Bound<'_, PyDict>,
    host: &[u8],
) -> Result<Option<bool>, AuthFailure> {
    const F: &str = "allow_access";
    let result = call(module, F, (environ, text(py, F, host)?))?;
    if result.is_none() {
        return Ok(None);
    }
    match result.cast::<PyBool>() {
        Ok(b) => Ok(Some(b.is_true())),
        Err(_) => Err(bad(F, "True, False or None", &result)),
    }
}

/// The cut-down environ the access control functions get: the request's
/// variables, mod_wsgi's identification keys and `wsgi.errors`, with no
/// `wsgi.input` (the body is not read before access is decided). What is
/// written to `wsgi.errors` is logged against the request the calling
/// thread has marked as current.
pub fn auth_environ<'py>(
    py: Python<'py>,
    vars: &[(&[u8], &[u8])],
    application_group: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let environ = PyDict::new(py);
    for (key, value) in vars {
        environ.set_item(latin1(py, key)?, latin1(py, value)?)?;
    }
    environ.set_item(intern!(py, "mod_wsgi.version"), version_tuple(py)?)?;
    environ.set_item(intern!(py, "mod_wsgi.process_group"), "")?;
    environ.set_item(intern!(py, "mod_wsgi.application_group"), application_group)?;
    environ.set_item(intern!(py, "wsgi.errors"), errors_stream(py)?)?;
    Ok(environ)
}

/// The CGI name of a request header (`X-Forwarded-For` →
/// `HTTP_X_FORWARDED_FOR`), or `None` for a name with anything but letters,
/// digits and `-`: Apache drops those rather than let `X_Forwarded_For`
/// pass for `X-Forwarded-For`, and so does the environ made here.
pub fn header_var(name: &[u8]) -> Option<Vec<u8>> {
    let mut var = b"HTTP_".to_vec();
    for &b in name {
        match b {
            b'-' => var.push(b'_'),
            b if b.is_ascii_alphanumeric() => var.push(b.to_ascii_uppercase()),
            _ => return None,
        }
    }
    Some(var)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_follow_apaches_cgi_rule() {
        assert_eq!(
            header_var(b"X-Forwarded-For").as_deref(),
            Some(&b"HTTP_X_FORWARDED_FOR"[..])
        );
        assert_eq!(header_var(b"accept").as_deref(), Some(&b"HTTP_ACCEPT"[..]));
        assert_eq!(header_var(b"X_Forwarded_For"), None);
        assert_eq!(header_var(b"X.Y"), None);
        assert_eq!(header_var(b"X Y"), None);
    }
}
