//! Building the WSGI `environ` dict: the CGI variables the server computed
//! (bytes, decoded as latin-1 into native `str` as PEP 3333 asks) plus the
//! `wsgi.*` keys and mod_wsgi's compatibility keys.
//!
//! This runs for every request, so the strings that repeat are made once:
//! constant keys and values are interned, the entries that never change
//! come from a template dict copied per request, and CGI variable names are
//! kept in a bounded cache, which also keeps their hashes computed.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

pub(crate) use crate::sys::python::latin1;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::{MutexExt, PyOnceLock};
use pyo3::types::{PyDict, PyString, PyTuple};

use super::{FileWrapper, Input};

/// The per-request facts that are not CGI variables.
#[derive(Clone, Debug, Default)]
pub struct WsgiFlags {
    /// `wsgi.multithread`.
    pub multithread: bool,
    /// `wsgi.multiprocess`.
    pub multiprocess: bool,
    /// `mod_wsgi.process_group`.
    pub process_group: String,
    /// `mod_wsgi.application_group`.
    pub application_group: String,
    /// `mod_wsgi.callable_object`.
    pub callable_object: String,
    /// `mod_wsgi.script_reloading`.
    pub script_reloading: bool,
    /// `wsgi.input_terminated` and `mod_wsgi.input_chunked`.
    pub input_chunked: bool,
}

/// Everything the environ is built from.
pub struct EnvironSpec<'a, I>
where
    I: Iterator<Item = (&'a [u8], &'a [u8])>,
{
    /// The CGI variables, as bytes.
    pub cgi: I,
    /// The other facts.
    pub flags: &'a WsgiFlags,
}

/// FNV-1a: CGI names are short, and SipHash would cost more than the
/// string it saves making. Client-chosen names cannot flood the cache (it is
/// bounded), so a keyed hash buys nothing here.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// CGI names already made Python strings.
type NameCache = HashMap<Box<[u8]>, Py<PyString>, BuildHasherDefault<Fnv>>;

/// How many distinct CGI names are kept: Apache's own plus a few hundred
/// header names; names beyond it are made per request.
const MAX_CACHED_NAMES: usize = 512;

/// The process's name cache.
fn name_cache() -> &'static Mutex<NameCache> {
    static NAMES: std::sync::OnceLock<Mutex<NameCache>> = std::sync::OnceLock::new();
    NAMES.get_or_init(Default::default)
}

/// `wsgi.version`, made once.
fn wsgi_version(py: Python<'_>) -> &Bound<'_, PyTuple> {
    static VERSION: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();
    VERSION
        .get_or_init(py, || PyTuple::new(py, [1, 0]).expect("tuple").unbind())
        .bind(py)
}

/// The module's version as a tuple, like `mod_wsgi.version`.
pub fn version_tuple(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
    let parts: Vec<u32> = env!("CARGO_PKG_VERSION")
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    PyTuple::new(py, parts)
}

/// `mod_wsgi.version`, made once.
fn module_version(py: Python<'_>) -> PyResult<&Bound<'_, PyTuple>> {
    static VERSION: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();
    Ok(VERSION
        .get_or_try_init(py, || version_tuple(py).map(Bound::unbind))?
        .bind(py))
}

/// "1" or "0", interned.
fn flag(py: Python<'_>, on: bool) -> &Bound<'_, PyString> {
    if on {
        intern!(py, "1")
    } else {
        intern!(py, "0")
    }
}

/// The entries every environ starts with, copied per request: one
/// `PyDict_Copy` of the template costs less than setting them one by one
/// (1.7k of 98.6k instructions per request). One template per interpreter,
/// since `wsgi.errors` is a stream object of the interpreter it was made in
/// (each application group has its own), and per combination of the flags
/// it holds, which are fixed per process anyway.
fn template<'py>(py: Python<'py>, flags: &WsgiFlags) -> PyResult<Bound<'py, PyDict>> {
    type Templates = Vec<(usize, usize, Py<PyDict>)>;
    static TEMPLATES: Mutex<Templates> = Mutex::new(Vec::new());
    let interp = crate::sys::python::interpreter_id(py);
    let kind = usize::from(flags.multithread) * 2 + usize::from(flags.multiprocess);
    let find = |templates: &Templates| {
        templates
            .iter()
            .find(|(i, k, _)| *i == interp && *k == kind)
            .map(|(_, _, t)| t.bind(py).clone())
    };
    let lock = || {
        TEMPLATES
            .lock_py_attached(py)
            .unwrap_or_else(|p| p.into_inner())
    };
    if let Some(found) = find(&lock()) {
        return Ok(found);
    }
    // Made without the lock held: building it runs Python code.
    let made = new_template(py, flags)?;
    let mut templates = lock();
    if let Some(found) = find(&templates) {
        return Ok(found);
    }
    templates.push((interp, kind, made.clone().unbind()));
    Ok(made)
}

/// The entries every request with these flags shares.
fn new_template<'py>(py: Python<'py>, flags: &WsgiFlags) -> PyResult<Bound<'py, PyDict>> {
    let t = PyDict::new(py);
    t.set_item(intern!(py, "wsgi.version"), wsgi_version(py))?;
    t.set_item(intern!(py, "wsgi.input_terminated"), true)?;
    t.set_item(intern!(py, "wsgi.multithread"), flags.multithread)?;
    t.set_item(intern!(py, "wsgi.multiprocess"), flags.multiprocess)?;
    t.set_item(intern!(py, "wsgi.run_once"), false)?;
    t.set_item(
        intern!(py, "wsgi.file_wrapper"),
        py.get_type::<FileWrapper>(),
    )?;
    t.set_item(
        intern!(py, "mod_wsgi.request_handler"),
        intern!(py, "wsgi-script"),
    )?;
    t.set_item(intern!(py, "mod_wsgi.version"), module_version(py)?)?;
    t.set_item(
        intern!(py, "wsgi.errors"),
        super::log_stream::errors_stream(py)?,
    )?;
    Ok(t)
}

