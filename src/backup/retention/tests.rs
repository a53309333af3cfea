use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

const DAY_MS: u64 = 86_400_000;
const NOW: Timestamp = Timestamp(1_000 * DAY_MS);

fn rec(id: &str, days_ago: u64, outcome: Outcome) -> BackupRecord {
    BackupRecord {
        id: id.to_owned(),
        finished_at: Timestamp(NOW.0 - days_ago * DAY_MS),
        outcome,
    }
}

fn policy(count: u32, max_age_days: u32, min_keep: u32, max_failed_keep: u32) -> RetentionPolicy {
    RetentionPolicy {
        count,
        max_age_days,
        min_keep,
        max_failed_keep,
    }
}

fn deleted(plan: &PrunePlan) -> BTreeSet<&str> {
    plan.delete.iter().map(|d| d.id.as_str()).collect()
}

/// Ten daily successes, s0 the newest.
fn daily() -> Vec<BackupRecord> {
    (0..10)
        .map(|d| rec(&format!("s{d}"), d, Outcome::Succeeded))
        .collect()
}

#[test]
fn count_keeps_the_newest_n() {
    let plan = plan(&daily(), &policy(3, 0, 0, 0), NOW);
    assert_eq!(
        deleted(&plan),
        ["s3", "s4", "s5", "s6", "s7", "s8", "s9"].into()
    );
    let first = &plan.delete[0];
    assert_eq!(first.id, "s3");
    assert!(matches!(
        first.reason,
        DeleteReason::Expired { rank: 4, .. }
    ));
    assert!(first.reason.to_string().contains("#4"));
}

#[test]
fn max_age_keeps_the_younger_ones() {
    let plan = plan(&daily(), &policy(0, 5, 0, 0), NOW);
    // Exactly five days old is not younger than five days.
    assert_eq!(deleted(&plan), ["s5", "s6", "s7", "s8", "s9"].into());
}

#[test]
fn min_keep_is_a_floor_under_age() {
    let old: Vec<_> = (0..5)
        .map(|d| rec(&format!("o{d}"), 100 + d, Outcome::Succeeded))
        .collect();
    let plan = plan(&old, &policy(0, 7, 3, 0), NOW);
    assert_eq!(deleted(&plan), ["o3", "o4"].into());
}

#[test]
fn any_rule_keeps() {
    // count keeps s0..s1, age keeps s0..s3, minKeep keeps s0..s4: the union survives.
    let plan = plan(&daily(), &policy(2, 4, 5, 0), NOW);
    assert_eq!(deleted(&plan), ["s5", "s6", "s7", "s8", "s9"].into());
    let s4 = plan.keep.iter().find(|k| k.id == "s4").unwrap();
    assert_eq!(s4.reasons, vec![KeepReason::MinKeep]);
    let s0 = plan.keep.iter().find(|k| k.id == "s0").unwrap();
    assert_eq!(
        s0.reasons,
        vec![
            KeepReason::NewestSuccess,
            KeepReason::Count,
            KeepReason::MaxAge,
            KeepReason::MinKeep
        ]
    );
}

#[test]
fn the_newest_success_survives_a_policy_that_keeps_nothing() {
    let mut records = daily();
    records.push(rec("f-new", 0, Outcome::Failed));
    let plan = plan(&records, &policy(0, 0, 0, 0), NOW);
    let kept: Vec<_> = plan.keep.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(kept, vec!["s0"]);
    assert_eq!(plan.delete.len(), 10);
}

#[test]
fn failed_beyond_max_failed_keep_go_and_in_progress_stay() {
    let records = vec![
        rec("s", 50, Outcome::Succeeded),
        rec("f1", 1, Outcome::Failed),
        rec("f2", 2, Outcome::Failed),
        rec("f3", 3, Outcome::Failed),
        rec("run-old", 400, Outcome::InProgress),
    ];
    let plan = plan(&records, &policy(0, 1, 0, 2), NOW);
    assert_eq!(
        plan.delete,
        vec![Deletion {
            id: "f3".to_owned(),
            reason: DeleteReason::ExcessFailed { rank: 3 }
        }]
    );
    assert!(
        plan.keep
            .iter()
            .any(|k| k.id == "run-old" && k.reasons == vec![KeepReason::InProgress])
    );
}

#[test]
fn equal_timestamps_rank_by_id() {
    let records = vec![
        rec("a", 3, Outcome::Succeeded),
        rec("c", 3, Outcome::Succeeded),
        rec("b", 3, Outcome::Succeeded),
    ];
    let plan = plan(&records, &policy(2, 0, 0, 0), NOW);
    assert_eq!(deleted(&plan), ["a"].into());
}

#[test]
fn future_timestamps_count_as_young() {
    let records = vec![
        rec("s0", 0, Outcome::Succeeded),
        BackupRecord {
            id: "skewed".to_owned(),
            finished_at: Timestamp(NOW.0 + DAY_MS),
            outcome: Outcome::Succeeded,
        },
    ];
    let plan = plan(&records, &policy(0, 1, 0, 0), NOW);
    assert!(plan.delete.is_empty());
}

