//! The cross-site matrix, a pure function of the debounced site states, checked in order
//! every poll (mutating actions fire only on transitions):
//!
//! 1. a writable non-candidate is fenced at once (with any other intruder), and nothing
//!    but fencing happens this poll;
//! 2. every core site unreachable: total loss, alert only;
//! 3. a writable site that is not the authoritative primary is fenced (split brain when
//!    the primary is writable too). This generalizes the first split-brain tier from "the recorded
//!    failover target" to "the authority": the adopted, promoted or policy-chosen primary.
//!    With no authority yet, `sitePriorities` picks one (tier 2) or we only alert (tier 3);
//! 4. nothing writable: the failover row (some unreachable, some read-only) promotes the
//!    freshest candidate; otherwise no primary (re-asserting a fenced primary if safe);
//! 5. one writable with something unreachable: degraded;
//! 6. one writable, nothing unreachable: healthy (or lagging replication).
//!
//! A running planned failover advances between rules 1 and 2, only while no unexpected
//! writer exists, and pauses rule 4's automatic promotion.
//!
//! The sidecars' second opinion: when our probe of a site fails and its sidecar freshly
//! reports that site's MySQL writable, the site is not safely "unreachable" (we may be the
//! part that is cut off). Every poll that lasts raises `UnreachableSiteWritable`, and rule
//! 4 promotes nothing, since a promotion then would open a double-writable window. The
//! report only ever holds a failover back: it never starts one, fences or lifts anything,
//! and without an answer every rule is exactly as above.

use super::action::{ActionKind, ActionPurpose};
use super::event::EventReason;
use super::planned;
use super::ranking;
use super::recovery;
use super::state::{MatrixReason, Recovery, SiteState};
use super::step::Step;

pub(super) fn evaluate(step: &mut Step<'_>) {
    // Alerted once the site is debounced unreachable: a probe blip the sidecar talks
    // through is not news. Rule 4 holds back on any vouched site, debounced or not.
    let vouched: Vec<String> = vouched_writable(step)
        .into_iter()
        .filter(|s| step.state_of(s) == SiteState::Unreachable)
        .collect();
    for site in &vouched {
        step.alert(
            EventReason::UnreachableSiteWritable,
            Some(site),
            format!(
                "cannot reach {site}'s MySQL, but its sidecar reports it writable; not failing over past it"
            ),
        );
    }
    let rogue = fence_writable_non_candidates(step);
    let core = step.core_sites();
    let writable: Vec<String> = core
        .iter()
        .filter(|s| step.state_of(s) == SiteState::Writable || step.writable_now(s))
        .cloned()
        .collect();
    let intruders = |step: &Step<'_>| -> Vec<String> {
        match step.st.active_site.as_deref() {
            Some(active) => writable.iter().filter(|s| *s != active).cloned().collect(),
            None => Vec::new(),
        }
    };
    if rogue {
        // Nothing but fencing happens in this poll: fence intruders too, never promote.
        let found = intruders(step);
        if !found.is_empty() {
            fence_intruders(step, &found);
        }
        step.verdict = MatrixReason::Degraded;
        return;
    }
    // A planned failover moves only while no unexpected writer exists.
    if intruders(step).is_empty() {
        planned::advance(step);
    }
    if !core.is_empty()
        && core
            .iter()
            .all(|s| step.state_of(s) == SiteState::Unreachable)
    {
        step.verdict = MatrixReason::TotalLoss;
        step.alert(
            EventReason::TotalLossDetected,
            None,
            "every core site is unreachable",
        );
        return;
    }
    // Re-read: a planned promotion confirmed above changes the authority.
    let found = intruders(step);
    if !found.is_empty() {
        return fence_intruders(step, &found);
    }
    if step.st.active_site.is_none() && writable.len() > 1 {
        return split_brain_without_authority(step, &writable);
    }
    match writable.first() {
        None => no_writable(step, &core),
        Some(primary) => one_writable(step, &core, primary),
    }
}

/// Sites we could not probe this poll whose sidecar freshly reports their MySQL writable.
fn vouched_writable(step: &Step<'_>) -> Vec<String> {
    step.all_sites()
        .into_iter()
        .filter(|s| step.sidecar_view(s).is_some_and(|r| !r.read_only))
        .collect()
}

