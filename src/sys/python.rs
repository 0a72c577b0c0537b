//! The raw Python C-API calls the WSGI core makes that pyo3 has no safe
//! form for. Here, below the `wsgi` layer, rather than in `interp` (which
//! sits above it and owns the interpreter's life): the core must not
//! import upwards.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// Decodes bytes as latin-1, which maps every byte to the code point of the
/// same value: the WSGI "native string" rule. One C call, no intermediate
/// `bytes` object (the environ makes dozens per request).
pub fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: attached (`py`); the pointer/length pair describes a live
    // slice for the duration of the call, and PyUnicode_DecodeLatin1
    // returns a new reference to a str or NULL with an exception set, which
    // from_owned_ptr_or_err handles.
    unsafe {
        let obj = ffi::PyUnicode_DecodeLatin1(
            bytes.as_ptr().cast(),
            bytes.len() as ffi::Py_ssize_t,
            std::ptr::null(),
        );
        Ok(Bound::from_owned_ptr_or_err(py, obj)?.cast_into_unchecked())
    }
}

/// Which interpreter the attached thread runs in, as a number that stays
/// the same for the interpreter's life (its state's address).
pub fn interpreter_id(_py: Python<'_>) -> usize {
    // SAFETY: attached (`py`): the thread has a current thread state, whose
    // interpreter this reads.
    unsafe { ffi::PyInterpreterState_Get() as usize }
}

/// Whether the code running now is in a sub-interpreter (an application
/// group other than `%{GLOBAL}`). Callers are attached (they hold a
/// `Python` or run inside one).
pub fn in_sub_interpreter() -> bool {
    // SAFETY: both calls only read the runtime's state; an unattached
    // caller would make PyInterpreterState_Get stop the process with a
    // fatal error, never read freed memory.
    unsafe { ffi::PyInterpreterState_Get() != ffi::PyInterpreterState_Main() }
}
