//! Retries of failed scheduled backups (`spec.backup.retry`), as the reference runs them:
//! a failed scheduled `MysqlBackup` stays Failed (it is counted and alerted on like any
//! failure), and once its backoff has passed a new `MysqlBackup` takes the next attempt,
//! `triggeredBy: retry/<schedule>/attempt-<N>`. Ad-hoc backups are never retried.
//!
//! The delay before attempt N+1 is `initialBackoffSeconds × 2^(N−1)`, at most
//! `maxBackoffSeconds`, counted from the failed attempt's completion.

use std::time::Duration;

use crate::api::backup::RetrySpec;
use crate::failover::Timestamp;

/// Which attempt of which schedule a backup is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub schedule: String,
    pub number: u32,
}

/// Reads `triggeredBy`: `schedule/<name>` is attempt 1, `retry/<name>/attempt-<N>` is N.
/// Anything else (a person, another tool) is not a scheduled run.
pub fn parse_trigger(triggered_by: &str) -> Option<Attempt> {
    if let Some(schedule) = triggered_by.strip_prefix("schedule/") {
        return (!schedule.is_empty() && !schedule.contains('/')).then(|| Attempt {
            schedule: schedule.to_owned(),
            number: 1,
        });
    }
    let rest = triggered_by.strip_prefix("retry/")?;
    let (schedule, attempt) = rest.rsplit_once('/')?;
    let number = attempt.strip_prefix("attempt-")?.parse().ok()?;
    (!schedule.is_empty() && !schedule.contains('/') && number >= 2).then(|| Attempt {
        schedule: schedule.to_owned(),
        number,
    })
}

/// `triggeredBy` of attempt `number` of `schedule`.
pub fn trigger(schedule: &str, number: u32) -> String {
    format!("retry/{schedule}/attempt-{number}")
}

/// The delay after attempt `failed` before the next one.
pub fn backoff(policy: &RetrySpec, failed: u32) -> Duration {
    let initial = u64::try_from(policy.initial_backoff_seconds.max(1)).unwrap_or(1);
    let cap = u64::try_from(policy.max_backoff_seconds.max(1)).unwrap_or(1);
    let doublings = failed.saturating_sub(1).min(32);
    Duration::from_secs(initial.saturating_mul(1 << doublings).min(cap))
}

/// The name of the backup that takes attempt `number` after `failed` (a retry's retry
/// replaces the suffix), within the 63 characters a Job label allows.
pub fn retry_name(failed: &str, number: u32) -> String {
    let stem = match failed.rsplit_once("-retry-") {
        Some((stem, n)) if n.bytes().all(|b| b.is_ascii_digit()) => stem,
        _ => failed,
    };
    let suffix = format!("-retry-{number}");
    let keep: String = stem.chars().take(63 - suffix.len()).collect();
    format!("{}{suffix}", keep.trim_end_matches('-'))
}

/// What to do about one Failed backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryStep {
    /// Not a scheduled run, no retries configured, attempts used up, or already retried.
    None,
    /// The next attempt is due at this time.
    At(Timestamp),
    /// Create the next attempt now.
    Create {
        name: String,
        triggered_by: String,
        attempt: u32,
    },
}

/// What was observed about one Failed backup.
#[derive(Debug, Clone)]
pub struct FailedRun<'a> {
    pub name: &'a str,
    pub triggered_by: Option<&'a str>,
    pub completed: Option<Timestamp>,
    /// The backup already records the attempt it handed on to.
    pub retried: bool,
}

/// When the attempt after `run` falls due, if there is to be one: `None` for a run that is
/// not scheduled, with no retries configured, with its attempts used up, or already
/// retried. A run with no completion time counts from `now`.
pub fn retry_due(
    policy: Option<&RetrySpec>,
    run: &FailedRun<'_>,
    now: Timestamp,
) -> Option<(Attempt, Timestamp)> {
    let (policy, attempt) = (policy?, run.triggered_by.and_then(parse_trigger)?);
    let max = u32::try_from(policy.max_attempts).unwrap_or(1);
    if run.retried || attempt.number >= max {
        return None;
    }
    let due = run
        .completed
        .unwrap_or(now)
        .plus(backoff(policy, attempt.number));
    Some((attempt, due))
}

