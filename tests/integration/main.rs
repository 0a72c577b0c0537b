//! Integration tests for mod_wsgi_rs in embedded and daemon mode.
//!
//! Every test starts its own Apache httpd (see `common::server`) with the
//! module under test: ours by default, Debian's mod_wsgi with
//! `WSGI_TEST_MODULE=mod_wsgi`, so the same expectations are checked against
//! the module we replace. Tests specific to our module return early under
//! mod_wsgi and say why.

// The tests drive processes and namespaces directly (kill, fork, geteuid,
// unshare): the crate-wide unsafe_code denial is for the module's code.
#![allow(unsafe_code)]

/// Generates one `#[test]` per MPM for `fn $name(mpm: Mpm)`, as
/// `$name::event`, `$name::worker` and `$name::prefork`, for behaviour that
/// depends on threading, process model or restarts.
macro_rules! per_mpm {
    ($name:ident) => {
        mod $name {
            #[test]
            fn event() {
                super::$name(crate::common::Mpm::Event)
            }
            #[test]
            fn worker() {
                super::$name(crate::common::Mpm::Worker)
            }
            #[test]
            fn prefork() {
                super::$name(crate::common::Mpm::Prefork)
            }
        }
    };
}

/// Generates one `#[test]` per mode for `fn $name(mode: Mode)`, as
/// `$name::embedded` and `$name::daemon`.
macro_rules! both_modes {
    ($name:ident) => {
        mod $name {
            #[test]
            fn embedded() {
                super::$name(crate::common::Mode::Embedded)
            }
            #[test]
            fn daemon() {
                super::$name(crate::common::Mode::Daemon)
            }
        }
    };
}

/// Like `per_mpm!` for the threaded MPMs only.
macro_rules! threaded_mpms {
    ($name:ident) => {
        mod $name {
            #[test]
            fn event() {
                super::$name(crate::common::Mpm::Event)
            }
            #[test]
            fn worker() {
                super::$name(crate::common::Mpm::Worker)
            }
        }
    };
}

mod common;

mod access_control;
mod app_groups;
mod asgi;
mod auth;
mod concurrency;
mod config;
mod contexts;
mod daemon;
mod daemon_backlog;
mod daemon_basic;
mod daemon_debug_mode;
mod daemon_failures;
mod daemon_faults;
mod daemon_graceful;
mod daemon_keepalive;
mod daemon_large;
mod daemon_lifecycle;
mod daemon_options;
mod daemon_private_vars;
mod daemon_recycle;
mod daemon_reload;
mod daemon_responses;
mod daemon_script_owner;
mod daemon_security;
mod daemon_slow_clients;
mod daemon_startup_timeout;
mod daemon_succession;
mod daemon_template;
mod daemon_timeouts;
mod daemon_unavailable;
mod directives;
mod dispatch;
mod environ;
mod failures;
mod frameworks;
mod http2;
mod input;
mod logging;
mod mercurial;
mod messages;
mod metrics;
mod metrics_restarts;
mod module_api;
mod multihost;
mod output;
mod python_home;
mod python_options;
mod reload;
mod restarts;
mod routing;
mod seeds;
mod server_header;
mod slow_requests;
mod status_page;
mod stdio;
mod threads;
mod trusted_proxies;
mod websocket;
