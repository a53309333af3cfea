//! Folding the previous decision's action outcomes into the state, and resolving
//! promotions whose outcome is unknown.
//!
//! A mutation that returned an error may still have been applied, and an outcome lost to
//! a controller restart tells nothing. Both are treated as *ambiguous*; the next fresh
//! probe of the site decides what really happened.

use super::action::{
    Action, ActionKind, ActionOutcome, ActionPurpose, ActionValue, HookKind, OutcomeResult,
};
use super::event::{Event, EventReason};
use super::planned;
use super::state::{
    Convergence, ConvergenceReason, ConvergenceState, FailoverKind, FailoverRecord,
    PromotionInDoubt, Recovery, SiteState,
};
use super::step::Step;
use crate::failover::gtid::GtidSet;

/// How one in-flight action ended, from the engine's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seen {
    Succeeded(ActionValue),
    /// Ran and failed, or never reported: may or may not have been applied.
    Ambiguous,
    NotRun,
}

impl Seen {
    fn of(result: Option<&OutcomeResult>) -> Self {
        match result {
            Some(OutcomeResult::Ok { value }) => Self::Succeeded(value.clone()),
            Some(OutcomeResult::NotRun) => Self::NotRun,
            Some(OutcomeResult::Failed { .. }) | None => Self::Ambiguous,
        }
    }

    pub fn succeeded(&self) -> bool {
        match self {
            Self::Succeeded(value) => !matches!(value, ActionValue::GtidWait { reached: false }),
            Self::Ambiguous | Self::NotRun => false,
        }
    }
}

pub(super) fn apply(step: &mut Step<'_>, outcomes: &[ActionOutcome]) {
    let in_flight = std::mem::take(&mut step.st.in_flight);
    for action in &in_flight {
        let result = outcomes
            .iter()
            .find(|o| o.id == action.id)
            .map(|o| &o.result);
        let seen = Seen::of(result);
        match action.purpose {
            ActionPurpose::EmergencyFailover => on_emergency(step, action, &seen),
            ActionPurpose::PlannedFailover => planned::on_outcome(step, action, &seen),
            ActionPurpose::Recovery => on_recovery(step, action, &seen),
            ActionPurpose::Reclone => on_reclone(step, action, &seen),
            ActionPurpose::Convergence => on_convergence(step, action, &seen),
            ActionPurpose::Fencing | ActionPurpose::Reassert | ActionPurpose::Hook => {}
        }
    }
}

fn on_emergency(step: &mut Step<'_>, action: &Action, seen: &Seen) {
    let ActionKind::Promote { site } = &action.kind else {
        return;
    };
    if !matches!(seen, Seen::NotRun) {
        // The promote ran (or may have): the cooldown counts from here.
        step.st.last_promotion_attempt = Some(step.now);
    }
    match seen {
        Seen::Succeeded(ActionValue::Promoted { gtid }) => {
            confirm_promotion(step, site, Some(gtid.clone()), FailoverKind::Emergency);
        }
        Seen::Succeeded(_) => {
            confirm_promotion(step, site, None, FailoverKind::Emergency);
        }
        Seen::NotRun => step.note(
            EventReason::FailoverFailed,
            Some(site),
            "promotion not attempted: an earlier step failed",
        ),
        Seen::Ambiguous => mark_in_doubt(step, site, FailoverKind::Emergency),
    }
}

pub(super) fn mark_in_doubt(step: &mut Step<'_>, site: &str, kind: FailoverKind) {
    step.st.promotion_in_doubt = Some(PromotionInDoubt {
        target: site.to_owned(),
        since: step.now,
        kind,
        previous: step.st.active_site.clone(),
    });
    step.note(
        EventReason::PromotionInDoubt,
        Some(site),
        "promote returned an error; waiting for a probe to show whether it applied",
    );
}

