//! The request hooks that run before the handler: translate_name maps a
//! URL under a `WSGIScriptAlias` to its script, and fixups gives requests
//! mod_proxy_uwsgi sends to one of our daemon sockets the secret they need
//! and the trusted proxy rules of their location.

use std::ffi::{c_int, CStr};

use super::boundary::guard;
use super::ffi;
use super::plan;
use super::request::Request;
use crate::config::encode_rules;
use crate::daemon::protocol;

/// The handler name WSGIScriptAlias assigns and `SetHandler` may name.
pub const HANDLER: &CStr = c"wsgi-script";
/// The note that marks a request as mapped by a WSGIScriptAlias: its index.
pub const ALIAS_NOTE: &CStr = c"mod_wsgi_rs.script_alias";

/// translate_name: maps a URL under a script alias to its script.
#[no_mangle]
pub extern "C" fn wsgi_rs_translate_name(r: *mut ffi::request_rec) -> c_int {
    guard("translate_name", ffi::DECLINED as c_int, || {
        // SAFETY: httpd passes the live request of this hook call.
        let mut req = unsafe { Request::from_raw(r) };
        let uri = req.uri();
        if !uri.starts_with(b"/") {
            return ffi::DECLINED as c_int;
        }
        let uri = String::from_utf8_lossy(uri).into_owned();
        let config = req.server_config();
        let Some((index, m)) = config.match_uri(&uri) else {
            return ffi::DECLINED as c_int;
        };
        req.set_filename(&m.filename);
        req.set_handler(HANDLER);
        req.set_note(ALIAS_NOTE, &index.to_string());
        ffi::OK as c_int
    })
}

/// The UNIX socket a mod_proxy request is bound for, if any: named in
/// r->filename (`proxy:unix:PATH|…`) or r->handler (`SetHandler
/// "proxy:unix:PATH|…"`), or, for `ProxyPass /x unix:PATH|uwsgi://…`, known
/// only to the proxy worker, because httpd strips the socket from the
/// mapped filename when it reads the configuration.
fn proxy_socket(req: &Request<'_>) -> Option<Vec<u8>> {
    let named = [req.filename(), req.handler()]
        .into_iter()
        .find_map(|s| s.strip_prefix(b"proxy:unix:"));
    if let Some(target) = named {
        return target.split(|&b| b == b'|').next().map(<[u8]>::to_vec);
    }
    if !req.filename().starts_with(b"proxy:") {
        return None;
    }
    // SAFETY: a live request; the result is null or a string in the
    // worker's configuration memory, which outlives the request.
    unsafe {
        let p = ffi::wsgi_rs_proxy_uds_path(req.raw());
        (!p.is_null()).then(|| CStr::from_ptr(p).to_bytes().to_vec())
    }
}

/// Requests that mod_proxy_uwsgi sends to one of our daemon sockets get the
/// configuration secret, so our daemons serve this Apache's proxied
/// requests and refuse anyone else's; and with it the location's
/// `WSGITrustedProxyHeaders` rules, which the daemon applies to the vars
/// mod_proxy_uwsgi sends. mod_proxy_uwsgi makes those vars afresh from the
/// request's headers and connection when it sends them, so an edit of
/// `subprocess_env` here would be undone; the rules ride in the secret's
/// var, which nothing that cannot know the secret can replace. Registered
/// last among the fixups, so what `SetEnv` or `[E=]` put in that var is
/// replaced. Costs one configuration lookup more than before, only for
/// requests bound for one of our sockets.
#[no_mangle]
pub extern "C" fn wsgi_rs_fixups(r: *mut ffi::request_rec) -> c_int {
    guard("fixups", ffi::DECLINED as c_int, || {
        // SAFETY: httpd passes the live request of this hook call.
        let mut req = unsafe { Request::from_raw(r) };
        let Some(path) = proxy_socket(&req) else {
            return ffi::DECLINED as c_int;
        };
        let path = path.as_slice();
        let plan = plan::current();
        let ours = plan
            .daemon_groups
            .iter()
            .find(|g| g.socket_path.as_os_str().as_encoded_bytes() == path);
        if let Some(group) = ours {
            let dir = req.dir_config();
            let rules = dir
                .trusted_proxy_headers
                .as_deref()
                .map(|headers| encode_rules(headers, dir.trusted_proxies.as_ref()));
            let value = protocol::proxy_credentials(&group.launch.proxy_secret, rules.as_deref());
            req.set_env(c"WSGI_RS_SECRET", &value);
        }
        ffi::DECLINED as c_int
    })
}
