//! Regressions found by the simulator.

use super::*;

#[test]
fn intruders_are_fenced_even_in_a_poll_that_fences_a_non_candidate() {
    let mut h = Harness::healthy(trio());
    let d = h.poll(vec![
        writable("iad", "iad:1-10"),
        writable("pdx", "iad:1-10,pdx:1"),
        replica("sea", "iad", "iad:1-10"),
        writable("dr", "iad:1-10"),
    ]);
    let fenced: Vec<String> = kinds(&d)
        .into_iter()
        .filter(|k| k.starts_with("fence:"))
        .collect();
    assert_eq!(fenced, vec!["fence:dr", "fence:pdx"]);
    assert_eq!(promotes(&d), None);
}

#[test]
fn planned_rollback_and_failover_never_share_a_decision() {
    let mut policy = trio();
    policy.failure_threshold = 1;
    let mut h = Harness::healthy(policy);
    h.request(h.steady_observations("iad:1-10"), plan("pdx"));
    // Fenced; then pdx stops answering: roll back, and do not promote sea in the same
    // breath (iad is about to be writable again).
    let d = h.poll(vec![
        fenced("iad", "iad:1-10"),
        down("pdx", ProbeFailure::Timeout),
        replica("sea", "iad", "iad:1-10"),
        replica("dr", "iad", "iad:1-10"),
    ]);
    assert_eq!(kinds(&d), vec!["unfence:iad"]);
    assert_eq!(
        d.status.planned_failover.and_then(|p| p.reason),
        Some(PlannedReason::TargetUnhealthy)
    );
}

#[test]
fn errant_transactions_on_a_healthy_replica_are_reported() {
    let mut h = Harness::healthy(pair());
    // pdx replicates fine but holds a transaction written on it directly (pdx:1). The
    // primary's own newest commit (iad:11) racing the probe is not errant.
    let d = h.poll(vec![
        writable("iad", "iad:1-10"),
        replica("pdx", "iad", "iad:1-11,pdx:1"),
    ]);
    let loss = d
        .events
        .iter()
        .find(|e| e.reason == EventReason::DataLossDetected);
    assert_eq!(loss.and_then(|e| e.gtid.clone()), Some(g("pdx:1")));
    assert_eq!(
        d.status.site("pdx").and_then(|s| s.divergent_gtid.clone()),
        Some(g("pdx:1"))
    );
    // Reported once, not every poll; cleared once the primary holds it.
    let d = h.poll(vec![
        writable("iad", "iad:1-11"),
        replica("pdx", "iad", "iad:1-11,pdx:1"),
    ]);
    assert!(
        !d.events
            .iter()
            .any(|e| e.reason == EventReason::DataLossDetected)
    );
    let d = h.poll(vec![
        writable("iad", "iad:1-11,pdx:1"),
        replica("pdx", "iad", "iad:1-11,pdx:1"),
    ]);
    assert_eq!(
        d.status.site("pdx").map(|s| s.divergent_transaction_count),
        Some(0)
    );
}

#[test]
fn planned_failover_stops_when_the_source_restarts_writable() {
    let mut h = Harness::healthy(pair());
    h.request(h.steady_observations("iad:1-10"), plan("pdx"));
    let d = h.poll(vec![
        fenced("iad", "iad:1-12"),
        replica("pdx", "iad", "iad:1-11"),
    ]);
    let ids: Vec<ActionId> = d.actions.iter().map(|a| a.id).collect();
    let not_caught_up = vec![
        ok(ids[0], ActionValue::GtidWait { reached: false }),
        ActionOutcome {
            id: ids[1],
            result: OutcomeResult::NotRun,
        },
    ];
    let d = h.poll_with(
        vec![
            writable("iad", "iad:1-13"),
            replica("pdx", "iad", "iad:1-11"),
        ],
        not_caught_up,
        vec![],
    );
    assert_eq!(promotes(&d), None);
    let planned = d.status.planned_failover.expect("planned");
    assert_eq!(
        (planned.phase, planned.reason),
        (PlannedPhase::Failed, Some(PlannedReason::SourceCrashed))
    );
}
