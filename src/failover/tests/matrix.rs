//! The cross-site matrix, rule by rule, and candidate ranking.

use super::*;

#[test]
fn healthy_pair_is_ready() {
    let h = Harness::healthy(pair());
    let status = &h.last.as_ref().expect("polled").status;
    assert_eq!(status.active_site.as_deref(), Some("iad"));
    let ready = status
        .condition(ConditionType::Ready)
        .expect("Ready condition");
    assert!(ready.is_true(), "{ready:?}");
    assert_eq!(ready.reason, "Healthy");
}

#[test]
fn writable_non_candidate_is_fenced_at_once_and_nothing_else_happens() {
    let mut h = Harness::healthy(trio());
    // The primary is down (confirmed) and dr is writable: fence dr, do not promote.
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
        replica("sea", "iad", "iad:1-10"),
        replica("dr", "iad", "iad:1-10"),
    ]);
    let d = h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
        replica("sea", "iad", "iad:1-10"),
        writable("dr", "iad:1-10"),
    ]);
    assert_eq!(kinds(&d), vec!["fence:dr", "kill_connections:dr"]);
    assert!(reasons(&d).contains(&EventReason::NonCandidateWritable));
    assert_eq!(
        d.status
            .condition(ConditionType::Degraded)
            .map(|c| c.reason.as_str()),
        Some("Degraded")
    );
}

#[test]
fn total_loss_alerts_once_and_acts_never() {
    let mut h = Harness::healthy(pair());
    let mut alerts = 0;
    for _ in 0..4 {
        let d = h.poll(vec![
            down("iad", ProbeFailure::Refused),
            down("pdx", ProbeFailure::Refused),
        ]);
        alerts += reasons(&d)
            .iter()
            .filter(|r| **r == EventReason::TotalLossDetected)
            .count();
        assert!(promotes(&d).is_none());
    }
    assert_eq!(alerts, 1, "alert on the transition, not every poll");
    let status = &h.last.as_ref().expect("polled").status;
    assert_eq!(
        status
            .condition(ConditionType::Degraded)
            .map(|c| c.reason.as_str()),
        Some("TotalLoss")
    );
}

#[test]
fn a_fresh_fenced_group_seeds_the_site_that_holds_everything() {
    let mut h = Harness::new(pair());
    // pdx is ahead: it is the seed even though iad is listed first.
    let d = h.poll(vec![fenced("iad", "iad:1-5"), fenced("pdx", "iad:1-7")]);
    assert_eq!(kinds(&d), vec!["promote:pdx"]);
    assert!(reasons(&d).contains(&EventReason::FailoverStarted));
    // Equal sets: declaration order picks the seed.
    let mut h = Harness::new(pair());
    let d = h.poll(vec![fenced("iad", ""), fenced("pdx", "")]);
    assert_eq!(kinds(&d), vec!["promote:iad"]);
}

#[test]
fn a_fresh_group_whose_sites_hold_transactions_of_their_own_is_never_elected() {
    let mut h = Harness::new(pair());
    for _ in 0..3 {
        let d = h.poll(vec![
            fenced("iad", "iad:1-6"),
            fenced("pdx", "iad:1-5,pdx:1"),
        ]);
        assert!(d.actions.is_empty(), "{:?}", kinds(&d));
        assert_eq!(
            d.status
                .condition(ConditionType::Degraded)
                .map(|c| c.reason.as_str()),
            Some("NoPrimary")
        );
    }
}

#[test]
fn a_group_with_history_is_not_bootstrapped_again() {
    let mut h = Harness::new(pair());
    h.state.active_site = Some("iad".to_owned());
    let d = h.poll(vec![fenced("iad", "iad:1-5"), fenced("pdx", "iad:1-7")]);
    assert_eq!(promotes(&d), None, "{:?}", kinds(&d));
}

