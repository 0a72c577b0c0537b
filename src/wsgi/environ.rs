//! Building the WSGI `environ` dict: the CGI variables the server computed
//! (bytes, decoded as latin-1 into native `str` as PEP 3333 asks) plus the
//! `wsgi.*` keys and mod_wsgi's compatibility keys.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::{FileWrapper, Input, LogStream};

/// The per-request facts that are not CGI variables.
#[derive(Clone, Debug, Default)]
pub struct WsgiFlags {
    pub multithread: bool,
    pub multiprocess: bool,
    pub process_group: String,
    pub application_group: String,
    pub callable_object: String,
    pub script_reloading: bool,
    pub input_chunked: bool,
}

/// Everything the environ is built from.
pub struct EnvironSpec<'a, I>
where
    I: Iterator<Item = (&'a [u8], &'a [u8])>,
{
    pub cgi: I,
    pub flags: &'a WsgiFlags,
}

/// Decodes bytes as latin-1, which maps every byte to the code point of the
/// same value: the WSGI "native string" rule.
pub(crate) fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: the pointer/length pair describes a live slice for the duration
    // of the call, and PyUnicode_DecodeLatin1 returns a new reference or NULL
    // with an exception set, which from_owned_ptr_or_err handles.
    unsafe {
        let obj = ffi::PyUnicode_DecodeLatin1(
            bytes.as_ptr().cast(),
            bytes.len() as ffi::Py_ssize_t,
            std::ptr::null(),
        );
        Ok(Bound::from_owned_ptr_or_err(py, obj)?.cast_into_unchecked())
    }
}

impl<'a, I> EnvironSpec<'a, I>
where
    I: Iterator<Item = (&'a [u8], &'a [u8])>,
{
    pub fn build<'py>(
        self,
        py: Python<'py>,
        input: Bound<'py, Input>,
        errors: Bound<'py, LogStream>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let environ = PyDict::new(py);
        let mut https = false;
        let mut path_info = false;
        for (key, value) in self.cgi {
            path_info |= key == b"PATH_INFO";
            if key == b"HTTPS" {
                https = matches!(value, b"on" | b"ON" | b"On" | b"1");
            }
            environ.set_item(latin1(py, key)?, latin1(py, value)?)?;
        }
        if !path_info {
            // Apache omits an empty PATH_INFO; WSGI apps expect the key.
            environ.set_item("PATH_INFO", "")?;
        }
        let flags = self.flags;
        super::set_current_application_group(&flags.application_group);
        environ.set_item("wsgi.version", PyTuple::new(py, [1, 0])?)?;
        environ.set_item("wsgi.url_scheme", if https { "https" } else { "http" })?;
        environ.set_item("wsgi.input", input)?;
        environ.set_item("wsgi.input_terminated", true)?;
        environ.set_item("wsgi.errors", errors)?;
        environ.set_item("wsgi.multithread", flags.multithread)?;
        environ.set_item("wsgi.multiprocess", flags.multiprocess)?;
        environ.set_item("wsgi.run_once", false)?;
        environ.set_item("wsgi.file_wrapper", py.get_type::<FileWrapper>())?;
        environ.set_item("mod_wsgi.process_group", &flags.process_group)?;
        environ.set_item("mod_wsgi.application_group", &flags.application_group)?;
        environ.set_item("mod_wsgi.callable_object", &flags.callable_object)?;
        environ.set_item(
            "mod_wsgi.script_reloading",
            if flags.script_reloading { "1" } else { "0" },
        )?;
        environ.set_item(
            "mod_wsgi.input_chunked",
            if flags.input_chunked { "1" } else { "0" },
        )?;
        environ.set_item("mod_wsgi.request_handler", "wsgi-script")?;
        environ.set_item("mod_wsgi.version", crate::interp::version_tuple(py)?)?;
        Ok(environ)
    }
}
