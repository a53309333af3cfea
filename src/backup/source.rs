//! Which site a backup reads from, decided from the failover core's status.
//!
//! A replica is preferred, so the primary's clients do not pay for the dump: one that is
//! read-only, replicating and at most `max_lag_seconds` behind. Readers (`role: read-only`)
//! serve a site-local pool and are left alone; dr-only sites are fine. With no such replica
//! the active primary is used. With neither, there is no source.

use serde::Serialize;

use crate::api::failover_group::SiteRole;
use crate::failover::{GroupStatus, SiteState};

/// Why the source was chosen (the reference's reason strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceReason {
    ReplicaPreferred,
    PrimaryFallback,
}

impl SourceReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReplicaPreferred => "replica-preferred",
            Self::PrimaryFallback => "primary-fallback",
        }
    }
}

/// The site to back up and why; `None` when no site is a safe source.
pub fn choose(status: &GroupStatus, max_lag_seconds: u64) -> Option<(String, SourceReason)> {
    let active = status.active_site.as_deref();
    let replica = status.sites.iter().find(|site| {
        Some(site.name.as_str()) != active
            && site.role != SiteRole::ReadOnly
            && site.state == SiteState::ReadOnly
            && site.replicating
            && site
                .seconds_behind_source
                .is_some_and(|lag| lag <= max_lag_seconds)
            && site.divergent_transaction_count == 0
    });
    if let Some(site) = replica {
        return Some((site.name.clone(), SourceReason::ReplicaPreferred));
    }
    let primary = status
        .sites
        .iter()
        .find(|site| Some(site.name.as_str()) == active && site.state == SiteState::Writable)?;
    Some((primary.name.clone(), SourceReason::PrimaryFallback))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failover::{RecoveryLabel, SiteStatus};

    fn site(name: &str, role: SiteRole, state: SiteState, lag: Option<u64>) -> SiteStatus {
        SiteStatus {
            name: name.into(),
            role,
            state,
            last_seen: None,
            read_only: Some(state != SiteState::Writable),
            gtid_executed: None,
            replicating: lag.is_some(),
            seconds_behind_source: lag,
            source_host: None,
            divergent_gtid: None,
            divergent_transaction_count: 0,
            recovery_state: RecoveryLabel::None,
            source_convergence: None,
        }
    }

    fn group(sites: Vec<SiteStatus>) -> GroupStatus {
        GroupStatus {
            active_site: Some("iad".into()),
            sites,
            last_failover: None,
            planned_failover: None,
            conditions: Vec::new(),
        }
    }

    #[test]
    fn a_caught_up_replica_is_preferred_a_reader_never_chosen() {
        let status = group(vec![
            site("iad", SiteRole::PrimaryCandidate, SiteState::Writable, None),
            site("reader", SiteRole::ReadOnly, SiteState::ReadOnly, Some(0)),
            site("dr", SiteRole::DrOnly, SiteState::ReadOnly, Some(3)),
        ]);
        assert_eq!(
            choose(&status, 300),
            Some(("dr".into(), SourceReason::ReplicaPreferred))
        );
    }

    #[test]
    fn lagging_stopped_or_diverged_replicas_fall_back_to_the_primary() {
        let mut diverged = site(
            "c",
            SiteRole::PrimaryCandidate,
            SiteState::ReadOnly,
            Some(0),
        );
        diverged.divergent_transaction_count = 2;
        let status = group(vec![
            site("iad", SiteRole::PrimaryCandidate, SiteState::Writable, None),
            site(
                "a",
                SiteRole::PrimaryCandidate,
                SiteState::ReadOnly,
                Some(301),
            ),
            site("b", SiteRole::PrimaryCandidate, SiteState::ReadOnly, None),
            diverged,
        ]);
        assert_eq!(
            choose(&status, 300),
            Some(("iad".into(), SourceReason::PrimaryFallback))
        );
    }

    #[test]
    fn no_healthy_site_means_no_source() {
        let status = group(vec![
            site(
                "iad",
                SiteRole::PrimaryCandidate,
                SiteState::Unreachable,
                None,
            ),
            site(
                "pdx",
                SiteRole::PrimaryCandidate,
                SiteState::Unreachable,
                None,
            ),
        ]);
        assert_eq!(choose(&status, 300), None);
    }
}
