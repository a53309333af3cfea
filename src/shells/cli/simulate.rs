//! `bloodraven simulate`: seeded simulation campaigns against the real decision core.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use crate::sim::{SimConfig, campaign, run};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// How many seeds to run.
    #[arg(long, default_value_t = 10_000)]
    pub seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    /// Replay one seed and print its full trace (a failing seed reproduces exactly).
    #[arg(long, conflicts_with_all = ["seeds", "start"])]
    pub replay: Option<u64>,
}

#[allow(clippy::cast_precision_loss)] // seed counts stay far below 2^52
pub fn run_simulate(args: &SimulateArgs) -> ExitCode {
    let config = SimConfig::default();
    if let Some(seed) = args.replay {
        let report = run(seed, &config);
        for line in &report.trace {
            println!("{line}");
        }
        return match report.violation {
            None => {
                println!("seed {seed}: every invariant held");
                ExitCode::SUCCESS
            }
            Some(v) => {
                println!("seed {seed}: VIOLATION {v:?}");
                ExitCode::from(1)
            }
        };
    }
    let started = Instant::now();
    let report = campaign(args.start, args.seeds, &config);
    let secs = started.elapsed().as_secs_f64();
    let t = &report.totals;
    println!(
        "{} seeds from {} in {secs:.1} s ({:.0} seeds/s): {} faults, {} failovers, {} planned, {} divergences reported, {} controller restarts",
        report.runs,
        report.start_seed,
        report.runs as f64 / secs.max(f64::EPSILON),
        t.faults,
        t.failovers_executed,
        t.planned_completed,
        t.divergences_reported,
        t.controller_restarts
    );
    for failure in &report.failures {
        println!(
            "seed {} FAILED: {:?} (replay: bloodraven simulate --replay {})",
            failure.seed, failure.violation, failure.seed
        );
    }
    println!(
        "{} passed, {} failed",
        report.runs - report.failures.len() as u64,
        report.failures.len()
    );
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
