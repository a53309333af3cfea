//! The platform reactions to a site's state, as pure rules: which pods carry which
//! `shipstream.io/role` and `shipstream.io/healthy` labels, when a site's nodes gain or lose
//! the group's `shipstream.io/db-readonly-<group>` taint, and the node's taint list after
//! that. The Kubernetes adapter applies them (`adapters::kube::reactions`).
//!
//! Like [`super::status`], this reads the failover core's output types (site states and
//! roles); the dependency is one-way.

use k8s_openapi::api::core::v1::Taint;

use super::placement::taint_key;
use crate::api::failover_group::SiteRole;
use crate::failover::status::PlannedFailoverStatus;
use crate::failover::{PlannedPhase, RecoveryLabel, SiteState, SiteStatus};

/// The taint's value and effect.
pub const TAINT_VALUE: &str = "true";
pub const TAINT_EFFECT: &str = "NoExecute";

/// What a state transition does to a site's node taint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaintChange {
    Add,
    Remove,
    Keep,
}

/// The taint rule: a site going writable loses the taint; a site going read-only or
/// unreachable *from writable or unknown* gains it; read-only ↔ unreachable (and anything
/// into unknown) changes nothing, so a flapping network does not churn node taints.
/// Readers never taint: their nodes serve reads whatever the primary does.
pub fn taint_change(role: SiteRole, from: SiteState, to: SiteState) -> TaintChange {
    if role == SiteRole::ReadOnly {
        return TaintChange::Keep;
    }
    match (from, to) {
        (SiteState::Writable, SiteState::Writable) => TaintChange::Keep,
        (_, SiteState::Writable) => TaintChange::Remove,
        (
            SiteState::Writable | SiteState::Unknown,
            SiteState::ReadOnly | SiteState::Unreachable,
        ) => TaintChange::Add,
        _ => TaintChange::Keep,
    }
}

/// The group's taint on a node.
pub fn taint(group: &str) -> Taint {
    Taint {
        key: taint_key(group),
        value: Some(TAINT_VALUE.to_owned()),
        effect: TAINT_EFFECT.to_owned(),
        time_added: None,
    }
}

/// A node's taints after adding (`present`) or removing the group's taint; `None` when
/// they already are that way, so a node is only written when something changes. Other
/// taints (other groups', the cluster's own) are kept in order.
pub fn node_taints(current: &[Taint], group: &str, present: bool) -> Option<Vec<Taint>> {
    let wanted = taint(group);
    let ours = |t: &Taint| t.key == wanted.key && t.effect == wanted.effect;
    let has = current
        .iter()
        .any(|t| ours(t) && t.value.as_deref() == Some(TAINT_VALUE));
    if has == present && current.iter().filter(|t| ours(t)).count() <= 1 {
        return None;
    }
    let mut out: Vec<Taint> = current.iter().filter(|t| !ours(t)).cloned().collect();
    if present {
        out.push(wanted);
    }
    Some(out)
}

/// `shipstream.io/role` of a site's pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodRole {
    Primary,
    Replica,
    /// Matches no Service: a source being drained by a planned failover, a writable site
    /// that is not the primary (being fenced), a site held back with divergent data.
    Fenced,
}

impl PodRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Replica => "replica",
            Self::Fenced => "fenced",
        }
    }
}

/// The pod labels of one site: its role and whether it is healthy (`yes`/`no`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodLabels {
    pub role: PodRole,
    pub healthy: bool,
}

impl PodLabels {
    pub fn healthy_str(self) -> &'static str {
        if self.healthy { "yes" } else { "no" }
    }
}

