//! The unsafe boundary with Apache httpd. Everything that touches a raw
//! httpd/APR pointer lives in this folder; the rest of the crate sees safe
//! types. Entry points called by httpd are in [`records`] (config records),
//! [`directive`], [`hooks`] (lifecycle), [`request_hooks`] and [`handler`],
//! each wrapped by [`boundary::guard`] so a Rust panic is logged, never an
//! abort. [`resolve`] turns the parsed configuration into the [`plan`].
//! Daemon mode's Apache side is here too: [`supervisor`] (the parent forks
//! and watches the daemon processes, woken by [`child_exit`] when one dies)
//! and [`daemon_client`] (children forward requests to them).

// The edge with Apache: raw httpd/APR pointers and the C shim.
#![allow(unsafe_code)]

mod auth;
mod backend;
mod boundary;
mod child_exit;
mod commands;
mod daemon_client;
mod directive;
mod dispatch;
mod facts;
mod ffi;
mod handler;
mod hooks;
mod log;
mod metrics;
mod module;
mod plan;
mod pool;
mod proxy_headers;
mod records;
mod request;
mod request_hooks;
mod resolve;
mod section;
mod supervisor;
