//! Planned failover (requested by annotation, CLI or HTTP): the zero-loss switchover.
//!
//! `Validating → [Deferred] → Draining → WaitingForLag → Promoting → Resuming →
//! Succeeded | Failed`. The source is fenced first and its GTID set recorded; the target is
//! promoted only once it has executed all of that set, so `transactionsLost` is zero by
//! construction. Nothing is promoted before the target provably holds every transaction.
//! The only rollbacks (unfencing the source) happen while nothing has been promoted.

use std::time::Duration;

use super::action::{Action, ActionKind, ActionPurpose, ActionValue};
use super::event::{Event, EventReason};
use super::outcomes::{self, Seen};
use super::policy::OnCooldown;
use super::state::{FailoverKind, PlannedFailover, PlannedPhase, PlannedReason, SiteState};
use super::step::Step;

const PURPOSE: ActionPurpose = ActionPurpose::PlannedFailover;

/// A new planned-failover request.
pub(super) fn request(step: &mut Step<'_>, target: &str, max_lag_wait: Option<Duration>) {
    if let Some(current) = &step.st.planned
        && (current.phase.is_running() || current.phase == PlannedPhase::Deferred)
    {
        step.note(
            EventReason::PlannedFailoverRejected,
            Some(target),
            format!(
                "ConcurrentOperation: a planned failover to {} is already in progress",
                current.target
            ),
        );
        return;
    }
    step.st.planned = Some(PlannedFailover {
        phase: PlannedPhase::Validating,
        reason: None,
        target: target.to_owned(),
        source: step.st.active_site.clone(),
        max_lag_wait: max_lag_wait.unwrap_or(step.policy.max_lag_wait),
        source_gtid_at_fence: None,
        target_gtid_at_promotion: None,
        started_at: step.now,
        phase_since: step.now,
        completed_at: None,
        transactions_lost: None,
        retry_after: None,
        lag_wait_since: None,
        last_killed: None,
        session_watermark: None,
        message: String::new(),
    });
    validate(step);
}

/// Abandon a planned failover that has not started promoting.
pub(super) fn cancel(step: &mut Step<'_>) {
    let Some(p) = step.st.planned.clone() else {
        return;
    };
    match p.phase {
        PlannedPhase::Deferred => finish_failed(step, PlannedReason::Cancelled, "cancelled"),
        PlannedPhase::Draining | PlannedPhase::WaitingForLag => {
            unfence_source(step, &p);
            finish_failed(step, PlannedReason::Cancelled, "cancelled; source unfenced");
        }
        PlannedPhase::Promoting | PlannedPhase::Resuming => step.note(
            EventReason::PlannedFailoverRejected,
            Some(&p.target),
            "cannot cancel: promotion already started",
        ),
        PlannedPhase::Validating | PlannedPhase::Succeeded | PlannedPhase::Failed => {}
    }
}

/// One step of the phase machine per poll.
pub(super) fn advance(step: &mut Step<'_>) {
    let Some(p) = step.st.planned.clone() else {
        return;
    };
    match p.phase {
        PlannedPhase::Deferred if p.retry_after.is_none_or(|t| step.now >= t) => {
            set_phase(step, PlannedPhase::Validating);
            validate(step);
        }
        PlannedPhase::Draining => drain(step, &p),
        PlannedPhase::WaitingForLag => wait_for_lag(step, &p),
        PlannedPhase::Promoting if step.st.promotion_in_doubt.is_none() => {
            // The promote's outcome was folded in already; if nothing moved us on, the
            // promote did not run, so keep waiting for the target.
            set_phase(step, PlannedPhase::WaitingForLag);
            wait_for_lag(step, &p);
        }
        _ => {}
    }
}

