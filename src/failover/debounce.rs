//! Per-site debounce: one blip never changes a site's state.
//!
//! - `unreachable` needs `failure_threshold` consecutive failures, or `refused_threshold`
//!   consecutive *refusals* (nothing listening is a fact a fast re-probe confirms; a
//!   timeout may be a blip).
//! - `writable` needs `recovery_threshold` consecutive writable probes, except on a
//!   non-candidate, where writability is an anomaly acted on at once.
//! - `read-only` takes one probe.

use super::event::{Event, EventReason, SiteTransition};
use super::observe::{ProbeFailure, SiteObservation};
use super::state::SiteState;
use super::step::Step;

pub(super) fn apply(step: &mut Step<'_>, observations: &[SiteObservation]) {
    for site in step.all_sites() {
        // The last observation of a site wins if the caller sent several.
        let Some(obs) = observations.iter().rev().find(|o| o.site == site) else {
            continue;
        };
        let before = step.state_of(&site);
        let after = match &obs.result {
            Ok(probe) => {
                step.fresh.insert(site.clone(), probe.clone());
                on_success(step, &site, !probe.read_only, replicating(probe))
            }
            Err(failure) => on_failure(step, &site, *failure),
        };
        if before != after {
            let mut event = Event::new(
                EventReason::SiteStateChanged,
                Some(&site),
                format!("{} -> {}", before.as_str(), after.as_str()),
            );
            event.transition = Some(SiteTransition {
                from: before,
                to: after,
            });
            step.event(event);
        }
    }
}

fn replicating(probe: &super::observe::SiteProbe) -> bool {
    probe
        .replica
        .as_ref()
        .is_some_and(super::observe::ReplicaStatus::replicating)
}

fn on_success(step: &mut Step<'_>, site: &str, writable: bool, replicating: bool) -> SiteState {
    let now = step.now;
    let threshold = step.policy.recovery_threshold.max(1);
    let candidate = step
        .role(site)
        .is_some_and(super::policy::SiteRole::is_candidate);
    let probe = step.fresh(site).cloned();
    let track = step.track_mut(site);
    track.failure_streak = 0;
    track.refused_streak = 0;
    track.last_failure = None;
    track.last_seen = Some(now);
    track.last_probe = probe;
    if replicating {
        track.replication_ok_streak = track.replication_ok_streak.saturating_add(1);
        track.replication_bad_streak = 0;
    } else {
        track.replication_bad_streak = track.replication_bad_streak.saturating_add(1);
        track.replication_ok_streak = 0;
    }
    if writable {
        track.writable_streak = track.writable_streak.saturating_add(1);
        if track.writable_streak >= threshold || !candidate {
            track.state = SiteState::Writable;
        }
    } else {
        track.writable_streak = 0;
        track.state = SiteState::ReadOnly;
    }
    track.state
}

fn on_failure(step: &mut Step<'_>, site: &str, failure: ProbeFailure) -> SiteState {
    let failure_threshold = step.policy.failure_threshold.max(1);
    let refused_threshold = step.policy.refused_threshold.max(1);
    let track = step.track_mut(site);
    track.failure_streak = track.failure_streak.saturating_add(1);
    track.refused_streak = if failure == ProbeFailure::Refused {
        track.refused_streak.saturating_add(1)
    } else {
        0
    };
    track.writable_streak = 0;
    track.last_failure = Some(failure);
    if track.failure_streak >= failure_threshold || track.refused_streak >= refused_threshold {
        track.state = SiteState::Unreachable;
    }
    track.state
}
