//! Ordered update (behaviour §3.11): which drifted site Deployments may be applied now.
//!
//! Applying every drifted Deployment at once restarts every site at once: a write outage
//! and, with a bad image, every site broken together. [`plan`] releases them in the order
//! that keeps a writable primary and a healthy standby throughout:
//!
//! 1. followers, one at a time, each only once the one before is ready and replicating
//!    within [`MAX_REPLICA_LAG_SECONDS`];
//! 2. then a planned switchover to a healthy, already updated follower;
//! 3. then the former primary, now a follower like the others.
//!
//! A follower that is down already (pod not ready, MySQL not replicating) is released at
//! once: updating it costs no availability, and the update may be what repairs it. A
//! Deployment that does not exist yet is a creation, not an update, and is never held.
//! `updateStrategy: Recreate` releases everything at once, as the user asked.
//!
//! The plan is a pure function of what is observed now (live Deployments, the failover
//! core's status) plus the phase last recorded, so a new leader resumes an update
//! half-way through without remembering anything else.

use serde_json::Value;

use crate::api::failover_group::UpdateStrategy;
use crate::failover::{GroupStatus, SiteState};

/// A follower counts as caught up below this lag (seconds behind its source).
pub const MAX_REPLICA_LAG_SECONDS: u64 = 5;

/// `status.updatePhase`, with the reference's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdatePhase {
    UpdateReplica,
    WaitReplica,
    Failover,
    UpdateOldPrimary,
    WaitOldPrimary,
    Complete,
}

impl UpdatePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpdateReplica => "UpdateReplica",
            Self::WaitReplica => "WaitReplica",
            Self::Failover => "Failover",
            Self::UpdateOldPrimary => "UpdateOldPrimary",
            Self::WaitOldPrimary => "WaitOldPrimary",
            Self::Complete => "Complete",
        }
    }

    /// The stored phase; an empty or unknown string is no phase.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::UpdateReplica,
            Self::WaitReplica,
            Self::Failover,
            Self::UpdateOldPrimary,
            Self::WaitOldPrimary,
            Self::Complete,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }

    /// Whether the primary has been handed off already: the site still being updated is
    /// the former primary.
    fn after_handoff(self) -> bool {
        matches!(
            self,
            Self::Failover | Self::UpdateOldPrimary | Self::WaitOldPrimary
        )
    }
}

/// How a site's live Deployment compares with the rendered one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentState {
    /// Not created yet (or not in the cache yet).
    Absent,
    /// Live differs from rendered: applying it restarts the site.
    Drifted,
    /// Live holds everything rendered.
    Current,
}

/// What the planner knows about one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteView {
    pub name: String,
    pub deployment: DeploymentState,
    /// The live Deployment reports its current template rolled out and its pod ready.
    pub ready: bool,
    /// The failover core last saw the site read-only, replicating, and caught up.
    pub replicating: bool,
    /// May be promoted (`role: primary-candidate`): only such a site takes the handoff.
    pub candidate: bool,
}

impl SiteView {
    /// Ready and replicating: safe to take another site down beside it, or to hand the
    /// primary to.
    fn healthy(&self) -> bool {
        self.ready && self.replicating
    }
}

/// Everything [`plan`] decides from.
#[derive(Debug, Clone)]
pub struct RolloutInput<'a> {
    pub strategy: UpdateStrategy,
    /// In `spec.sites` order (the order followers are updated in).
    pub sites: &'a [SiteView],
    /// The failover core's confirmed primary.
    pub active: Option<&'a str>,
    /// A planned failover is running: the topology belongs to it.
    pub switchover_running: bool,
    /// `status.updatePhase` as last recorded.
    pub previous: Option<UpdatePhase>,
}

/// What to do now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolloutPlan {
    /// Sites whose Deployment is applied now; every other drifted one is held back.
    pub release: Vec<String>,
    /// Ask the failover core for a planned switchover to this site.
    pub handoff: Option<String>,
    /// The phase to record (`None`: leave the recorded one as it is).
    pub phase: Option<UpdatePhase>,
    /// Why drifted Deployments are held, for logs and Events.
    pub waiting: Option<String>,
}

