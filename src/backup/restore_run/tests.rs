use proptest::prelude::*;
use serde_json::json;

use super::*;

fn status(active: Option<&str>, iad_state: &str) -> GroupStatus {
    let site = |name: &str, state: &str| {
        json!({
            "name": name, "role": "primary-candidate", "state": state,
            "lastSeen": null, "readOnly": state != "writable", "gtidExecuted": null,
            "replicating": false, "secondsBehindSource": null, "sourceHost": null,
            "divergentGtid": null, "divergentTransactionCount": 0, "recoveryState": "",
            "sourceConvergence": null
        })
    };
    serde_json::from_value(json!({
        "activeSite": active,
        "sites": [site("iad", iad_state), site("pdx", "read-only"), site("sfo", "read-only")],
        "lastFailover": null, "plannedFailover": null, "conditions": []
    }))
    .unwrap()
}

fn sites() -> Vec<String> {
    vec!["iad".into(), "pdx".into(), "sfo".into()]
}

const FULL: RestoreScope = RestoreScope::Full;

fn shop() -> RestoreScope {
    RestoreScope::Schema("shop".into())
}

fn observed<'a>(
    kind: RestoreKind,
    phase: Option<RestorePhase>,
    group: Option<&'a GroupStatus>,
    sites: &'a [String],
) -> Observed<'a> {
    Observed {
        kind,
        phase,
        armed: true,
        target: Some("iad"),
        scope: &FULL,
        group,
        job: JobState::Absent,
        recloned: &[],
        sites,
    }
}

#[test]
fn a_restore_begins_only_on_a_writable_active_primary() {
    let sites = sites();
    let writable = status(Some("iad"), "writable");
    for (kind, then) in [
        (RestoreKind::InitFromBackup, RestorePhase::Loading),
        (RestoreKind::InPlace, RestorePhase::Fencing),
    ] {
        let o = observed(kind, None, Some(&writable), &sites);
        assert_eq!(
            next_step(&o, true),
            Step::Begin {
                target: "iad".into(),
                then
            }
        );
    }
    let read_only = status(Some("iad"), "read-only");
    let o = observed(RestoreKind::InPlace, None, Some(&read_only), &sites);
    assert!(matches!(next_step(&o, true), Step::TargetUnavailable(m) if m.contains("read-only")));
    let unreachable = status(Some("iad"), "unreachable");
    let o = observed(
        RestoreKind::InitFromBackup,
        None,
        Some(&unreachable),
        &sites,
    );
    assert!(matches!(next_step(&o, true), Step::TargetUnavailable(_)));
}

#[test]
fn a_new_group_waits_for_its_bootstrap_and_in_place_needs_a_primary() {
    let sites = sites();
    let no_primary = status(None, "read-only");
    let o = observed(RestoreKind::InitFromBackup, None, Some(&no_primary), &sites);
    assert!(matches!(next_step(&o, true), Step::Wait(m) if m.contains("bootstrap")));
    let o = observed(RestoreKind::InPlace, None, Some(&no_primary), &sites);
    assert!(matches!(next_step(&o, true), Step::TargetUnavailable(_)));
    let o = observed(RestoreKind::InPlace, None, None, &sites);
    assert!(matches!(next_step(&o, true), Step::Wait(_)));
}

#[test]
fn a_planned_failover_in_progress_blocks_a_restore() {
    let sites = sites();
    let mut planned = status(Some("iad"), "writable");
    planned.planned_failover = Some(
        serde_json::from_value(json!({
            "phase": "Draining", "reason": null, "target": "pdx", "sourcePrimary": "iad",
            "sourceGtidAtFence": null, "targetGtidAtPromotion": null,
            "startTime": 1_780_000_000_000_u64, "completionTime": null,
            "durationSeconds": null, "transactionsLost": null, "retryAfter": null,
            "message": ""
        }))
        .unwrap(),
    );
    let o = observed(RestoreKind::InPlace, None, Some(&planned), &sites);
    assert!(matches!(next_step(&o, true), Step::TargetUnavailable(m) if m.contains("planned")));
    // A finished one stays in the status but owns nothing.
    if let Some(p) = planned.planned_failover.as_mut() {
        p.phase = crate::failover::PlannedPhase::Succeeded;
    }
    let o = observed(RestoreKind::InPlace, None, Some(&planned), &sites);
    assert!(matches!(next_step(&o, true), Step::Begin { .. }));
}

