//! The edge below every layer: the few calls a daemon process makes that no
//! safe wrapper covers (borrowing a descriptor the process holds by number,
//! fork, `_exit`, signal masks, privilege changes, shared memory), each made
//! safe here once, so the layers above hold no `unsafe` of their own. Calls
//! a well-kept crate already wraps safely (`rustix`: epoll, sockets,
//! `getrandom`, `getppid`...) are made through it where they are used.
//!
//! This module imports nothing of the crate: it sits below every layer.
//!
//! - [`fd`]: descriptors known by number (inherited, or an application's).
//! - [`identity`]: the account database and the credentials of a privilege
//!   drop.
//! - [`process`]: leaving a process at once, its parent, its children,
//!   the C library's locale.
//! - [`python`]: the raw Python C-API calls the WSGI core makes (below
//!   `wsgi`, which must not import `interp`).
//! - [`shm`]: records shared between processes (anonymous shared memory).
//! - [`signals`]: signal sets, masks and waits.
//! - [`thread`]: the calling thread's id.
//! - [`usage`]: CPU time used so far.

// The edge itself: every block carries its `// SAFETY:` (clippy checks).
#![allow(unsafe_code)]

pub mod fd;
pub mod identity;
pub mod process;
pub mod python;
pub mod shm;
pub mod signals;
pub mod thread;
pub mod usage;
