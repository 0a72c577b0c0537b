//! A safe view of one `request_rec` for the duration of a hook call. Strings
//! borrowed from it live in the request pool, which outlives the call, so they
//! are handed out with the request's lifetime.

use std::ffi::{c_char, CStr};
use std::marker::PhantomData;

use super::ffi;
use super::pool::{pool_bytes, pool_str};
use crate::config::{DirConfig, ServerConfig};
use crate::script_owner::FileOwner;

/// Safe access to a live `request_rec` for the length of a hook call.
pub struct Request<'r> {
    /// The request.
    raw: *mut ffi::request_rec,
    /// Ties borrowed strings to the hook call.
    _life: PhantomData<&'r mut ffi::request_rec>,
}

/// Borrows a C string from httpd memory as bytes.
///
/// # Safety
/// `p` is null or a NUL-terminated string that lives for `'a`.
unsafe fn bytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        None
    } else {
        // SAFETY: as promised by the caller.
        Some(unsafe { CStr::from_ptr(p) }.to_bytes())
    }
}

impl<'r> Request<'r> {
    /// # Safety
    /// `raw` must be the live request httpd passed to the current hook call,
    /// and the `Request` must not escape that call.
    pub unsafe fn from_raw(raw: *mut ffi::request_rec) -> Self {
        Request {
            raw,
            _life: PhantomData,
        }
    }

    /// The raw request, for the unsafe calls that need it.
    pub fn raw(&self) -> *mut ffi::request_rec {
        self.raw
    }

