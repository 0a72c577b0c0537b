//! What group expansion (`%{SERVER}`, `%{HOST}`, `%{ENV:...}`, ...) needs
//! to know about a request, read from the live `request_rec`.

use super::request::Request;
use crate::config::RequestFacts;

/// The facts a group name may be expanded from, read from a live request.
pub struct Facts<'a, 'r> {
    /// The request.
    pub req: &'a Request<'r>,
}

impl RequestFacts for Facts<'_, '_> {
    fn server_hostname(&self) -> String {
        self.req.server_hostname()
    }
    fn server_port(&self) -> u16 {
        self.req.server_port()
    }
    fn host_header(&self) -> Option<String> {
        self.req.hostname()
    }
    fn script_name(&self) -> String {
        let name = self.req.env(c"SCRIPT_NAME").unwrap_or(b"");
        String::from_utf8_lossy(name).into_owned()
    }
    fn env(&self, name: &str) -> Option<String> {
        let key = std::ffi::CString::new(name).ok()?;
        self.req
            .note(&key)
            .or_else(|| self.req.env(&key))
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .or_else(|| std::env::var(name).ok())
    }
}
