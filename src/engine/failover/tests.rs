//! Fixture → verdict table tests for the decision core, orchestrator style: each test builds
//! a topology, runs `decide`, and checks the actions, events and status it returns.

use std::time::Duration;

use super::*;
use crate::engine::gtid::GtidSet;
use crate::error::Category;

const UUIDS: [(&str, &str); 4] = [
    ("iad", "00000000-0000-0000-0000-00000000000a"),
    ("pdx", "00000000-0000-0000-0000-00000000000b"),
    ("sea", "00000000-0000-0000-0000-00000000000c"),
    ("dr", "00000000-0000-0000-0000-00000000000d"),
];

/// `g("iad:1-10,pdx:1-2")`: a GTID set with site names standing in for server UUIDs.
fn g(spec: &str) -> GtidSet {
    let mut text = spec.to_owned();
    for (site, uuid) in UUIDS {
        text = text.replace(&format!("{site}:"), &format!("{uuid}:"));
    }
    GtidSet::parse(&text).expect("test GTID spec")
}

fn site(name: &str, role: SiteRole) -> SitePolicy {
    SitePolicy {
        name: name.to_owned(),
        role,
        address: format!("{name}:3306"),
    }
}

fn pair() -> GroupPolicy {
    GroupPolicy::with_sites(vec![
        site("iad", SiteRole::PrimaryCandidate),
        site("pdx", SiteRole::PrimaryCandidate),
    ])
}

fn trio() -> GroupPolicy {
    GroupPolicy::with_sites(vec![
        site("iad", SiteRole::PrimaryCandidate),
        site("pdx", SiteRole::PrimaryCandidate),
        site("sea", SiteRole::PrimaryCandidate),
        site("dr", SiteRole::DrOnly),
    ])
}

fn probe(name: &str, read_only: bool, gtid: &str, source: Option<&str>) -> SiteObservation {
    SiteObservation {
        site: name.to_owned(),
        result: Ok(SiteProbe {
            server_uuid: UUIDS
                .iter()
                .find(|u| u.0 == name)
                .map_or("", |u| u.1)
                .to_owned(),
            read_only,
            super_read_only: read_only,
            gtid_executed: g(gtid),
            replica: source.map(|s| ReplicaStatus {
                source_host: s.to_owned(),
                source_port: 3306,
                io_running: true,
                sql_running: true,
                seconds_behind_source: Some(0),
                retrieved_gtid_set: g(gtid),
            }),
        }),
        elapsed: Duration::from_millis(2),
    }
}

fn writable(name: &str, gtid: &str) -> SiteObservation {
    probe(name, false, gtid, None)
}

fn replica(name: &str, source: &str, gtid: &str) -> SiteObservation {
    probe(name, true, gtid, Some(source))
}

/// Read-only with no replication channel: a fenced old primary.
fn fenced(name: &str, gtid: &str) -> SiteObservation {
    probe(name, true, gtid, None)
}

fn down(name: &str, failure: ProbeFailure) -> SiteObservation {
    SiteObservation {
        site: name.to_owned(),
        result: Err(failure),
        elapsed: Duration::from_secs(1),
    }
}

fn ok(id: ActionId, value: ActionValue) -> ActionOutcome {
    ActionOutcome {
        id,
        result: OutcomeResult::Ok { value },
    }
}

/// Drives `decide` poll by poll, 2 s apart, feeding outcomes back.
struct Harness {
    policy: GroupPolicy,
    state: EngineState,
    now: Timestamp,
    last: Option<Decision>,
}

impl Harness {
    fn new(policy: GroupPolicy) -> Self {
        Self {
            policy,
            state: EngineState::new(),
            now: Timestamp(1_000_000),
            last: None,
        }
    }

    fn poll_with(
        &mut self,
        observations: Vec<SiteObservation>,
        outcomes: Vec<ActionOutcome>,
        requests: Vec<Request>,
    ) -> Decision {
        self.now = self.now.plus(Duration::from_secs(2));
        let input = PollInput {
            observations,
            outcomes,
            requests,
        };
        let decision = decide(&self.state, &self.policy, &input, self.now);
        self.state = decision.state.clone();
        self.last = Some(decision.clone());
        decision
    }

