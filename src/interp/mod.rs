//! The embedded CPython: one interpreter per process, initialised lazily and
//! only in processes that run WSGI code (never in the Apache parent), one
//! long-lived thread state per server thread, and the cache of loaded WSGI
//! scripts.
//!
//! Application groups: pyo3 cannot run code in sub-interpreters, so every
//! group shares the main interpreter. What a group still isolates is the
//! script: each (group, script file) pair is loaded as its own module, so two
//! groups never share a script's module globals. Imported libraries (and
//! `sys.modules`) are shared, as with `WSGIApplicationGroup %{GLOBAL}`.

mod init;
mod module;
mod scripts;
mod thread;

pub use init::{initialize, is_initialized, InterpError, PythonSettings};
pub use scripts::{ScriptCache, ScriptError, ScriptKey};
pub use thread::with_python;
