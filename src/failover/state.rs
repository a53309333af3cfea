//! The engine's memory between polls. Serializable so the control loop can persist it and
//! a restarted controller resumes mid-operation (possibly from one poll earlier).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::action::Action;
use super::event::EventReason;
use super::observe::{ProbeFailure, SiteProbe};
use super::time::Timestamp;
use crate::failover::gtid::GtidSet;

/// A site's debounced state: changed only after `failureThreshold` failures or
/// `recoveryThreshold` successes in a row (see `debounce`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SiteState {
    #[default]
    Unknown,
    Writable,
    ReadOnly,
    Unreachable,
}

impl SiteState {
    /// A stable name for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Writable => "writable",
            Self::ReadOnly => "read-only",
            Self::Unreachable => "unreachable",
        }
    }
}

/// Where a site stands in old-primary recovery: a former primary that comes back is
/// rejoined only when the new primary's GTID set contains its own, else it is held for a
/// confirmed reclone (see `recovery`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(
    tag = "phase",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Recovery {
    #[default]
    Idle,
    /// Fence and session kill sent; GTIDs are compared on the next fresh probe.
    Fencing { since: Timestamp },
    /// Contained: `ReplicateFrom(reset)` sent; done when replication is healthy.
    Rejoining { since: Timestamp },
    /// Diverged: kept fenced, re-checked every `divergence_recheck`.
    Blocked { checked_at: Timestamp },
    /// A reclone is running.
    Cloning { since: Timestamp, donor: String },
}

/// Transactions a site holds that the primary does not (`GTID_SUBTRACT(site, primary)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Divergence {
    pub gtid: GtidSet,
    pub count: u64,
    pub detected_at: Timestamp,
}

/// Source-convergence state of a follower: whether it replicates from the active primary
/// directly (see `recovery::converge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConvergenceState {
    Converged,
    Pending,
    Blocked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConvergenceReason {
    DirectSource,
    SourceMismatch,
    ProbeFailed,
    MutationFailed,
    #[serde(rename = "GTIDDiverged")]
    GtidDiverged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Convergence {
    pub state: ConvergenceState,
    pub reason: ConvergenceReason,
}

/// Everything remembered about one site.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteTrack {
    pub state: SiteState,
    /// Consecutive failed probes of any kind.
    pub failure_streak: u32,
    /// Consecutive refused probes (a subset of the failure streak).
    pub refused_streak: u32,
    /// Consecutive probes showing `read_only=0`.
    pub writable_streak: u32,
    /// Consecutive probes with both replication threads running (or not running).
    pub replication_ok_streak: u32,
    pub replication_bad_streak: u32,
    pub last_seen: Option<Timestamp>,
    pub last_probe: Option<SiteProbe>,
    pub last_failure: Option<ProbeFailure>,
    pub recovery: Recovery,
    pub divergence: Option<Divergence>,
    pub convergence: Option<Convergence>,
}

/// Why the last promotion happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FailoverKind {
    Emergency,
    Planned,
}

/// The anti-flap record: no automatic failover within `failoverCooldown` of the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverRecord {
    pub at: Timestamp,
    pub target: String,
    /// The set captured by the promote call; `None` when the promotion was confirmed by a
    /// later probe after an ambiguous promote outcome.
    pub promotion_gtid: Option<GtidSet>,
    pub kind: FailoverKind,
    /// The primary before the failover, if one was known.
    pub previous: Option<String>,
}

/// A promote whose outcome is unknown; nothing else is promoted until it is resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromotionInDoubt {
    pub target: String,
    pub since: Timestamp,
    pub kind: FailoverKind,
    pub previous: Option<String>,
}

/// Planned-failover phases, in order (see `planned`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlannedPhase {
    Validating,
    Deferred,
    Draining,
    WaitingForLag,
    Promoting,
    Resuming,
    Succeeded,
    Failed,
}

impl PlannedPhase {
    /// Whether the operation still owns the topology (pausing automatic evaluation).
    pub fn is_running(self) -> bool {
        matches!(
            self,
            Self::Draining | Self::WaitingForLag | Self::Promoting | Self::Resuming
        )
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlannedReason {
    TargetUnhealthy,
    UnknownSite,
    CooldownActive,
    Cancelled,
    ConcurrentOperation,
    LagTimeout,
    SourceCrashed,
    ExecuteFailed,
}

/// The state of the current or last planned failover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedFailover {
    pub phase: PlannedPhase,
    pub reason: Option<PlannedReason>,
    pub target: String,
    pub source: Option<String>,
    pub max_lag_wait: Duration,
    pub source_gtid_at_fence: Option<GtidSet>,
    pub target_gtid_at_promotion: Option<GtidSet>,
    pub started_at: Timestamp,
    pub phase_since: Timestamp,
    pub completed_at: Option<Timestamp>,
    pub transactions_lost: Option<u64>,
    pub retry_after: Option<Timestamp>,
    /// When the wait for the target to catch up began (bounded by `max_lag_wait`).
    pub lag_wait_since: Option<Timestamp>,
    /// Sessions from before the fence that the last drain pass still found (and killed);
    /// draining stops when it reaches zero.
    pub last_killed: Option<u32>,
    /// The highest connection id the first drain pass killed. Sessions with a larger id
    /// connected after the fence, when the source was already read-only: they cannot hold
    /// a write, so a client that reconnects at once does not keep the drain going until
    /// `drainTimeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_watermark: Option<u64>,
    pub message: String,
}

/// The cross-site verdict (the `Degraded` condition's reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MatrixReason {
    Healthy,
    Degraded,
    SplitBrain,
    NoPrimary,
    TotalLoss,
    ReplicationLagging,
}

/// The decision core's persisted memory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineState {
    pub sites: BTreeMap<String, SiteTrack>,
    /// The authoritative primary: adopted, promoted, or chosen by split-brain policy.
    /// Any other writable site is fenced.
    pub active_site: Option<String>,
    pub last_failover: Option<FailoverRecord>,
    /// Cooldown counts from every promote *attempt*, so an ambiguous promote cannot be
    /// followed by a second one inside the window.
    pub last_promotion_attempt: Option<Timestamp>,
    pub promotion_in_doubt: Option<PromotionInDoubt>,
    pub planned: Option<PlannedFailover>,
    pub last_reassert: Option<Timestamp>,
    /// Last matrix verdict.
    pub last_verdict: Option<MatrixReason>,
    /// Alerts raised by the previous poll, so an alert is reported when it starts rather
    /// than on every poll while it lasts.
    pub raised_alerts: BTreeSet<(EventReason, Option<String>)>,
    pub next_action_id: u64,
    /// The actions of the previous decision, awaiting their outcomes.
    pub in_flight: Vec<Action>,
}

impl EngineState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn site(&self, name: &str) -> Option<&SiteTrack> {
        self.sites.get(name)
    }

    pub fn planned_running(&self) -> bool {
        self.planned.as_ref().is_some_and(|p| p.phase.is_running())
    }
}
