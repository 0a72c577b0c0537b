//! The embedded-mode [`Backend`]: the WSGI core's reads and writes become
//! input-filter reads and output-brigade passes on the Apache request.

use std::ffi::c_int;
use std::os::fd::{IntoRawFd, OwnedFd};

use super::ffi;
use super::pool::pool_latin1;
use crate::wsgi::{Backend, BodyError, LogLevel, Outcome, WriteError};

/// Unflushed writes adding up to this much only buffer in Apache's output
/// chain.
const QUICK_WRITE: usize = 16 * 1024;

/// The embedded-mode backend of one request.
pub struct ApacheBackend {
    /// The request; live while the handler runs.
    r: *mut ffi::request_rec,
    /// The output brigade, reused for every write.
    bb: *mut ffi::apr_bucket_brigade,
    /// The request body as the input filters handed it over and not read
    /// yet (see `wsgi_rs_read_body`); made on the first read.
    input: *mut ffi::apr_bucket_brigade,
    /// A HEAD request: no body goes out.
    head: bool,
    /// Bytes written since the last flush.
    unflushed: usize,
    /// `WSGIEnableSendfile On`: file_wrapper files may go out by sendfile().
    sendfile: bool,
}

// SAFETY: the request and brigade are only used while the handler that owns
// the request is running: the Exchange holding this backend is closed (the
// backend dropped) before the handler returns, and every access is serialised
// by the Exchange's mutex, so the pointers are never used concurrently or
// after the request ends, whichever Python thread makes the call.
unsafe impl Send for ApacheBackend {}

impl ApacheBackend {
    /// # Safety
    /// `r` must be the live request of the running handler, and the backend
    /// must be dropped before the handler returns.
    pub unsafe fn new(r: *mut ffi::request_rec, head: bool) -> Self {
        // SAFETY: live request (caller's contract).
        let bb = unsafe { ffi::wsgi_rs_brigade_new(r) };
        ApacheBackend {
            r,
            bb,
            input: std::ptr::null_mut(),
            head,
            unflushed: 0,
            sendfile: false,
        }
    }

    /// Lets files of `wsgi.file_wrapper` go out by sendfile()
    /// (`WSGIEnableSendfile On`).
    pub fn with_sendfile(mut self, on: bool) -> Self {
        self.sendfile = on;
        self
    }

    /// APR's message for `status`.
    fn strerror(status: ffi::apr_status_t) -> String {
        let mut buf = [0 as std::os::raw::c_char; 256];
        // SAFETY: apr_strerror writes a NUL-terminated string into buf.
        unsafe {
            ffi::apr_strerror(status, buf.as_mut_ptr(), buf.len());
            std::ffi::CStr::from_ptr(buf.as_ptr())
                .to_string_lossy()
                .into_owned()
        }
    }
}

/// The httpd log level of a WSGI core level.
pub fn apache_level(level: LogLevel) -> i32 {
    (match level {
        LogLevel::Crit => ffi::APLOG_CRIT,
        LogLevel::Error => ffi::APLOG_ERR,
        LogLevel::Warn => ffi::APLOG_WARNING,
        LogLevel::Notice => ffi::APLOG_NOTICE,
        LogLevel::Info => ffi::APLOG_INFO,
        LogLevel::Debug => ffi::APLOG_DEBUG,
    }) as i32
}

impl Backend for ApacheBackend {
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, BodyError> {
        if self.input.is_null() {
            // SAFETY: live request (the contract of `new`).
            self.input = unsafe { ffi::wsgi_rs_brigade_new(self.r) };
        }
        loop {
            let mut got: ffi::apr_size_t = 0;
            // SAFETY: live request; `input` is this request's own read
            // brigade; buf is writable for its length.
            let rv = unsafe {
                ffi::wsgi_rs_read_body(
                    self.r,
                    self.input,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut got,
                )
            };
            match rv as u32 {
                ffi::APR_SUCCESS if got > 0 => {
                    super::metrics::body_read(got as u64);
                    return Ok(got);
                }
                ffi::APR_SUCCESS => continue,
                ffi::APR_EOF => return Ok(0),
                _ if rv == ffi::AP_FILTER_ERROR => {
                    return Err(BodyError::AlreadyAnswered(
                        "the request body was refused by an input filter".into(),
                    ))
                }
                _ => return Err(BodyError::Io(Self::strerror(rv))),
            }
        }
    }

