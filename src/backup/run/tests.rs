use proptest::prelude::*;
use serde_json::json;

use super::*;

fn status(replica_lag: Option<u64>, primary_writable: bool) -> GroupStatus {
    let site = |name: &str, state: &str, lag: Option<u64>| {
        json!({
            "name": name, "role": "primary-candidate", "state": state,
            "lastSeen": null, "readOnly": state != "writable", "gtidExecuted": null,
            "replicating": lag.is_some(), "secondsBehindSource": lag, "sourceHost": null,
            "divergentGtid": null, "divergentTransactionCount": 0, "recoveryState": "",
            "sourceConvergence": null
        })
    };
    serde_json::from_value(json!({
        "activeSite": "iad",
        "sites": [
            site("iad", if primary_writable { "writable" } else { "unreachable" }, None),
            site("pdx", "read-only", replica_lag),
        ],
        "lastFailover": null, "plannedFailover": null, "conditions": []
    }))
    .unwrap()
}

fn sites() -> Vec<SiteSpec> {
    vec![
        SiteSpec {
            name: "iad".into(),
            ..SiteSpec::default()
        },
        SiteSpec {
            name: "pdx".into(),
            ..SiteSpec::default()
        },
        SiteSpec {
            name: "sfo".into(),
            role: SiteRole::ReadOnly,
            ..SiteSpec::default()
        },
    ]
}

const T0: Timestamp = Timestamp(1_780_000_000_000);

fn observed<'a>(group: Option<&'a GroupStatus>, sites: &'a [SiteSpec]) -> Observed<'a> {
    Observed {
        phase: None,
        created: T0,
        source_override: None,
        sites,
        group,
        max_lag_seconds: 300,
        job: JobState::Absent,
    }
}

#[test]
fn a_new_backup_starts_on_a_replica_within_its_lag_budget() {
    let sites = sites();
    let group = status(Some(3), true);
    let step = next_step(&observed(Some(&group), &sites), T0);
    assert_eq!(
        step,
        Step::Start {
            site: "pdx".into(),
            chosen: Chosen::Automatic(SourceReason::ReplicaPreferred)
        }
    );
    let lagging = status(Some(301), true);
    let step = next_step(&observed(Some(&lagging), &sites), T0);
    assert_eq!(
        step,
        Step::Start {
            site: "iad".into(),
            chosen: Chosen::Automatic(SourceReason::PrimaryFallback)
        }
    );
}

#[test]
fn with_no_source_it_waits_then_fails_after_the_timeout() {
    let sites = sites();
    let group = status(None, false);
    let o = observed(Some(&group), &sites);
    assert!(matches!(next_step(&o, T0), Step::Wait(m) if m.contains("NoHealthySource")));
    let almost = T0.plus(Duration::from_secs(29 * 60 + 59));
    assert!(matches!(next_step(&o, almost), Step::Wait(_)));
    assert!(matches!(
        next_step(&o, T0.plus(NO_SOURCE_TIMEOUT)),
        Step::Fail {
            reason: FailReason::NoHealthySource,
            ..
        }
    ));
    let unpolled = observed(None, &sites);
    assert!(matches!(next_step(&unpolled, T0), Step::Wait(m) if m.contains("first health poll")));
}

#[test]
fn an_override_is_used_as_given_but_never_a_reader_or_a_stranger() {
    let sites = sites();
    let group = status(Some(3), true);
    let mut o = observed(Some(&group), &sites);
    o.source_override = Some("iad");
    assert_eq!(
        next_step(&o, T0),
        Step::Start {
            site: "iad".into(),
            chosen: Chosen::Override
        }
    );
    for bad in ["sfo", "nowhere"] {
        o.source_override = Some(bad);
        assert!(
            matches!(next_step(&o, T0), Step::Fail { reason: FailReason::InvalidSource, ref message } if message.contains(bad))
        );
    }
}

#[test]
fn the_job_drives_the_phase() {
    let sites = sites();
    let group = status(Some(3), true);
    let mut o = observed(Some(&group), &sites);
    o.job = JobState::Active;
    assert_eq!(next_step(&o, T0), Step::MarkRunning);
    o.phase = Some(Phase::Running);
    assert_eq!(next_step(&o, T0), Step::Nothing);
    o.job = JobState::Succeeded;
    assert_eq!(next_step(&o, T0), Step::Finish);
    o.job = JobState::Failed("BackoffLimitExceeded".into());
    assert!(
        matches!(next_step(&o, T0), Step::Fail { reason: FailReason::JobFailed, ref message } if message.contains("BackoffLimitExceeded"))
    );
    o.job = JobState::Absent;
    assert!(matches!(
        next_step(&o, T0),
        Step::Fail {
            reason: FailReason::JobLost,
            ..
        }
    ));
}

#[test]
fn sizes_read_like_people_write_them() {
    assert_eq!(human_size(0), "0 B");
    assert_eq!(human_size(1023), "1023 B");
    assert_eq!(human_size(1536), "1.5 KiB");
    assert_eq!(human_size(5 << 30), "5.0 GiB");
}

fn job_state() -> impl Strategy<Value = JobState> {
    prop_oneof![
        Just(JobState::Absent),
        Just(JobState::Active),
        Just(JobState::Succeeded),
        Just(JobState::Failed("x".into())),
    ]
}

fn phase() -> impl Strategy<Value = Option<Phase>> {
    prop_oneof![
        Just(None),
        Just(Some(Phase::Pending)),
        Just(Some(Phase::Running)),
        Just(Some(Phase::Succeeded)),
        Just(Some(Phase::Failed)),
    ]
}

proptest! {
    /// Whatever was observed: a finished backup is never touched again, a Job is created
    /// only when there is none, and never against a reader.
    #[test]
    fn decisions_respect_the_lifecycle(
        phase in phase(),
        job in job_state(),
        lag in proptest::option::of(0u64..1000),
        writable in any::<bool>(),
        override_site in proptest::option::of(prop_oneof![Just("iad"), Just("pdx"), Just("sfo"), Just("x")]),
        minutes in 0u64..120,
    ) {
        let sites = sites();
        let group = status(lag, writable);
        let o = Observed { phase, job: job.clone(), source_override: override_site, ..observed(Some(&group), &sites) };
        let step = next_step(&o, T0.plus(Duration::from_secs(minutes * 60)));
        if phase.is_some_and(Phase::is_terminal) {
            prop_assert_eq!(step, Step::Nothing);
        } else if let Step::Start { site, .. } = &step {
            prop_assert_eq!(&job, &JobState::Absent);
            prop_assert_ne!(phase, Some(Phase::Running));
            prop_assert!(site != "sfo" && site != "x");
        } else if step == Step::Finish {
            prop_assert_eq!(job, JobState::Succeeded);
        }
    }
}
