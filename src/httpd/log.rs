//! Routes the `log` crate into Apache's error log under this module's index,
//! so `LogLevel wsgi_rs:debug` controls what our code says.

use std::ffi::CString;
use std::sync::atomic::{AtomicPtr, Ordering};

use super::ffi;

/// The main server of the current configuration generation; set by
/// post_config and child_init, both of which run before any other use.
static MAIN_SERVER: AtomicPtr<ffi::server_rec> = AtomicPtr::new(std::ptr::null_mut());

/// The `log` crate's logger, writing to httpd's error log.
struct ApacheLogger;

/// The one logger instance.
static LOGGER: ApacheLogger = ApacheLogger;

/// The httpd log level of a `log` level.
pub fn apache_level(level: ::log::Level) -> i32 {
    (match level {
        ::log::Level::Error => ffi::APLOG_ERR,
        ::log::Level::Warn => ffi::APLOG_WARNING,
        ::log::Level::Info => ffi::APLOG_INFO,
        ::log::Level::Debug => ffi::APLOG_DEBUG,
        ::log::Level::Trace => ffi::APLOG_TRACE1,
    }) as i32
}

/// Points logging at `server` (a pointer httpd keeps alive for the whole
/// configuration generation) and installs the logger once per process.
pub fn install(server: *mut ffi::server_rec) {
    MAIN_SERVER.store(server, Ordering::Release);
    if ::log::set_logger(&LOGGER).is_ok() {
        ::log::set_max_level(::log::LevelFilter::Trace);
    }
}

/// Pool cleanup: stops logging through a server_rec that is going away.
unsafe extern "C" fn forget_server(_data: *mut std::ffi::c_void) -> ffi::apr_status_t {
    super::boundary::guard("log cleanup", (), || {
        MAIN_SERVER.store(std::ptr::null_mut(), Ordering::Release);
    });
    ffi::APR_SUCCESS as ffi::apr_status_t
}

/// Stops logging through the server when `pconf` (which owns it) is cleared
/// on restart; until the next post_config, messages go to httpd's stderr log.
///
/// # Safety
/// `pconf` must be the live configuration pool that owns the installed server.
pub unsafe fn forget_with(pconf: *mut ffi::apr_pool_t) {
    // SAFETY: caller's contract; the cleanup only stores a null pointer.
    unsafe {
        ffi::apr_pool_cleanup_register(
            pconf,
            std::ptr::null(),
            Some(forget_server),
            Some(ffi::apr_pool_cleanup_null),
        );
    }
}

/// A log message as a C string (NULs replaced).
pub fn c_message(msg: &str) -> CString {
    CString::new(msg.replace('\0', "\\0")).expect("NULs escaped")
}

impl ::log::Log for ApacheLogger {
    fn enabled(&self, metadata: &::log::Metadata<'_>) -> bool {
        let server = MAIN_SERVER.load(Ordering::Acquire);
        // SAFETY: server is null or the live main server_rec (see install);
        // the shim treats null as "log everything at up to the default level".
        unsafe { ffi::wsgi_rs_log_enabled(server, apache_level(metadata.level())) != 0 }
    }

    fn log(&self, record: &::log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let server = MAIN_SERVER.load(Ordering::Acquire);
        let msg = c_message(&record.args().to_string());
        let file = c_message(record.file().unwrap_or("mod_wsgi_rs"));
        // SAFETY: all pointers are valid NUL-terminated strings or the
        // live/null server; the shim passes msg as an argument to "%s".
        unsafe {
            ffi::wsgi_rs_log_server(
                file.as_ptr(),
                record.line().unwrap_or(0) as i32,
                apache_level(record.level()),
                server,
                msg.as_ptr(),
            );
        }
    }

    fn flush(&self) {}
}