/// Rule 1: dr-only and read-only sites must never be writable; fenced without debounce.
fn fence_writable_non_candidates(step: &mut Step<'_>) -> bool {
    let rogue: Vec<String> = step
        .policy
        .sites
        .iter()
        .filter(|s| !s.role.is_candidate() && step.writable_now(&s.name))
        .map(|s| s.name.clone())
        .collect();
    for site in &rogue {
        step.fence(site, ActionPurpose::Fencing, false);
        step.alert(
            EventReason::NonCandidateWritable,
            Some(site),
            format!("{site} is not a primary-candidate but is writable; fencing"),
        );
    }
    !rogue.is_empty()
}

/// Rule 3 with an authority: every other writable site is fenced, every poll, whatever
/// the cooldown. This covers split brain and old primaries that come back writable.
fn fence_intruders(step: &mut Step<'_>, intruders: &[String]) {
    let active = step.st.active_site.clone().unwrap_or_default();
    let active_writable =
        step.state_of(&active) == SiteState::Writable || step.writable_now(&active);
    for site in intruders {
        step.fence(site, ActionPurpose::Fencing, false);
        step.alert(
            EventReason::SiteFenced,
            Some(site),
            format!("{site} is writable but {active} is the primary; fencing"),
        );
    }
    if active_writable {
        step.verdict = MatrixReason::SplitBrain;
        step.alert(
            EventReason::SplitBrainDetected,
            None,
            format!("{} writable sites; keeping {active}", intruders.len() + 1),
        );
    } else {
        step.verdict = MatrixReason::Degraded;
    }
}

/// Rule 3 with no authority (fresh start or lost history): `sitePriorities` picks the
/// first listed writable candidate and the others are fenced; without priorities, alert.
/// The winner is chosen by policy, deliberately ignoring GTIDs; what the losers hold is
/// then reported as divergence by recovery.
fn split_brain_without_authority(step: &mut Step<'_>, writable: &[String]) {
    step.verdict = MatrixReason::SplitBrain;
    let winner = step
        .policy
        .site_priorities
        .iter()
        .find(|p| {
            writable.contains(p)
                && step.writable_now(p)
                && step
                    .role(p)
                    .is_some_and(super::policy::SiteRole::is_candidate)
        })
        .cloned();
    let Some(winner) = winner else {
        step.alert(
            EventReason::SplitBrainDetected,
            None,
            format!(
                "{} writable sites and no sitePriorities to choose from; manual action needed",
                writable.len()
            ),
        );
        return;
    };
    step.alert(
        EventReason::SplitBrainDetected,
        None,
        format!("{} writable sites", writable.len()),
    );
    for site in writable.iter().filter(|s| **s != winner) {
        step.fence(site, ActionPurpose::Fencing, false);
    }
    step.st.active_site = Some(winner.clone());
    step.note(
        EventReason::SplitBrainResolved,
        Some(&winner),
        "sitePriorities chose this site; fencing the others",
    );
}

/// Rule 4: nothing writable.
fn no_writable(step: &mut Step<'_>, core: &[String]) {
    let restoring = step.actions.iter().any(|a| {
        matches!(
            a.kind,
            ActionKind::Unfence { .. } | ActionKind::Promote { .. }
        )
    });
    if restoring || step.st.planned_running() || step.st.promotion_in_doubt.is_some() {
        // Something this decision already does may make a site writable (a rollback, a
        // promotion): never start a failover until the next probe shows the result.
        step.verdict = MatrixReason::Degraded;
        return;
    }
    let any_unreachable = core
        .iter()
        .any(|s| step.state_of(s) == SiteState::Unreachable);
    let any_read_only = core.iter().any(|s| step.state_of(s) == SiteState::ReadOnly);
    if any_unreachable && any_read_only {
        step.verdict = MatrixReason::Degraded;
        // An unreachable site its sidecar vouches for as writable may be a primary we are
        // cut off from: promoting now would make two writable sites (alerted above).
        if vouched_writable(step).is_empty() {
            failover(step, core);
        }
    } else if fresh_bootstrap(step, core) {
        step.verdict = MatrixReason::NoPrimary;
    } else {
        step.verdict = MatrixReason::NoPrimary;
        step.alert(
            EventReason::NoPrimaryDetected,
            None,
            "no writable site and nothing unreachable; not electing (could be a fresh start)",
        );
        reassert(step, core);
    }
}

