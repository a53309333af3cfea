//! The failover decision core: per-site debounce, the cross-site matrix, candidate ranking,
//! cooldown, planned failover, old-primary recovery and source convergence.
//!
//! Pure code: no I/O, no clock reads, no randomness; the current time is an argument. It
//! also holds the pieces the failover shells share: GTID set algebra ([`gtid`]), the
//! leader-lease rule ([`lease`]), settings checks ([`settings`]) and `host:port` parsing
//! ([`address`]).
//!
//! It only *returns* actions; [`crate::control`] executes them through [`crate::ports`].
//!
//! # Contract with the control loop
//! 1. Probe every site (in parallel, each with its own deadline) into a [`PollInput`],
//!    together with the outcomes of the previous decision's actions and any requests.
//! 2. Call [`decide`] with the current time.
//! 3. **Persist [`Decision::state`] before executing any action** (write-ahead), so a
//!    restarted controller knows which mutations may have happened.
//! 4. Execute [`Decision::actions`] in order under [`sequence::ActionSequence`]: after the
//!    first `fatal` action that does not succeed the rest are `NotRun`, and a site that
//!    timed out on a best-effort call gets no further best-effort calls in that decision.
//! 5. Poll again after [`Decision::repoll_after`] when it is set, else the normal interval.

pub mod action;
pub mod address;
mod debounce;
pub mod event;
pub mod gtid;
pub mod guard;
pub mod lease;
mod matrix;
pub mod observe;
mod outcomes;
mod planned;
pub mod policy;
mod ranking;
mod recovery;
pub mod sequence;
pub mod settings;
pub mod state;
pub mod status;
mod step;
pub mod time;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use action::{
    Action, ActionId, ActionKind, ActionOutcome, ActionPurpose, ActionValue, DrainResult, HookKind,
    OutcomeResult, Request,
};
pub use event::{Event, EventReason, SiteTransition};
pub use observe::{
    ProbeFailure, ReplicaStatus, SessionSweep, SidecarReport, SiteObservation, SiteProbe,
};
pub use policy::{GroupPolicy, OnCooldown, SitePolicy, SiteRole};
pub use state::{
    Convergence, ConvergenceReason, ConvergenceState, Divergence, EngineState, FailoverKind,
    FailoverRecord, MatrixReason, PlannedFailover, PlannedPhase, PlannedReason, Recovery,
    SiteState,
};
pub use status::{Condition, ConditionType, GroupStatus, RecoveryLabel, SiteStatus};
pub use time::Timestamp;

use step::Step;

/// Everything one poll brings to the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollInput {
    pub observations: Vec<SiteObservation>,
    /// Outcomes of the previous decision's actions, in order.
    pub outcomes: Vec<ActionOutcome>,
    pub requests: Vec<Request>,
    /// Sidecars' own views of sites whose probe failed this poll (the operator's second
    /// opinion); empty when no sidecar answered, which leaves every decision as it was.
    pub sidecars: Vec<SidecarReport>,
}

/// What the engine decided for one poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Persist this before executing `actions`.
    pub state: EngineState,
    pub actions: Vec<Action>,
    pub status: GroupStatus,
    pub events: Vec<Event>,
    /// Probe again this soon (a refusal to confirm, an operation in flight).
    pub repoll_after: Option<Duration>,
}

/// The pure decision function: no I/O, no clock, no randomness.
pub fn decide(
    state: &EngineState,
    policy: &GroupPolicy,
    input: &PollInput,
    now: Timestamp,
) -> Decision {
    let mut step = Step::new(state.clone(), policy, now);
    step.take_sidecar_reports(&input.sidecars);
    outcomes::apply(&mut step, &input.outcomes);
    debounce::apply(&mut step, &input.observations);
    outcomes::resolve_in_doubt(&mut step);
    if input.requests.contains(&Request::CancelPlanned) {
        planned::cancel(&mut step);
    }
    matrix::evaluate(&mut step);
    for request in &input.requests {
        match request {
            Request::PlannedFailover {
                target,
                max_lag_wait,
            } => {
                planned::request(&mut step, target, *max_lag_wait);
            }
            Request::Reclone { site } => recovery::reclone(&mut step, site),
            Request::CancelPlanned => {}
        }
    }
    step.finish_alerts();
    let repoll_after = repoll_hint(&step);
    let status = status::build(&step.st, policy, step.verdict, now);
    let Step {
        mut st,
        actions,
        events,
        ..
    } = step;
    st.in_flight.clone_from(&actions);
    Decision {
        state: st,
        actions,
        status,
        events,
        repoll_after,
    }
}

fn repoll_hint(step: &Step<'_>) -> Option<Duration> {
    let confirming_refusal = step
        .st
        .sites
        .values()
        .any(|t| t.refused_streak > 0 && t.state != SiteState::Unreachable);
    let busy = !step.actions.is_empty()
        || step.st.planned_running()
        || step.st.promotion_in_doubt.is_some();
    (confirming_refusal || busy).then_some(step.policy.fast_repoll)
}