#[test]
fn in_place_fences_and_loads_only_once_the_loop_has_stopped() {
    let sites = sites();
    let o = observed(
        RestoreKind::InPlace,
        Some(RestorePhase::Fencing),
        None,
        &sites,
    );
    assert!(matches!(next_step(&o, true), Step::Wait(_)));
    assert_eq!(next_step(&o, false), Step::FenceAndLoad);
    assert!(frozen(
        Some(RestorePhase::Fencing),
        &FULL,
        &JobState::Absent
    ));
}

#[test]
fn the_job_decides_the_load_and_the_loop_is_frozen_only_while_it_runs() {
    let sites = sites();
    let mut o = observed(
        RestoreKind::InPlace,
        Some(RestorePhase::Loading),
        None,
        &sites,
    );
    o.job = JobState::Active;
    assert_eq!(next_step(&o, false), Step::Nothing);
    assert!(frozen(o.phase, o.scope, &o.job));
    o.job = JobState::Succeeded;
    assert_eq!(next_step(&o, false), Step::Resume);
    assert!(
        !frozen(o.phase, o.scope, &o.job),
        "a finished Job lets the loop run again"
    );
    o.job = JobState::Failed("BackoffLimitExceeded".into());
    assert!(matches!(
        next_step(&o, false),
        Step::Fail { reason: RestoreFailure::JobFailed, message } if message.contains("BackoffLimitExceeded")
    ));
    assert!(
        !frozen(o.phase, o.scope, &o.job),
        "a failed Job lets the loop run again"
    );
    o.job = JobState::Absent;
    assert!(matches!(
        next_step(&o, false),
        Step::Fail {
            reason: RestoreFailure::JobLost,
            ..
        }
    ));
}

#[test]
fn resuming_reclones_every_peer_once_the_primary_is_confirmed_then_finishes() {
    let sites = sites();
    let writable = status(Some("iad"), "writable");
    let mut o = observed(
        RestoreKind::InPlace,
        Some(RestorePhase::Resuming),
        None,
        &sites,
    );
    assert!(matches!(next_step(&o, true), Step::Wait(_)), "no loop yet");
    let unconfirmed = status(Some("iad"), "unknown");
    o.group = Some(&unconfirmed);
    assert!(matches!(next_step(&o, true), Step::Wait(m) if m.contains("pdx, sfo")));
    o.group = Some(&writable);
    assert_eq!(
        next_step(&o, true),
        Step::Reclone(vec!["pdx".into(), "sfo".into()])
    );
    let done_one = vec!["pdx".to_owned()];
    o.recloned = &done_one;
    assert_eq!(next_step(&o, true), Step::Reclone(vec!["sfo".into()]));
    let done = vec!["pdx".to_owned(), "sfo".to_owned()];
    o.recloned = &done;
    assert_eq!(next_step(&o, true), Step::Finish);
    // A single-site group has no peer to reclone.
    let alone = vec!["iad".to_owned()];
    let o = observed(
        RestoreKind::InitFromBackup,
        Some(RestorePhase::Resuming),
        Some(&writable),
        &alone,
    );
    assert_eq!(next_step(&o, true), Step::Finish);
}

#[test]
fn init_from_backup_runs_once_and_in_place_needs_a_newer_token() {
    let sites = sites();
    let writable = status(Some("iad"), "writable");
    for phase in [RestorePhase::Succeeded, RestorePhase::Failed] {
        let o = observed(
            RestoreKind::InitFromBackup,
            Some(phase),
            Some(&writable),
            &sites,
        );
        assert_eq!(next_step(&o, true), Step::Nothing);
        let mut o = observed(RestoreKind::InPlace, Some(phase), Some(&writable), &sites);
        assert!(matches!(next_step(&o, true), Step::Begin { .. }));
        o.armed = false;
        assert_eq!(next_step(&o, true), Step::Nothing);
    }
    assert!(token_is_newer("2026-12-02T10:00:00Z", None));
    assert!(token_is_newer(
        "2026-12-02T10:00:01Z",
        Some("2026-12-02T10:00:00Z")
    ));
    assert!(!token_is_newer(
        "2026-12-02T10:00:00Z",
        Some("2026-12-02T10:00:00Z")
    ));
    assert!(!token_is_newer(
        "2026-12-02T09:00:00Z",
        Some("2026-12-02T10:00:00Z")
    ));
    assert!(
        !token_is_newer("yesterday", None),
        "an unparsable token never arms"
    );
    // The same instant in another offset is the same token: no replay through spelling.
    assert!(!token_is_newer(
        "2026-12-02T11:00:00+01:00",
        Some("2026-12-02T10:00:00Z")
    ));
}