fn validate(step: &mut Step<'_>) {
    let Some(p) = step.st.planned.clone() else {
        return;
    };
    let target = p.target.as_str();
    let Some(role) = step.role(target) else {
        return reject(
            step,
            PlannedReason::UnknownSite,
            &format!("no site named {target}"),
        );
    };
    if step.st.active_site.as_deref() == Some(target) {
        finish(step, |p| {
            p.phase = PlannedPhase::Succeeded;
            p.transactions_lost = Some(0);
            "target is already the active site".clone_into(&mut p.message);
        });
        step.note(
            EventReason::PlannedFailoverSkipped,
            Some(target),
            "target is already the active site",
        );
        return;
    }
    if step.st.promotion_in_doubt.is_some() {
        return reject(
            step,
            PlannedReason::ConcurrentOperation,
            "an emergency promotion is still being confirmed",
        );
    }
    if step.cooldown_active() {
        match step.policy.on_cooldown {
            OnCooldown::Reject => {
                return reject(
                    step,
                    PlannedReason::CooldownActive,
                    "the anti-flap cooldown is active",
                );
            }
            OnCooldown::Defer => {
                let retry_after = step.cooldown_until();
                if let Some(p) = step.st.planned.as_mut() {
                    p.phase = PlannedPhase::Deferred;
                    p.phase_since = step.now;
                    p.retry_after = retry_after;
                    "deferred until the anti-flap cooldown ends".clone_into(&mut p.message);
                }
                step.note(
                    EventReason::PlannedFailoverDeferred,
                    Some(target),
                    "deferred until the anti-flap cooldown ends",
                );
                return;
            }
        }
    }
    // Health comes after the cooldown: right after a failover the old primary is still
    // rejoining, and "cooldown active" is the reason the user needs to see.
    if let Err(why) = target_healthy(step, target, role.is_candidate()) {
        return reject(step, PlannedReason::TargetUnhealthy, &why);
    }
    // Validated: fence the source and record what it holds once the fence is confirmed.
    let Some(source) = step.st.active_site.clone() else {
        return;
    };
    step.fence(&source, PURPOSE, true);
    if let Some(p) = step.st.planned.as_mut() {
        p.source = Some(source.clone());
        p.phase = PlannedPhase::Draining;
        p.phase_since = step.now;
        p.retry_after = None;
        p.message = format!("switching from {source} to {target}");
    }
    step.note(
        EventReason::PlannedFailoverStarted,
        Some(target),
        format!("planned failover from {source}"),
    );
    step.note(
        EventReason::PlannedFailoverDraining,
        Some(&source),
        "source fenced; draining sessions",
    );
}

/// Why the target cannot take over now, if it cannot.
fn target_healthy(step: &Step<'_>, target: &str, candidate: bool) -> Result<(), String> {
    if !candidate {
        return Err(format!("{target} is not a primary-candidate"));
    }
    let Some(source) = step.st.active_site.as_deref() else {
        return Err("there is no active primary to switch from".to_owned());
    };
    if !step.confirmed_writable(source) {
        return Err(format!(
            "the source {source} is not a confirmed writable primary"
        ));
    }
    let Some(probe) = step.fresh(target) else {
        return Err(format!("{target} did not answer this poll"));
    };
    if !probe.read_only {
        return Err(format!("{target} is writable"));
    }
    let replicating = probe
        .replica
        .as_ref()
        .is_some_and(super::observe::ReplicaStatus::replicating);
    if !replicating || step.source_site(probe).as_deref() != Some(source) {
        return Err(format!("{target} is not replicating from {source}"));
    }
    if step.track(target).is_some_and(|t| t.divergence.is_some()) {
        return Err(format!("{target} has divergent transactions"));
    }
    Ok(())
}

