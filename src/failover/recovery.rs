//! Old-primary recovery, reclone, and follower source convergence (every follower
//! replicates straight from the active primary).
//!
//! All of it runs only while exactly one confirmed writable primary exists and nothing
//! else (a planned failover, an unconfirmed promotion) owns the topology. Every mutation is
//! gated on GTID containment: a site is pointed at the primary only when the primary holds
//! everything the site holds. Otherwise the difference is recorded, never merged.

use super::action::{ActionKind, ActionPurpose};
use super::event::{Event, EventReason};
use super::observe::SiteProbe;
use super::state::{Convergence, ConvergenceReason, ConvergenceState, Divergence, Recovery};
use super::step::Step;
use crate::failover::gtid::GtidSet;

/// Replication-health debounce: a replica of the primary must be broken this many polls
/// in a row before it is treated as needing recovery.
const BROKEN_REPLICATION_POLLS: u32 = 2;

pub(super) fn run(step: &mut Step<'_>, primary: &str) {
    let Some(primary_gtid) = step.gtid_now(primary).cloned() else {
        return;
    };
    for site in step.all_sites() {
        if site == primary || step.was_fenced(&site) {
            continue;
        }
        let recovery = step
            .track(&site)
            .map(|t| t.recovery.clone())
            .unwrap_or_default();
        let Some(probe) = step.fresh(&site).cloned() else {
            if matches!(recovery, Recovery::Idle) {
                set_convergence(
                    step,
                    &site,
                    ConvergenceState::Pending,
                    ConvergenceReason::ProbeFailed,
                );
            }
            continue;
        };
        if !probe.read_only {
            continue; // Writable intruders are fenced by the matrix, not here.
        }
        match recovery {
            Recovery::Cloning { .. } => {}
            Recovery::Fencing { .. } => compare(step, &site, &probe, primary, &primary_gtid),
            Recovery::Rejoining { since } => {
                if replicates_from(step, &probe, primary) {
                    let track = step.track_mut(&site);
                    track.recovery = Recovery::Idle;
                    track.divergence = None;
                    set_convergence(
                        step,
                        &site,
                        ConvergenceState::Converged,
                        ConvergenceReason::DirectSource,
                    );
                    step.note(
                        EventReason::RecoveryComplete,
                        Some(&site),
                        format!("replicating from {primary}"),
                    );
                } else if step.now.has_elapsed(since, step.policy.divergence_recheck) {
                    step.track_mut(&site).recovery = Recovery::Idle;
                    step.note(
                        EventReason::RecoveryFailed,
                        Some(&site),
                        "replication did not become healthy; starting over",
                    );
                }
            }
            Recovery::Blocked { checked_at } => {
                if !probe.super_read_only {
                    step.fence(&site, ActionPurpose::Recovery, false);
                } else if step
                    .now
                    .has_elapsed(checked_at, step.policy.divergence_recheck)
                {
                    compare(step, &site, &probe, primary, &primary_gtid);
                }
            }
            Recovery::Idle => idle(step, &site, &probe, primary, &primary_gtid),
        }
    }
}

/// A read-only site with nothing in progress: healthy, needs recovery, or needs repointing.
fn idle(step: &mut Step<'_>, site: &str, probe: &SiteProbe, primary: &str, primary_gtid: &GtidSet) {
    let source = step.source_site(probe);
    match (&probe.replica, source.as_deref()) {
        // No replication at all: an old primary (or a wiped replica). Fence, then compare.
        (None, _) => start_recovery(step, site),
        (Some(replica), Some(src)) if src == primary => {
            let broken = step
                .track(site)
                .is_some_and(|t| t.replication_bad_streak >= BROKEN_REPLICATION_POLLS);
            if replica.replicating() {
                set_convergence(
                    step,
                    site,
                    ConvergenceState::Converged,
                    ConvergenceReason::DirectSource,
                );
                check_errant(step, site, probe, primary, primary_gtid);
            } else if broken {
                start_recovery(step, site);
            }
        }
        // Replicating from the wrong place (the old primary, a chain, a stranger).
        (Some(_), _) => converge(step, site, probe, primary, primary_gtid),
    }
}

