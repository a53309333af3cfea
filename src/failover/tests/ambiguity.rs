//! Ambiguous promote outcomes and controller restarts.

use super::*;

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
