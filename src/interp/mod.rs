//! The embedded CPython: initialised lazily and only in processes that run
//! WSGI code (never in the Apache parent), the main interpreter for
//! `%{GLOBAL}` and one sub-interpreter per other application group
//! (`groups.rs`), long-lived thread states per server thread, and the cache
//! of loaded WSGI scripts.

// The edge with CPython: interpreter and thread-state life, fork.
#![allow(unsafe_code)]

mod fork;
mod groups;
mod init;
mod module;
mod scripts;
mod shutdown;
mod signals;
mod thread;

pub use fork::fork;
pub use groups::{for_each_group, with_group};
pub use init::{initialize, is_initialized, InterpError, PythonSettings};
pub use scripts::{ScriptCache, ScriptError, ScriptKey};
pub use shutdown::process_stopping;
pub use thread::{interrupt_thread, with_python, withdraw_interrupt};
