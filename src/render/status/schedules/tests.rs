use super::*;
use crate::api::backup::{BackupSchedule, RetrySpec};

const T0: Timestamp = Timestamp(1_780_000_000_000);
const MINUTE: u64 = 60_000;

fn at(minutes: u64) -> Timestamp {
    Timestamp(T0.0 + minutes * MINUTE)
}

fn spec(retry: Option<RetrySpec>) -> BackupSpec {
    let schedule = |name: &str| -> BackupSchedule {
        serde_json::from_value(serde_json::json!({
            "name": name, "profileName": "s3", "schedule": "0 3 * * *"
        }))
        .unwrap()
    };
    BackupSpec {
        schedules: vec![schedule("nightly"), schedule("hourly")],
        retry,
        ..BackupSpec::default()
    }
}

fn retry(max_attempts: i32) -> RetrySpec {
    RetrySpec {
        max_attempts,
        initial_backoff_seconds: 300,
        max_backoff_seconds: 3600,
    }
}

fn run<'a>(
    name: &'a str,
    triggered_by: &'a str,
    phase: &'a str,
    created: u64,
    completed: Option<u64>,
) -> ScheduledRun<'a> {
    ScheduledRun {
        name,
        triggered_by: Some(triggered_by),
        phase: Some(phase),
        created: Some(at(created)),
        completed: completed.map(at),
        retried: false,
    }
}

#[test]
fn a_schedule_that_never_ran_names_only_its_cron_job() {
    let statuses = backup_schedules("orders", &spec(None), &[], at(0));
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses[0].name, "nightly");
    assert_eq!(statuses[1].name, "hourly");
    assert_eq!(
        statuses[0].cron_job_name.as_deref(),
        Some(cron_job_name("orders", "nightly").as_str())
    );
    assert_eq!(
        statuses[0],
        BackupScheduleStatus {
            name: "nightly".into(),
            cron_job_name: statuses[0].cron_job_name.clone(),
            ..BackupScheduleStatus::default()
        }
    );
}

#[test]
fn a_failed_run_with_attempts_left_shows_when_it_is_retried() {
    let runs = [
        run("n-1", "schedule/nightly", "Succeeded", 0, Some(5)),
        run("n-2", "schedule/nightly", "Failed", 1440, Some(1450)),
    ];
    let status = &backup_schedules("orders", &spec(Some(retry(3))), &runs, at(1451))[0];
    assert_eq!(status.last_backup_name.as_deref(), Some("n-2"));
    assert_eq!(status.last_backup_phase.as_deref(), Some("Failed"));
    assert_eq!(status.last_schedule_time, Some(at(1440).rfc3339()));
    assert_eq!(status.last_successful_backup_name.as_deref(), Some("n-1"));
    assert_eq!(status.last_successful_time, Some(at(5).rfc3339()));
    assert_eq!(
        status.last_retry_attempt, None,
        "the scheduled run is attempt 1"
    );
    // initialBackoffSeconds after the failed attempt's completion.
    assert_eq!(status.next_retry_time, Some(at(1455).rfc3339()));

    // Without a retry policy, or once handed on, nothing is pending.
    assert_eq!(
        backup_schedules("orders", &spec(None), &runs, at(1451))[0].next_retry_time,
        None
    );
    let mut handed_on = runs.clone();
    handed_on[1].retried = true;
    assert_eq!(
        backup_schedules("orders", &spec(Some(retry(3))), &handed_on, at(1451))[0].next_retry_time,
        None
    );
}

#[test]
fn a_retry_is_the_newest_run_and_counts_its_attempt() {
    let runs = [
        run("n-2", "schedule/nightly", "Failed", 1440, Some(1450)),
        run(
            "n-2-retry-2",
            "retry/nightly/attempt-2",
            "Failed",
            1455,
            Some(1460),
        ),
        run(
            "n-2-retry-3",
            "retry/nightly/attempt-3",
            "Running",
            1470,
            None,
        ),
    ];
    let status = &backup_schedules("orders", &spec(Some(retry(3))), &runs, at(1471))[0];
    assert_eq!(status.last_backup_name.as_deref(), Some("n-2-retry-3"));
    assert_eq!(status.last_backup_phase.as_deref(), Some("Running"));
    assert_eq!(status.last_retry_attempt, Some(3));
    assert_eq!(
        status.last_schedule_time,
        Some(at(1440).rfc3339()),
        "when the schedule fired"
    );
    assert_eq!(status.next_retry_time, None, "the newest run is not failed");
    assert_eq!(status.last_successful_backup_name, None);

    // The last attempt failed too: attempts are used up, nothing is pending.
    let mut exhausted = runs.clone();
    exhausted[2] = run(
        "n-2-retry-3",
        "retry/nightly/attempt-3",
        "Failed",
        1470,
        Some(1480),
    );
    let status = &backup_schedules("orders", &spec(Some(retry(3))), &exhausted, at(1481))[0];
    assert_eq!(status.last_retry_attempt, Some(3));
    assert_eq!(status.next_retry_time, None);
    // With a fourth attempt allowed, it is due a doubled backoff later.
    let status = &backup_schedules("orders", &spec(Some(retry(4))), &exhausted, at(1481))[0];
    assert_eq!(status.next_retry_time, Some(at(1480 + 20).rfc3339()));
}

#[test]
fn other_schedules_and_ad_hoc_runs_are_not_counted() {
    let manual = run(
        "by-hand",
        "kubectl-bloodraven",
        "Succeeded",
        2000,
        Some(2001),
    );
    let no_trigger = ScheduledRun {
        triggered_by: None,
        ..run("bare", "", "Succeeded", 2002, Some(2003))
    };
    let runs = [
        run("h-1", "schedule/hourly", "Succeeded", 1000, Some(1001)),
        manual,
        no_trigger,
        run(
            "odd",
            "schedule/nightly/extra",
            "Succeeded",
            3000,
            Some(3001),
        ),
    ];
    let statuses = backup_schedules("orders", &spec(None), &runs, at(4000));
    assert_eq!(statuses[0].last_backup_name, None, "{:?}", statuses[0]);
    assert_eq!(statuses[1].last_backup_name.as_deref(), Some("h-1"));
    assert_eq!(
        statuses[1].last_successful_backup_name.as_deref(),
        Some("h-1")
    );
}

#[test]
fn runs_created_in_the_same_second_are_ordered_by_name() {
    let runs = [
        run("b", "schedule/nightly", "Failed", 10, Some(11)),
        run("a", "schedule/nightly", "Succeeded", 10, Some(12)),
    ];
    let forward = backup_schedules("orders", &spec(None), &runs, at(20));
    let reversed = backup_schedules(
        "orders",
        &spec(None),
        &[runs[1].clone(), runs[0].clone()],
        at(20),
    );
    assert_eq!(forward, reversed);
    assert_eq!(forward[0].last_backup_name.as_deref(), Some("b"));
}
