//! The harness shared by every integration test: a private Apache per test
//! (`server`), a raw HTTP/1.1 client (`http`), WSGI apps used by several
//! test files (`apps`), the framework virtualenv (`venv`) and helpers for
//! deploying whole applications and site files (`deploy`), back ends in
//! network namespaces of their own (`netns`), and waiting on conditions and
//! skipping what the referee does differently (`wait`).
#![allow(dead_code)]

pub mod apps;
pub mod deploy;
pub mod http;
pub mod netns;
pub mod server;
pub mod venv;
pub mod wait;

pub use apps::Environ;
#[allow(unused_imports)]
pub use http::Response;
pub use server::{module, Module, Mpm, Running, Server};
pub use wait::{referee_differs, wait_for, wait_for_count, StopOnDrop};

/// Where the application runs, for tests that check the same behaviour in
/// both modes (`both_modes!` in main.rs makes one test of each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In Apache's children.
    Embedded,
    /// In a daemon process group.
    Daemon,
}