fn start_recovery(step: &mut Step<'_>, site: &str) {
    step.fence(site, ActionPurpose::Recovery, false);
    step.track_mut(site).recovery = Recovery::Fencing { since: step.now };
    step.note(
        EventReason::RecoveryStarted,
        Some(site),
        "read-only without replication; fencing before comparing GTIDs",
    );
}

/// Fenced and re-read: rejoin if the primary holds everything, else record the divergence.
fn compare(
    step: &mut Step<'_>,
    site: &str,
    probe: &SiteProbe,
    primary: &str,
    primary_gtid: &GtidSet,
) {
    if !probe.super_read_only {
        // The fence has not landed (or was undone); fence again before trusting the set.
        step.fence(site, ActionPurpose::Recovery, false);
        return;
    }
    if primary_gtid.contains(&probe.gtid_executed) {
        let purged = step
            .fresh(primary)
            .map(|p| p.gtid_purged.clone())
            .unwrap_or_default();
        if !probe.gtid_executed.contains(&purged) {
            // The primary's binary logs no longer hold what the site lacks (a new, empty
            // site; a primary restored from a backup; logs expired while the site was
            // away): replication would stop on a purged-logs error forever. Nothing is
            // lost by cloning, since the primary holds everything the site holds.
            let missing = purged.subtract(&probe.gtid_executed).count();
            return start_clone(
                step,
                site,
                primary,
                format!(
                    "{primary}'s binary logs no longer hold {missing} transactions {site} \
                     lacks; cloning {site} from {primary} (nothing on {site} is discarded)"
                ),
                GtidSet::default(),
            );
        }
        // Persisted before the mutation, so a restarted controller knows it was started.
        step.track_mut(site).recovery = Recovery::Rejoining { since: step.now };
        step.emit(
            ActionKind::ReplicateFrom {
                site: site.to_owned(),
                source_site: primary.to_owned(),
                reset: true,
            },
            ActionPurpose::Recovery,
            true,
        );
    } else {
        record_divergence(step, site, probe.gtid_executed.subtract(primary_gtid));
        step.track_mut(site).recovery = Recovery::Blocked {
            checked_at: step.now,
        };
    }
}

/// Source convergence: repoint a follower at the primary, keeping its relay log, only under containment.
fn converge(
    step: &mut Step<'_>,
    site: &str,
    probe: &SiteProbe,
    primary: &str,
    primary_gtid: &GtidSet,
) {
    if primary_gtid.contains(&probe.gtid_executed) {
        set_convergence(
            step,
            site,
            ConvergenceState::Pending,
            ConvergenceReason::SourceMismatch,
        );
        step.emit(
            ActionKind::ReplicateFrom {
                site: site.to_owned(),
                source_site: primary.to_owned(),
                reset: false,
            },
            ActionPurpose::Convergence,
            true,
        );
        step.note(
            EventReason::SourceRepointed,
            Some(site),
            format!("repointing at {primary}"),
        );
    } else {
        set_convergence(
            step,
            site,
            ConvergenceState::Blocked,
            ConvergenceReason::GtidDiverged,
        );
        record_divergence(step, site, probe.gtid_executed.subtract(primary_gtid));
        step.alert(
            EventReason::SourceConvergenceBlocked,
            Some(site),
            format!("{site} holds transactions {primary} lacks; not repointing"),
        );
    }
}

/// Record (or refresh) what `site` holds that the primary lacks; reported when it changes.
pub(super) fn record_divergence(step: &mut Step<'_>, site: &str, divergent: GtidSet) {
    let now = step.now;
    let track = step.track_mut(site);
    let changed = track
        .divergence
        .as_ref()
        .is_none_or(|d| d.gtid != divergent);
    if !changed {
        return;
    }
    let count = divergent.count();
    track.divergence = Some(Divergence {
        gtid: divergent.clone(),
        count,
        detected_at: now,
    });
    step.event(
        Event::new(
            EventReason::DataLossDetected,
            Some(site),
            format!("{count} transactions on {site} are not on the primary; kept fenced"),
        )
        .with_gtid(divergent),
    );
}