/// Decides which Deployments to apply (see the module docs).
pub fn plan(input: &RolloutInput<'_>) -> RolloutPlan {
    let mut out = RolloutPlan {
        release: names(input.sites, |s| s.deployment == DeploymentState::Absent),
        ..RolloutPlan::default()
    };
    let drifted = names(input.sites, |s| s.deployment == DeploymentState::Drifted);
    let (update, wait) = if input.previous.is_some_and(UpdatePhase::after_handoff) {
        (UpdatePhase::UpdateOldPrimary, UpdatePhase::WaitOldPrimary)
    } else {
        (UpdatePhase::UpdateReplica, UpdatePhase::WaitReplica)
    };
    let followers: Vec<&SiteView> = input
        .sites
        .iter()
        .filter(|s| Some(s.name.as_str()) != input.active)
        .collect();
    let pending = followers
        .iter()
        .find(|s| s.deployment == DeploymentState::Current && !s.healthy());
    if drifted.is_empty() {
        // The last site updated must be back before the update counts as complete.
        out.phase = match (input.previous, pending) {
            (None, _) => None,
            (Some(UpdatePhase::Complete), _) | (Some(_), None) => Some(UpdatePhase::Complete),
            (Some(_), Some(site)) => {
                out.waiting = Some(not_back(site));
                Some(wait)
            }
        };
        return out;
    }
    if input.strategy == UpdateStrategy::Recreate {
        out.release.extend(drifted);
        return out;
    }
    if input.switchover_running {
        out.phase = Some(input.previous.unwrap_or(UpdatePhase::Failover));
        out.waiting = Some("a planned failover is in progress".to_owned());
        return out;
    }

    // Down already: nothing to lose by updating, and the update may be the repair.
    let down: Vec<String> = followers
        .iter()
        .filter(|s| s.deployment == DeploymentState::Drifted && !s.ready && !s.replicating)
        .map(|s| s.name.clone())
        .collect();
    if !down.is_empty() {
        out.release.extend(down);
        out.phase = Some(update);
        return out;
    }
    // One at a time: the last one released must be back before the next goes.
    if let Some(site) = pending {
        out.phase = Some(wait);
        out.waiting = Some(not_back(site));
        return out;
    }
    if let Some(next) = followers
        .iter()
        .find(|s| s.deployment == DeploymentState::Drifted)
    {
        out.release.push(next.name.clone());
        out.phase = Some(update);
        return out;
    }
    // Every follower is updated and healthy: only the primary is left.
    let Some(active) = input.active else {
        out.phase = Some(input.previous.unwrap_or(wait));
        out.waiting = Some("no confirmed primary to update around".to_owned());
        return out;
    };
    if followers.is_empty() {
        // A one-site group: there is no one to hand the primary to.
        out.release.push(active.to_owned());
        out.phase = Some(UpdatePhase::UpdateOldPrimary);
        return out;
    }
    // Followers are all healthy here (any unhealthy one returned above).
    let Some(target) = followers.iter().find(|s| s.candidate) else {
        out.phase = Some(input.previous.unwrap_or(wait));
        out.waiting = Some(format!(
            "no primary candidate to hand {active} to; it is held on the old template"
        ));
        return out;
    };
    out.handoff = Some(target.name.clone());
    out.phase = Some(UpdatePhase::Failover);
    out
}

fn not_back(site: &SiteView) -> String {
    format!("site {} is not ready and replicating yet", site.name)
}

fn names(sites: &[SiteView], keep: impl Fn(&SiteView) -> bool) -> Vec<String> {
    sites
        .iter()
        .filter(|s| keep(s))
        .map(|s| s.name.clone())
        .collect()
}

/// Whether a live Deployment reports its current template rolled out with a ready pod:
/// the controller has seen the latest generation, and the pod it runs is updated and
/// ready.
pub fn deployment_ready(live: &Value) -> bool {
    let int = |pointer: &str| live.pointer(pointer).and_then(Value::as_i64);
    let generation = int("/metadata/generation").unwrap_or(0);
    let observed = int("/status/observedGeneration").unwrap_or(-1);
    let wanted = int("/spec/replicas").unwrap_or(1);
    observed >= generation
        && int("/status/updatedReplicas").unwrap_or(0) >= wanted
        && int("/status/readyReplicas").unwrap_or(0) >= wanted
        && int("/status/unavailableReplicas").unwrap_or(0) == 0
}

/// Whether the failover core last saw `site` read-only, replicating and caught up.
pub fn replicating(status: Option<&GroupStatus>, site: &str) -> bool {
    status.and_then(|s| s.site(site)).is_some_and(|s| {
        s.state == SiteState::ReadOnly
            && s.replicating
            && s.seconds_behind_source
                .is_some_and(|lag| lag < MAX_REPLICA_LAG_SECONDS)
    })
}

#[cfg(test)]
mod tests;