    /// The request record.
    fn r(&self) -> &'r ffi::request_rec {
        // SAFETY: from_raw's contract: live for the hook call ('r).
        unsafe { &*self.raw }
    }

    /// The request record, for writing.
    fn r_mut(&mut self) -> &mut ffi::request_rec {
        // SAFETY: as above, and we hold the only Rust handle to it.
        unsafe { &mut *self.raw }
    }

    /// The request pool.
    fn pool(&self) -> *mut ffi::apr_pool_t {
        self.r().pool
    }

    /// The URL path.
    pub fn uri(&self) -> &'r [u8] {
        // SAFETY: r->uri is a pool string (or null).
        unsafe { bytes(self.r().uri) }.unwrap_or(b"")
    }

    /// The method.
    pub fn method(&self) -> &'r [u8] {
        // SAFETY: r->method is a pool string (or null).
        unsafe { bytes(self.r().method) }.unwrap_or(b"")
    }

    /// The handler name.
    pub fn handler(&self) -> &'r [u8] {
        // SAFETY: r->handler is a static or pool string (or null).
        unsafe { bytes(self.r().handler) }.unwrap_or(b"")
    }

    /// Sets the handler name.
    pub fn set_handler(&mut self, handler: &'static CStr) {
        self.r_mut().handler = handler.as_ptr();
    }

    /// The file the request maps to.
    pub fn filename(&self) -> &'r [u8] {
        // SAFETY: r->filename is a pool string (or null).
        unsafe { bytes(self.r().filename) }.unwrap_or(b"")
    }

    /// Sets the file the request maps to.
    pub fn set_filename(&mut self, filename: &str) {
        // SAFETY: the request pool is live for the request.
        let copy = unsafe { pool_str(self.pool(), filename) };
        self.r_mut().filename = copy.cast_mut();
    }

    /// Whether only headers are wanted.
    pub fn is_head(&self) -> bool {
        self.r().header_only != 0
    }

    /// A value of an APR table.
    fn table_get(table: *mut ffi::apr_table_t, key: &CStr) -> Option<&'r [u8]> {
        if table.is_null() {
            return None;
        }
        // SAFETY: table is a live request table; the value is a pool string.
        unsafe { bytes(ffi::apr_table_get(table, key.as_ptr())) }
    }

    /// A request header.
    pub fn header_in(&self, name: &CStr) -> Option<&'r [u8]> {
        Self::table_get(self.r().headers_in, name)
    }

    /// A request note.
    pub fn note(&self, key: &CStr) -> Option<&'r [u8]> {
        Self::table_get(self.r().notes, key)
    }

    /// Sets a request note.
    pub fn set_note(&mut self, key: &CStr, value: &str) {
        // SAFETY: notes is a live request table; apr_table_set copies both.
        unsafe {
            let v = pool_str(self.pool(), value);
            ffi::apr_table_set(self.r().notes, key.as_ptr(), v);
        }
    }

    /// Fills `subprocess_env` with the CGI variables Apache computes.
    pub fn add_cgi_vars(&mut self) {
        // SAFETY: both functions only read/extend the request's tables.
        unsafe {
            ffi::ap_add_common_vars(self.raw);
            ffi::ap_add_cgi_vars(self.raw);
        }
    }

    /// Sets a subprocess environment variable.
    pub fn set_env(&mut self, key: &CStr, value: &str) {
        // SAFETY: subprocess_env is a live request table; apr_table_set
        // copies both strings.
        unsafe {
            let v = pool_str(self.pool(), value);
            ffi::apr_table_set(self.r().subprocess_env, key.as_ptr(), v);
        }
    }

    /// The request's server_rec, by address.
    pub fn server_addr(&self) -> usize {
        self.r().server as usize
    }

    /// A subprocess environment variable.
    pub fn env(&self, name: &CStr) -> Option<&'r [u8]> {
        Self::table_get(self.r().subprocess_env, name)
    }

    /// The entries of `subprocess_env`, in table order.
    pub fn env_entries(&self) -> Vec<(&'r [u8], &'r [u8])> {
        Self::table_entries(self.r().subprocess_env)
    }

    /// The request headers, in the order the client sent them.
    pub fn header_entries(&self) -> Vec<(&'r [u8], &'r [u8])> {
        Self::table_entries(self.r().headers_in)
    }

    /// Every entry of an APR table.
    fn table_entries(table: *mut ffi::apr_table_t) -> Vec<(&'r [u8], &'r [u8])> {
        if table.is_null() {
            return Vec::new();
        }
        // SAFETY: apr_table_elts returns the table's backing array of
        // apr_table_entry_t; entries with a null key are deleted slots.
        unsafe {
            let arr = &*ffi::apr_table_elts(table);
            let entries = std::slice::from_raw_parts(
                arr.elts.cast::<ffi::apr_table_entry_t>(),
                arr.nelts.max(0) as usize,
            );
            entries
                .iter()
                .filter_map(|e| Some((bytes(e.key)?, bytes(e.val).unwrap_or(b""))))
                .collect()
        }
    }

    /// Sets a `subprocess_env` variable to raw (latin-1) bytes.
    pub fn set_env_bytes(&mut self, key: &CStr, value: &[u8]) {
        // SAFETY: subprocess_env is a live request table; both strings are
        // copied into the request pool first, so setn may keep them.
        unsafe {
            let k = ffi::apr_pstrdup(self.pool(), key.as_ptr());
            let v = pool_bytes(self.pool(), value);
            ffi::apr_table_setn(self.r().subprocess_env, k, v);
        }
    }

    /// Removes a subprocess environment variable.
    pub fn unset_env(&mut self, key: &CStr) {
        // SAFETY: subprocess_env is a live request table.
        unsafe { ffi::apr_table_unset(self.r().subprocess_env, key.as_ptr()) }
    }

    /// The authenticated user (`r->user`), if any.
    pub fn user(&self) -> Option<&'r [u8]> {
        // SAFETY: r->user is a pool string or null.
        unsafe { bytes(self.r().user) }
    }

    /// Sets the authenticated user.
    pub fn set_user(&mut self, user: &str) {
        // SAFETY: the request pool is live for the request.
        let copy = unsafe { pool_str(self.pool(), user) };
        self.r_mut().user = copy.cast_mut();
    }

    /// The request line's target as the client sent it.
    pub fn unparsed_uri(&self) -> &'r [u8] {
        // SAFETY: a pool string or null.
        unsafe { bytes(self.r().unparsed_uri) }.unwrap_or(b"")
    }

    /// The query string.
    pub fn query_string(&self) -> &'r [u8] {
        // SAFETY: a pool string or null.
        unsafe { bytes(self.r().args) }.unwrap_or(b"")
    }

    /// The protocol (`HTTP/1.1`).
    pub fn protocol(&self) -> &'r [u8] {
        // SAFETY: a pool string or null.
        unsafe { bytes(self.r().protocol) }.unwrap_or(b"")
    }

    /// The client's address (`r->useragent_ip`, which mod_remoteip may
    /// have replaced).
    pub fn useragent_ip(&self) -> &'r [u8] {
        // SAFETY: a pool or connection string, or null.
        unsafe { bytes(self.r().useragent_ip) }.unwrap_or(b"")
    }

    /// The address of this server on the connection.
    pub fn local_ip(&self) -> &'r [u8] {
        // SAFETY: r->connection is live for the request; local_ip is a
        // connection-pool string or null.
        unsafe { bytes((*self.r().connection).local_ip) }.unwrap_or(b"")
    }

    /// The client's host name when `HostnameLookups` allows, else its
    /// address.
    pub fn remote_host(&self) -> &'r [u8] {
        // SAFETY: live request; the shim returns a pool string or null.
        unsafe { bytes(ffi::wsgi_rs_remote_host(self.raw)) }.unwrap_or(b"")
    }

    /// What kind of file the request maps to (APR's file type).
    pub fn file_type(&self) -> u32 {
        // SAFETY: reads r->finfo of the live request.
        unsafe { ffi::wsgi_rs_finfo_filetype(self.raw) as u32 }
    }

    /// The file's modification time (microseconds).
    pub fn file_mtime(&self) -> i64 {
        // SAFETY: reads r->finfo of the live request.
        unsafe { ffi::wsgi_rs_finfo_mtime(self.raw) }
    }

    /// The owner of the request's file and who else may write it, from
    /// the stat Apache made when it mapped the URL (no new stat); None
    /// when that stat did not tell.
    pub fn file_owner(&self) -> Option<FileOwner> {
        let mut owner = FileOwner::default();
        let (mut group_writable, mut world_writable) = (0, 0);
        // SAFETY: reads r->finfo of the live request into locals.
        let rc = unsafe {
            ffi::wsgi_rs_finfo_owner(
                self.raw,
                &mut owner.uid,
                &mut owner.gid,
                &mut group_writable,
                &mut world_writable,
            )
        };
        owner.group_writable = group_writable != 0;
        owner.world_writable = world_writable != 0;
        (rc == 0).then_some(owner)
    }

    /// Whether `Options ExecCGI` applies.
    pub fn exec_cgi_allowed(&self) -> bool {
        // SAFETY: reads the request's per-dir core options.
        unsafe { ffi::ap_allow_options(self.raw) & ffi::OPT_EXECCGI as i32 != 0 }
    }

    /// `LimitRequestBody` here; 0 for none.
    pub fn limit_request_body(&self) -> u64 {
        // SAFETY: reads the request's per-dir core config.
        unsafe { ffi::ap_get_limit_req_body(self.raw) as u64 }
    }

    /// Whether output filters that need the whole body are present.
    pub fn has_content_filters(&self) -> bool {
        // SAFETY: walks the request's output filter list.
        unsafe { ffi::wsgi_rs_has_content_filters(self.raw) != 0 }
    }

    /// The server's name.
    pub fn server_hostname(&self) -> String {
        // SAFETY: r->server is live; server_hostname is a pconf string or null.
        let host = unsafe { bytes((*self.r().server).server_hostname) }.unwrap_or(b"");
        String::from_utf8_lossy(host).into_owned()
    }

    /// The server's name as `UseCanonicalName` says (`SERVER_NAME`).
    pub fn server_name(&self) -> &'r [u8] {
        // SAFETY: live request; the result is a pool or config string.
        unsafe { bytes(ffi::ap_get_server_name(self.raw)) }.unwrap_or(b"")
    }

    /// The server's port.
    pub fn server_port(&self) -> u16 {
        // SAFETY: reads the live request.
        unsafe { ffi::ap_get_server_port(self.raw) }
    }

    /// The host the client asked for.
    pub fn hostname(&self) -> Option<String> {
        // SAFETY: r->hostname is a pool string or null.
        unsafe { bytes(self.r().hostname) }.map(|h| String::from_utf8_lossy(h).into_owned())
    }

    /// Our record of the request's server.
    pub fn server_config(&self) -> &'r ServerConfig {
        // SAFETY: every server_rec gets a ServerConfig from our create/merge
        // callbacks, owned by pconf, which outlives all requests.
        unsafe { &*ffi::wsgi_rs_server_config(self.r().server).cast::<ServerConfig>() }
    }

    /// Our record of the request's directory.
    pub fn dir_config(&self) -> &'r DirConfig {
        // SAFETY: per-dir configs are DirConfig boxes from our callbacks,
        // owned by pconf or the request pool, both outliving this call.
        unsafe { &*ffi::wsgi_rs_dir_config(self.raw).cast::<DirConfig>() }
    }

    /// Logs a line against the request.
    pub fn log(&self, level: i32, msg: &str) {
        let msg = super::log::c_message(msg);
        // SAFETY: live request; the shim logs msg through "%s".
        unsafe {
            ffi::wsgi_rs_log_request(c"mod_wsgi_rs".as_ptr(), 0, level, self.raw, msg.as_ptr())
        }
    }
}