impl<'a, I> EnvironSpec<'a, I>
where
    I: Iterator<Item = (&'a [u8], &'a [u8])>,
{
    /// Builds the environ dict with `input` as `wsgi.input`.
    pub fn build<'py>(
        self,
        py: Python<'py>,
        input: Bound<'py, Input>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let template = template(py, self.flags)?;
        let environ = template.copy()?;
        let mut https = false;
        let mut path_info = false;
        {
            // Detaches while waiting, so a thread holding the lock can never
            // wait on this one for the GIL.
            let mut names = name_cache()
                .lock_py_attached(py)
                .unwrap_or_else(|p| p.into_inner());
            for (key, value) in self.cgi {
                path_info |= key == b"PATH_INFO";
                if key == b"HTTPS" {
                    https = matches!(value, b"on" | b"ON" | b"On" | b"1");
                }
                let name = match names.get(key) {
                    Some(name) => name.bind(py).clone(),
                    None => {
                        let name = latin1(py, key)?;
                        if names.len() < MAX_CACHED_NAMES {
                            names.insert(key.into(), name.clone().unbind());
                        }
                        name
                    }
                };
                // A server variable (SetEnv) never replaces a value of ours,
                // as it could not when ours were set after it.
                if (key.starts_with(b"wsgi.") || key.starts_with(b"mod_wsgi."))
                    && template.contains(&name)?
                {
                    continue;
                }
                environ.set_item(name, latin1(py, value)?)?;
            }
        }
        if !path_info {
            // Apache omits an empty PATH_INFO; WSGI apps expect the key.
            environ.set_item(intern!(py, "PATH_INFO"), intern!(py, ""))?;
        }
        let flags = self.flags;
        super::set_current_application_group(&flags.application_group);
        let scheme = if https {
            intern!(py, "https")
        } else {
            intern!(py, "http")
        };
        environ.set_item(intern!(py, "wsgi.url_scheme"), scheme)?;
        environ.set_item(intern!(py, "wsgi.input"), input)?;
        environ.set_item(intern!(py, "mod_wsgi.process_group"), &flags.process_group)?;
        environ.set_item(
            intern!(py, "mod_wsgi.application_group"),
            &flags.application_group,
        )?;
        environ.set_item(
            intern!(py, "mod_wsgi.callable_object"),
            &flags.callable_object,
        )?;
        environ.set_item(
            intern!(py, "mod_wsgi.script_reloading"),
            flag(py, flags.script_reloading),
        )?;
        environ.set_item(
            intern!(py, "mod_wsgi.input_chunked"),
            flag(py, flags.input_chunked),
        )?;
        Ok(environ)
    }
}
