//! Waiting on conditions instead of sleeping: a test that orders events
//! waits until the first has happened, however slow the machine is.

use std::time::{Duration, Instant};

/// Polls `cond` every 50 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `count` (incremented by client threads as their responses
/// arrive) reaches `n`; panics after `timeout`.
pub fn wait_for_count(count: &std::sync::atomic::AtomicUsize, n: usize, timeout: Duration) {
    use std::sync::atomic::Ordering;
    let reached = wait_for(timeout, || {
        (count.load(Ordering::SeqCst) >= n).then_some(())
    });
    assert!(
        reached.is_some(),
        "only {} of {n} responses within {timeout:?}",
        count.load(Ordering::SeqCst)
    );
}

/// Whether the test should stop here because it runs against Debian's
/// mod_wsgi (the referee) and checks something where that module behaves
/// differently, as `why` says. The suite's own runs are never cut short.
pub fn referee_differs(why: &str) -> bool {
    use super::{module, Module};
    if module() == Module::ModWsgi {
        eprintln!("not checked against mod_wsgi: {why}");
        return true;
    }
    false
}

/// Raises a load's stop flag when dropped. Declared first inside a
/// `thread::scope` whose threads loop until the flag is up, it makes a
/// failed assertion end the test instead of hanging it: the scope joins its
/// threads before the panic leaves it.
pub struct StopOnDrop<'a>(pub &'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