    /// A poll where every previous action succeeded with a plain value.
    fn poll(&mut self, observations: Vec<SiteObservation>) -> Decision {
        let outcomes = self.all_ok();
        self.poll_with(observations, outcomes, Vec::new())
    }

    fn request(&mut self, observations: Vec<SiteObservation>, request: Request) -> Decision {
        let outcomes = self.all_ok();
        self.poll_with(observations, outcomes, vec![request])
    }

    fn all_ok(&self) -> Vec<ActionOutcome> {
        self.last.as_ref().map_or_else(Vec::new, |d| {
            d.actions
                .iter()
                .map(|a| ok(a.id, default_value(&a.kind)))
                .collect()
        })
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now.plus(d);
    }

    /// iad writable primary, pdx (and sea) replicating from it, until Healthy.
    fn healthy(policy: GroupPolicy) -> Self {
        let mut h = Self::new(policy);
        for _ in 0..3 {
            let obs = h.steady_observations("iad:1-10");
            h.poll(obs);
        }
        assert_eq!(h.state.active_site.as_deref(), Some("iad"));
        h
    }

    fn steady_observations(&self, gtid: &str) -> Vec<SiteObservation> {
        self.policy
            .sites
            .iter()
            .map(|s| {
                if s.name == "iad" {
                    writable("iad", gtid)
                } else {
                    replica(&s.name, "iad", gtid)
                }
            })
            .collect()
    }
}

fn default_value(kind: &ActionKind) -> ActionValue {
    match kind {
        ActionKind::Promote { .. } => ActionValue::Promoted {
            gtid: g("iad:1-10"),
        },
        ActionKind::KillConnections { .. } => ActionValue::Killed { count: 0 },
        ActionKind::DrainRelay { .. } => ActionValue::Drained {
            outcome: DrainResult::Drained,
        },
        ActionKind::WaitForGtid { .. } => ActionValue::GtidWait { reached: true },
        _ => ActionValue::Done,
    }
}

fn kinds(d: &Decision) -> Vec<String> {
    d.actions
        .iter()
        .map(|a| format!("{}:{}", a.kind.name(), a.kind.site()))
        .collect()
}

fn reasons(d: &Decision) -> Vec<EventReason> {
    d.events.iter().map(|e| e.reason).collect()
}

fn promotes(d: &Decision) -> Option<&str> {
    d.actions.iter().find_map(|a| match &a.kind {
        ActionKind::Promote { site } => Some(site.as_str()),
        _ => None,
    })
}

// ---- debounce ---------------------------------------------------------------------------

#[test]
fn one_refusal_is_a_blip_two_confirm_unreachable() {
    let mut h = Harness::healthy(pair());
    let d = h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    assert_eq!(
        h.state.site("iad").map(|t| t.state),
        Some(SiteState::Writable)
    );
    assert!(
        d.actions.is_empty(),
        "no action on one refusal: {:?}",
        kinds(&d)
    );
    assert_eq!(
        d.repoll_after,
        Some(h.policy.fast_repoll),
        "re-probe fast to confirm"
    );
    let d = h.poll(vec![
        down("iad", ProbeFailure::Refused),
        fenced("pdx", "iad:1-10"),
    ]);
    assert_eq!(
        h.state.site("iad").map(|t| t.state),
        Some(SiteState::Unreachable)
    );
    assert_eq!(promotes(&d), Some("pdx"));
}