#[test]
fn failover_sequence_fences_drains_promotes_and_records_after_confirmation() {
    let mut h = Harness::healthy(pair());
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    let d = h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    assert_eq!(
        kinds(&d),
        vec![
            "fence:iad",
            "kill_connections:iad",
            "drain_relay:pdx",
            "promote:pdx"
        ]
    );
    let fatal: Vec<bool> = d.actions.iter().map(|a| a.fatal).collect();
    assert_eq!(
        fatal,
        vec![false, false, false, true],
        "only the promote is fatal"
    );
    assert!(
        d.actions[0].deadline.is_some(),
        "best-effort fence of a dead site is bounded"
    );
    assert!(
        h.state.last_failover.is_none(),
        "not recorded before the promote outcome"
    );
    assert_eq!(h.state.active_site.as_deref(), Some("iad"));

    let promote_id = d.actions[3].id;
    let mut outcomes = h.all_ok();
    outcomes[3] = ok(
        promote_id,
        ActionValue::Promoted {
            gtid: g("iad:1-10"),
        },
    );
    let d = h.poll_with(
        vec![
            down("iad", ProbeFailure::Refused),
            writable("pdx", "iad:1-10"),
        ],
        outcomes,
        vec![],
    );
    assert!(reasons(&d).contains(&EventReason::FailoverExecuted));
    assert_eq!(h.state.active_site.as_deref(), Some("pdx"));
    let record = h.state.last_failover.clone().expect("recorded");
    assert_eq!(
        (record.target.as_str(), record.previous.as_deref()),
        ("pdx", Some("iad"))
    );
    assert_eq!(record.promotion_gtid, Some(g("iad:1-10")));
    assert!(kinds(&d).contains(&"run_hook:pdx".to_owned()));
}

#[test]
fn no_promotion_while_another_site_is_observed_writable() {
    let mut h = Harness::healthy(pair());
    h.poll(vec![
        down("iad", ProbeFailure::Timeout),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    h.poll(vec![
        down("iad", ProbeFailure::Timeout),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    // iad would now be unreachable, but this poll sees it writable again.
    let d = h.poll(vec![writable("iad", "iad:1-11"), fenced("pdx", "iad:1-10")]);
    assert_eq!(promotes(&d), None);
}

#[test]
fn ranking_prefers_freshness_then_priorities_then_declaration() {
    let mut policy = trio();
    policy.site_priorities = vec!["sea".to_owned(), "pdx".to_owned()];
    let cases = [
        // (pdx gtid, sea gtid, expected winner)
        ("iad:1-10", "iad:1-8", "pdx"),
        ("iad:1-8", "iad:1-10", "sea"),
        ("iad:1-10", "iad:1-10", "sea"),
    ];
    for (pdx, sea, winner) in cases {
        let mut h = Harness::healthy(policy.clone());
        let obs = |h: &Harness| {
            let _ = h;
            vec![
                down("iad", ProbeFailure::Refused),
                replica("pdx", "iad", pdx),
                replica("sea", "iad", sea),
                replica("dr", "iad", "iad:1-10"),
            ]
        };
        h.poll(obs(&h));
        let d = h.poll(obs(&h));
        assert_eq!(promotes(&d), Some(winner), "pdx={pdx} sea={sea}");
    }
    // Declaration order breaks the tie when priorities do not list either.
    let mut h = Harness::healthy(trio());
    let obs = vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-9"),
        replica("sea", "iad", "iad:1-9"),
        replica("dr", "iad", "iad:1-10"),
    ];
    h.poll(obs.clone());
    assert_eq!(
        promotes(&h.poll(obs)),
        Some("pdx"),
        "dr-only is never promoted, even freshest"
    );
}

#[test]
fn relay_log_counts_toward_freshness() {
    let mut h = Harness::healthy(trio());
    let mut sea = replica("sea", "iad", "iad:1-8");
    if let Ok(p) = &mut sea.result
        && let Some(r) = &mut p.replica
    {
        r.retrieved_gtid_set = g("iad:1-12");
    }
    let obs = vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
        sea,
        replica("dr", "iad", "iad:1-10"),
    ];
    h.poll(obs.clone());
    assert_eq!(promotes(&h.poll(obs)), Some("sea"));
}

#[test]
fn cooldown_blocks_a_second_automatic_failover() {
    let mut h = Harness::healthy(pair());
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    h.poll(vec![fenced("iad", "iad:1-10"), writable("pdx", "iad:1-10")]);
    h.poll(vec![fenced("iad", "iad:1-10"), writable("pdx", "iad:1-10")]);
    assert_eq!(h.state.active_site.as_deref(), Some("pdx"));
    // pdx dies within the cooldown: blocked, reported once.
    h.poll(vec![
        replica("iad", "pdx", "iad:1-10"),
        down("pdx", ProbeFailure::Refused),
    ]);
    let d = h.poll(vec![
        replica("iad", "pdx", "iad:1-10"),
        down("pdx", ProbeFailure::Refused),
    ]);
    assert_eq!(promotes(&d), None);
    assert!(reasons(&d).contains(&EventReason::FailoverBlockedByCooldown));
    let d = h.poll(vec![
        replica("iad", "pdx", "iad:1-10"),
        down("pdx", ProbeFailure::Refused),
    ]);
    assert!(
        !reasons(&d).contains(&EventReason::FailoverBlockedByCooldown),
        "reported once"
    );
    h.advance(h.policy.failover_cooldown);
    let d = h.poll(vec![
        replica("iad", "pdx", "iad:1-10"),
        down("pdx", ProbeFailure::Refused),
    ]);
    assert_eq!(promotes(&d), Some("iad"));
}

#[test]
fn returning_writable_old_primary_is_fenced_within_one_poll() {
    let mut h = Harness::healthy(pair());
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        writable("pdx", "iad:1-10"),
    ]);
    let d = h.poll(vec![
        writable("iad", "iad:1-11"),
        writable("pdx", "iad:1-10,pdx:1"),
    ]);
    assert_eq!(kinds(&d), vec!["fence:iad", "kill_connections:iad"]);
    assert_eq!(
        d.status
            .condition(ConditionType::Degraded)
            .map(|c| c.reason.as_str()),
        Some("SplitBrain")
    );
    assert!(reasons(&d).contains(&EventReason::SplitBrainDetected));
}