fn drain(step: &mut Step<'_>, p: &PlannedFailover) {
    let Some(source) = p.source.clone() else {
        return finish_failed(step, PlannedReason::ExecuteFailed, "no source recorded");
    };
    if step.state_of(&source) == SiteState::Unreachable {
        return finish_failed(
            step,
            PlannedReason::SourceCrashed,
            "the source became unreachable while draining",
        );
    }
    let Some(probe) = step.fresh(&source).cloned() else {
        return; // A blip: wait for the next probe.
    };
    if !(probe.read_only && probe.super_read_only) {
        if step
            .now
            .has_elapsed(p.phase_since, step.policy.drain_timeout)
        {
            unfence_source(step, p);
            return finish_failed(
                step,
                PlannedReason::ExecuteFailed,
                "the source could not be fenced",
            );
        }
        step.fence(&source, PURPOSE, true);
        return;
    }
    // The fence is confirmed, so this set can no longer grow: it is what the target needs.
    if p.source_gtid_at_fence.is_none()
        && let Some(current) = step.st.planned.as_mut()
    {
        current.source_gtid_at_fence = Some(probe.gtid_executed.clone());
    }
    let sessions_left = p.last_killed.is_some_and(|n| n > 0);
    if sessions_left
        && !step
            .now
            .has_elapsed(p.phase_since, step.policy.drain_timeout)
    {
        if let Some(current) = step.st.planned.as_mut() {
            current.last_killed = None;
        }
        step.emit(
            ActionKind::KillConnections {
                site: source,
                opened_by: p.session_watermark,
            },
            PURPOSE,
            false,
        );
        return;
    }
    set_phase(step, PlannedPhase::WaitingForLag);
    if let Some(current) = step.st.planned.as_mut() {
        current.lag_wait_since = Some(step.now);
    }
    if let Some(current) = step.st.planned.clone() {
        wait_for_lag(step, &current);
    }
}

fn wait_for_lag(step: &mut Step<'_>, p: &PlannedFailover) {
    let Some(needed) = p.source_gtid_at_fence.clone() else {
        return finish_failed(
            step,
            PlannedReason::ExecuteFailed,
            "no source GTID set recorded",
        );
    };
    let target = p.target.clone();
    if step.writable_now(&target) {
        // Promoted by an earlier decision whose outcome was lost: confirm, do not fence.
        let gtid = step.gtid_now(&target).cloned();
        outcomes::confirm_promotion(step, &target, gtid, FailoverKind::Planned);
        return;
    }
    if let Some(source) = p.source.as_deref()
        && step.writable_now(source)
    {
        // It lost its fence (a restart without fence-first boot); it is still the primary.
        return finish_failed(
            step,
            PlannedReason::SourceCrashed,
            "the source restarted writable during the switchover",
        );
    }
    if step.state_of(&target) == SiteState::Unreachable {
        unfence_source(step, p);
        return finish_failed(
            step,
            PlannedReason::TargetUnhealthy,
            "the target became unreachable; source unfenced",
        );
    }
    let other_writer = step
        .all_sites()
        .iter()
        .any(|s| *s != target && step.writable_now(s));
    if other_writer {
        // Never promote while anything else is observed writable; the matrix fences it.
        return;
    }
    let since = p.lag_wait_since.unwrap_or(p.phase_since);
    let caught_up = step.gtid_now(&target).is_some_and(|g| g.contains(&needed));
    if caught_up {
        step.note(
            EventReason::PlannedFailoverLagOK,
            Some(&target),
            "target holds every transaction of the fenced source",
        );
    } else if step.now.has_elapsed(since, p.max_lag_wait) {
        unfence_source(step, p);
        return finish_failed(
            step,
            PlannedReason::LagTimeout,
            "the target did not catch up within maxLagWait; source unfenced",
        );
    } else {
        let remaining = p.max_lag_wait.saturating_sub(step.now.since(since));
        let timeout = remaining.min(step.policy.gtid_wait_step);
        step.emit(
            ActionKind::WaitForGtid {
                site: target.clone(),
                gtid: needed,
                timeout,
            },
            PURPOSE,
            true,
        );
    }
    // With a wait in front, the promote runs only if the wait confirms the catch-up.
    step.emit(ActionKind::Promote { site: target }, PURPOSE, true);
    set_phase(step, PlannedPhase::Promoting);
}

