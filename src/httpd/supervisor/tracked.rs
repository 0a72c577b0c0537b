//! A process the Apache parent tracks: a daemon process of the current
//! generation (a slot's), one of an earlier generation still serving (a
//! retiring one, see the hand-over), or the hand-over's watcher. What they share is written here once: the pid, the
//! record httpd tracks it with, its other-child registration (made, lost
//! with its pool, taken back when it dies) and signalling it, and the keys
//! its registrations are made under.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::httpd::ffi;

use super::registration::{self, Callback};

/// Registration keys of the processes other than the current generation's
/// slots (retiring ones, successors, the watcher and the waker) start here
/// (those below are the current generation's slots).
const FIRST_KEY: usize = 1 << 40;
/// The next key to hand out.
static NEXT_KEY: AtomicUsize = AtomicUsize::new(FIRST_KEY);

/// A registration key no other process has.
pub(super) fn next_key() -> usize {
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

/// A process the parent forked and httpd's other-child list reports on.
pub(super) struct Tracked {
    /// The running process, or the last one (0: none yet).
    pid: i32,
    /// The process is running (not yet reported dead).
    alive: bool,
    /// The record httpd tracks it with (boxed: httpd keeps its address).
    proc_: Box<ffi::apr_proc_t>,
    /// The pool its other-child registration lives in, or null.
    registration: *mut ffi::apr_pool_t,
    /// The key it is registered under: what the callback is given.
    key: usize,
}

/// A registration taken off a process that died, to take off httpd's list
/// once the supervisor's lock is released ([`Registration::unregister`]
/// calls the callback back).
pub(super) struct Registration {
    /// The key it was registered under.
    key: usize,
    /// The pool it lives in.
    pool: *mut ffi::apr_pool_t,
}

impl Registration {
    /// Takes the registration off httpd's list and frees its pool.
    ///
    /// # Safety
    /// The supervisor's lock must not be held (the callback takes it).
    pub(super) unsafe fn unregister(self) {
        // SAFETY: the pool was taken from its process's record under the
        // lock (`Tracked::died`), so it is destroyed once; caller's
        // contract for the lock.
        unsafe { registration::unregister(self.key, self.pool) }
    }
}

impl Tracked {
    /// No process yet, to be registered under `key`.
    pub(super) fn new(key: usize) -> Self {
        Tracked {
            pid: 0,
            alive: false,
            // SAFETY: apr_proc_t is plain data; zeroed is valid.
            proc_: Box::new(unsafe { std::mem::zeroed::<ffi::apr_proc_t>() }),
            registration: std::ptr::null_mut(),
            key,
        }
    }

    /// Process `pid` was forked for it and runs.
    pub(super) fn started(&mut self, pid: i32) {
        self.pid = pid;
        self.proc_.pid = pid;
        self.alive = true;
    }

    /// Its pid (the last one once it died).
    pub(super) fn pid(&self) -> i32 {
        self.pid
    }

    /// The process is running.
    pub(super) fn alive(&self) -> bool {
        self.alive
    }

    /// Its registration key.
    pub(super) fn key(&self) -> usize {
        self.key
    }

    /// The same process under another key, not registered: a process of
    /// a generation whose configuration pool (and its registration with
    /// it) is gone, to be registered again by the next one.
    pub(super) fn rekeyed(self, key: usize) -> Self {
        Tracked {
            registration: std::ptr::null_mut(),
            key,
            ..self
        }
    }

    /// Registers it with httpd's other-child list, `callback` to be called
    /// with its key (see [`registration::register`]).
    ///
    /// # Safety
    /// `pconf` must be live.
    pub(super) unsafe fn register(&mut self, pconf: *mut ffi::apr_pool_t, callback: Callback) {
        // SAFETY: caller's contract for pconf; the boxed record stays put
        // until it is unregistered (it lives as long as `self`, and a
        // registration outlives neither its pool nor `self`: the pool goes
        // with pconf, or is unregistered when the process dies).
        self.registration =
            unsafe { registration::register(&mut *self.proc_, self.key, pconf, callback) };
    }

    /// Its registration is gone (its pool was destroyed): forget it.
    pub(super) fn forget_registration(&mut self) {
        self.registration = std::ptr::null_mut();
    }

    /// httpd reported its death: no longer alive. Returns its registration
    /// to unregister (once the lock is released), if it was alive and
    /// registered.
    pub(super) fn died(&mut self) -> Option<Registration> {
        let was_alive = std::mem::replace(&mut self.alive, false);
        let pool = std::mem::replace(&mut self.registration, std::ptr::null_mut());
        (was_alive && !pool.is_null()).then_some(Registration {
            key: self.key,
            pool,
        })
    }

    /// Sends `signal` to the process if it runs.
    pub(super) fn signal(&self, signal: i32) {
        if self.alive {
            // SAFETY: signalling our own child, not yet reaped.
            unsafe { libc::kill(self.pid, signal) };
        }
    }

    /// Kills the process and reaps it, at once. For a process whose
    /// registration is already gone (else httpd reaps it too).
    pub(super) fn kill_and_reap(&self) {
        if self.alive {
            // SAFETY: our own child; the blocking reap after SIGKILL is
            // prompt (ECHILD at once if httpd reaped it already).
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}
