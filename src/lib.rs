//! mod_wsgi_rs: an Apache httpd 2.4 module that hosts Python WSGI applications,
//! configured with mod_wsgi's directives.
//!
//! Where things live:
//! - [`config`]: directive parsing and per-directory merging (pure Rust).
//! - `httpd`: the unsafe boundary with Apache: bindings, C shim, hooks, and
//!   the safe wrappers over `request_rec`, pools and brigades.
//! - [`interp`]: the embedded CPython: initialisation, per-thread thread
//!   states, loading and reloading WSGI scripts, the `mod_wsgi` Python module.
//! - [`wsgi`]: the PEP 3333 core shared by every way a request can arrive:
//!   environ, `wsgi.input`, `start_response`, response iteration, file_wrapper.
//! - [`asgi`]: ASGI 3 applications on an event loop per daemon process.
//! - [`daemon`]: daemon mode's process side: the uwsgi protocol, privilege
//!   drop, worker threads, timeouts and recycling. The Apache parent's
//!   supervisor and the Apache-side client live in `httpd`.
//! - [`metrics`]: the counters behind `SetHandler wsgi-rs-metrics` and
//!   their Prometheus text (pure; httpd shares their memory).
//! - `messages` (tests only): the table of every log message's identifier, level,
//!   meaning and remedy (`docs/messages.md` is written from it).
//! - [`plan`]: the configuration resolved once at start-up into what each
//!   process needs (pure, unit tested).
//! - [`script_owner`]: `script-user=`/`script-group=`, whether a request's
//!   script may go to its daemon group (pure, unit tested).
//! - [`sys`]: the operating-system edge: the system calls no safe crate
//!   wraps, made safe once for the layers above (imports nothing of ours).
//!
//! Nothing outside the crate uses these modules (httpd loads the cdylib by
//! its exported symbols; the tests drive a real Apache), so they are
//! crate-private: code nothing calls shows up as dead.

// Unit tests are built without the httpd layer (it links httpd's symbols),
// so what only httpd calls (or re-exports for it) looks unused there; and a
// test's name says what it checks.
#![cfg_attr(
    test,
    allow(dead_code, unused_imports, clippy::missing_docs_in_private_items)
)]

pub(crate) mod asgi;
pub(crate) mod config;
#[cfg(test)]
mod core_tests;
pub(crate) mod daemon;
#[cfg(not(test))]
mod httpd;
/// Unit tests cannot link httpd: they see only its bindings, the command
/// table, which they build with a stand-in directive handler, the parent's
/// SIGCHLD pacing (plain libc), the daemon processes' registrations
/// (plain APR) and the panic boundary (with its check of every entry).
#[cfg(test)]
#[allow(unsafe_code)] // The Apache edge, as in httpd/mod.rs.
mod httpd {
    mod boundary;
    mod child_exit;
    mod commands;
    mod ffi;
    #[path = "supervisor/registration.rs"]
    mod registration;
}
pub(crate) mod interp;
/// The message table is documentation and the tests' reference: the running
/// module needs no more than the ids its log lines start with.
#[cfg(test)]
mod messages;
pub(crate) mod metrics;
pub(crate) mod plan;
pub(crate) mod script_owner;
pub(crate) mod sys;
pub(crate) mod wsgi;