    fn start_response(&mut self, status: u16, status_line: &str, headers: &[(String, String)]) {
        // SAFETY: live request; every string is copied into the request pool
        // before httpd keeps it (CVE-2014-0242 was a Content-Type used after
        // its Python owner freed it). Fields are written through the raw
        // pointer, never through a reference held across httpd calls.
        unsafe {
            let r = self.r;
            let pool = (*r).pool;
            (*r).status = status as i32;
            (*r).status_line = pool_latin1(pool, status_line);
            for (name, value) in headers {
                if name.eq_ignore_ascii_case("content-type") {
                    ffi::ap_set_content_type(r, pool_latin1(pool, value));
                } else if name.eq_ignore_ascii_case("content-length") {
                    if let Ok(n) = value.trim().parse::<i64>() {
                        ffi::ap_set_content_length(r, n);
                    }
                } else {
                    ffi::apr_table_add(
                        (*r).headers_out,
                        pool_latin1(pool, name),
                        pool_latin1(pool, value),
                    );
                }
            }
        }
    }

    fn write_body(&mut self, data: &[u8], flush: bool) -> Result<(), WriteError> {
        // A large write is sent at once anyway; flushing it spares the core
        // output filter copying the unwritten tail of our transient bucket.
        let flush = flush || data.len() >= QUICK_WRITE;
        self.unflushed = if flush {
            0
        } else {
            self.unflushed.saturating_add(data.len())
        };
        // SAFETY: live request and brigade; data outlives the call and any
        // filter that keeps it copies it (transient bucket).
        let rv = unsafe {
            ffi::wsgi_rs_write(
                self.r,
                self.bb,
                data.as_ptr().cast(),
                data.len(),
                flush as i32,
            )
        };
        if rv == ffi::APR_SUCCESS as i32 {
            Ok(())
        } else {
            Err(WriteError::Disconnected(Self::strerror(rv)))
        }
    }

    fn write_is_quick(&self, len: usize, flush: bool) -> bool {
        // Without a flush, the core output filter sets small writes aside
        // (it blocks on the client only once it holds 64 KiB).
        !flush && self.unflushed + len <= QUICK_WRITE
    }

    fn send_file(
        &mut self,
        file: OwnedFd,
        offset: u64,
        len: u64,
    ) -> Result<(), (Option<OwnedFd>, WriteError)> {
        // SAFETY: live request and brigade; the shim takes ownership of the
        // descriptor (closed with the request pool) whatever the outcome.
        let rv = unsafe {
            ffi::wsgi_rs_send_file(
                self.r,
                self.bb,
                file.into_raw_fd(),
                offset as ffi::apr_off_t,
                len as ffi::apr_size_t,
                c_int::from(self.sendfile),
            )
        };
        if rv == ffi::APR_SUCCESS as i32 {
            Ok(())
        } else {
            Err((None, WriteError::Disconnected(Self::strerror(rv))))
        }
    }

    fn abort(&mut self) {
        // What the application produced still goes out (unflushed, it would
        // be dropped with the connection): the client then sees a response
        // cut short, not none at all.
        if self.unflushed > 0 {
            let _ = self.write_body(&[], true);
        }
        // SAFETY: live request.
        unsafe { ffi::wsgi_rs_abort_connection(self.r) }
    }

    fn is_head(&self) -> bool {
        self.head
    }

    fn finish(&mut self, outcome: &Outcome) {
        // Output still held in the core output filter when the handler
        // returns goes out through the event MPM's write-completion
        // hand-off: several more thread wake-ups per request (a 13-byte
        // response measured 15k req/s on one connection this way, 26k with
        // this flush). Written here, it leaves with the handler's thread.
        if *outcome == Outcome::Done && self.unflushed > 0 {
            let _ = self.write_body(&[], true);
        }
    }

    fn request_id(&mut self) -> Option<String> {
        // SAFETY: live request (the contract of `new`); the generate_log_id
        // hooks store a pool string in r->log_id, as mod_wsgi has them do.
        unsafe {
            let r = self.r;
            if (*r).log_id.is_null() {
                ffi::ap_run_generate_log_id((*r).connection, r, &raw mut (*r).log_id);
            }
            let id = (*r).log_id;
            (!id.is_null()).then(|| std::ffi::CStr::from_ptr(id).to_string_lossy().into_owned())
        }
    }

    fn log(&self, level: LogLevel, msg: &str) {
        let msg = super::log::c_message(msg);
        // SAFETY: live request; the shim logs msg through "%s".
        unsafe {
            ffi::wsgi_rs_log_request(
                c"mod_wsgi_rs".as_ptr(),
                0,
                apache_level(level),
                self.r,
                msg.as_ptr(),
            )
        }
    }
}
