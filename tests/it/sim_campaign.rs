//! The deterministic simulation as a test: many seeds, every invariant, exact replays.

use bloodraven::sim::{self, SimConfig};

/// Shows the first failing seeds in full so a failure can be replayed and debugged.
fn describe(report: &sim::CampaignReport) -> String {
    let mut out = format!(
        "{} of {} seeds failed (from seed {})\n",
        report.failures.len(),
        report.runs,
        report.start_seed
    );
    let mut kinds: Vec<String> = report
        .failures
        .iter()
        .map(|f| {
            let v = f
                .violation
                .as_ref()
                .map(|v| format!("{} {}", v.invariant, v.detail));
            format!("seed {}: {}", f.seed, v.unwrap_or_default())
        })
        .collect();
    kinds.truncate(40);
    out.push_str(&kinds.join("\n"));
    out.push('\n');
    for failure in report.failures.iter().take(3) {
        out.push_str(&format!("--- seed {} ---\n", failure.seed));
        let tail = failure.trace.len().saturating_sub(60);
        for line in &failure.trace[tail..] {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn a_thousand_seeds_keep_every_invariant() {
    let config = SimConfig::default();
    let report = sim::campaign(1, 1_000, &config);
    assert_eq!(report.runs, 1_000);
    assert!(report.failures.is_empty(), "{}", describe(&report));
    // The runs must actually exercise failovers, or the invariants prove nothing.
    assert!(
        report.total_promotions > 500,
        "only {} promotions",
        report.total_promotions
    );
    assert!(
        report.total_faults > 5_000,
        "only {} faults",
        report.total_faults
    );
}

#[test]
fn a_seed_replays_exactly() {
    let config = SimConfig::default();
    for seed in [7, 4242, 99_999] {
        let first = sim::run(seed, &config);
        let second = sim::run(seed, &config);
        assert_eq!(first, second, "seed {seed} diverged between runs");
        assert!(!first.trace.is_empty());
    }
    assert_ne!(sim::run(1, &config).trace, sim::run(2, &config).trace);
}

#[test]
fn zz_debug_dump() {
    let Ok(seed) = std::env::var("SIM_SEED") else {
        return;
    };
    let report = sim::run(seed.parse().unwrap(), &SimConfig::default());
    std::fs::write("/tmp/sim_trace.txt", report.trace.join("\n")).unwrap();
}
