//! End-to-end tests of the `wsgi-rs` launcher: every subcommand against the
//! real Apache on this machine, with the module cargo just built (embedded
//! mode) and with Debian's mod_wsgi as the peer that proves the daemon-mode
//! configuration. Each test has its own directory and free port, talks
//! HTTP over a plain TcpStream, and checks that no process is left behind.
//! One file per subcommand; the shared harness is `harness`.

// The tests drive processes and namespaces directly (kill, fork, geteuid,
// unshare): the crate-wide unsafe_code denial is for the module's code.
#![allow(unsafe_code)]

mod harness;

mod asgi;
mod check;
mod daemon;
mod generated;
mod install;
mod refusals;
mod serve;
mod top;