#[test]
fn timeouts_need_the_failure_threshold() {
    let mut h = Harness::healthy(pair());
    for _ in 0..2 {
        let d = h.poll(vec![
            down("iad", ProbeFailure::Timeout),
            replica("pdx", "iad", "iad:1-10"),
        ]);
        assert!(d.actions.is_empty(), "{:?}", kinds(&d));
    }
    // A refusal after timeouts does not start a new refusal streak from the timeouts.
    let d = h.poll(vec![
        down("iad", ProbeFailure::Timeout),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    assert_eq!(
        h.state.site("iad").map(|t| t.state),
        Some(SiteState::Unreachable)
    );
    assert_eq!(promotes(&d), Some("pdx"));
}

#[test]
fn a_stall_shorter_than_the_threshold_then_recovery_causes_nothing() {
    let mut h = Harness::healthy(pair());
    h.poll(vec![
        down("iad", ProbeFailure::Timeout),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    h.poll(vec![
        down("iad", ProbeFailure::Timeout),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    let d = h.poll(h.steady_observations("iad:1-12"));
    assert!(d.actions.is_empty());
    assert_eq!(
        h.state.site("iad").map(|t| (t.state, t.failure_streak)),
        Some((SiteState::Writable, 0))
    );
    assert!(h.state.last_failover.is_none());
}

#[test]
fn writable_needs_recovery_threshold_polls() {
    let mut h = Harness::new(pair());
    let d = h.poll(vec![
        writable("iad", "iad:1-3"),
        replica("pdx", "iad", "iad:1-3"),
    ]);
    assert_eq!(
        h.state.site("iad").map(|t| t.state),
        Some(SiteState::Unknown)
    );
    assert_eq!(h.state.active_site, None);
    assert!(d.actions.is_empty());
    let d = h.poll(vec![
        writable("iad", "iad:1-3"),
        replica("pdx", "iad", "iad:1-3"),
    ]);
    assert_eq!(
        h.state.site("iad").map(|t| t.state),
        Some(SiteState::Writable)
    );
    assert_eq!(h.state.active_site.as_deref(), Some("iad"));
    assert!(reasons(&d).contains(&EventReason::PrimaryAdopted));
}

#[test]
fn transitions_are_reported_with_from_and_to() {
    let mut h = Harness::healthy(pair());
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    let d = h.poll(vec![
        down("iad", ProbeFailure::Refused),
        fenced("pdx", "iad:1-10"),
    ]);
    let t = d
        .events
        .iter()
        .find_map(|e| e.transition.filter(|_| e.site.as_deref() == Some("iad")));
    assert_eq!(
        t,
        Some(SiteTransition {
            from: SiteState::Writable,
            to: SiteState::Unreachable
        })
    );
}

// ---- the matrix ---------------------------------------------------------------------------

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
fn fresh_all_read_only_group_is_never_elected() {
    let mut h = Harness::new(pair());
    for _ in 0..3 {
        let d = h.poll(vec![fenced("iad", "iad:1-5"), fenced("pdx", "iad:1-5")]);
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

// ---- ambiguity and restarts -----------------------------------------------------------

fn into_failover(h: &mut Harness) -> Decision {
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    let d = h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    assert_eq!(promotes(&d), Some("pdx"));
    d
}

fn failed_outcomes(d: &Decision) -> Vec<ActionOutcome> {
    d.actions
        .iter()
        .map(|a| ActionOutcome {
            id: a.id,
            result: match a.kind {
                ActionKind::Promote { .. } => OutcomeResult::Failed {
                    category: Category::Timeout,
                },
                _ => OutcomeResult::Ok {
                    value: default_value(&a.kind),
                },
            },
        })
        .collect()
}

#[test]
fn ambiguous_promote_is_confirmed_by_the_next_probe() {
    let mut h = Harness::healthy(pair());
    let d = into_failover(&mut h);
    let d = h.poll_with(
        vec![
            down("iad", ProbeFailure::Refused),
            writable("pdx", "iad:1-10"),
        ],
        failed_outcomes(&d),
        vec![],
    );
    assert!(reasons(&d).contains(&EventReason::PromotionInDoubt));
    assert!(reasons(&d).contains(&EventReason::FailoverExecuted));
    assert_eq!(h.state.active_site.as_deref(), Some("pdx"));
    assert!(h.state.promotion_in_doubt.is_none());
}

#[test]
fn ambiguous_promote_that_did_not_apply_blocks_until_known_then_respects_cooldown() {
    let mut h = Harness::healthy(pair());
    let d = into_failover(&mut h);
    // The probe of pdx fails too: still in doubt, nothing else promoted.
    let d = h.poll_with(
        vec![
            down("iad", ProbeFailure::Refused),
            down("pdx", ProbeFailure::Timeout),
        ],
        failed_outcomes(&d),
        vec![],
    );
    assert!(h.state.promotion_in_doubt.is_some());
    assert_eq!(promotes(&d), None);
    let d = h.poll(vec![
        down("iad", ProbeFailure::Refused),
        fenced("pdx", "iad:1-10"),
    ]);
    assert!(reasons(&d).contains(&EventReason::FailoverFailed));
    assert_eq!(promotes(&d), None, "the attempt started the cooldown");
}

#[test]
fn restart_with_lost_outcomes_treats_the_promote_as_ambiguous() {
    let mut h = Harness::healthy(pair());
    into_failover(&mut h);
    // The persisted state round-trips through JSON; the new process has no outcomes.
    let json = serde_json::to_string(&h.state).expect("serialize");
    h.state = serde_json::from_str(&json).expect("deserialize");
    let d = h.poll_with(
        vec![
            down("iad", ProbeFailure::Refused),
            writable("pdx", "iad:1-10"),
        ],
        vec![],
        vec![],
    );
    assert!(reasons(&d).contains(&EventReason::FailoverExecuted));
    assert_eq!(h.state.active_site.as_deref(), Some("pdx"));
}

// ---- recovery, reclone, convergence -----------------------------------------------------

/// After failover to pdx, with iad back read-only and holding `iad_gtid`.
fn after_failover(iad_gtid: &str) -> Harness {
    let mut h = Harness::healthy(pair());
    into_failover(&mut h);
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        writable("pdx", "iad:1-10"),
    ]);
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        writable("pdx", "iad:1-10,pdx:1-2"),
    ]);
    assert_eq!(h.state.active_site.as_deref(), Some("pdx"));
    let _ = iad_gtid;
    h
}

#[test]
fn contained_old_primary_rejoins() {
    let mut h = after_failover("iad:1-10");
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
    let mut h = after_failover("iad:1-12");
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
    let mut h = after_failover("iad:1-12");
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

// ---- planned failover ---------------------------------------------------------------------

fn plan(target: &str) -> Request {
    Request::PlannedFailover {
        target: target.to_owned(),
        max_lag_wait: None,
    }
}

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

// ---- serialization ----------------------------------------------------------------------

#[test]
fn status_json_uses_the_published_field_names() {
    let mut h = after_failover("iad:1-12");
    h.poll(vec![
        fenced("iad", "iad:1-12"),
        writable("pdx", "iad:1-10,pdx:1-3"),
    ]);
    let d = h.poll(vec![
        fenced("iad", "iad:1-12"),
        writable("pdx", "iad:1-10,pdx:1-3"),
    ]);
    let json = serde_json::to_value(&d.status).expect("json");
    assert_eq!(json["activeSite"], "pdx");
    let iad = &json["sites"][0];
    for field in [
        "name",
        "state",
        "readOnly",
        "gtidExecuted",
        "replicating",
        "secondsBehindSource",
        "divergentGtid",
        "divergentTransactionCount",
        "recoveryState",
        "sourceConvergence",
    ] {
        assert!(iad.get(field).is_some(), "missing {field} in {iad}");
    }
    assert_eq!(iad["state"], "read-only");
    assert_eq!(iad["recoveryState"], "RecoveryBlocked");
    assert_eq!(iad["divergentGtid"], g("iad:11-12").to_string());
    assert_eq!(json["lastFailover"]["target"], "pdx");
    assert_eq!(json["conditions"][0]["type"], "Ready");
}

#[test]
fn engine_state_round_trips_through_json() {
    let mut h = after_failover("iad:1-12");
    h.poll(vec![
        fenced("iad", "iad:1-12"),
        writable("pdx", "iad:1-10,pdx:1-3"),
    ]);
    let json = serde_json::to_string(&h.state).expect("serialize");
    let back: EngineState = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, h.state);
}
