//! A slot's process dies and is started again: the death is counted and
//! logged, the slot passes to the process's successor when it has one,
//! else its process is forked anew, at once or, after young deaths in a
//! row, after a back-off (the health records say why meanwhile).

use std::ffi::c_int;
use std::time::{Duration, Instant};

use super::tracked::Registration;
use super::{fork_process, handover, members_of, register, succession, Slot, Supervisor};
use crate::daemon::health::SlotState;
use crate::daemon::succession::after_exit;
use crate::metrics::Reason;

/// The process registered as `key` died (`lost`: httpd lost track of it);
/// starts its replacement unless Apache stops. Returns the pool of its
/// registration, to unregister once the lock is released.
pub(super) fn process_died(
    sup: &mut Supervisor,
    key: usize,
    lost: bool,
    status: c_int,
) -> Option<Registration> {
    if let Some(registration) = succession::died(sup, key, status) {
        return registration;
    }
    let Some(index) = sup.slots.iter().position(|s| s.process.key() == key) else {
        return handover::process_died(sup, key, status);
    };
    let stopping = sup.stopping;
    let slot = &mut sup.slots[index];
    let registration = slot.process.died();
    let members = members_of(&sup.plan, slot);
    // Apache stopping it is no restart; a template's processes go with it
    // (counted by their own).
    let reason = (!stopping && !slot.template).then_some(Reason::Crash);
    for place in slot.process_places() {
        place.gone(reason);
    }
    let name = &sup.plan.daemon_groups[slot.group].launch.spec.name;
    ::log::info!(
        "WSGIRS312: daemon process (wsgi:{name}) pid {} exited (status {status})",
        slot.process.pid()
    );
    if slot.heir.is_some() && !stopping {
        // Its successor serves, or is on its way: no respawn.
        succession::promote(sup, index);
        return registration;
    }
    if !stopping {
        // A clean exit is a recycle (reload, maximum-requests…):
        // replace it at once. Only crashes of young processes
        // back off, so a broken app cannot fork-bomb the host.
        // A process that had started serving and is lost (killed, a
        // crash in a request) is replaced at once: only its requests in
        // flight fail. Young deaths in a row back off (`after_exit`).
        let crashed = lost || status != 0;
        let served = sup.plan.daemon_groups[slot.group]
            .launch
            .health
            .state(slot.record)
            == SlotState::Ready;
        let (failures, delay) = after_exit(slot.failures, crashed, slot.started.elapsed(), served);
        slot.failures = failures;
        if !delay.is_zero() {
            ::log::warn!(
                "WSGIRS313: daemon process (wsgi:{name}) keeps dying at start-up; next start in {}s",
                delay.as_secs()
            );
            // A process that died before it served failed
            // to start: held off, the group's requests are
            // answered 503 unless another process serves.
            // One that failed cleanly said why; one killed
            // by a signal is described here. A process that
            // served and then crashed is an application
            // fault: its replacement is waited for.
            let health = &sup.plan.daemon_groups[slot.group].launch.health;
            for member in members {
                match health.state(member) {
                    SlotState::Starting | SlotState::Retrying => health.fail(
                        member,
                        &format!(
                            "daemon process pid {} died during start-up (status {status})",
                            slot.process.pid()
                        ),
                    ),
                    SlotState::Ready => {
                        health.set(member, SlotState::Starting);
                    }
                    SlotState::Failed | SlotState::Unknown | SlotState::Vacant => {}
                }
            }
        }
        slot.hold_off = delay;
        slot.respawn_at = Some(Instant::now());
    }
    registration
}

/// Forks the slot's process.
fn start_slot(sup: &mut Supervisor, index: usize) {
    let Slot {
        group,
        record,
        hold_off,
        template,
        ..
    } = sup.slots[index];
    for member in members_of(&sup.plan, &sup.slots[index]) {
        let health = &sup.plan.daemon_groups[group].launch.health;
        health.begin(member);
        // A start after a failure stays "failed" until its back-off ends.
        if hold_off.is_zero() {
            health.set(member, SlotState::Starting);
        }
    }
    let places = sup.slots[index].process_places();
    let Some(pid) = fork_process(sup, group, record, template, hold_off, &places) else {
        sup.slots[index].respawn_at = Some(Instant::now() + Duration::from_secs(1));
        return;
    };
    let slot = &mut sup.slots[index];
    if let Some(place) = places.first().filter(|_| !template) {
        place.started(pid as u32);
    }
    slot.process.started(pid);
    // Young means young since it stopped waiting and really started.
    slot.started = Instant::now() + hold_off;
    slot.hold_off = Duration::ZERO;
    slot.respawn_at = None;
    slot.heir_failed = false;
    if !sup.standalone {
        // SAFETY: pconf is live while the supervisor is not parked (no
        // process starts while it is).
        unsafe { register(&mut slot.process, sup.pconf) };
    }
}

/// Starts the replacements whose back-off has passed.
pub(super) fn respawn_due(sup: &mut Supervisor) {
    if sup.stopping {
        return;
    }
    let now = Instant::now();
    let due: Vec<usize> = sup
        .slots
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.process.alive() && s.respawn_at.is_some_and(|t| t <= now))
        .map(|(i, _)| i)
        .collect();
    for index in due {
        start_slot(sup, index);
    }
    succession::start_due(sup);
}
