//! The user-facing part of `MysqlFailoverGroup.status`, projected from the failover core's
//! [`GroupStatus`] after a decision.
//!
//! [`project`] is pure: the engine's status, the status as last stored and the current
//! time in, the next status out. The previous status matters for what must not move when
//! nothing changed: a condition keeps its `lastTransitionTime` while its status stays the
//! same, `topologyGeneration` only counts active-site changes, and fields other writers own
//! (restore, backups, PITR, Dragonfly, the stored failover state) are carried over as they
//! are. [`worth_writing`] decides whether the result differs enough from what is stored to
//! spend an API request on it, so an idle group causes no status writes.
//!
//! Unlike the rest of [`crate::render`], this reads the failover core's output types: the
//! status is the one place where the two meet, and the dependency is one-way (data only).

pub mod schedules;

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::failover_group_status::{
    MysqlFailoverGroupStatus, PlannedFailoverStatus, SiteStatus,
};
use crate::failover::status::PlannedFailoverStatus as EnginePlanned;
use crate::failover::{
    Condition as EngineCondition, GroupStatus, RecoveryLabel, SiteStatus as EngineSite, Timestamp,
};

/// A change only in the figures a busy site moves on every poll (`gtidExecuted`,
/// `secondsBehindSource`) is written once the stored ones are this old, so a group under
/// load does not cost a status write per poll.
pub const VOLATILE_REFRESH: Duration = Duration::from_secs(60);

/// The API server's limit on a condition message.
const MAX_CONDITION_MESSAGE: usize = 32_768;

/// The next status: `previous` with the fields the failover loop owns replaced by the
/// projection of `engine`. `observed_generation` is the spec generation the loop runs with.
pub fn project(
    engine: &GroupStatus,
    previous: &MysqlFailoverGroupStatus,
    observed_generation: Option<i64>,
    now: Timestamp,
) -> MysqlFailoverGroupStatus {
    let mut next = previous.clone();
    next.topology_generation = topology_generation(engine, previous);
    next.active_site.clone_from(&engine.active_site);
    next.sites = engine.sites.iter().map(site).collect();
    // An engine without a failover record (a fresh state next to a status the original
    // operator wrote) keeps the stored anti-flap record rather than erasing it.
    if let Some(record) = &engine.last_failover {
        next.last_failover = Some(rfc3339(record.at));
        next.last_failover_target = Some(record.target.clone());
        next.promotion_gtid_executed = record.promotion_gtid.as_ref().map(ToString::to_string);
    }
    if let Some(planned) = &engine.planned_failover {
        let dragonfly = previous
            .planned_failover
            .as_ref()
            .and_then(|p| p.dragonfly.clone());
        next.planned_failover = Some(PlannedFailoverStatus {
            dragonfly,
            ..planned_status(planned)
        });
    }
    next.conditions = conditions(
        &engine.conditions,
        &previous.conditions,
        observed_generation,
        now,
    );
    next.observed_generation = observed_generation.or(previous.observed_generation);
    next
}

/// Bumped by one whenever the engine names a new active site (a promotion, an adoption, a
/// split-brain winner); never on losing the active site, so flapping through "none" and
/// back to the same site does not look like a topology change to fencing-token readers.
fn topology_generation(engine: &GroupStatus, previous: &MysqlFailoverGroupStatus) -> Option<i64> {
    let changed = engine.active_site.is_some()
        && engine.active_site.as_deref() != previous.active_site.as_deref();
    if changed {
        Some(previous.topology_generation.unwrap_or(0).saturating_add(1))
    } else {
        previous.topology_generation
    }
}

fn site(s: &EngineSite) -> SiteStatus {
    SiteStatus {
        name: s.name.clone(),
        state: Some(s.state.as_str().to_owned()),
        last_seen: s.last_seen.map(rfc3339),
        replicating: Some(s.replicating),
        seconds_behind_source: s
            .seconds_behind_source
            .map(|lag| i64::try_from(lag).unwrap_or(i64::MAX)),
        gtid_executed: s.gtid_executed.as_ref().map(ToString::to_string),
        source_host: s.source_host.clone(),
        recovery_state: match s.recovery_state {
            RecoveryLabel::None => None,
            RecoveryLabel::RecoveryInProgress => Some("RecoveryInProgress".to_owned()),
            RecoveryLabel::RecoveryBlocked => Some("RecoveryBlocked".to_owned()),
        },
        divergent_gtid: s.divergent_gtid.as_ref().map(ToString::to_string),
        divergent_transaction_count: s
            .divergent_gtid
            .as_ref()
            .map(|_| i64::try_from(s.divergent_transaction_count).unwrap_or(i64::MAX)),
    }
}