/// The labels of `site`'s pod. A primary is healthy while writable; a replica while it is
/// read-only, replicating, and no more than `max_lag_seconds` behind (the replicas
/// Service's contract); a fenced pod never.
pub fn pod_labels(
    site: &SiteStatus,
    active_site: Option<&str>,
    planned: Option<&PlannedFailoverStatus>,
    max_lag_seconds: u64,
) -> PodLabels {
    let draining = planned.is_some_and(|p| {
        p.phase.is_running()
            && p.phase != PlannedPhase::Resuming
            && p.source_primary.as_deref() == Some(site.name.as_str())
    });
    let active = active_site == Some(site.name.as_str());
    let role = if draining
        || site.recovery_state == RecoveryLabel::RecoveryBlocked
        || (!active && site.state == SiteState::Writable)
    {
        PodRole::Fenced
    } else if active {
        PodRole::Primary
    } else {
        PodRole::Replica
    };
    let healthy = match role {
        PodRole::Primary => site.state == SiteState::Writable,
        PodRole::Replica => {
            site.state == SiteState::ReadOnly
                && site.replicating
                && site
                    .seconds_behind_source
                    .is_some_and(|lag| lag <= max_lag_seconds)
        }
        PodRole::Fenced => false,
    };
    PodLabels { role, healthy }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failover::Timestamp;

    const STATES: [SiteState; 4] = [
        SiteState::Unknown,
        SiteState::Writable,
        SiteState::ReadOnly,
        SiteState::Unreachable,
    ];

    #[test]
    fn taint_transitions_follow_the_reference_table() {
        use SiteState::{ReadOnly, Unknown, Unreachable, Writable};
        use TaintChange::{Add, Keep, Remove};
        let table = [
            (Unknown, Writable, Remove),
            (ReadOnly, Writable, Remove),
            (Unreachable, Writable, Remove),
            (Writable, Writable, Keep),
            (Writable, ReadOnly, Add),
            (Writable, Unreachable, Add),
            (Unknown, ReadOnly, Add),
            (Unknown, Unreachable, Add),
            (ReadOnly, Unreachable, Keep),
            (Unreachable, ReadOnly, Keep),
            (ReadOnly, ReadOnly, Keep),
            (Writable, Unknown, Keep),
            (Unknown, Unknown, Keep),
        ];
        for (from, to, want) in table {
            for role in [SiteRole::PrimaryCandidate, SiteRole::DrOnly] {
                assert_eq!(
                    taint_change(role, from, to),
                    want,
                    "{role:?} {from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn readers_never_taint() {
        for from in STATES {
            for to in STATES {
                assert_eq!(
                    taint_change(SiteRole::ReadOnly, from, to),
                    TaintChange::Keep
                );
            }
        }
    }

    #[test]
    fn node_taints_change_only_our_taint_and_only_when_needed() {
        let other = Taint {
            key: "shipstream.io/db-readonly-billing".to_owned(),
            value: Some("true".to_owned()),
            effect: "NoExecute".to_owned(),
            time_added: None,
        };
        assert_eq!(node_taints(&[], "orders", false), None);
        let added = node_taints(std::slice::from_ref(&other), "orders", true).unwrap();
        assert_eq!(added, vec![other.clone(), taint("orders")]);
        assert_eq!(added[1].key, "shipstream.io/db-readonly-orders");
        assert_eq!(node_taints(&added, "orders", true), None);
        assert_eq!(
            node_taints(&added, "orders", false),
            Some(vec![other.clone()])
        );
        // A hand-edited value is put right.
        let mut odd = taint("orders");
        odd.value = Some("yes".to_owned());
        assert_eq!(
            node_taints(&[odd], "orders", true),
            Some(vec![taint("orders")])
        );
    }

    fn site(name: &str, state: SiteState) -> SiteStatus {
        SiteStatus {
            name: name.to_owned(),
            role: SiteRole::PrimaryCandidate,
            state,
            last_seen: None,
            read_only: None,
            gtid_executed: None,
            replicating: state == SiteState::ReadOnly,
            seconds_behind_source: (state == SiteState::ReadOnly).then_some(2),
            source_host: None,
            divergent_gtid: None,
            divergent_transaction_count: 0,
            recovery_state: RecoveryLabel::None,
            source_convergence: None,
        }
    }

    #[test]
    fn pod_labels_follow_role_and_health() {
        let labels = |s: &SiteStatus, planned| pod_labels(s, Some("iad"), planned, 10);
        let primary = labels(&site("iad", SiteState::Writable), None);
        assert_eq!(
            (primary.role, primary.healthy_str()),
            (PodRole::Primary, "yes")
        );
        let fenced_primary = labels(&site("iad", SiteState::ReadOnly), None);
        assert_eq!(
            (fenced_primary.role, fenced_primary.healthy),
            (PodRole::Primary, false)
        );

        let replica = labels(&site("pdx", SiteState::ReadOnly), None);
        assert_eq!((replica.role, replica.healthy), (PodRole::Replica, true));
        let mut lagging = site("pdx", SiteState::ReadOnly);
        lagging.seconds_behind_source = Some(11);
        assert!(!labels(&lagging, None).healthy);
        lagging.seconds_behind_source = None;
        assert!(!labels(&lagging, None).healthy);
        let gone = labels(&site("pdx", SiteState::Unreachable), None);
        assert_eq!((gone.role, gone.healthy_str()), (PodRole::Replica, "no"));

        let rogue = labels(&site("pdx", SiteState::Writable), None);
        assert_eq!(rogue.role, PodRole::Fenced);
        let mut diverged = site("pdx", SiteState::ReadOnly);
        diverged.recovery_state = RecoveryLabel::RecoveryBlocked;
        assert_eq!(labels(&diverged, None).role, PodRole::Fenced);
        assert_eq!(PodRole::Fenced.as_str(), "fenced");
    }

    #[test]
    fn a_planned_failover_source_is_fenced_while_it_drains() {
        let mut planned = PlannedFailoverStatus {
            phase: PlannedPhase::Draining,
            reason: None,
            target: "pdx".to_owned(),
            source_primary: Some("iad".to_owned()),
            source_gtid_at_fence: None,
            target_gtid_at_promotion: None,
            start_time: Timestamp(0),
            completion_time: None,
            duration_seconds: None,
            transactions_lost: None,
            retry_after: None,
            message: String::new(),
        };
        let iad = site("iad", SiteState::ReadOnly);
        let during = pod_labels(&iad, Some("iad"), Some(&planned), 10);
        assert_eq!((during.role, during.healthy), (PodRole::Fenced, false));
        planned.phase = PlannedPhase::Succeeded;
        let after = pod_labels(&iad, Some("pdx"), Some(&planned), 10);
        assert_eq!(after.role, PodRole::Replica);
    }
}
