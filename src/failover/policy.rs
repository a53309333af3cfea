//! The group's configuration as the decision core needs it, built by the shells from the
//! `MysqlFailoverGroup` spec or the standalone config file.

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::api::failover_group::{OnCooldown, SiteRole};

/// One configured site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SitePolicy {
    pub name: String,
    pub role: SiteRole,
    /// `host:port` as replicas are pointed at it, so `SHOW REPLICA STATUS` can be mapped
    /// back to a site. Compared case-insensitively.
    pub address: String,
}

/// Every knob of the decision core, with the reference defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPolicy {
    /// In declaration order, which breaks ranking ties last.
    pub sites: Vec<SitePolicy>,
    /// Consecutive failed probes (timeouts, errors) before a site is unreachable.
    pub failure_threshold: u32,
    /// Consecutive writable probes before a candidate counts as writable.
    pub recovery_threshold: u32,
    /// Consecutive *refused* probes before a site is unreachable. Refusals are facts
    /// (nothing listens), so a couple of fast re-probes confirm them.
    pub refused_threshold: u32,
    /// How soon the caller should probe again while a refusal is being confirmed or a
    /// multi-step operation is running.
    pub fast_repoll: Duration,
    /// Minimum time between two automatic promotions.
    pub failover_cooldown: Duration,
    /// `splitBrainPolicy.sitePriorities`: tie-breaks for ranking and split-brain winners.
    pub site_priorities: Vec<String>,
    /// A follower further behind than this makes the group `ReplicationLagging`.
    pub max_lag_seconds: u64,
    /// Planned failover: how long the target may take to catch up with the fenced source.
    pub max_lag_wait: Duration,
    /// Planned failover: how long to keep killing sessions on the fenced source.
    pub drain_timeout: Duration,
    pub on_cooldown: OnCooldown,
    /// Emergency failover: how long the candidate may apply its relay log.
    pub relay_drain_budget: Duration,
    /// How often a blocked (diverged) recovery is re-checked.
    pub divergence_recheck: Duration,
    /// Minimum time between two re-asserts of a fenced primary.
    pub reassert_interval: Duration,
    /// Deadline for best-effort actions against sites that are not answering.
    pub best_effort_deadline: Duration,
    /// Longest single `WAIT_FOR_EXECUTED_GTID_SET` during a planned failover.
    pub gtid_wait_step: Duration,
    /// A sidecar's report of its MySQL counts only while its probe is at most this old
    /// (three of the sidecar's default 5 s checks): an older one says nothing about now.
    pub sidecar_report_max_age: Duration,
}

impl Default for GroupPolicy {
    fn default() -> Self {
        Self {
            sites: Vec::new(),
            failure_threshold: 3,
            recovery_threshold: 2,
            refused_threshold: 2,
            fast_repoll: Duration::from_millis(100),
            failover_cooldown: Duration::from_secs(300),
            site_priorities: Vec::new(),
            max_lag_seconds: 300,
            max_lag_wait: Duration::from_secs(300),
            drain_timeout: Duration::from_secs(30),
            on_cooldown: OnCooldown::Reject,
            relay_drain_budget: Duration::from_secs(30),
            divergence_recheck: Duration::from_secs(30),
            reassert_interval: Duration::from_secs(300),
            best_effort_deadline: Duration::from_secs(1),
            gtid_wait_step: Duration::from_secs(1),
            sidecar_report_max_age: Duration::from_secs(15),
        }
    }
}

impl GroupPolicy {
    /// The reference defaults for these sites.
    pub fn with_sites(sites: Vec<SitePolicy>) -> Self {
        Self {
            sites,
            ..Self::default()
        }
    }

    pub fn site(&self, name: &str) -> Option<&SitePolicy> {
        self.sites.iter().find(|s| s.name == name)
    }

    pub fn role(&self, name: &str) -> Option<SiteRole> {
        self.site(name).map(|s| s.role)
    }

    /// The site replicas reach at `host:port`, if it is one of ours.
    pub fn site_at(&self, host: &str, port: u16) -> Option<&SitePolicy> {
        let wanted = format!("{host}:{port}");
        self.sites
            .iter()
            .find(|s| s.address.eq_ignore_ascii_case(&wanted))
    }

    /// Rank of `name` in `sitePriorities` (unlisted sites after every listed one), then
    /// declaration order: the tie-break key for candidate ranking.
    pub fn tie_break_key(&self, name: &str) -> (usize, usize) {
        let priority = self
            .site_priorities
            .iter()
            .position(|p| p == name)
            .unwrap_or(usize::MAX);
        let declared = self
            .sites
            .iter()
            .position(|s| s.name == name)
            .unwrap_or(usize::MAX);
        (priority, declared)
    }
}
