//! `WSGITrustedProxyHeaders` / `WSGITrustedProxies` applied to a request:
//! the CGI variables Apache computed in `r->subprocess_env` are rewritten
//! in place, before the handler reads them, so embedded mode and daemon
//! mode (which gets the same variables over its socket) see the same
//! result. The decisions are made in `config::rewrite_proxy_vars`.
//! Requests that mod_proxy_uwsgi sends to a daemon group never reach this:
//! the fixups hook (`request_hooks.rs`) sends their location's rules along,
//! and the daemon applies them (`daemon::protocol::admit`).

use std::ffi::CString;

use super::request::Request;
use crate::config::{rewrite_proxy_vars, EnvEdit};

/// Rewrites the forwarding variables of `req` as its configuration says;
/// costs one lookup when no `WSGITrustedProxyHeaders` applies.
pub fn apply(req: &mut Request<'_>) {
    let dir = req.dir_config();
    let Some(headers) = dir.trusted_proxy_headers.as_deref() else {
        return;
    };
    let edits = rewrite_proxy_vars(headers, dir.trusted_proxies.as_ref(), |name| {
        CString::new(name).ok().and_then(|key| req.env(&key))
    });
    for edit in edits {
        match edit {
            EnvEdit::Set(name, value) => {
                let key = CString::new(name).expect("variable names have no NUL");
                req.set_env_bytes(&key, &value);
            }
            EnvEdit::Unset(name) => {
                let key = CString::new(name).expect("variable names have no NUL");
                req.unset_env(&key);
            }
        }
    }
}
