//! How a template handles the exit of a process it forked: a replaced
//! process finishing is forgotten; a serving process that dies hands over
//! to its successor or is replaced (with the supervisor's back-off when it
//! keeps dying young); a successor that dies before serving is tried again.

use std::time::{Duration, Instant};

use super::Template;
use crate::daemon::health::SlotState;
use crate::daemon::succession::{after_exit, restart_delay};
use crate::metrics::Reason;

impl Template {
    /// Reaps every child that has exited.
    pub(super) fn reap(&mut self) {
        while let Some((pid, status)) = crate::sys::process::reap_one() {
            self.died(pid, status);
        }
    }

    /// Child `pid` has exited with `status`.
    fn died(&mut self, pid: i32, status: i32) {
        if let Some(at) = self.retired.iter().position(|&p| p == pid) {
            self.retired.swap_remove(at);
            return;
        }
        let crashed = !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0;
        let name = self.name().to_owned();
        for slot in 0..self.places.len() {
            let place = &mut self.places[slot];
            if place.successor.is_some_and(|(p, _)| p == pid) {
                // A successor that died before serving failed to start.
                place.successor = None;
                place.failures += 1;
                let delay = restart_delay(place.failures);
                log::warn!(
                    "WSGIRS426: (wsgi:{name}) successor pid {pid} died before serving (status {status}); next try in {}s",
                    delay.as_secs()
                );
                place.respawn_at = Some(Instant::now() + delay);
                if self.changing == Some(slot) {
                    self.changing = None;
                }
                if place.current.is_some() {
                    place.respawn_at = Some(Instant::now() + delay.max(Duration::from_secs(1)));
                    self.queue.push_back(slot);
                }
                return;
            }
            let Some(child) = place.current.filter(|c| c.pid == pid) else {
                continue;
            };
            place.current = None;
            log::info!(
                "WSGIRS428: daemon process (wsgi:{name}) pid {pid} exited (status {status})"
            );
            if let Some(m) = self.members.get(slot).copied().flatten() {
                m.gone(Some(Reason::Crash));
            }
            // As the Apache parent does: a process that served and is lost
            // is replaced at once; young deaths back off (`after_exit`).
            let served = self.launch.health.state(slot) == SlotState::Ready;
            let (failures, delay) =
                after_exit(place.failures, crashed, child.started.elapsed(), served);
            place.failures = failures;
            if place.successor.is_some_and(|(_, ready)| ready) {
                self.hand_over(slot);
                return;
            }
            if place.successor.is_some() {
                place.retiring = true;
                return;
            }
            if !delay.is_zero() {
                log::warn!(
                    "WSGIRS429: daemon process (wsgi:{name}) keeps dying at start-up; next start in {}s",
                    delay.as_secs()
                );
                let health = &self.launch.health;
                match health.state(slot) {
                    SlotState::Starting | SlotState::Retrying => health.fail(
                        slot,
                        &format!("daemon process pid {pid} died during start-up (status {status})"),
                    ),
                    SlotState::Ready => health.set(slot, SlotState::Starting),
                    SlotState::Failed | SlotState::Unknown | SlotState::Vacant => {}
                }
            }
            place.respawn_at = Some(Instant::now() + delay);
            self.queue.retain(|&s| s != slot);
            return;
        }
    }
}
