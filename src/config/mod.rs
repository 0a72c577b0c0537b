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
mod interface;
mod options_block;
#[cfg(test)]
mod props;
mod python_options;
mod server;
mod trusted_proxies;

pub use access::AccessScript;
pub use alias::AliasOptions;
pub use args::split_raw_args;
pub use compat::Notice;
/// What `src/messages.rs` makes the notices' documentation from.
#[cfg(test)]
pub(crate) use compat::{NO_EFFECT, SERVER_METRICS_ON};
#[cfg(test)]
pub(crate) use daemon::option_notice_number;
pub use daemon::DaemonProcessSpec;
#[cfg(test)]
pub(crate) use daemon_options::{DAEMON_OPTIONS, NO_EFFECT as NO_EFFECT_OPTIONS};
pub use dir::{resolve_callable_object, DirConfig, MapHeadToGet};
#[cfg(test)]
pub use directive::context;
pub use directive::{Args, Directive, Scope, SPECS};
pub use dispatch::{DispatchScript, HandlerScript, HANDLER_CALLABLE};
pub use group::{ApplicationGroup, ProcessGroup, RequestFacts};
pub use interface::Interface;
pub use options_block::InterpreterOptionsBlock;
pub use python_options::HashSeed;
pub use server::ServerConfig;
pub use trusted_proxies::{encode_rules, rewrite_by_encoded_rules, rewrite_proxy_vars, EnvEdit};