/// Records a promotion that is known to have made `site` writable: the anti-flap record,
/// the new authority, the event and the post-failover hook.
pub(super) fn confirm_promotion(
    step: &mut Step<'_>,
    site: &str,
    promotion_gtid: Option<GtidSet>,
    kind: FailoverKind,
) {
    let previous = step
        .st
        .promotion_in_doubt
        .take()
        .and_then(|d| d.previous)
        .or_else(|| step.st.active_site.clone())
        .filter(|p| p != site);
    step.st.last_failover = Some(FailoverRecord {
        // Confirmation time, at most one poll after the attempt; the cooldown also counts
        // from the attempt itself.
        at: step.now,
        target: site.to_owned(),
        promotion_gtid: promotion_gtid.clone(),
        kind,
        previous: previous.clone(),
    });
    step.st.active_site = Some(site.to_owned());
    // A freshly promoted site has no replication and no recovery to finish.
    let track = step.track_mut(site);
    track.recovery = Recovery::Idle;
    track.convergence = None;
    let message = match &previous {
        Some(p) => format!("promoted {site}, replacing {p}"),
        None => format!("promoted {site}"),
    };
    let mut event = Event::new(EventReason::FailoverExecuted, Some(site), message);
    event.gtid = promotion_gtid;
    step.event(event);
    step.emit(
        ActionKind::RunHook {
            hook: HookKind::PostFailover,
            site: site.to_owned(),
        },
        ActionPurpose::Hook,
        false,
    );
    if kind == FailoverKind::Planned {
        planned::on_promoted(step, site);
    }
}

/// Decide an ambiguous promotion from this poll's probe of its target.
pub(super) fn resolve_in_doubt(step: &mut Step<'_>) {
    let Some(doubt) = step.st.promotion_in_doubt.clone() else {
        return;
    };
    let target = doubt.target.as_str();
    if step.writable_now(target) {
        let gtid = step.gtid_now(target).cloned();
        confirm_promotion(step, target, gtid, doubt.kind);
    } else if step.read_only_now(target) || step.state_of(target) == SiteState::Unreachable {
        step.st.promotion_in_doubt = None;
        step.note(
            EventReason::FailoverFailed,
            Some(target),
            "promotion did not take effect",
        );
        if doubt.kind == FailoverKind::Planned {
            planned::on_promotion_failed(step);
        }
    }
}

fn on_recovery(step: &mut Step<'_>, action: &Action, seen: &Seen) {
    let site = action.kind.site().to_owned();
    let failed = match (&action.kind, seen) {
        (ActionKind::Fence { .. } | ActionKind::ReplicateFrom { .. }, s) => !s.succeeded(),
        _ => false,
    };
    if failed {
        step.track_mut(&site).recovery = Recovery::Idle;
        step.note(
            EventReason::RecoveryFailed,
            Some(&site),
            format!(
                "{} did not succeed; retrying on a later poll",
                action.kind.name()
            ),
        );
    }
}

fn on_reclone(step: &mut Step<'_>, action: &Action, seen: &Seen) {
    let ActionKind::Clone { site, .. } = &action.kind else {
        return;
    };
    let track = step.track_mut(site);
    track.recovery = Recovery::Idle;
    if seen.succeeded() {
        track.divergence = None;
        track.convergence = None;
        step.note(
            EventReason::RecloneCompleted,
            Some(site),
            "reclone finished",
        );
    } else {
        step.note(
            EventReason::RecloneFailed,
            Some(site),
            "clone did not succeed; divergence is re-checked on a later poll",
        );
    }
}

fn on_convergence(step: &mut Step<'_>, action: &Action, seen: &Seen) {
    if matches!(action.kind, ActionKind::ReplicateFrom { .. }) && !seen.succeeded() {
        step.track_mut(action.kind.site()).convergence = Some(Convergence {
            state: ConvergenceState::Pending,
            reason: ConvergenceReason::MutationFailed,
        });
    }
}
