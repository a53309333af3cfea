//! What the decision core asks the executor to do, and what the executor reports back.
//!
//! Executor contract: the actions of one [`super::Decision`] run in order; after the first
//! action marked `fatal` that does not succeed (see [`OutcomeResult::succeeded`]) the rest
//! are reported as [`OutcomeResult::NotRun`]. Every action's outcome, in order, is handed to
//! the next `decide` call. An outcome that never arrives (a controller restart) is treated
//! as ambiguous: the action may or may not have been applied.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::observe::SessionSweep;
use crate::error::Category;
use crate::failover::gtid::GtidSet;

/// Matches an [`ActionOutcome`] to the [`Action`] it answers. Unique within one engine
/// state's lifetime (the counter is persisted with the state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActionId(pub u64);

/// One side effect, mirroring [`crate::ports::mysql::MysqlSite`] plus the failover hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ActionKind {
    /// `super_read_only=ON`.
    Fence { site: String },
    /// Kill application sessions (never replication threads). `opened_by`: a connection id
    /// from an earlier pass; the outcome counts the killed sessions at or below it apart.
    KillConnections {
        site: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        opened_by: Option<u64>,
    },
    /// Let the candidate's SQL thread apply its relay log within `budget`.
    DrainRelay { site: String, budget: Duration },
    /// Stop replication, make writable, confirm writable; reports the promotion GTID set.
    Promote { site: String },
    /// Clear the fence on a site that must stay or become the primary again.
    Unfence { site: String },
    /// Fence, point at `source_site`, start replication (`reset`: RESET REPLICA ALL first).
    ReplicateFrom {
        site: String,
        source_site: String,
        reset: bool,
    },
    /// `WAIT_FOR_EXECUTED_GTID_SET(gtid, timeout)`.
    WaitForGtid {
        site: String,
        gtid: GtidSet,
        timeout: Duration,
    },
    /// Replace `site`'s data with a clone of `donor_site` and replicate from it.
    Clone { site: String, donor_site: String },
    /// Run the configured post-failover hook for the new primary.
    RunHook { hook: HookKind, site: String },
}

impl ActionKind {
    /// The site the action touches.
    pub fn site(&self) -> &str {
        match self {
            Self::Fence { site }
            | Self::KillConnections { site, .. }
            | Self::DrainRelay { site, .. }
            | Self::Promote { site }
            | Self::Unfence { site }
            | Self::ReplicateFrom { site, .. }
            | Self::WaitForGtid { site, .. }
            | Self::Clone { site, .. }
            | Self::RunHook { site, .. } => site,
        }
    }

    /// A stable, bounded name for metric labels and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Fence { .. } => "fence",
            Self::KillConnections { .. } => "kill_connections",
            Self::DrainRelay { .. } => "drain_relay",
            Self::Promote { .. } => "promote",
            Self::Unfence { .. } => "unfence",
            Self::ReplicateFrom { .. } => "replicate_from",
            Self::WaitForGtid { .. } => "wait_for_gtid",
            Self::Clone { .. } => "clone",
            Self::RunHook { .. } => "run_hook",
        }
    }
}

/// Which hook to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HookKind {
    /// After a promotion is confirmed; gets the new primary.
    PostFailover,
}

/// Why an action was emitted; a bounded label for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActionPurpose {
    /// Fencing a writable site that must not be (non-candidate, split brain, old primary).
    Fencing,
    EmergencyFailover,
    PlannedFailover,
    /// Clearing the fence of the authoritative primary when nothing else is writable.
    Reassert,
    Recovery,
    Reclone,
    Convergence,
    Hook,
}

/// One requested side effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub id: ActionId,
    #[serde(flatten)]
    pub kind: ActionKind,
    /// When this action does not succeed, the executor skips the rest of the decision.
    pub fatal: bool,
    pub purpose: ActionPurpose,
    /// A tighter deadline for best-effort calls to sites that are not answering, so a hung
    /// old primary cannot stall a failover. `None`: the adapter's own deadline.
    pub deadline: Option<Duration>,
}

/// What a successful action returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionValue {
    Done,
    Killed(SessionSweep),
    Drained { outcome: DrainResult },
    Promoted { gtid: GtidSet },
    GtidWait { reached: bool },
}

/// Outcome of a bounded relay-log drain (the engine's copy of the port's enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DrainResult {
    Drained,
    BudgetExhausted,
    NotAReplica,
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeResult {
    Ok {
        value: ActionValue,
    },
    /// The call returned an error. It may still have been applied (a timeout after the
    /// server acted), so the engine treats mutations that failed as ambiguous.
    Failed {
        category: Category,
    },
    /// Skipped because an earlier fatal action did not succeed.
    NotRun,
}

impl OutcomeResult {
    /// Whether the executor should continue past a fatal action with this outcome.
    /// A GTID wait that timed out did not succeed.
    pub fn succeeded(&self) -> bool {
        match self {
            Self::Ok { value } => !matches!(value, ActionValue::GtidWait { reached: false }),
            Self::Failed { .. } | Self::NotRun => false,
        }
    }
}

/// The executor's report for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOutcome {
    pub id: ActionId,
    pub result: OutcomeResult,
}

/// An operator request arriving with a poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "request",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Request {
    /// Zero-loss switchover to `target`; `max_lag_wait` overrides the policy's.
    PlannedFailover {
        target: String,
        max_lag_wait: Option<Duration>,
    },
    /// Abandon a planned failover that has not started promoting.
    CancelPlanned,
    /// Replace `site`'s data with a clone of the primary (clears recorded divergence).
    Reclone { site: String },
}