/// Outcomes of this machine's own actions.
pub(super) fn on_outcome(step: &mut Step<'_>, action: &Action, seen: &Seen) {
    match (&action.kind, seen) {
        (
            ActionKind::KillConnections { opened_by, .. },
            Seen::Succeeded(ActionValue::Killed(sweep)),
        ) => {
            if let Some(p) = step.st.planned.as_mut() {
                if opened_by.is_some() {
                    p.last_killed = Some(sweep.older);
                } else {
                    // The pass at the fence: everything it found predates the fence.
                    p.last_killed = Some(sweep.killed);
                    p.session_watermark = p.session_watermark.max(sweep.newest_id);
                }
            }
        }
        (ActionKind::KillConnections { .. }, _) => {
            if let Some(p) = step.st.planned.as_mut() {
                p.last_killed = Some(0);
            }
        }
        (ActionKind::Promote { site }, Seen::Succeeded(value)) => {
            let gtid = match value {
                ActionValue::Promoted { gtid } => Some(gtid.clone()),
                _ => None,
            };
            step.st.last_promotion_attempt = Some(step.now);
            outcomes::confirm_promotion(step, site, gtid, FailoverKind::Planned);
        }
        (ActionKind::Promote { site }, Seen::Ambiguous) => {
            step.st.last_promotion_attempt = Some(step.now);
            outcomes::mark_in_doubt(step, site, FailoverKind::Planned);
        }
        _ => {}
    }
}

/// The target is confirmed writable: Resuming, then Succeeded.
pub(super) fn on_promoted(step: &mut Step<'_>, site: &str) {
    let promoted = step
        .st
        .last_failover
        .as_ref()
        .and_then(|r| r.promotion_gtid.clone())
        .or_else(|| step.gtid_now(site).cloned());
    let now = step.now;
    let Some(p) = step.st.planned.as_mut() else {
        return;
    };
    if p.target != site || p.phase.is_terminal() {
        return;
    }
    p.phase = PlannedPhase::Resuming;
    let lost = match (&p.source_gtid_at_fence, &promoted) {
        (Some(source), Some(target)) => source.subtract(target).count(),
        _ => 0,
    };
    p.target_gtid_at_promotion = promoted;
    p.transactions_lost = Some(lost);
    p.phase = PlannedPhase::Succeeded;
    p.reason = None;
    p.completed_at = Some(now);
    p.phase_since = now;
    p.message = format!("{site} promoted; {lost} transactions lost");
    let duration = now.since(p.started_at);
    step.note(
        EventReason::PlannedFailoverCompleted,
        Some(site),
        format!("completed in {:.1}s", duration.as_secs_f64()),
    );
}

/// An ambiguous planned promote turned out not to have happened: restore the source.
pub(super) fn on_promotion_failed(step: &mut Step<'_>) {
    let Some(p) = step.st.planned.clone() else {
        return;
    };
    if p.phase.is_terminal() {
        return;
    }
    if step.read_only_now(&p.target) {
        unfence_source(step, &p);
    }
    finish_failed(
        step,
        PlannedReason::ExecuteFailed,
        "promotion of the target failed",
    );
}

fn unfence_source(step: &mut Step<'_>, p: &PlannedFailover) {
    if let Some(source) = &p.source {
        step.emit(
            ActionKind::Unfence {
                site: source.clone(),
            },
            PURPOSE,
            false,
        );
    }
}

fn set_phase(step: &mut Step<'_>, phase: PlannedPhase) {
    let now = step.now;
    if let Some(p) = step.st.planned.as_mut()
        && p.phase != phase
    {
        p.phase = phase;
        p.phase_since = now;
    }
}

fn finish(step: &mut Step<'_>, update: impl FnOnce(&mut PlannedFailover)) {
    let now = step.now;
    if let Some(p) = step.st.planned.as_mut() {
        update(p);
        p.completed_at = Some(now);
        p.phase_since = now;
    }
}

fn reject(step: &mut Step<'_>, reason: PlannedReason, message: &str) {
    fail_with(step, EventReason::PlannedFailoverRejected, reason, message);
}

fn finish_failed(step: &mut Step<'_>, reason: PlannedReason, message: &str) {
    fail_with(step, EventReason::PlannedFailoverFailed, reason, message);
}

/// Ends the planned failover as Failed and reports it under `event`.
fn fail_with(step: &mut Step<'_>, event: EventReason, reason: PlannedReason, message: &str) {
    let target = step.st.planned.as_ref().map(|p| p.target.clone());
    finish(step, |p| {
        p.phase = PlannedPhase::Failed;
        p.reason = Some(reason);
        message.clone_into(&mut p.message);
    });
    step.event(Event::new(
        event,
        target.as_deref(),
        format!("{reason:?}: {message}"),
    ));
}
