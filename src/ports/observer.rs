//! The decision observer port: the loop hands every decision to its observers instead of
//! hard-wiring logs, metrics and status, so Kubernetes Events and status patches are just
//! more observers.

use crate::failover::{Decision, EngineState, GroupPolicy, PollInput};

/// One decision and what it was made from.
#[derive(Debug, Clone, Copy)]
pub struct DecisionReport<'a> {
    pub policy: &'a GroupPolicy,
    /// The state the decision started from.
    pub previous: &'a EngineState,
    pub input: &'a PollInput,
    pub decision: &'a Decision,
}

/// Reports decisions. Called on the loop's task after the state is persisted and before
/// any action runs, so implementations must return at once (record, or hand the work to
/// a task of their own).
pub trait DecisionObserver: Send + Sync {
    fn decided(&self, report: &DecisionReport<'_>);

    /// The post-failover hook failed or timed out.
    fn hook_failed(&self) {}
}
