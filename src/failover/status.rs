//! The group status the shells publish (`/status` JSON, the CR status): a pure projection
//! of the engine state after a decision.

use serde::{Deserialize, Serialize};

use super::policy::{GroupPolicy, SiteRole};
use super::state::{
    Convergence, EngineState, FailoverRecord, MatrixReason, PlannedPhase, PlannedReason, Recovery,
    SiteState,
};
use super::time::Timestamp;
use crate::failover::gtid::GtidSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatus {
    pub active_site: Option<String>,
    pub sites: Vec<SiteStatus>,
    pub last_failover: Option<FailoverRecord>,
    pub planned_failover: Option<PlannedFailoverStatus>,
    pub conditions: Vec<Condition>,
}

/// `recoveryState`: empty when nothing is in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RecoveryLabel {
    #[default]
    #[serde(rename = "")]
    None,
    RecoveryInProgress,
    RecoveryBlocked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteStatus {
    pub name: String,
    pub role: SiteRole,
    pub state: SiteState,
    pub last_seen: Option<Timestamp>,
    /// From the last successful probe.
    pub read_only: Option<bool>,
    pub gtid_executed: Option<GtidSet>,
    pub replicating: bool,
    pub seconds_behind_source: Option<u64>,
    pub source_host: Option<String>,
    pub divergent_gtid: Option<GtidSet>,
    pub divergent_transaction_count: u64,
    pub recovery_state: RecoveryLabel,
    pub source_convergence: Option<Convergence>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedFailoverStatus {
    pub phase: PlannedPhase,
    pub reason: Option<PlannedReason>,
    pub target: String,
    pub source_primary: Option<String>,
    pub source_gtid_at_fence: Option<GtidSet>,
    pub target_gtid_at_promotion: Option<GtidSet>,
    pub start_time: Timestamp,
    pub completion_time: Option<Timestamp>,
    pub duration_seconds: Option<f64>,
    pub transactions_lost: Option<u64>,
    pub retry_after: Option<Timestamp>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionType {
    Ready,
    Degraded,
    RecoveryPending,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: ConditionType,
    /// `"True"` or `"False"`, as in Kubernetes conditions.
    pub status: String,
    pub reason: String,
    pub message: String,
}

impl Condition {
    fn new(kind: ConditionType, on: bool, reason: &str, message: String) -> Self {
        Self {
            kind,
            status: if on { "True" } else { "False" }.to_owned(),
            reason: reason.to_owned(),
            message,
        }
    }

    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

impl GroupStatus {
    pub fn condition(&self, kind: ConditionType) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }

    pub fn site(&self, name: &str) -> Option<&SiteStatus> {
        self.sites.iter().find(|s| s.name == name)
    }
}

pub(super) fn build(
    st: &EngineState,
    policy: &GroupPolicy,
    verdict: MatrixReason,
    now: Timestamp,
) -> GroupStatus {
    let sites: Vec<SiteStatus> = policy
        .sites
        .iter()
        .map(|sp| {
            let track = st.sites.get(&sp.name).cloned().unwrap_or_default();
            let probe = track.last_probe.as_ref();
            let replica = probe.and_then(|p| p.replica.as_ref());
            SiteStatus {
                name: sp.name.clone(),
                role: sp.role,
                state: track.state,
                last_seen: track.last_seen,
                read_only: probe.map(|p| p.read_only),
                gtid_executed: probe.map(|p| p.gtid_executed.clone()),
                replicating: replica.is_some_and(super::observe::ReplicaStatus::replicating),
                seconds_behind_source: replica.and_then(|r| r.seconds_behind_source),
                source_host: replica.map(|r| format!("{}:{}", r.source_host, r.source_port)),
                divergent_gtid: track.divergence.as_ref().map(|d| d.gtid.clone()),
                divergent_transaction_count: track.divergence.as_ref().map_or(0, |d| d.count),
                recovery_state: match track.recovery {
                    Recovery::Idle => RecoveryLabel::None,
                    Recovery::Blocked { .. } => RecoveryLabel::RecoveryBlocked,
                    Recovery::Fencing { .. }
                    | Recovery::Rejoining { .. }
                    | Recovery::Cloning { .. } => RecoveryLabel::RecoveryInProgress,
                },
                source_convergence: track.convergence,
            }
        })
        .collect();
    let planned_failover = st.planned.as_ref().map(|p| PlannedFailoverStatus {
        phase: p.phase,
        reason: p.reason,
        target: p.target.clone(),
        source_primary: p.source.clone(),
        source_gtid_at_fence: p.source_gtid_at_fence.clone(),
        target_gtid_at_promotion: p.target_gtid_at_promotion.clone(),
        start_time: p.started_at,
        completion_time: p.completed_at,
        duration_seconds: Some(
            p.completed_at
                .unwrap_or(now)
                .since(p.started_at)
                .as_secs_f64(),
        ),
        transactions_lost: p.transactions_lost,
        retry_after: p.retry_after,
        message: p.message.clone(),
    });
    let conditions = conditions(&sites, st, verdict);
    GroupStatus {
        active_site: st.active_site.clone(),
        sites,
        last_failover: st.last_failover.clone(),
        planned_failover,
        conditions,
    }
}

fn conditions(sites: &[SiteStatus], st: &EngineState, verdict: MatrixReason) -> Vec<Condition> {
    let reason = format!("{verdict:?}");
    let ready = verdict == MatrixReason::Healthy;
    let active = st.active_site.as_deref().unwrap_or("none");
    let blocked: Vec<&str> = sites
        .iter()
        .filter(|s| s.divergent_transaction_count > 0)
        .map(|s| s.name.as_str())
        .collect();
    let in_progress: Vec<&str> = sites
        .iter()
        .filter(|s| s.recovery_state == RecoveryLabel::RecoveryInProgress)
        .map(|s| s.name.as_str())
        .collect();
    let recovery = if !blocked.is_empty() {
        Condition::new(
            ConditionType::RecoveryPending,
            true,
            "DivergentTransactions",
            format!("divergent transactions on: {}", blocked.join(", ")),
        )
    } else if !in_progress.is_empty() {
        Condition::new(
            ConditionType::RecoveryPending,
            true,
            "RecoveryInProgress",
            format!("recovering: {}", in_progress.join(", ")),
        )
    } else {
        Condition::new(ConditionType::RecoveryPending, false, "None", String::new())
    };
    vec![
        Condition::new(
            ConditionType::Ready,
            ready,
            &reason,
            format!("active site: {active}"),
        ),
        Condition::new(
            ConditionType::Degraded,
            !ready,
            &reason,
            format!("active site: {active}"),
        ),
        recovery,
    ]
}
