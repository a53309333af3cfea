//! The rules for running one decision's actions in order, shared by every executor (the
//! failover loop that ships and the simulator), so what the simulator proves holds for
//! the product:
//!
//! - after the first `fatal` action that does not succeed, the rest are `NotRun`;
//! - a site that let a non-fatal call run out its deadline is hung (SIGSTOP, a host whose
//!   packets vanish): its further non-fatal calls in the same decision are answered as
//!   timed out without being made, so a hung old primary costs one best-effort deadline on
//!   the failover's critical path, not one per action.

use std::collections::HashSet;

use super::action::{Action, ActionKind, OutcomeResult};
use crate::error::Category;

/// What an executor does with the next action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Make the call.
    Run,
    /// Do not call; report this outcome.
    Skip(Skipped),
}

/// Why an action was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// An earlier fatal action did not succeed.
    AfterFatalFailure,
    /// The action's site timed out on an earlier non-fatal call of this decision.
    SiteHung,
}

impl Skipped {
    /// The outcome the engine is told.
    pub fn outcome(self) -> OutcomeResult {
        match self {
            Self::AfterFatalFailure => OutcomeResult::NotRun,
            Self::SiteHung => OutcomeResult::Failed {
                category: Category::Timeout,
            },
        }
    }
}

/// The executor's memory while it walks one decision's actions.
#[derive(Debug, Default)]
pub struct ActionSequence {
    stopped: bool,
    hung: HashSet<String>,
}

impl ActionSequence {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to make `action`'s call.
    pub fn gate(&self, action: &Action) -> Gate {
        if self.stopped {
            return Gate::Skip(Skipped::AfterFatalFailure);
        }
        let calls_the_site = !matches!(action.kind, ActionKind::RunHook { .. });
        if !action.fatal && calls_the_site && self.hung.contains(action.kind.site()) {
            return Gate::Skip(Skipped::SiteHung);
        }
        Gate::Run
    }

    /// Records the outcome of an action that was run.
    pub fn record(&mut self, action: &Action, result: &OutcomeResult) {
        if action.fatal && !result.succeeded() {
            self.stopped = true;
        }
        let timed_out = matches!(
            result,
            OutcomeResult::Failed {
                category: Category::Timeout
            }
        );
        if !action.fatal && timed_out {
            self.hung.insert(action.kind.site().to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failover::{ActionId, ActionPurpose, ActionValue};

    fn action(id: u64, kind: ActionKind, fatal: bool) -> Action {
        Action {
            id: ActionId(id),
            kind,
            fatal,
            purpose: ActionPurpose::EmergencyFailover,
            deadline: None,
        }
    }

    fn fence(id: u64, site: &str, fatal: bool) -> Action {
        action(
            id,
            ActionKind::Fence {
                site: site.to_owned(),
            },
            fatal,
        )
    }

    const TIMEOUT: OutcomeResult = OutcomeResult::Failed {
        category: Category::Timeout,
    };

    #[test]
    fn a_failed_fatal_action_stops_the_rest() {
        let mut seq = ActionSequence::new();
        let first = fence(1, "iad", true);
        assert_eq!(seq.gate(&first), Gate::Run);
        seq.record(
            &first,
            &OutcomeResult::Failed {
                category: Category::Unavailable,
            },
        );
        assert_eq!(
            seq.gate(&fence(2, "pdx", false)),
            Gate::Skip(Skipped::AfterFatalFailure)
        );
        assert_eq!(Skipped::AfterFatalFailure.outcome(), OutcomeResult::NotRun);
    }

    #[test]
    fn a_timed_out_best_effort_call_marks_only_its_site_hung() {
        let mut seq = ActionSequence::new();
        let best_effort = fence(1, "iad", false);
        seq.record(&best_effort, &TIMEOUT);
        assert_eq!(
            seq.gate(&fence(2, "iad", false)),
            Gate::Skip(Skipped::SiteHung)
        );
        assert_eq!(Skipped::SiteHung.outcome(), TIMEOUT);
        // Another site, and a fatal call to the hung site, still run.
        assert_eq!(seq.gate(&fence(3, "pdx", false)), Gate::Run);
        assert_eq!(seq.gate(&fence(4, "iad", true)), Gate::Run);
    }

    #[test]
    fn success_and_non_timeout_failures_mark_nothing() {
        let mut seq = ActionSequence::new();
        let call = fence(1, "iad", false);
        seq.record(
            &call,
            &OutcomeResult::Ok {
                value: ActionValue::Done,
            },
        );
        seq.record(
            &call,
            &OutcomeResult::Failed {
                category: Category::Unavailable,
            },
        );
        assert_eq!(seq.gate(&fence(2, "iad", false)), Gate::Run);
    }
}
