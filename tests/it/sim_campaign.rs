//! The deterministic simulation as a test: many seeds, every invariant, exact replays.
//!
//! A failing seed is replayed with `bloodraven::sim::run(seed, &config)`; its `trace`
//! shows every fault, decision (with what each probe saw) and the broken invariant.

use std::fmt::Write as _;
use std::time::Duration;

use bloodraven::failover::{SitePolicy, SiteRole};
use bloodraven::sim::{self, CampaignReport, SimConfig};

/// The failing seeds, and the tail of the first few traces, for the assertion message.
fn describe(report: &CampaignReport) -> String {
    let mut out = format!(
        "{} of {} seeds failed (from seed {})\n",
        report.failures.len(),
        report.runs,
        report.start_seed
    );
    for failure in &report.failures {
        if let Some(v) = &failure.violation {
            let _ = writeln!(out, "seed {}: {} {}", failure.seed, v.invariant, v.detail);
        }
    }
    for failure in report.failures.iter().take(2) {
        let _ = writeln!(out, "--- seed {} ---", failure.seed);
        let tail = failure.trace.len().saturating_sub(40);
        for line in &failure.trace[tail..] {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

#[test]
fn a_thousand_seeds_keep_every_invariant() {
    let report = sim::campaign(1, 1_000, &SimConfig::default());
    assert_eq!(report.runs, 1_000);
    assert!(report.failures.is_empty(), "{}", describe(&report));
    // The runs must exercise every path, or the invariants prove little.
    let t = &report.totals;
    assert!(t.faults > 5_000, "{t:?}");
    assert!(t.failovers_executed > 500, "{t:?}");
    assert!(t.planned_completed > 20, "{t:?}");
    assert!(t.divergences_reported > 100, "{t:?}");
    assert!(t.reclones_completed > 100, "{t:?}");
    assert!(t.controller_restarts > 300, "{t:?}");
    assert!(t.leader_changes > 50, "{t:?}");
    assert!(t.refused_writes > 50, "{t:?}");
    assert!(t.acknowledged_reported_lost > 0, "{t:?}");
}

/// Three candidates and a reader, under far more frequent faults and injected errors.
#[test]
fn four_sites_under_harsh_faults_keep_every_invariant() {
    let site = |name: &str, role| SitePolicy {
        name: name.to_owned(),
        role,
        address: format!("{name}:3306"),
    };
    let mut config = SimConfig::default();
    config.policy.sites = vec![
        site("iad", SiteRole::PrimaryCandidate),
        site("pdx", SiteRole::PrimaryCandidate),
        site("sea", SiteRole::PrimaryCandidate),
        site("rdr", SiteRole::ReadOnly),
    ];
    config.policy.site_priorities = vec!["pdx".to_owned(), "sea".to_owned(), "iad".to_owned()];
    config.policy.failure_threshold = 1;
    config.policy.refused_threshold = 1;
    config.fault_per_tick = 60_000;
    config.ambiguous_action = 150_000;
    config.failed_action = 100_000;
    config.planned_per_tick = 5_000;
    config.probe_blip = 50_000;
    config.max_fault_duration = Duration::from_secs(30);
    let report = sim::campaign(10_000, 300, &config);
    assert!(report.failures.is_empty(), "{}", describe(&report));
    assert!(
        report.totals.failovers_executed > 300,
        "{:?}",
        report.totals
    );
}

#[test]
fn a_seed_replays_exactly() {
    let config = SimConfig::default();
    for seed in [7, 4242, 99_999] {
        let first = sim::run(seed, &config);
        let second = sim::run(seed, &config);
        assert_eq!(first, second, "seed {seed} diverged between runs");
        assert!(first.trace.len() > 5, "{:?}", first.trace);
    }
    assert_ne!(sim::run(1, &config).trace, sim::run(2, &config).trace);
}

/// The checks are not vacuous: a settle budget no group can meet (1 s after heavy faults)
/// is reported as `NoConvergence`, and the failing seed replays exactly.
#[test]
fn an_unsettled_group_is_reported_with_a_replayable_trace() {
    let config = SimConfig {
        settle_budget: Duration::from_secs(1),
        fault_per_tick: 200_000,
        ..SimConfig::default()
    };
    let report = sim::campaign(1, 50, &config);
    let failure = report
        .failures
        .first()
        .expect("a 1 s settle budget cannot be met");
    let violation = failure.violation.clone().expect("violation");
    assert_eq!(violation.invariant, sim::Invariant::NoConvergence);
    assert_eq!(
        sim::run(failure.seed, &config),
        *failure,
        "the failure replays exactly"
    );
    assert!(
        failure
            .trace
            .last()
            .is_some_and(|l| l.contains("VIOLATION"))
    );
}