/// Fresh bootstrap (§3.12): a group that has never had a primary, whose sites all booted
/// fenced (`super_read_only`, fence-first) and replicate from nobody. The best-ranked
/// candidate is promoted as the seed, and the others then converge on it like any
/// follower, fetching its history by auto-position. Only when the seed already holds every
/// transaction any other site holds: a site with transactions of its own (a "first-run
/// divergence") would lose them, so then nothing is elected and the alert asks for a
/// decision. Returns whether the seed is being promoted.
fn fresh_bootstrap(step: &mut Step<'_>, core: &[String]) -> bool {
    if step.st.active_site.is_some() || step.st.last_failover.is_some() {
        return false;
    }
    let all_fenced_and_idle = core.iter().all(|s| {
        step.state_of(s) == SiteState::ReadOnly
            && step
                .fresh(s)
                .is_some_and(|p| p.read_only && p.replica.is_none())
    });
    if !all_fenced_and_idle {
        return false;
    }
    let Some(seed) = ranking::rank(step).first().cloned() else {
        return false;
    };
    let Some(seed_gtid) = step.gtid_now(&seed).cloned() else {
        return false;
    };
    let holds_everything = core
        .iter()
        .all(|s| step.gtid_now(s).is_some_and(|g| seed_gtid.contains(g)));
    if !holds_everything || step.cooldown_active() {
        return false;
    }
    step.emit(
        ActionKind::Promote { site: seed.clone() },
        ActionPurpose::EmergencyFailover,
        true,
    );
    step.note(
        EventReason::FailoverStarted,
        Some(&seed),
        format!(
            "fresh bootstrap: every site booted fenced; seeding {seed}, which holds every transaction the others hold"
        ),
    );
    true
}

/// The failover row: fence whatever may still accept writes, then promote the freshest
/// eligible candidate.
fn failover(step: &mut Step<'_>, core: &[String]) {
    let ranked = ranking::rank(step);
    let Some(target) = ranked.first().cloned() else {
        step.alert(
            EventReason::NoCandidate,
            None,
            "no promotable candidate (read-only, probed, no recorded divergence)",
        );
        return;
    };
    if step.cooldown_active() {
        step.alert(
            EventReason::FailoverBlockedByCooldown,
            Some(&target),
            "failover blocked by anti-flap cooldown",
        );
        return;
    }
    let purpose = ActionPurpose::EmergencyFailover;
    // Best effort: whatever is not answering may still be writable behind a partition.
    for site in step.all_sites() {
        if site != target && core.contains(&site) && !step.read_only_now(&site) {
            step.fence(&site, purpose, false);
        }
    }
    let budget = step.policy.relay_drain_budget;
    step.emit(
        ActionKind::DrainRelay {
            site: target.clone(),
            budget,
        },
        purpose,
        false,
    );
    step.emit(
        ActionKind::Promote {
            site: target.clone(),
        },
        purpose,
        true,
    );
    let previous = step
        .st
        .active_site
        .clone()
        .unwrap_or_else(|| "none".to_owned());
    // Record what the sidecars confirm: sites we could not reach that report themselves
    // fenced. It changes nothing (we fence them anyway), but it tells the reader of the
    // event whether the old primary was known to be read-only at promotion time.
    let confirmed: Vec<String> = core
        .iter()
        .filter(|s| **s != target && step.sidecar_view(s).is_some_and(|r| r.super_read_only))
        .cloned()
        .collect();
    let confirmed = if confirmed.is_empty() {
        String::new()
    } else {
        format!("; sidecar confirms fenced: {}", confirmed.join(", "))
    };
    step.note(
        EventReason::FailoverStarted,
        Some(&target),
        format!("promoting {target} (previous primary: {previous}){confirmed}"),
    );
}

