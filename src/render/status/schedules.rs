//! `status.backupSchedules`: for each of the group's backup schedules, its CronJob, its
//! newest run, its newest success, and the retry it is waiting on, projected from the
//! group's `MysqlBackup` objects (each names its schedule and attempt in `triggeredBy`).
//!
//! Pure: the runs and the current time in, the list out, in the spec's schedule order, so
//! an unchanged group projects the same list and costs no status write.

use crate::api::backup::BackupSpec;
use crate::api::failover_group_status::BackupScheduleStatus;
use crate::backup::retry::{FailedRun, parse_trigger, retry_due};
use crate::failover::Timestamp;
use crate::render::backup::cron_job_name;

/// One `MysqlBackup` as the projection needs it.
#[derive(Debug, Clone)]
pub struct ScheduledRun<'a> {
    pub name: &'a str,
    pub triggered_by: Option<&'a str>,
    pub phase: Option<&'a str>,
    pub created: Option<Timestamp>,
    pub completed: Option<Timestamp>,
    /// The run already handed its retry on (its `RetryCreated` condition).
    pub retried: bool,
}

/// The status of every schedule in `spec`, from the runs of `group`.
pub fn backup_schedules(
    group: &str,
    spec: &BackupSpec,
    runs: &[ScheduledRun<'_>],
    now: Timestamp,
) -> Vec<BackupScheduleStatus> {
    spec.schedules
        .iter()
        .map(|schedule| {
            let mut mine: Vec<(u32, &ScheduledRun<'_>)> = runs
                .iter()
                .filter_map(|run| {
                    let attempt = run.triggered_by.and_then(parse_trigger)?;
                    (attempt.schedule == schedule.name).then_some((attempt.number, run))
                })
                .collect();
            // Oldest first; the name breaks ties between runs created in the same second.
            mine.sort_by(|(_, a), (_, b)| (a.created, a.name).cmp(&(b.created, b.name)));
            let newest = mine.last();
            let fired = mine.iter().rev().find(|(attempt, _)| *attempt == 1);
            let succeeded = mine
                .iter()
                .filter(|(_, run)| run.phase == Some("Succeeded"))
                .max_by_key(|(_, run)| (run.completed.or(run.created), run.name));
            let next_retry = newest
                .filter(|(_, run)| run.phase == Some("Failed"))
                .and_then(|(_, run)| {
                    let failed = FailedRun {
                        name: run.name,
                        triggered_by: run.triggered_by,
                        completed: run.completed,
                        retried: run.retried,
                    };
                    retry_due(spec.retry.as_ref(), &failed, now)
                })
                .map(|(_, due)| due.rfc3339());
            BackupScheduleStatus {
                name: schedule.name.clone(),
                cron_job_name: Some(cron_job_name(group, &schedule.name)),
                last_schedule_time: fired
                    .and_then(|(_, run)| run.created)
                    .map(Timestamp::rfc3339),
                last_successful_time: succeeded
                    .and_then(|(_, run)| run.completed)
                    .map(Timestamp::rfc3339),
                last_backup_name: newest.map(|(_, run)| run.name.to_owned()),
                last_backup_phase: newest.and_then(|(_, run)| run.phase.map(str::to_owned)),
                last_successful_backup_name: succeeded.map(|(_, run)| run.name.to_owned()),
                last_retry_attempt: newest
                    .filter(|(attempt, _)| *attempt > 1)
                    .and_then(|(attempt, _)| i32::try_from(*attempt).ok()),
                next_retry_time: next_retry,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
