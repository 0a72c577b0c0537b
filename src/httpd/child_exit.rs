//! Waking the Apache parent when a child exits, so a daemon process that
//! dies is replaced at once.
//!
//! The MPM's main loop reaps children (and calls the supervisor's
//! other-child callback, which forks the replacement) between sleeps of one
//! second, and SIGCHLD, ignored by default, does not end a sleep: a lost
//! daemon was replaced up to a second late. A handler ends the sleep
//! (`select()` is never restarted after a handler; with `SA_RESTART` the
//! parent's other blocking calls carry on as before).
//!
//! Ending the sleep early also gives the MPM an extra pass of its idle
//! maintenance (it spawns and retires Apache children once per loop), which
//! Apache itself paces at one a second and skips when a child dies. So the
//! early wake-ups are paced: after [`BURST`] of them within [`WINDOW`], the
//! handler steps aside (back to the default) and the supervisor puts it
//! back on its next call once a second has passed without one: whatever
//! dies (Apache's own children during a graceful restart too), the MPM
//! gets at most a few extra passes in a burst and about one a second
//! beyond; meanwhile children are reaped at the MPM's own pace, as before.
//! Apache's children put the default back.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// How many early wake-ups [`WINDOW`] may hold before the handler steps
/// aside.
const BURST: usize = 4;
/// The window, in milliseconds.
const WINDOW: u64 = 4000;
/// How long the handler stays aside without a wake-up, in milliseconds.
const QUIET: u64 = 1000;

/// When the handler last ran (monotonic milliseconds).
static LAST_WAKE: AtomicU64 = AtomicU64::new(0);
/// When it ran the last [`BURST`] times, oldest at [`NEXT`] (only the
/// handler writes them; the parent is single-threaded).
static RECENT: [AtomicU64; BURST] = [const { AtomicU64::new(0) }; BURST];
/// Where the next run is recorded in [`RECENT`].
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// The handler stepped aside and waits to be put back.
static STEPPED_ASIDE: AtomicBool = AtomicBool::new(false);
/// The handler is wanted at all (the plan has daemon processes).
static WANTED: AtomicBool = AtomicBool::new(false);

/// Monotonic milliseconds, async-signal-safe (clock_gettime is).
fn now_ms() -> u64 {
    // SAFETY: clock_gettime writes into our local timespec.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        ts
    };
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

/// Sets SIGCHLD's disposition: our handler, or the default.
fn set_disposition(ours: bool) {
    // SAFETY: sigaction with a zeroed, filled-in struct; async-signal-safe
    // (the handler calls this too). The handler lives in this library,
    // which stays mapped (-z nodelete), so it outlives any unload.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = if ours {
            child_exited as *const () as usize
        } else {
            libc::SIG_DFL
        };
        action.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGCHLD, &action, std::ptr::null_mut());
    }
}

/// SIGCHLD's handler in the Apache parent: being caught is what ends the
/// MPM's sleep; the last of [`BURST`] + 1 runs within [`WINDOW`] puts the
/// default back. Only atomics, clock_gettime and sigaction
/// (async-signal-safe); errno is kept; nothing in it can panic.
// No guard: a signal handler, where logging a panic is not
// async-signal-safe; nothing in it can panic.
extern "C" fn child_exited(_signal: c_int) {
    // SAFETY: errno is this thread's; saved and restored around our calls.
    let errno = unsafe { *libc::__errno_location() };
    let now = now_ms();
    LAST_WAKE.store(now, Ordering::SeqCst);
    let at = NEXT.load(Ordering::SeqCst) % BURST;
    let oldest = RECENT[at].swap(now, Ordering::SeqCst);
    NEXT.store((at + 1) % BURST, Ordering::SeqCst);
    if oldest != 0 && now.saturating_sub(oldest) < WINDOW {
        STEPPED_ASIDE.store(true, Ordering::SeqCst);
        set_disposition(false);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Installs the handler in the Apache parent (post_config, main thread).
pub fn wake_on_child_exit() {
    WANTED.store(true, Ordering::SeqCst);
    STEPPED_ASIDE.store(false, Ordering::SeqCst);
    set_disposition(true);
}

/// Puts the handler back if it stepped aside and [`QUIET`] has passed since
/// its last run (the supervisor calls this from the parent's main thread).
pub fn rearm() {
    if !WANTED.load(Ordering::SeqCst) || !STEPPED_ASIDE.load(Ordering::SeqCst) {
        return;
    }
    if now_ms().saturating_sub(LAST_WAKE.load(Ordering::SeqCst)) >= QUIET {
        STEPPED_ASIDE.store(false, Ordering::SeqCst);
        set_disposition(true);
    }
}

/// In an Apache child: SIGCHLD back to the default Apache left, so the
/// parent's handler changes nothing there.
pub fn reset_in_child() {
    WANTED.store(false, Ordering::SeqCst);
    set_disposition(false);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether SIGCHLD's current disposition is our handler.
    fn ours() -> bool {
        // SAFETY: queries the disposition into a zeroed struct.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old);
            old.sa_sigaction == child_exited as *const () as usize
        }
    }

    #[test]
    fn steps_aside_after_a_burst_then_comes_back() {
        wake_on_child_exit();
        assert!(ours());
        // SAFETY: raise delivers SIGCHLD to this thread; the handler runs
        // before it returns.
        let raise = || unsafe {
            libc::raise(libc::SIGCHLD);
        };
        for _ in 0..BURST {
            raise();
        }
        raise();
        assert!(!ours(), "still waking after a burst");
        rearm();
        assert!(!ours(), "back before a quiet second had passed");
        LAST_WAKE.store(now_ms().saturating_sub(2 * QUIET), Ordering::SeqCst);
        rearm();
        assert!(ours(), "not back after a quiet second");
        reset_in_child();
        assert!(!ours());
        rearm();
        assert!(!ours(), "put back in a child");
    }
}