/// Re-assert a fenced promoted primary: clear the fence on the authoritative primary when every site is reachable and
/// read-only and it provably holds everything the others hold. Rate-limited.
fn reassert(step: &mut Step<'_>, core: &[String]) {
    let Some(active) = step.st.active_site.clone() else {
        return;
    };
    let Some(active_gtid) = step.gtid_now(&active).cloned() else {
        return;
    };
    if !step.read_only_now(&active)
        || !step
            .role(&active)
            .is_some_and(super::policy::SiteRole::is_candidate)
    {
        return;
    }
    // A fenced peer holding transactions the authority lacks got them while it was not
    // the primary: that is divergence, the same verdict recovery would reach. Record it
    // rather than leave the group without a primary forever.
    for peer in core.iter().filter(|s| **s != active) {
        let Some(probe) = step.fresh(peer).cloned() else {
            continue;
        };
        let untracked = step.track(peer).is_some_and(|t| t.divergence.is_none());
        if probe.read_only && untracked && !active_gtid.contains(&probe.gtid_executed) {
            recovery::record_divergence(step, peer, probe.gtid_executed.subtract(&active_gtid));
            step.track_mut(peer).recovery = Recovery::Blocked {
                checked_at: step.now,
            };
        }
    }
    // Peers with recorded divergence are excluded: what they hold beyond the primary is
    // already reported and will never be merged, so it cannot block the primary forever.
    let peers_contained = core.iter().filter(|s| **s != active).all(|s| {
        let diverged = step.track(s).is_some_and(|t| t.divergence.is_some());
        step.read_only_now(s)
            && (diverged || step.gtid_now(s).is_some_and(|g| active_gtid.contains(g)))
    });
    let promotion_contained = match &step.st.last_failover {
        Some(r) if r.target == active => r
            .promotion_gtid
            .as_ref()
            .is_none_or(|g| active_gtid.contains(g)),
        _ => true,
    };
    let already_unfencing = step
        .actions
        .iter()
        .any(|a| matches!(&a.kind, ActionKind::Unfence { site } if *site == active));
    let rate_ok = !already_unfencing
        && step
            .st
            .last_reassert
            .is_none_or(|t| step.now.has_elapsed(t, step.policy.reassert_interval));
    if peers_contained && promotion_contained && rate_ok {
        step.st.last_reassert = Some(step.now);
        step.emit(
            ActionKind::Unfence {
                site: active.clone(),
            },
            ActionPurpose::Reassert,
            true,
        );
        step.note(
            EventReason::PrimaryReasserted,
            Some(&active),
            "the primary was fenced with nothing else writable; restoring writes",
        );
    }
}

/// Rules 5 and 6: exactly one writable site.
fn one_writable(step: &mut Step<'_>, core: &[String], primary: &str) {
    // Status uses debounced states so one blip does not flap Ready; mutations below need
    // this poll's probe as well.
    let debounced = step.state_of(primary) == SiteState::Writable;
    let confirmed = step.confirmed_writable(primary);
    if step.st.active_site.is_none()
        && confirmed
        && step
            .role(primary)
            .is_some_and(super::policy::SiteRole::is_candidate)
    {
        step.st.active_site = Some(primary.to_owned());
        step.note(
            EventReason::PrimaryAdopted,
            Some(primary),
            "the only confirmed writable candidate is the primary",
        );
    }
    let unreachable: Vec<String> = core
        .iter()
        .filter(|s| step.state_of(s) == SiteState::Unreachable)
        .cloned()
        .collect();
    for site in &unreachable {
        step.alert(
            EventReason::SiteUnreachable,
            Some(site),
            format!("{site} is unreachable while {primary} is primary"),
        );
    }
    let operating = step.st.planned_running() || step.st.promotion_in_doubt.is_some();
    let authoritative = step.st.active_site.as_deref() == Some(primary);
    if confirmed && !operating && authoritative {
        recovery::run(step, primary);
    }
    step.verdict = if !unreachable.is_empty() || !debounced || !authoritative || operating {
        MatrixReason::Degraded
    } else if followers_healthy(step, core, primary) {
        MatrixReason::Healthy
    } else {
        MatrixReason::ReplicationLagging
    };
    if step.verdict == MatrixReason::Healthy && step.st.last_verdict != Some(MatrixReason::Healthy)
    {
        step.note(
            EventReason::GroupHealthy,
            Some(primary),
            "one confirmed primary, every site reachable",
        );
    }
}

/// Every core follower replicates directly from the primary, healthily for two polls,
/// within `max_lag_seconds`. Judged on each follower's last successful probe, so a single
/// probe blip does not flap readiness (an unreachable follower is caught by the caller).
fn followers_healthy(step: &Step<'_>, core: &[String], primary: &str) -> bool {
    core.iter().filter(|s| *s != primary).all(|s| {
        let Some(track) = step.track(s) else {
            return false;
        };
        let Some(probe) = track.last_probe.as_ref() else {
            return false;
        };
        let Some(replica) = &probe.replica else {
            return false;
        };
        track.state == SiteState::ReadOnly
            && replica.replicating()
            && step.source_site(probe).as_deref() == Some(primary)
            && track.replication_ok_streak >= 2
            && replica
                .seconds_behind_source
                .is_some_and(|lag| lag <= step.policy.max_lag_seconds)
    })
}