#[test]
fn one_schema_in_place_loads_at_once_and_finishes_without_a_reclone() {
    let sites = sites();
    let writable = status(Some("iad"), "writable");
    let shop = shop();
    let mut o = observed(RestoreKind::InPlace, None, Some(&writable), &sites);
    o.scope = &shop;
    // No fence, so nothing waits for the loop to stop: the Job is created at Begin.
    assert_eq!(
        next_step(&o, true),
        Step::Begin {
            target: "iad".into(),
            then: RestorePhase::Loading
        }
    );
    // It still needs a writable primary that no planned failover owns.
    let read_only = status(Some("iad"), "read-only");
    o.group = Some(&read_only);
    assert!(matches!(next_step(&o, true), Step::TargetUnavailable(_)));

    o.phase = Some(RestorePhase::Loading);
    o.job = JobState::Active;
    assert_eq!(
        next_step(&o, true),
        Step::Nothing,
        "the loop runs beside it"
    );
    assert!(!frozen(o.phase, o.scope, &o.job), "the loop keeps running");
    o.job = JobState::Succeeded;
    assert_eq!(next_step(&o, true), Step::Resume);
    o.job = JobState::Failed("BackoffLimitExceeded".into());
    assert!(matches!(
        next_step(&o, true),
        Step::Fail {
            reason: RestoreFailure::JobFailed,
            ..
        }
    ));

    // Resuming: the peers followed by replication, so the run ends, whatever the loop's
    // view of the primary (even with no poll yet).
    o.phase = Some(RestorePhase::Resuming);
    for group in [None, Some(&read_only), Some(&writable)] {
        o.group = group;
        assert_eq!(next_step(&o, true), Step::Finish);
    }
}

#[test]
fn the_scope_reads_back_as_written_and_anything_else_is_full() {
    for scope in [FULL, shop(), RestoreScope::Schema("a:b".into())] {
        assert_eq!(RestoreScope::parse(Some(&scope.to_string())), scope);
    }
    assert_eq!(shop().to_string(), "schema:shop");
    assert_eq!(FULL.to_string(), "full");
    for careful in [
        None,
        Some(""),
        Some("schema:"),
        Some("tables:x"),
        Some("FULL"),
    ] {
        assert_eq!(RestoreScope::parse(careful), FULL, "{careful:?}");
    }
}

proptest! {
    /// A one-schema run never stops the loop, in any phase it goes through (it never
    /// fences) and whatever its Job; a full run stops it while its Job is active.
    #[test]
    fn only_a_full_run_freezes_the_loop(
        phase in prop_oneof![Just(None), Just(Some(RestorePhase::Pending)),
            Just(Some(RestorePhase::Loading)), Just(Some(RestorePhase::Resuming)),
            Just(Some(RestorePhase::Succeeded)), Just(Some(RestorePhase::Failed))],
        job in prop_oneof![Just(JobState::Active), Just(JobState::Succeeded),
            Just(JobState::Failed(String::new())), Just(JobState::Absent)],
        name in "[a-z_]{1,12}",
    ) {
        prop_assert!(!frozen(phase, &RestoreScope::Schema(name), &job));
        let full = frozen(phase, &FULL, &job);
        prop_assert_eq!(
            full,
            phase == Some(RestorePhase::Loading) && job == JobState::Active
        );
    }

    /// Whatever was observed: nothing begins unless armed, and the loop is frozen only
    /// while a run's Job may still write.
    #[test]
    fn nothing_starts_unarmed_and_a_frozen_loop_always_thaws(
        kind in prop_oneof![Just(RestoreKind::InitFromBackup), Just(RestoreKind::InPlace)],
        phase in prop_oneof![Just(None), Just(Some(RestorePhase::Pending)),
            Just(Some(RestorePhase::Succeeded)), Just(Some(RestorePhase::Failed))],
        writable in any::<bool>(),
        loop_running in any::<bool>(),
    ) {
        let sites = sites();
        let group = status(Some("iad"), if writable { "writable" } else { "read-only" });
        let mut o = observed(kind, phase, Some(&group), &sites);
        o.armed = false;
        prop_assert_eq!(next_step(&o, loop_running), Step::Nothing);
        for job in [JobState::Succeeded, JobState::Failed(String::new()), JobState::Absent] {
            prop_assert!(!frozen(Some(RestorePhase::Loading), &FULL, &job));
        }
        prop_assert!(!frozen(phase, &FULL, &JobState::Active));
    }
}
