//! The planned-failover phase machine.

use super::*;

#[test]
fn planned_failover_loses_nothing() {
    let mut h = Harness::healthy(pair());
    let d = h.request(h.steady_observations("iad:1-10"), plan("pdx"));
    assert_eq!(kinds(&d), vec!["fence:iad", "kill_connections:iad"]);
    assert!(d.actions[0].fatal);
    assert_eq!(
        d.status.planned_failover.as_ref().map(|p| p.phase),
        Some(PlannedPhase::Draining)
    );
    // Fenced at iad:1-12 (two late commits); pdx has 1-11 so far: wait, then promote.
    let d = h.poll(vec![
        fenced("iad", "iad:1-12"),
        replica("pdx", "iad", "iad:1-11"),
    ]);
    assert_eq!(kinds(&d), vec!["wait_for_gtid:pdx", "promote:pdx"]);
    assert_eq!(
        d.actions[0].kind,
        ActionKind::WaitForGtid {
            site: "pdx".to_owned(),
            gtid: g("iad:1-12"),
            timeout: h.policy.gtid_wait_step
        }
    );
    let planned = d.status.planned_failover.clone().expect("planned");
    assert_eq!(planned.source_gtid_at_fence, Some(g("iad:1-12")));
    let ids: Vec<ActionId> = d.actions.iter().map(|a| a.id).collect();
    let d = h.poll_with(
        vec![fenced("iad", "iad:1-12"), writable("pdx", "iad:1-12")],
        vec![
            ok(ids[0], ActionValue::GtidWait { reached: true }),
            ok(
                ids[1],
                ActionValue::Promoted {
                    gtid: g("iad:1-12"),
                },
            ),
        ],
        vec![],
    );
    let planned = d.status.planned_failover.clone().expect("planned");
    assert_eq!(planned.phase, PlannedPhase::Succeeded);
    assert_eq!(planned.transactions_lost, Some(0));
    assert_eq!(h.state.active_site.as_deref(), Some("pdx"));
    assert!(reasons(&d).contains(&EventReason::PlannedFailoverCompleted));
    assert_eq!(
        h.state.last_failover.as_ref().map(|r| r.kind),
        Some(FailoverKind::Planned)
    );
}

#[test]
fn planned_failover_times_out_and_unfences_the_source() {
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
        vec![fenced("iad", "iad:1-12"), replica("pdx", "iad", "iad:1-11")],
        not_caught_up,
        vec![],
    );
    assert_eq!(
        kinds(&d),
        vec!["wait_for_gtid:pdx", "promote:pdx"],
        "keeps waiting"
    );
    h.advance(h.policy.max_lag_wait);
    let ids: Vec<ActionId> = d.actions.iter().map(|a| a.id).collect();
    let d = h.poll_with(
        vec![fenced("iad", "iad:1-12"), replica("pdx", "iad", "iad:1-11")],
        vec![
            ok(ids[0], ActionValue::GtidWait { reached: false }),
            ActionOutcome {
                id: ids[1],
                result: OutcomeResult::NotRun,
            },
        ],
        vec![],
    );
    assert_eq!(kinds(&d), vec!["unfence:iad"]);
    let planned = d.status.planned_failover.clone().expect("planned");
    assert_eq!(
        (planned.phase, planned.reason),
        (PlannedPhase::Failed, Some(PlannedReason::LagTimeout))
    );
    assert_eq!(h.state.active_site.as_deref(), Some("iad"));
    assert!(
        h.state.last_failover.is_none(),
        "a failed switchover starts no cooldown"
    );
}

#[test]
fn planned_failover_validation_reasons() {
    let cases: [(&str, Option<PlannedReason>); 3] = [
        ("nowhere", Some(PlannedReason::UnknownSite)),
        ("dr", Some(PlannedReason::TargetUnhealthy)),
        ("pdx", None),
    ];
    for (target, reason) in cases {
        let mut h = Harness::healthy(trio());
        let d = h.request(h.steady_observations("iad:1-10"), plan(target));
        let planned = d.status.planned_failover.clone().expect("planned");
        assert_eq!(planned.reason, reason, "{target}");
    }
    // Target not replicating: unhealthy.
    let mut h = Harness::healthy(pair());
    let d = h.request(
        vec![writable("iad", "iad:1-10"), fenced("pdx", "iad:1-10")],
        plan("pdx"),
    );
    assert_eq!(
        d.status.planned_failover.and_then(|p| p.reason),
        Some(PlannedReason::TargetUnhealthy)
    );
    // Already active: skipped.
    let mut h = Harness::healthy(pair());
    let d = h.request(h.steady_observations("iad:1-10"), plan("iad"));
    assert!(reasons(&d).contains(&EventReason::PlannedFailoverSkipped));
    assert!(d.actions.is_empty());
}