#[test]
fn policy_from_spec_and_legacy() {
    let spec = SpecPolicy {
        count: Some(4),
        max_age_days: None,
        min_keep: 2,
        max_failed_keep: 3,
    };
    assert_eq!(
        RetentionPolicy::from_spec(&spec).unwrap(),
        policy(4, 0, 2, 3)
    );
    assert_eq!(
        RetentionPolicy::from_legacy(7).unwrap(),
        policy(7, 0, 1, 10)
    );
    let profile = BackupProfile {
        retention: 5,
        ..BackupProfile::default()
    };
    assert_eq!(
        RetentionPolicy::from_profile(&profile).unwrap(),
        policy(5, 0, 1, 10)
    );
    let profile = BackupProfile {
        retention: 5,
        retention_policy: Some(spec),
        ..BackupProfile::default()
    };
    assert_eq!(
        RetentionPolicy::from_profile(&profile).unwrap(),
        policy(4, 0, 2, 3)
    );
}

#[test]
fn negative_fields_are_named() {
    let base = SpecPolicy {
        count: None,
        max_age_days: None,
        min_keep: 1,
        max_failed_keep: 10,
    };
    let cases = [
        (
            SpecPolicy {
                count: Some(-1),
                ..base.clone()
            },
            "retentionPolicy.count",
        ),
        (
            SpecPolicy {
                max_age_days: Some(-2),
                ..base.clone()
            },
            "retentionPolicy.maxAgeDays",
        ),
        (
            SpecPolicy {
                min_keep: -3,
                ..base.clone()
            },
            "retentionPolicy.minKeep",
        ),
        (
            SpecPolicy {
                max_failed_keep: -4,
                ..base.clone()
            },
            "retentionPolicy.maxFailedKeep",
        ),
    ];
    for (spec, name) in cases {
        let err = RetentionPolicy::from_spec(&spec).unwrap_err();
        assert!(matches!(err, RetentionError::Negative { field, .. } if field == name));
        assert!(err.to_string().starts_with(name));
        assert_eq!(err.category(), Category::InvalidInput);
    }
    assert!(matches!(
        RetentionPolicy::from_legacy(-1),
        Err(RetentionError::Negative {
            field: "retention",
            value: -1
        })
    ));
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        6 => Just(Outcome::Succeeded),
        3 => Just(Outcome::Failed),
        1 => Just(Outcome::InProgress),
    ]
}

fn history() -> impl Strategy<Value = Vec<BackupRecord>> {
    // Hours ago, up to 60 days, with collisions on purpose.
    proptest::collection::vec((0u64..60 * 24, outcome()), 0..40).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (hours, outcome))| BackupRecord {
                id: format!("b{i:03}"),
                finished_at: Timestamp(NOW.0 - hours * 3_600_000),
                outcome,
            })
            .collect()
    })
}

fn any_policy() -> impl Strategy<Value = RetentionPolicy> {
    (0u32..8, 0u32..30, 0u32..5, 0u32..5).prop_map(|(c, a, m, f)| policy(c, a, m, f))
}

/// Successes newest first, ties by id, as the planner ranks them.
fn ranked(records: &[BackupRecord], outcome: Outcome) -> Vec<&BackupRecord> {
    let mut v: Vec<_> = records.iter().filter(|r| r.outcome == outcome).collect();
    v.sort_by(|a, b| b.finished_at.cmp(&a.finished_at).then(b.id.cmp(&a.id)));
    v
}

proptest! {
    #[test]
    fn invariants_hold(records in history(), policy in any_policy()) {
        let plan = plan(&records, &policy, NOW);
        let gone = deleted(&plan);
        prop_assert_eq!(plan.delete.len() + plan.keep.len(), records.len());

        let successes = ranked(&records, Outcome::Succeeded);
        if let Some(newest) = successes.first() {
            prop_assert!(!gone.contains(newest.id.as_str()), "newest success deleted");
        }
        for r in records.iter().filter(|r| r.outcome == Outcome::InProgress) {
            prop_assert!(!gone.contains(r.id.as_str()), "in-progress deleted");
        }
        // Kept ⊇ what each rule keeps on its own.
        let max_age = DAY.saturating_mul(policy.max_age_days);
        for (i, r) in successes.iter().enumerate() {
            let by_count = i < policy.count as usize;
            let by_floor = i < policy.min_keep as usize;
            let by_age = policy.max_age_days > 0 && NOW.since(r.finished_at) < max_age;
            if i == 0 || by_count || by_floor || by_age {
                prop_assert!(!gone.contains(r.id.as_str()), "{} kept by a rule but deleted", r.id);
            } else {
                prop_assert!(gone.contains(r.id.as_str()), "{} kept by no rule", r.id);
            }
        }
        for (i, r) in ranked(&records, Outcome::Failed).iter().enumerate() {
            prop_assert_eq!(gone.contains(r.id.as_str()), i >= policy.max_failed_keep as usize);
        }

        // A repeated prune on what remains deletes nothing.
        let remaining: Vec<_> = records.iter().filter(|r| !gone.contains(r.id.as_str())).cloned().collect();
        prop_assert!(super::plan(&remaining, &policy, NOW).delete.is_empty());
    }
}
