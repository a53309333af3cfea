//! Candidate ranking for promotion: GTID freshness first; `sitePriorities`, then declaration
//! order, only break ties.

use super::state::{Recovery, SiteState};
use super::step::Step;

/// Eligible candidates, best first. Eligible: a primary-candidate, read-only by this poll's
/// probe, with no recorded divergence and no clone in progress.
pub(super) fn rank(step: &Step<'_>) -> Vec<String> {
    let mut ranked: Vec<(u64, (usize, usize), String)> = step
        .policy
        .sites
        .iter()
        .filter(|s| s.role.is_candidate())
        .filter(|s| step.state_of(&s.name) == SiteState::ReadOnly)
        .filter(|s| {
            step.track(&s.name).is_some_and(|t| {
                t.divergence.is_none() && !matches!(t.recovery, Recovery::Cloning { .. })
            })
        })
        .filter_map(|s| {
            let probe = step.fresh(&s.name).filter(|p| p.read_only)?;
            // What the relay log already holds will be applied by the drain, so it counts.
            let mut freshest = probe.gtid_executed.clone();
            if let Some(replica) = &probe.replica {
                freshest = freshest.union(&replica.retrieved_gtid_set);
            }
            Some((
                freshest.count(),
                step.policy.tie_break_key(&s.name),
                s.name.clone(),
            ))
        })
        .collect();
    // A strict superset always has more transactions, so sorting by count respects
    // containment; incomparable sets fall back to count, then policy order.
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    ranked.into_iter().map(|(_, _, name)| name).collect()
}
