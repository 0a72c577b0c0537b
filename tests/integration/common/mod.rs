//! The harness shared by every integration test: a private Apache per test
//! (`server`), a raw HTTP/1.1 client (`http`) and WSGI apps used by several
//! test files (`apps`).
#![allow(dead_code)]

pub mod apps;
pub mod http;
pub mod server;

pub use apps::Environ;
#[allow(unused_imports)]
pub use http::Response;
pub use server::{module, Module, Mpm, Running, Server};
