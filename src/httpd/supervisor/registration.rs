//! Daemon processes registered with httpd's other-child list, which tells
//! the parent of their deaths (and of restarts). Plain APR, so the unit
//! tests build it (and check it against the real libapr).

use std::ffi::{c_int, c_void};

use crate::httpd::ffi;

/// Registers `proc_` with httpd's other-child list under `key`, with
/// `callback`, in a pool of its own under `pconf`: APR allocates the
/// registration's record from the pool it is given and never frees it, so
/// registering each respawned process in pconf itself grew the parent by a
/// record per respawn. The pool is destroyed when the process is
/// unregistered ([`unregister`]), or with pconf. Returns the pool.
///
/// # Safety
/// `pconf` must be live; `proc_` must stay where it is until unregistered.
pub(crate) unsafe fn register(
    proc_: *mut ffi::apr_proc_t,
    key: usize,
    pconf: *mut ffi::apr_pool_t,
    callback: Callback,
) -> *mut ffi::apr_pool_t {
    let mut pool: *mut ffi::apr_pool_t = std::ptr::null_mut();
    // SAFETY: caller's contract; a subpool of a live pool.
    unsafe {
        ffi::apr_pool_create_ex(&mut pool, pconf, None, std::ptr::null_mut());
        ffi::apr_proc_other_child_register(
            proc_,
            Some(callback),
            key as *mut c_void,
            std::ptr::null_mut(),
            pool,
        );
    }
    pool
}

/// The callback httpd calls for a registered process.
pub(crate) type Callback = unsafe extern "C" fn(reason: c_int, data: *mut c_void, status: c_int);

/// Takes the registration `key` off httpd's list and frees its pool. Calls
/// its callback back (the supervisor's takes its lock: it must not be held).
///
/// # Safety
/// `pool` must be the pool `key` was registered in, not yet destroyed.
pub(crate) unsafe fn unregister(key: usize, pool: *mut ffi::apr_pool_t) {
    // SAFETY: caller's contract.
    unsafe {
        ffi::apr_proc_other_child_unregister(key as *mut c_void);
        ffi::apr_pool_destroy(pool);
    }
}

#[cfg(test)]
mod tests {
    //! Against the real APR (the test binary links libapr-1 itself; httpd
    //! provides it to the module).

    use std::ffi::{c_int, c_void};

    use super::{register, unregister};
    use crate::httpd::ffi;

    #[link(name = "apr-1")]
    extern "C" {
        fn apr_initialize() -> c_int;
    }

    /// A callback that does nothing.
    unsafe extern "C" fn ignore(_reason: c_int, _data: *mut c_void, _status: c_int) {}

    /// This process's resident memory, in KiB.
    fn rss_kib() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4
    }

    /// Registers and unregisters a process `n` times, as the supervisor
    /// does for each respawn, in `pconf` itself (`own_pool` false: how
    /// it was) or each time in a pool of its own (how it is). Returns how
    /// much the resident memory grew, in KiB.
    fn growth(pconf: *mut ffi::apr_pool_t, n: usize, own_pool: bool) -> u64 {
        // SAFETY: apr_proc_t is plain data; zeroed is valid.
        let mut proc_ = Box::new(unsafe { std::mem::zeroed::<ffi::apr_proc_t>() });
        let before = rss_kib();
        for key in 1..=n {
            // SAFETY: a live pool; the boxed record outlives each registration.
            unsafe {
                if own_pool {
                    let pool = register(&mut *proc_, key, pconf, ignore);
                    unregister(key, pool);
                } else {
                    ffi::apr_proc_other_child_register(
                        &mut *proc_,
                        Some(ignore),
                        key as *mut c_void,
                        std::ptr::null_mut(),
                        pconf,
                    );
                    ffi::apr_proc_other_child_unregister(key as *mut c_void);
                }
            }
        }
        rss_kib().saturating_sub(before)
    }

    /// Set in the test process that runs the measurement alone.
    const ALONE: &str = "WSGI_RS_TEST_ALONE";

    /// 100,000 respawns leave the configuration pool as it was; registered
    /// in pconf itself, as before, the same respawns grew it by megabytes.
    ///
    /// Resident memory is the whole process's: tests running beside this
    /// one on other threads would move it. So the test runs itself again,
    /// alone, in a test process of its own, and measures there.
    #[test]
    fn respawns_do_not_grow_the_configuration_pool() {
        if std::env::var_os(ALONE).is_none() {
            let module = module_path!().split_once("::").map_or("", |(_, m)| m);
            let name = format!("{module}::respawns_do_not_grow_the_configuration_pool");
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([name.as_str(), "--exact", "--test-threads=1", "--nocapture"])
                .env(ALONE, "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{text}");
            assert!(
                text.contains("1 passed"),
                "the test did not run alone:\n{text}"
            );
            return;
        }
        let n = 100_000;
        // SAFETY: APR set up once for this test binary; root pools.
        let (pconf, old) = unsafe {
            assert_eq!(apr_initialize(), 0);
            let mut pconf: *mut ffi::apr_pool_t = std::ptr::null_mut();
            let mut old: *mut ffi::apr_pool_t = std::ptr::null_mut();
            ffi::apr_pool_create_ex(&mut pconf, std::ptr::null_mut(), None, std::ptr::null_mut());
            ffi::apr_pool_create_ex(&mut old, std::ptr::null_mut(), None, std::ptr::null_mut());
            (pconf, old)
        };
        growth(pconf, 1000, true);
        let now = growth(pconf, n, true);
        let before = growth(old, n, false);
        // SAFETY: our own root pools, no longer used.
        unsafe {
            ffi::apr_pool_destroy(pconf);
            ffi::apr_pool_destroy(old);
        }
        eprintln!("{n} respawns: {now} KiB now, {before} KiB registered in pconf itself");
        assert!(now < 256, "{n} respawns grew the process by {now} KiB");
        assert!(
            before > 2048,
            "registering in pconf itself grew it by only {before} KiB"
        );
    }
}
