//! Safety properties of single decisions over arbitrary observation sequences: whatever
//! the probes say and whatever the outcomes were, `decide` never panics, never promotes a
//! non-candidate, never promotes twice at once, never promotes beside an observed writer,
//! and never starts an automatic promotion inside the cooldown.

use proptest::prelude::*;

use super::*;

/// One site's probe, drawn from a small alphabet of situations.
fn arb_observation(name: &'static str) -> impl Strategy<Value = SiteObservation> {
    (0..6u8, 1..4u64).prop_map(move |(kind, extra)| {
        let gtid = format!("iad:1-{}", 9 + extra);
        match kind {
            0 => writable(name, &gtid),
            1 => replica(name, "iad", &gtid),
            2 => replica(name, "pdx", &gtid),
            3 => fenced(name, &gtid),
            4 => down(name, ProbeFailure::Refused),
            _ => down(name, ProbeFailure::Timeout),
        }
    })
}

fn arb_poll() -> impl Strategy<Value = (Vec<SiteObservation>, u8)> {
    (
        (
            arb_observation("iad"),
            arb_observation("pdx"),
            arb_observation("sea"),
            arb_observation("dr"),
        ),
        0..4u8,
    )
        .prop_map(|((a, b, c, d), outcome)| (vec![a, b, c, d], outcome))
}

/// Outcomes for the previous actions: all fine, all failed, none reported, or not run.
fn outcomes_for(d: Option<&Decision>, style: u8) -> Vec<ActionOutcome> {
    let Some(d) = d else {
        return Vec::new();
    };
    d.actions
        .iter()
        .filter(|_| style != 2)
        .map(|a| ActionOutcome {
            id: a.id,
            result: match style {
                0 => OutcomeResult::Ok {
                    value: default_value(&a.kind),
                },
                1 => OutcomeResult::Failed {
                    category: Category::Timeout,
                },
                _ => OutcomeResult::NotRun,
            },
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn single_decisions_stay_safe(polls in prop::collection::vec(arb_poll(), 1..40)) {
        let policy = trio();
        let mut h = Harness::healthy(policy.clone());
        for (observations, style) in polls {
            let outcomes = outcomes_for(h.last.as_ref(), style);
            let before = h.state.clone();
            let d = h.poll_with(observations.clone(), outcomes, vec![]);
            let promoted: Vec<&str> = d
                .actions
                .iter()
                .filter_map(|a| match &a.kind {
                    ActionKind::Promote { site } => Some(site.as_str()),
                    _ => None,
                })
                .collect();
            prop_assert!(promoted.len() <= 1, "{promoted:?}");
            if let Some(target) = promoted.first() {
                prop_assert_eq!(policy.role(target), Some(SiteRole::PrimaryCandidate));
                let writer = observations
                    .iter()
                    .find(|o| o.site != *target && o.result.as_ref().is_ok_and(|p| !p.read_only));
                prop_assert!(writer.is_none(), "promoted {target} beside writable {writer:?}");
                let last = [before.last_promotion_attempt, before.last_failover.as_ref().map(|r| r.at)]
                    .into_iter()
                    .flatten()
                    .max();
                if let Some(last) = last {
                    prop_assert!(
                        h.now.has_elapsed(last, policy.failover_cooldown),
                        "promotion inside the cooldown"
                    );
                }
            }
        }
    }
}
