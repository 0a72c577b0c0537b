//! Parsing and merging of mod_wsgi's configuration directives, in pure
//! Rust. The FFI layer hands each directive over as the argument words
//! Apache split (`AP_INIT_TAKE_ARGV`) together with its [`Directive`] id,
//! and reads the resulting [`ServerConfig`] and [`DirConfig`] records back
//! when serving requests.

mod access;
mod alias;
mod args;
mod compat;
mod daemon;
mod daemon_options;
mod dir;
mod directive;
mod dispatch;
mod error;
mod group;
mod import;
mod options_block;
mod python_options;
mod server;
mod trusted_proxies;

pub use access::AccessScript;
pub use alias::{AliasMatch, AliasOptions, AliasPattern, ScriptAlias};
pub use args::split_raw_args;
pub use compat::{CompatSettings, Notice};
pub use daemon::DaemonProcessSpec;
pub use dir::{
    resolve_callable_object, DirConfig, MapHeadToGet, RequestSettings, DEFAULT_CALLABLE_OBJECT,
};
pub use directive::{context, Args, Directive, Reach, Scope, Spec, SPECS};
pub use dispatch::{DispatchScript, HandlerScript, Routing, HANDLER_CALLABLE};
pub use error::ConfigError;
pub use group::{ApplicationGroup, GroupSpecError, ProcessGroup, RequestFacts};
pub use import::ImportScript;
pub use options_block::InterpreterOptionsBlock;
pub use python_options::{HashSeed, PythonOptions};
pub use server::{find_duplicate_daemon_names, ServerConfig};
pub use trusted_proxies::{rewrite_proxy_vars, EnvEdit, ProxyHeader, Purpose, TrustedProxies};