pub fn next_retry(policy: Option<&RetrySpec>, run: &FailedRun<'_>, now: Timestamp) -> RetryStep {
    let Some((attempt, due)) = retry_due(policy, run, now) else {
        return RetryStep::None;
    };
    if now < due {
        return RetryStep::At(due);
    }
    let next = attempt.number + 1;
    RetryStep::Create {
        name: retry_name(run.name, next),
        triggered_by: trigger(&attempt.schedule, next),
        attempt: next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max: i32) -> RetrySpec {
        RetrySpec {
            max_attempts: max,
            initial_backoff_seconds: 60,
            max_backoff_seconds: 1800,
        }
    }

    const T0: Timestamp = Timestamp(1_780_000_000_000);

    #[test]
    fn triggers_name_the_schedule_and_the_attempt() {
        assert_eq!(
            parse_trigger("schedule/nightly"),
            Some(Attempt {
                schedule: "nightly".into(),
                number: 1
            })
        );
        assert_eq!(
            parse_trigger(&trigger("nightly", 3)),
            Some(Attempt {
                schedule: "nightly".into(),
                number: 3
            })
        );
        for other in [
            "manual",
            "kubectl/alice",
            "schedule/",
            "retry/nightly/attempt-1",
            "retry/nightly/attempt-x",
            "retry//attempt-2",
            "schedule/a/b",
        ] {
            assert_eq!(parse_trigger(other), None, "{other}");
        }
    }

    #[test]
    fn the_backoff_doubles_from_the_initial_delay_up_to_the_cap() {
        let p = policy(10);
        let secs: Vec<u64> = (1..=7).map(|n| backoff(&p, n).as_secs()).collect();
        assert_eq!(secs, [60, 120, 240, 480, 960, 1800, 1800]);
        assert_eq!(backoff(&p, 1000).as_secs(), 1800, "no overflow");
    }

    #[test]
    fn a_failed_scheduled_backup_is_retried_after_its_backoff_until_attempts_run_out() {
        let p = policy(3);
        let run = FailedRun {
            name: "orders-nightly-20261202023000",
            triggered_by: Some("schedule/nightly"),
            completed: Some(T0),
            retried: false,
        };
        assert_eq!(
            next_retry(Some(&p), &run, T0),
            RetryStep::At(T0.plus(Duration::from_secs(60)))
        );
        assert_eq!(
            next_retry(Some(&p), &run, T0.plus(Duration::from_secs(60))),
            RetryStep::Create {
                name: "orders-nightly-20261202023000-retry-2".into(),
                triggered_by: "retry/nightly/attempt-2".into(),
                attempt: 2,
            }
        );
        let second = FailedRun {
            name: "orders-nightly-20261202023000-retry-2",
            triggered_by: Some("retry/nightly/attempt-2"),
            ..run.clone()
        };
        assert!(matches!(
            next_retry(Some(&p), &second, T0.plus(Duration::from_secs(120))),
            RetryStep::Create { ref name, attempt: 3, .. } if name == "orders-nightly-20261202023000-retry-3"
        ));
        let last = FailedRun {
            triggered_by: Some("retry/nightly/attempt-3"),
            ..second.clone()
        };
        assert_eq!(
            next_retry(Some(&p), &last, T0.plus(Duration::from_secs(9999))),
            RetryStep::None
        );
        let done = FailedRun {
            retried: true,
            ..run.clone()
        };
        assert_eq!(
            next_retry(Some(&p), &done, T0.plus(Duration::from_secs(9999))),
            RetryStep::None
        );
        let manual = FailedRun {
            triggered_by: Some("manual"),
            ..run.clone()
        };
        assert_eq!(
            next_retry(Some(&p), &manual, T0.plus(Duration::from_secs(9999))),
            RetryStep::None
        );
        assert_eq!(
            next_retry(None, &run, T0.plus(Duration::from_secs(9999))),
            RetryStep::None
        );
        assert_eq!(
            next_retry(Some(&policy(1)), &run, T0.plus(Duration::from_secs(9999))),
            RetryStep::None
        );
    }

    #[test]
    fn retry_names_fit_a_label() {
        let long = "x".repeat(80);
        for n in [2, 10] {
            let name = retry_name(&long, n);
            assert!(name.len() <= 63, "{name}");
            assert!(name.ends_with(&format!("-retry-{n}")));
        }
    }
}