#[test]
fn split_brain_without_history_follows_priorities_or_only_alerts() {
    let both = || vec![writable("iad", "iad:1-3"), writable("pdx", "pdx:1-2")];
    let mut h = Harness::new(pair());
    h.poll(both());
    let d = h.poll(both());
    assert!(
        d.actions.is_empty(),
        "no priorities: alert only, {:?}",
        kinds(&d)
    );
    assert!(
        h.state
            .raised_alerts
            .iter()
            .any(|a| a.0 == EventReason::SplitBrainDetected)
    );

    let mut policy = pair();
    policy.site_priorities = vec!["pdx".to_owned()];
    let mut h = Harness::new(policy);
    // Raw writable observations are facts: the winner is chosen on the first poll.
    let d = h.poll(both());
    assert_eq!(kinds(&d), vec!["fence:iad", "kill_connections:iad"]);
    assert_eq!(h.state.active_site.as_deref(), Some("pdx"));
    assert!(reasons(&d).contains(&EventReason::SplitBrainResolved));
    let d = h.poll(both());
    assert_eq!(
        kinds(&d),
        vec!["fence:iad", "kill_connections:iad"],
        "fenced every poll"
    );
}

#[test]
fn fenced_primary_is_reasserted_when_it_holds_everything() {
    let mut h = Harness::healthy(pair());
    let d = h.poll(vec![
        fenced("iad", "iad:1-10"),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    assert_eq!(kinds(&d), vec!["unfence:iad"]);
    // Rate-limited: not again right away.
    let d = h.poll(vec![
        fenced("iad", "iad:1-10"),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    assert!(d.actions.is_empty());

    // A peer holding more than the authority got it while not primary: that is recorded
    // as divergence (never merged), and then the authority is restored.
    let mut h = Harness::healthy(pair());
    let d = h.poll(vec![
        fenced("iad", "iad:1-10"),
        replica("pdx", "iad", "iad:1-10,pdx:1"),
    ]);
    let loss = d
        .events
        .iter()
        .find(|e| e.reason == EventReason::DataLossDetected);
    assert_eq!(loss.and_then(|e| e.gtid.clone()), Some(g("pdx:1")));
    assert_eq!(kinds(&d), vec!["unfence:iad"]);
}

fn sidecar(site: &str, read_only: bool, age_secs: u64) -> SidecarReport {
    SidecarReport {
        site: site.to_owned(),
        read_only,
        super_read_only: read_only,
        age: Duration::from_secs(age_secs),
    }
}

fn iad_down_twice(h: &mut Harness) -> Decision {
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ])
}

#[test]
fn an_unreachable_site_its_sidecar_reports_writable_is_never_failed_over_past() {
    let mut h = Harness::healthy(pair());
    h.sidecars = vec![sidecar("iad", false, 1)];
    let d = iad_down_twice(&mut h);
    assert_eq!(promotes(&d), None, "{:?}", kinds(&d));
    assert!(
        d.actions.is_empty(),
        "nothing is fenced either: {:?}",
        kinds(&d)
    );
    assert!(reasons(&d).contains(&EventReason::UnreachableSiteWritable));
    assert_eq!(
        h.state.site("iad").map(|t| t.state),
        Some(SiteState::Unreachable)
    );
    assert_eq!(h.state.active_site.as_deref(), Some("iad"));
    // It stays held back, alerting once, for as long as the sidecar says so.
    for _ in 0..5 {
        let d = iad_down_twice(&mut h);
        assert_eq!(promotes(&d), None);
        assert!(!reasons(&d).contains(&EventReason::UnreachableSiteWritable));
    }
    // The sidecar now reports the site fenced: the failover goes ahead, and the event
    // records the confirmation.
    h.sidecars = vec![sidecar("iad", true, 1)];
    let d = h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    assert_eq!(promotes(&d), Some("pdx"), "{:?}", kinds(&d));
    let started = d
        .events
        .iter()
        .find(|e| e.reason == EventReason::FailoverStarted)
        .expect("FailoverStarted");
    assert!(
        started.message.contains("sidecar confirms fenced: iad"),
        "{}",
        started.message
    );
}

#[test]
fn a_stale_or_absent_sidecar_report_changes_nothing() {
    for reports in [vec![], vec![sidecar("iad", false, 16)]] {
        let mut h = Harness::healthy(pair());
        h.sidecars = reports.clone();
        let d = iad_down_twice(&mut h);
        assert_eq!(promotes(&d), Some("pdx"), "{reports:?}");
        assert!(!reasons(&d).contains(&EventReason::UnreachableSiteWritable));
        let started = d
            .events
            .iter()
            .find(|e| e.reason == EventReason::FailoverStarted)
            .expect("FailoverStarted");
        assert!(!started.message.contains("sidecar"), "{}", started.message);
    }
}

#[test]
fn our_own_probe_outranks_the_sidecar_report() {
    // A report for a site we probed this poll is ignored: a sidecar claiming "writable"
    // for a site we see read-only neither alerts nor blocks anything.
    let mut h = Harness::healthy(pair());
    h.sidecars = vec![sidecar("pdx", false, 0)];
    let d = h.poll(h.steady_observations("iad:1-10"));
    assert!(!reasons(&d).contains(&EventReason::UnreachableSiteWritable));
    // And a sidecar never promotes: with every site read-only and reachable, a report
    // of "writable" for nobody-we-cannot-see leaves the no-primary verdict alone.
    let mut h = Harness::healthy(pair());
    h.sidecars = vec![sidecar("pdx", false, 0), sidecar("iad", false, 0)];
    let d = h.poll(vec![
        fenced("iad", "iad:1-10"),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    assert_eq!(promotes(&d), None);
    assert!(!reasons(&d).contains(&EventReason::UnreachableSiteWritable));
}

#[test]
fn a_sidecar_reporting_writable_behind_a_live_primary_is_alerted() {
    // pdx cannot be probed but says it is writable while iad is the primary: a possible
    // split brain we cannot fence from here; it is reported, never acted on.
    let mut h = Harness::healthy(pair());
    h.sidecars = vec![sidecar("pdx", false, 2)];
    let mut alerted_at = None;
    for n in 1..=3 {
        let d = h.poll(vec![
            writable("iad", "iad:1-10"),
            down("pdx", ProbeFailure::Timeout),
        ]);
        if reasons(&d).contains(&EventReason::UnreachableSiteWritable) {
            alerted_at.get_or_insert(n);
        }
        assert!(
            kinds(&d).iter().all(|k| !k.starts_with("fence")),
            "{:?}",
            kinds(&d)
        );
    }
    // Not on the first blip: once pdx is debounced unreachable (three timeouts).
    assert_eq!(alerted_at, Some(3));
}