#[test]
fn planned_failover_honours_the_cooldown_by_reject_or_defer() {
    for on_cooldown in [OnCooldown::Reject, OnCooldown::Defer] {
        let mut policy = pair();
        policy.on_cooldown = on_cooldown;
        let mut h = Harness::healthy(policy);
        h.state.last_failover = Some(FailoverRecord {
            at: h.now,
            target: "iad".to_owned(),
            promotion_gtid: None,
            kind: FailoverKind::Emergency,
            previous: None,
        });
        let d = h.request(h.steady_observations("iad:1-10"), plan("pdx"));
        let planned = d.status.planned_failover.clone().expect("planned");
        match on_cooldown {
            OnCooldown::Reject => {
                assert_eq!(planned.reason, Some(PlannedReason::CooldownActive));
                assert!(d.actions.is_empty());
            }
            OnCooldown::Defer => {
                assert_eq!(planned.phase, PlannedPhase::Deferred);
                assert!(planned.retry_after.is_some());
                h.advance(h.policy.failover_cooldown);
                let d = h.poll(h.steady_observations("iad:1-10"));
                assert_eq!(
                    kinds(&d),
                    vec!["fence:iad", "kill_connections:iad"],
                    "resumes after cooldown"
                );
            }
        }
    }
}

#[test]
fn second_planned_request_is_a_concurrent_operation() {
    let mut h = Harness::healthy(trio());
    h.request(h.steady_observations("iad:1-10"), plan("pdx"));
    let d = h.request(
        vec![
            fenced("iad", "iad:1-10"),
            replica("pdx", "iad", "iad:1-9"),
            replica("sea", "iad", "iad:1-10"),
            replica("dr", "iad", "iad:1-10"),
        ],
        plan("sea"),
    );
    assert!(
        d.events
            .iter()
            .any(|e| e.reason == EventReason::PlannedFailoverRejected
                && e.message.starts_with("ConcurrentOperation"))
    );
    assert_eq!(
        d.status.planned_failover.map(|p| p.target),
        Some("pdx".to_owned())
    );
}

#[test]
fn cancel_while_draining_unfences_the_source() {
    let mut h = Harness::healthy(pair());
    h.request(h.steady_observations("iad:1-10"), plan("pdx"));
    let d = h.request(
        vec![fenced("iad", "iad:1-10"), replica("pdx", "iad", "iad:1-9")],
        Request::CancelPlanned,
    );
    assert_eq!(kinds(&d), vec!["unfence:iad"]);
    assert_eq!(
        d.status.planned_failover.and_then(|p| p.reason),
        Some(PlannedReason::Cancelled)
    );
}

/// Right after a failover the old primary is still rejoining, so it is not yet a healthy
/// target; a switchover back inside the cooldown must say "cooldown", not "unhealthy".
#[test]
fn the_cooldown_is_reported_before_target_health() {
    let mut h = Harness::healthy(pair());
    h.state.last_failover = Some(FailoverRecord {
        at: h.now,
        target: "iad".to_owned(),
        promotion_gtid: None,
        kind: FailoverKind::Emergency,
        previous: None,
    });
    let d = h.request(
        vec![writable("iad", "iad:1-10"), fenced("pdx", "iad:1-10")],
        plan("pdx"),
    );
    let planned = d.status.planned_failover.clone().expect("planned");
    assert_eq!(planned.reason, Some(PlannedReason::CooldownActive));
    assert!(
        d.actions
            .iter()
            .all(|a| !matches!(a.kind, ActionKind::Promote { .. }))
    );
}

/// Clients that reconnect at once must not hold the switchover for `drainTimeout`: sessions
/// opened after the fence (larger connection ids) cannot write to a read-only server, so
/// the drain waits only for the sessions that predate it.
#[test]
fn draining_waits_for_pre_fence_sessions_only() {
    let mut h = Harness::healthy(pair());
    let d = h.request(h.steady_observations("iad:1-10"), plan("pdx"));
    let kill = d.actions[1].id;
    let fence = d.actions[0].id;
    let sweep = |killed, newest_id, older| {
        ActionValue::Killed(SessionSweep {
            killed,
            newest_id,
            older,
        })
    };
    let draining = vec![fenced("iad", "iad:1-12"), replica("pdx", "iad", "iad:1-11")];
    // The pass at the fence killed three sessions, the newest with id 42.
    let d = h.poll_with(
        draining.clone(),
        vec![
            ok(fence, ActionValue::Done),
            ok(kill, sweep(3, Some(42), 0)),
        ],
        vec![],
    );
    assert_eq!(
        d.actions.iter().map(|a| a.kind.clone()).collect::<Vec<_>>(),
        vec![ActionKind::KillConnections {
            site: "iad".to_owned(),
            opened_by: Some(42),
        }],
        "the next pass carries the watermark"
    );
    assert_eq!(
        h.state.planned.as_ref().and_then(|p| p.session_watermark),
        Some(42)
    );
    assert_eq!(
        d.status.planned_failover.as_ref().map(|p| p.phase),
        Some(PlannedPhase::Draining)
    );

    // One session from before the fence is still rolling back: keep draining.
    h.advance(Duration::from_secs(1));
    let kill = d.actions[0].id;
    let d = h.poll_with(
        draining.clone(),
        vec![ok(kill, sweep(4, Some(57), 1))],
        vec![],
    );
    assert_eq!(kinds(&d), vec!["kill_connections:iad"]);
    assert_eq!(
        d.status.planned_failover.as_ref().map(|p| p.phase),
        Some(PlannedPhase::Draining)
    );

    // Only reconnected sessions are left: move on long before drainTimeout.
    h.advance(Duration::from_secs(1));
    let kill = d.actions[0].id;
    let d = h.poll_with(draining, vec![ok(kill, sweep(5, Some(63), 0))], vec![]);
    assert_eq!(kinds(&d), vec!["wait_for_gtid:pdx", "promote:pdx"]);
    assert!(Duration::from_secs(2) < h.policy.drain_timeout);
}
