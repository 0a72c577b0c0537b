//! Python work the monitor needs (a thread's stack, raising an exception
//! in a thread) done on a thread of its own. Taking the GIL can wait
//! without bound: a C extension holding it in a call that never returns is
//! exactly what `deadlock-timeout` is there to notice, and a monitor
//! waiting for that GIL would never notice it. So the monitor hands the
//! work over and waits a bounded time for the answer; while one piece of
//! work is stuck, later ones are refused at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A piece of work for the inspector thread.
type Job = Box<dyn FnOnce() + Send>;

/// The inspector thread's queue, and whether it is working.
struct Inspector {
    /// Where jobs go.
    jobs: Mutex<mpsc::Sender<Job>>,
    /// A job is running (or stuck waiting for the GIL).
    busy: Arc<AtomicBool>,
}

/// The process's inspector, started on first use (None: no thread).
static INSPECTOR: OnceLock<Option<Inspector>> = OnceLock::new();

/// Why no answer came.
#[derive(Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// The previous job, or this one, is still waiting (for the GIL).
    Busy,
    /// The inspector thread could not be started.
    NoThread,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unavailable::Busy => "the GIL is held elsewhere",
            Unavailable::NoThread => "no inspector thread",
        })
    }
}

/// The inspector, started if need be.
fn inspector() -> Option<&'static Inspector> {
    INSPECTOR
        .get_or_init(|| {
            let (jobs, queue) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("wsgi-inspector".into())
                .spawn(move || {
                    for job in queue {
                        job();
                    }
                })
                .map_err(|e| log::error!("WSGIRS354: cannot start the inspector thread: {e}"))
                .ok()?;
            Some(Inspector {
                jobs: Mutex::new(jobs),
                busy: Arc::new(AtomicBool::new(false)),
            })
        })
        .as_ref()
}

/// Runs `f` on the inspector thread and waits at most `patience` for its
/// result.
pub fn run<R: Send + 'static>(
    patience: Duration,
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, Unavailable> {
    let inspector = inspector().ok_or(Unavailable::NoThread)?;
    if inspector.busy.swap(true, Ordering::SeqCst) {
        return Err(Unavailable::Busy);
    }
    let (answer, answered) = mpsc::sync_channel(1);
    let busy = inspector.busy.clone();
    let job: Job = Box::new(move || {
        // A failing job must not end the thread.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        // Free before answering: the monitor may ask again at once.
        busy.store(false, Ordering::SeqCst);
        if let Ok(result) = result {
            let _ = answer.send(result);
        }
    });
    let sent = inspector
        .jobs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(job);
    if sent.is_err() {
        inspector.busy.store(false, Ordering::SeqCst);
        return Err(Unavailable::NoThread);
    }
    answered
        .recv_timeout(patience)
        .map_err(|_| Unavailable::Busy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_refuses_while_a_job_is_stuck() {
        assert_eq!(run(Duration::from_secs(5), || 7), Ok(7));
        let (release, wait) = mpsc::channel::<()>();
        let stuck = run(Duration::from_millis(50), move || {
            let _ = wait.recv();
        });
        assert_eq!(stuck, Err(Unavailable::Busy));
        assert_eq!(run(Duration::from_secs(5), || 1), Err(Unavailable::Busy));
        release.send(()).unwrap();
        let back = (0..500).find_map(|_| {
            std::thread::sleep(Duration::from_millis(10));
            run(Duration::from_secs(5), || 2).ok()
        });
        assert_eq!(back, Some(2));
        assert!(run(Duration::from_secs(5), || -> u8 { panic!("boom") }).is_err());
        assert_eq!(run(Duration::from_secs(5), || 3), Ok(3));
    }
}