/// A healthy replica of the primary can still hold *errant* transactions: ones written on
/// it directly. Anything it holds from a server other than the primary that the primary
/// lacks is errant (the primary's own newest commits may simply not have been probed yet,
/// so those are ignored). Errant transactions are reported and exclude the site from
/// promotion; a divergence record clears once the primary holds everything again.
fn check_errant(
    step: &mut Step<'_>,
    site: &str,
    probe: &SiteProbe,
    primary: &str,
    primary_gtid: &GtidSet,
) {
    let extra = probe.gtid_executed.subtract(primary_gtid);
    let primary_uuid = step
        .fresh(primary)
        .and_then(|p| crate::failover::gtid::Uuid::parse(&p.server_uuid));
    let errant = match primary_uuid {
        Some(uuid) => extra.without_uuid(uuid),
        None => extra,
    };
    if !errant.is_empty() {
        record_divergence(step, site, errant);
    } else if step.track(site).is_some_and(|t| t.divergence.is_some())
        && primary_gtid.contains(&probe.gtid_executed)
    {
        step.track_mut(site).divergence = None;
    }
}

fn replicates_from(step: &Step<'_>, probe: &SiteProbe, primary: &str) -> bool {
    probe
        .replica
        .as_ref()
        .is_some_and(super::observe::ReplicaStatus::replicating)
        && step.source_site(probe).as_deref() == Some(primary)
}

fn set_convergence(
    step: &mut Step<'_>,
    site: &str,
    state: ConvergenceState,
    reason: ConvergenceReason,
) {
    step.track_mut(site).convergence = Some(Convergence { state, reason });
}

/// A reclone request: refuses the active primary and needs a confirmed donor.
/// Whatever the site holds that the donor lacks is reported before it is discarded.
pub(super) fn reclone(step: &mut Step<'_>, site: &str) {
    let reject = |step: &mut Step<'_>, why: String| {
        step.note(EventReason::RecloneRejected, Some(site), why);
    };
    if step.role(site).is_none() {
        return reject(step, format!("no site named {site}"));
    }
    let Some(donor) = step.st.active_site.clone() else {
        return reject(step, "there is no active primary to clone from".to_owned());
    };
    if donor == site {
        return reject(step, "refusing to reclone the active primary".to_owned());
    }
    if !step.confirmed_writable(&donor) {
        return reject(
            step,
            format!("the donor {donor} is not a confirmed writable primary"),
        );
    }
    if step.st.planned_running() || step.st.promotion_in_doubt.is_some() {
        return reject(step, "another operation owns the topology".to_owned());
    }
    if matches!(
        step.track(site).map(|t| &t.recovery),
        Some(Recovery::Cloning { .. })
    ) {
        return reject(step, "a clone is already running".to_owned());
    }
    let (Some(site_gtid), Some(donor_gtid)) =
        (step.gtid_now(site).cloned(), step.gtid_now(&donor).cloned())
    else {
        return reject(step, format!("{site} did not answer this poll"));
    };
    if !step.read_only_now(site) {
        return reject(step, format!("{site} is writable; it must be fenced first"));
    }
    let discarded = site_gtid.subtract(&donor_gtid);
    let count = discarded.count();
    start_clone(
        step,
        site,
        &donor,
        format!("cloning {site} from {donor}; discarding {count} divergent transactions"),
        discarded,
    );
}

/// Replaces `site`'s data with a clone of `donor`; `discarded` is what the site holds that
/// the donor lacks, reported with the Event before it is gone.
fn start_clone(step: &mut Step<'_>, site: &str, donor: &str, why: String, discarded: GtidSet) {
    // Persisted before the mutation, so a restarted controller knows a clone was started.
    step.track_mut(site).recovery = Recovery::Cloning {
        since: step.now,
        donor: donor.to_owned(),
    };
    step.emit(
        ActionKind::Clone {
            site: site.to_owned(),
            donor_site: donor.to_owned(),
        },
        ActionPurpose::Reclone,
        true,
    );
    step.event(Event::new(EventReason::RecloneRequested, Some(site), why).with_gtid(discarded));
}
