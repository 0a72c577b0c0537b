//! What the monitor knows about the request a worker is running, and who
//! answers it: the application through its backend, or the monitor with a
//! 504 when the request runs past `request-timeout`. Exactly one of them
//! does, decided by one atomic [`AnswerState`]. The monitor may also raise
//! `mod_wsgi.RequestTimeout` in the request's thread; it does so under the
//! GIL and the slot's lock, and [`Ending`] closes the slot under both, so the
//! exception can only reach the request it was meant for.

use std::io::Write;
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pyo3::Python;

use super::protocol;
use crate::interp;

/// Who has answered a request so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Answer {
    /// Nobody yet.
    None = 0,
    /// The application's response has started going out.
    App = 1,
    /// The monitor answered 504 (request timeout).
    Monitor = 2,
    /// The response ended and the connection stays open for the next
    /// request.
    Kept = 3,
}

impl Answer {
    /// The answer an atomic's value stands for.
    fn from_u8(v: u8) -> Answer {
        match v {
            0 => Answer::None,
            1 => Answer::App,
            2 => Answer::Monitor,
            _ => Answer::Kept,
        }
    }
}

/// The answer state shared between a request's backend and the monitor, so
/// a timed-out request gets exactly one response.
#[derive(Debug, Default)]
pub struct AnswerState(AtomicU8);

impl AnswerState {
    /// A request nobody has answered yet.
    pub fn new() -> Arc<AnswerState> {
        Arc::new(AnswerState(AtomicU8::new(Answer::None as u8)))
    }

    /// Makes `by` the one who answers, if nobody has yet; otherwise returns
    /// who has.
    pub fn claim(&self, by: Answer) -> Result<(), Answer> {
        self.0
            .compare_exchange(
                Answer::None as u8,
                by as u8,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .map(drop)
            .map_err(Answer::from_u8)
    }

    /// Who has answered.
    pub fn get(&self) -> Answer {
        Answer::from_u8(self.0.load(Ordering::SeqCst))
    }

    /// Records a later stage of the same answer (the connection is kept).
    pub fn set(&self, answer: Answer) {
        self.0.store(answer as u8, Ordering::SeqCst);
    }
}

/// What the monitor knows about the request a worker is running.
pub struct ActiveRequest {
    /// When the request started.
    pub started: Instant,
    /// `threading.get_ident()` of the worker, to find its Python stack.
    pub thread_id: u64,
    /// Its URI, for the log.
    pub uri: String,
    /// The application group it runs in: where its thread can be
    /// interrupted.
    pub app_group: String,
    /// The monitor has handled its timeout.
    pub timed_out: AtomicBool,
    /// `mod_wsgi.RequestTimeout` was raised in its thread.
    pub interrupted: AtomicBool,
    /// It did not unwind within `interrupt-timeout`: the process is being
    /// replaced, and the drain does not wait for it.
    pub abandoned: AtomicBool,
    /// The monitor has logged it as slow.
    pub reported_slow: AtomicBool,
    /// Who answers the request, shared with its backend.
    pub(super) answer: Arc<AnswerState>,
    /// The connection, for the monitor's 504. Only used under the slot's
    /// lock; the worker clears the slot before it closes or parks the
    /// connection.
    pub(super) fd: RawFd,
    /// Whether the peer is our client (frames the 504 as it expects).
    pub(super) framed: bool,
}

impl ActiveRequest {
    /// Whether `answer` is this request's answer state (the same request).
    pub(super) fn answers_with(&self, answer: &Arc<AnswerState>) -> bool {
        Arc::ptr_eq(&self.answer, answer)
    }

    /// Sends 504 if the application has not started its response; true if
    /// it did.
    pub fn answer_timeout(&self) -> bool {
        if self.answer.claim(Answer::Monitor).is_err() {
            return false;
        }
        // Not yet at the edge (issue 12): the worker's socket seen by number
        // while the worker owns it; sound by the protocol the SAFETY states, not
        // by the types (an Arc'd socket would be, at an allocation per
        // connection).
        #[allow(unsafe_code)]
        // SAFETY: the worker keeps fd open while this slot holds it (see
        // the field); ManuallyDrop never closes it.
        let stream = ManuallyDrop::new(unsafe { UnixStream::from_raw_fd(self.fd) });
        let _ = (&*stream).write_all(&protocol::error_response(
            504,
            "Gateway Timeout",
            self.framed,
        ));
        let _ = stream.shutdown(std::net::Shutdown::Write);
        true
    }
}

/// Ends the request in its slot when dropped, as its worker leaves the
/// application (however it leaves: a panic too), under the GIL of the
/// request's interpreter, so the monitor cannot interrupt the thread any
/// more; an interruption not delivered yet is withdrawn, so it cannot hit
/// the thread's next request.
pub(super) struct Ending<'a, 'py>(
    pub(super) Python<'py>,
    pub(super) &'a Mutex<Option<ActiveRequest>>,
);

impl Drop for Ending<'_, '_> {
    fn drop(&mut self) {
        let ended = self.1.lock().unwrap_or_else(|p| p.into_inner()).take();
        if ended.is_some_and(|req| req.interrupted.load(Ordering::SeqCst)) {
            interp::withdraw_interrupt(self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_answer_only() {
        let state = AnswerState::new();
        assert_eq!(state.get(), Answer::None);
        assert_eq!(state.claim(Answer::App), Ok(()));
        assert_eq!(state.claim(Answer::Monitor), Err(Answer::App));
        state.set(Answer::Kept);
        assert_eq!(state.get(), Answer::Kept);
        let timed_out = AnswerState::new();
        assert_eq!(timed_out.claim(Answer::Monitor), Ok(()));
        assert_eq!(timed_out.claim(Answer::App), Err(Answer::Monitor));
    }
}
