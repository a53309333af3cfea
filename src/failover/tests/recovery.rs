//! Old-primary recovery, reclone and source convergence.

use super::*;

#[test]
fn contained_old_primary_rejoins() {
    let mut h = after_failover();
    let d = h.poll(vec![
        fenced("iad", "iad:1-10"),
        writable("pdx", "iad:1-10,pdx:1-3"),
    ]);
    assert_eq!(kinds(&d), vec!["fence:iad", "kill_connections:iad"]);
    assert_eq!(
        d.status.site("iad").map(|s| s.recovery_state),
        Some(RecoveryLabel::RecoveryInProgress)
    );
    let d = h.poll(vec![
        fenced("iad", "iad:1-10"),
        writable("pdx", "iad:1-10,pdx:1-3"),
    ]);
    assert_eq!(
        d.actions.first().map(|a| a.kind.clone()),
        Some(ActionKind::ReplicateFrom {
            site: "iad".to_owned(),
            source_site: "pdx".to_owned(),
            reset: true
        })
    );
    let d = h.poll(vec![
        replica("iad", "pdx", "iad:1-10,pdx:1-3"),
        writable("pdx", "iad:1-10,pdx:1-3"),
    ]);
    assert!(reasons(&d).contains(&EventReason::RecoveryComplete));
    assert_eq!(
        d.status.site("iad").map(|s| s.recovery_state),
        Some(RecoveryLabel::None)
    );
}

#[test]
fn diverged_old_primary_is_recorded_kept_fenced_rechecked_and_rejoined_when_contained() {
    let mut h = after_failover();
    h.poll(vec![
        fenced("iad", "iad:1-12"),
        writable("pdx", "iad:1-10,pdx:1-3"),
    ]);
    let d = h.poll(vec![
        fenced("iad", "iad:1-12"),
        writable("pdx", "iad:1-10,pdx:1-3"),
    ]);
    let loss = d
        .events
        .iter()
        .find(|e| e.reason == EventReason::DataLossDetected)
        .expect("reported");
    assert_eq!(
        loss.gtid,
        Some(g("iad:11-12")),
        "GTID_SUBTRACT(old, new primary)"
    );
    let site = d.status.site("iad").expect("iad");
    assert_eq!(
        (site.divergent_transaction_count, site.recovery_state),
        (2, RecoveryLabel::RecoveryBlocked)
    );
    assert!(!kinds(&d).iter().any(|k| k.starts_with("replicate_from")));
    let pending = d
        .status
        .condition(ConditionType::RecoveryPending)
        .expect("condition");
    assert_eq!(
        (pending.is_true(), pending.reason.as_str()),
        (true, "DivergentTransactions")
    );
    assert!(promotes(&d).is_none());

    // Re-checked only every divergence_recheck; then the admin has replayed 11-12.
    let d = h.poll(vec![
        fenced("iad", "iad:1-12"),
        writable("pdx", "iad:1-12,pdx:1-3"),
    ]);
    assert!(d.actions.is_empty());
    h.advance(h.policy.divergence_recheck);
    let d = h.poll(vec![
        fenced("iad", "iad:1-12"),
        writable("pdx", "iad:1-12,pdx:1-3"),
    ]);
    assert!(kinds(&d).contains(&"replicate_from:iad".to_owned()));
}

#[test]
fn reclone_refuses_the_primary_and_clears_divergence() {
    let mut h = after_failover();
    h.poll(vec![
        fenced("iad", "iad:1-12"),
        writable("pdx", "iad:1-10,pdx:1-3"),
    ]);
    h.poll(vec![
        fenced("iad", "iad:1-12"),
        writable("pdx", "iad:1-10,pdx:1-3"),
    ]);
    let d = h.request(
        vec![
            fenced("iad", "iad:1-12"),
            writable("pdx", "iad:1-10,pdx:1-3"),
        ],
        Request::Reclone {
            site: "pdx".to_owned(),
        },
    );
    assert!(reasons(&d).contains(&EventReason::RecloneRejected));
    let d = h.request(
        vec![
            fenced("iad", "iad:1-12"),
            writable("pdx", "iad:1-10,pdx:1-3"),
        ],
        Request::Reclone {
            site: "iad".to_owned(),
        },
    );
    assert_eq!(kinds(&d), vec!["clone:iad"]);
    let requested = d
        .events
        .iter()
        .find(|e| e.reason == EventReason::RecloneRequested)
        .expect("event");
    assert_eq!(
        requested.gtid,
        Some(g("iad:11-12")),
        "what the clone discards is reported"
    );
    let d = h.poll(vec![
        replica("iad", "pdx", "iad:1-10,pdx:1-3"),
        writable("pdx", "iad:1-10,pdx:1-3"),
    ]);
    assert!(reasons(&d).contains(&EventReason::RecloneCompleted));
    assert_eq!(
        d.status.site("iad").map(|s| s.divergent_transaction_count),
        Some(0)
    );
}

#[test]
fn follower_on_the_wrong_source_is_repointed_only_under_containment() {
    let mut policy = trio();
    policy.sites.retain(|s| s.name != "dr");
    let mut h = Harness::healthy(policy.clone());
    h.state.active_site = Some("pdx".to_owned());
    // pdx is the primary; sea still replicates from iad.
    let obs = |sea: &str| {
        vec![
            replica("iad", "pdx", "iad:1-10"),
            writable("pdx", "iad:1-10,pdx:1-2"),
            replica("sea", "iad", sea),
        ]
    };
    h.poll(obs("iad:1-10"));
    let d = h.poll(obs("iad:1-10"));
    assert!(d.actions.iter().any(|a| a.kind
        == ActionKind::ReplicateFrom {
            site: "sea".to_owned(),
            source_site: "pdx".to_owned(),
            reset: false
        }));

    let mut h = Harness::healthy(policy);
    h.state.active_site = Some("pdx".to_owned());
    h.poll(obs("iad:1-11"));
    let d = h.poll(obs("iad:1-11"));
    assert!(
        !d.actions.iter().any(|a| a.kind.site() == "sea"),
        "{:?}",
        kinds(&d)
    );
    let sea = d.status.site("sea").expect("sea");
    assert_eq!(
        sea.source_convergence,
        Some(Convergence {
            state: ConvergenceState::Blocked,
            reason: ConvergenceReason::GtidDiverged
        })
    );
    assert_eq!(sea.divergent_gtid, Some(g("iad:11")));
}
