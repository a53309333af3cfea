//! A deterministic, seeded simulation of MySQL sites on a fake clock that drives the real
//! decision core and checks safety invariants on every step.
//!
//! One run: a group starts healthy; during the fault window, faults are drawn from the
//! seed (crashes that come back writable or fenced, hangs, one- and two-way partitions,
//! replication stalls, ambiguous and failed mutations, controller restarts, planned
//! failovers and reclone requests) while clients write to every writable site. Then the
//! faults stop and the group must settle within a bounded time. Every step checks the
//! invariants in [`invariants`]. The same seed always produces the same trace.

mod controller;
mod faults;
mod invariants;
mod rng;
mod run;
mod world;

use std::time::Duration;

pub use invariants::{Invariant, Violation};
pub use run::run;

use crate::failover::{GroupPolicy, SitePolicy, SiteRole};

/// Knobs of a simulation run. Probabilities are in parts per million.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    pub policy: GroupPolicy,
    pub tick: Duration,
    pub poll_interval: Duration,
    /// A fault-free start, so the engine adopts the initial primary (an all-read-only
    /// group with no history is never auto-elected, by design).
    pub warmup: Duration,
    /// Faults are injected only during this window after the warm-up.
    pub fault_window: Duration,
    /// How long the group may take to settle once faults stop.
    pub settle_budget: Duration,
    /// After settling, how long it must stay settled.
    pub settled_tail: Duration,
    /// Chance per tick that a new fault starts.
    pub fault_per_tick: u64,
    pub max_fault_duration: Duration,
    /// Chance per tick that a client writes to each writable site.
    pub write_per_tick: u64,
    /// Chance that a committed write is acknowledged to the client.
    pub ack: u64,
    /// Chance per tick that a replica applies its relay log.
    pub apply_per_tick: u64,
    /// Chance a mutation is applied but reports an error.
    pub ambiguous_action: u64,
    /// Chance a mutation (other than a fence) fails without being applied.
    pub failed_action: u64,
    /// Chance a probe of a healthy site times out anyway (during the fault window).
    pub probe_blip: u64,
    /// Chance per tick of a planned-failover request during the fault window.
    pub planned_per_tick: u64,
    /// Chance per tick of a reclone request for a random site during the fault window.
    pub reclone_per_tick: u64,
    /// How long after a leader change the new leader starts acting (the lease duration).
    pub lease_duration: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        let site = |name: &str, role| SitePolicy {
            name: name.to_owned(),
            role,
            address: format!("{name}:3306"),
        };
        let mut policy = GroupPolicy::with_sites(vec![
            site("iad", SiteRole::PrimaryCandidate),
            site("pdx", SiteRole::PrimaryCandidate),
            site("sea", SiteRole::DrOnly),
        ]);
        // Without priorities a split brain with no history is alert-only by design (no
        // rule can say which side's writes to keep), which no invariant could accept; the
        // alert-only tier is unit-tested instead.
        policy.site_priorities = vec!["iad".to_owned(), "pdx".to_owned()];
        policy.failover_cooldown = Duration::from_secs(30);
        policy.reassert_interval = Duration::from_secs(10);
        policy.divergence_recheck = Duration::from_secs(5);
        policy.max_lag_wait = Duration::from_secs(10);
        policy.drain_timeout = Duration::from_secs(2);
        Self {
            policy,
            tick: Duration::from_millis(100),
            poll_interval: Duration::from_secs(1),
            warmup: Duration::from_secs(5),
            fault_window: Duration::from_secs(60),
            settle_budget: Duration::from_secs(90),
            settled_tail: Duration::from_secs(10),
            fault_per_tick: 15_000,
            max_fault_duration: Duration::from_secs(15),
            write_per_tick: 300_000,
            ack: 970_000,
            apply_per_tick: 700_000,
            ambiguous_action: 30_000,
            failed_action: 30_000,
            probe_blip: 5_000,
            planned_per_tick: 1_500,
            reclone_per_tick: 1_000,
            lease_duration: Duration::from_secs(5),
        }
    }
}

/// Counters of one run (or, summed, of a campaign).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    pub ticks: u64,
    pub polls: u64,
    pub faults: u64,
    /// Promote actions that made a read-only site writable.
    pub promotions: u64,
    pub failovers_executed: u64,
    pub planned_completed: u64,
    pub divergences_reported: u64,
    pub reclones_completed: u64,
    pub controller_restarts: u64,
    /// Operator leader changes (a restart at the lease duration).
    pub leader_changes: u64,
    /// State writes refused as stale.
    pub refused_writes: u64,
    pub acknowledged_writes: u64,
    /// Acknowledged writes the engine reported as divergent or discarded.
    pub acknowledged_reported_lost: u64,
    /// Milliseconds from the end of faults to the first settled poll (the largest, when
    /// summed over a campaign).
    pub settled_after_ms: Option<u64>,
}

impl SimStats {
    fn add(&mut self, other: &SimStats) {
        self.ticks += other.ticks;
        self.polls += other.polls;
        self.faults += other.faults;
        self.promotions += other.promotions;
        self.failovers_executed += other.failovers_executed;
        self.planned_completed += other.planned_completed;
        self.divergences_reported += other.divergences_reported;
        self.reclones_completed += other.reclones_completed;
        self.controller_restarts += other.controller_restarts;
        self.leader_changes += other.leader_changes;
        self.refused_writes += other.refused_writes;
        self.acknowledged_writes += other.acknowledged_writes;
        self.acknowledged_reported_lost += other.acknowledged_reported_lost;
        self.settled_after_ms = self.settled_after_ms.max(other.settled_after_ms);
    }
}

/// The result of one seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimReport {
    pub seed: u64,
    pub violation: Option<Violation>,
    /// What happened, one line per fault, decision with effects, and violation.
    pub trace: Vec<String>,
    pub stats: SimStats,
}

/// The result of many seeds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignReport {
    pub start_seed: u64,
    pub runs: u64,
    /// Reports of the seeds that broke an invariant.
    pub failures: Vec<SimReport>,
    /// Counters summed over every run.
    pub totals: SimStats,
}

/// Runs `count` seeds from `start_seed`.
pub fn campaign(start_seed: u64, count: u64, config: &SimConfig) -> CampaignReport {
    let mut report = CampaignReport {
        start_seed,
        ..CampaignReport::default()
    };
    for seed in start_seed..start_seed.saturating_add(count) {
        let run = run(seed, config);
        report.runs += 1;
        report.totals.add(&run.stats);
        if run.violation.is_some() {
            report.failures.push(run);
        }
    }
    report
}
