//! The unsafe boundary with Apache httpd. Everything that touches a raw
//! httpd/APR pointer lives in this folder; the rest of the crate sees safe
//! types. Entry points called by httpd are in [`hooks`] and [`handler`], each
//! wrapped by [`boundary::guard`] so a Rust panic is logged, never an abort.
//! Daemon mode's Apache side is here too: [`supervisor`] (the parent forks
//! and watches the daemon processes) and [`daemon_client`] (children forward
//! requests to them).

mod backend;
mod boundary;
mod daemon_client;
mod ffi;
mod handler;
mod hooks;
mod log;
mod module;
mod plan;
mod pool;
mod request;
mod supervisor;
