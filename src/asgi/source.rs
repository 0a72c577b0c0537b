//! Python modules shipped as source inside the library (the ASGI server,
//! the WebSocket side of the ASGI server), each loaded once per
//! interpreter: every application group's interpreter gets its own copy,
//! with its own imports (its own `asyncio`), kept in its `sys.modules`.
//! Plain pyo3 in the calling interpreter: it lives with the ASGI server,
//! below the interpreter layer, so that `asgi` does not reach up into
//! `interp` (the daemon's WebSocket side, above, uses it from here).

use std::ffi::{CStr, CString};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyModule;

/// The module `name` of the calling interpreter, compiled from `source`
/// (shown in tracebacks as `file`) on first use.
pub fn embedded_module<'py>(
    py: Python<'py>,
    name: &CStr,
    file: &CStr,
    source: &str,
) -> PyResult<Bound<'py, PyModule>> {
    let modules = py.import("sys")?.getattr("modules")?;
    if let Ok(module) = modules.get_item(name.to_string_lossy().as_ref()) {
        return Ok(module.cast_into::<PyModule>()?);
    }
    let code = CString::new(source).map_err(|e| PyValueError::new_err(e.to_string()))?;
    // from_code registers the module in sys.modules.
    PyModule::from_code(py, &code, file, name)
}
