//! The safety and liveness properties checked on every step of a simulation.

use std::fmt;
use std::time::Duration;

use super::world::World;
use crate::failover::gtid::GtidSet;
use crate::failover::{
    ActionKind, ActionPurpose, ConditionType, Decision, EventReason, GroupPolicy, PollInput,
    Timestamp,
};

/// Which property broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Invariant {
    /// Two sites the controller can see stayed writable beyond one poll (plus one retry
    /// for an injected fence failure).
    TwoWritable,
    /// A promote was issued or executed while another observable site was writable.
    PromotedWhileWritable,
    /// An acknowledged write vanished from every site without being reported.
    SilentDataLoss,
    /// Two automatic promotions closer together than the cooldown.
    CooldownViolated,
    /// Faults stopped but the group did not settle in time.
    NoConvergence,
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: Invariant,
    pub at: Timestamp,
    pub detail: String,
}

/// How many consecutive polls may see two writable sites: the one where it is detected
/// and fenced, and one retry in case that fence was failed by fault injection.
const TWO_WRITABLE_POLLS_ALLOWED: u32 = 2;

pub struct Checker {
    cooldown: Duration,
    two_writable_streak: u32,
    /// Every GTID the engine reported as divergent or discarded.
    pub reported: GtidSet,
    last_promotion: Option<Timestamp>,
}

impl Checker {
    pub fn new(policy: &GroupPolicy) -> Self {
        Self {
            cooldown: policy.failover_cooldown,
            two_writable_streak: 0,
            reported: GtidSet::new(),
            last_promotion: None,
        }
    }

    /// At each poll, before the engine acts on it, over the sites whose probe answered. A
    /// poll after one whose actions were cut short by a controller crash does not count:
    /// the engine had no chance to act.
    pub fn two_writable(
        &mut self,
        world: &World,
        seen: &[bool],
        previous_completed: bool,
        now: Timestamp,
    ) -> Option<Violation> {
        let writable: Vec<usize> = world
            .observable_writable()
            .into_iter()
            .filter(|&i| seen.get(i).copied().unwrap_or(false))
            .collect();
        if writable.len() < 2 {
            self.two_writable_streak = 0;
            return None;
        }
        if previous_completed || self.two_writable_streak == 0 {
            self.two_writable_streak += 1;
        }
        (self.two_writable_streak > TWO_WRITABLE_POLLS_ALLOWED).then(|| Violation {
            invariant: Invariant::TwoWritable,
            at: now,
            detail: format!(
                "sites {writable:?} observable and writable for {} polls",
                self.two_writable_streak
            ),
        })
    }

    /// After `decide`: no promote against an observation of another writable site; and
    /// collect what the engine reported as lost.
    pub fn decision(
        &mut self,
        input: &PollInput,
        decision: &Decision,
        now: Timestamp,
    ) -> Option<Violation> {
        for event in &decision.events {
            if matches!(
                event.reason,
                EventReason::DataLossDetected | EventReason::RecloneRequested
            ) && let Some(gtid) = &event.gtid
            {
                self.reported = self.reported.union(gtid);
            }
        }
        for action in &decision.actions {
            let ActionKind::Promote { site } = &action.kind else {
                continue;
            };
            let writable_peer = input
                .observations
                .iter()
                .find(|o| o.site != *site && o.result.as_ref().is_ok_and(|p| !p.read_only));
            if let Some(peer) = writable_peer {
                return Some(Violation {
                    invariant: Invariant::PromotedWhileWritable,
                    at: now,
                    detail: format!(
                        "promote {site} decided while {} was observed writable",
                        peer.site
                    ),
                });
            }
        }
        None
    }

    /// Just before a promote is applied to the world. `seen` lists the sites whose probe
    /// succeeded this poll: a site hidden by a probe timeout cannot be held against the
    /// engine (that is the partition case, which fencing on return covers).
    pub fn promote(
        &mut self,
        world: &World,
        seen: &[bool],
        target: usize,
        purpose: ActionPurpose,
        now: Timestamp,
    ) -> Option<Violation> {
        let others: Vec<usize> = world
            .observable_writable()
            .into_iter()
            .filter(|&i| i != target && seen.get(i).copied().unwrap_or(false))
            .collect();
        if !others.is_empty() {
            return Some(Violation {
                invariant: Invariant::PromotedWhileWritable,
                at: now,
                detail: format!("promote s{target} executed while {others:?} writable"),
            });
        }
        if world.writable(target) {
            return None; // Already writable: a retry, not a new failover.
        }
        let previous = self.last_promotion.replace(now);
        if purpose == ActionPurpose::EmergencyFailover
            && let Some(previous) = previous
            && now.since(previous) < self.cooldown
        {
            return Some(Violation {
                invariant: Invariant::CooldownViolated,
                at: now,
                detail: format!(
                    "automatic promotion of s{target} {:?} after the previous one",
                    now.since(previous)
                ),
            });
        }
        None
    }

    /// Every acknowledged write is on some site or was reported.
    pub fn silent_loss(&self, world: &World, now: Timestamp) -> Option<Violation> {
        let everywhere = world
            .sites
            .iter()
            .fold(GtidSet::new(), |acc, s| acc.union(&s.gtid));
        let lost = world.acked.subtract(&everywhere).subtract(&self.reported);
        (!lost.is_empty()).then(|| Violation {
            invariant: Invariant::SilentDataLoss,
            at: now,
            detail: format!("acknowledged writes on no site and never reported: {lost}"),
        })
    }
}

/// Whether the group has settled: one writable candidate that the engine calls active and
/// Ready, every other site up, fenced and replicating from it. Also the final data check:
/// every acknowledged write is on the primary or was reported (else `SilentDataLoss`).
pub fn converged(
    world: &World,
    decision: &Decision,
    policy: &GroupPolicy,
    reported: &GtidSet,
) -> Result<(), (Invariant, String)> {
    let stuck = |why: String| Err((Invariant::NoConvergence, why));
    let writable: Vec<usize> = (0..world.sites.len())
        .filter(|&i| world.writable(i))
        .collect();
    let [primary] = writable.as_slice() else {
        return stuck(format!("writable sites: {writable:?}"));
    };
    let name = &world.sites[*primary].name;
    if !policy
        .role(name)
        .is_some_and(crate::failover::SiteRole::is_candidate)
    {
        return stuck(format!("{name} is writable but not a candidate"));
    }
    if decision.status.active_site.as_deref() != Some(name.as_str()) {
        return stuck(format!(
            "engine active site {:?}, world primary {name}",
            decision.status.active_site
        ));
    }
    let ready = decision.status.condition(ConditionType::Ready);
    if !ready.is_some_and(crate::failover::Condition::is_true) {
        let reason = ready.map(|c| c.reason.clone()).unwrap_or_default();
        return stuck(format!("not Ready ({reason})"));
    }
    for (i, site) in world.sites.iter().enumerate() {
        let replicating = site
            .replication
            .as_ref()
            .is_some_and(|r| r.running && r.source == *primary);
        if i != *primary && (!site.up || !site.read_only || !replicating) {
            return stuck(format!("{} is not a fenced replica of {name}", site.name));
        }
    }
    let missing = world
        .acked
        .subtract(&world.sites[*primary].gtid)
        .subtract(reported);
    if !missing.is_empty() {
        return Err((
            Invariant::SilentDataLoss,
            format!("acknowledged writes neither on the primary nor reported: {missing}"),
        ));
    }
    Ok(())
}
