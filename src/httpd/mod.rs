//! The unsafe boundary with Apache httpd. Everything that touches a raw
//! httpd/APR pointer lives in this folder; the rest of the crate sees safe
//! types. Entry points called by httpd are in [`hooks`] and [`handler`], each
//! wrapped by [`boundary::guard`] so a Rust panic is logged, never an abort.

mod backend;
mod boundary;
mod ffi;
mod handler;
mod hooks;
mod log;
mod module;
mod plan;
mod pool;
mod request;