fn planned_status(p: &EnginePlanned) -> PlannedFailoverStatus {
    PlannedFailoverStatus {
        phase: Some(format!("{:?}", p.phase)),
        reason: p.reason.map(|r| format!("{r:?}")),
        target: Some(p.target.clone()),
        source_primary: p.source_primary.clone(),
        source_gtid_at_fence: p.source_gtid_at_fence.as_ref().map(ToString::to_string),
        target_gtid_at_promotion: p.target_gtid_at_promotion.as_ref().map(ToString::to_string),
        start_time: Some(rfc3339(p.start_time)),
        completion_time: p.completion_time.map(rfc3339),
        // Only once it is over: a running duration would change the status on every poll.
        duration_seconds: p
            .completion_time
            .map(|done| i64::try_from(done.since(p.start_time).as_secs()).unwrap_or(i64::MAX)),
        transactions_lost: p
            .transactions_lost
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        retry_after: p.retry_after.map(rfc3339),
        message: (!p.message.is_empty()).then(|| p.message.clone()),
        ..PlannedFailoverStatus::default()
    }
}

/// The engine's conditions as Kubernetes conditions. A condition whose status did not
/// change keeps the stored `lastTransitionTime`; conditions of types the engine does not
/// own (`Bootstrapping`, ...) are kept after them, untouched.
fn conditions(
    engine: &[EngineCondition],
    previous: &[Condition],
    observed_generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = engine
        .iter()
        .map(|c| {
            let kind = format!("{:?}", c.kind);
            let stored = previous.iter().find(|p| p.type_ == kind);
            let since = stored
                .filter(|p| p.status == c.status)
                .map_or_else(|| Time(timestamp(now)), |p| p.last_transition_time.clone());
            Condition {
                type_: kind,
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: truncate(&c.message, MAX_CONDITION_MESSAGE),
                last_transition_time: since,
                observed_generation,
            }
        })
        .collect();
    for other in previous {
        if !out.iter().any(|c| c.type_ == other.type_) {
            out.push(other.clone());
        }
    }
    out
}

/// Whether `next` should be written over `stored`.
///
/// - A change in anything that means something (the active site, a site's state or
///   replication, divergence, recovery, conditions, a failover or planned failover record,
///   the observed generation) is written at once.
/// - A change only in a busy site's moving figures (`gtidExecuted`, `secondsBehindSource`)
///   is written once the stored status is [`VOLATILE_REFRESH`] old (by its `lastSeen`).
/// - A change only in `lastSeen` is never written by itself: `lastSeen` is "as of the last
///   status write", so a group where nothing changes costs no write at all.
///
/// The stored failover state has its own writer and is not compared.
pub fn worth_writing(
    stored: &MysqlFailoverGroupStatus,
    next: &MysqlFailoverGroupStatus,
    now: Timestamp,
) -> bool {
    let strip = |s: &MysqlFailoverGroupStatus, volatile: bool| {
        let mut s = s.clone();
        s.failover_state = None;
        for site in &mut s.sites {
            site.last_seen = None;
            if volatile {
                site.gtid_executed = None;
                site.seconds_behind_source = None;
            }
        }
        s
    };
    if strip(stored, true) != strip(next, true) {
        return true;
    }
    if strip(stored, false) == strip(next, false) {
        return false;
    }
    stored.sites.iter().all(|site| {
        site.last_seen
            .as_deref()
            .and_then(parse_rfc3339)
            .is_none_or(|seen| now.has_elapsed(seen, VOLATILE_REFRESH))
    })
}

/// RFC 3339 in UTC with second precision, as Kubernetes writes `date-time` fields.
pub fn rfc3339(t: Timestamp) -> String {
    t.rfc3339()
}

fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    Timestamp::parse_rfc3339(text)
}

fn timestamp(t: Timestamp) -> k8s_openapi::jiff::Timestamp {
    let seconds = i64::try_from(t.as_millis() / 1000).unwrap_or(i64::MAX);
    k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap_or(k8s_openapi::jiff::Timestamp::MAX)
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests;
