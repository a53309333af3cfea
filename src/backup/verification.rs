//! The life of one `MysqlBackupVerification`, decided from what was observed and the time:
//! which backup it checks, whether it may start (one at a time per group and profile), and
//! how its Job's ending reads.

use super::run::{JobState, NO_SOURCE_TIMEOUT, Phase};
use super::sanity::VerificationRecord;
use crate::api::verification::SanityCheckStatus;
use crate::failover::Timestamp;

/// A `MysqlBackup` as far as choosing one to verify goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupView<'a> {
    pub name: &'a str,
    pub group: &'a str,
    pub profile: &'a str,
    pub succeeded: bool,
    /// `status.completionTime`.
    pub completed: Option<Timestamp>,
}

/// The backup to verify: `backup_ref` when given (it must be a succeeded backup of the same
/// group and profile), else the newest succeeded one. `Err` says why none can be.
pub fn choose_backup<'a>(
    backups: &[BackupView<'a>],
    group: &str,
    profile: &str,
    backup_ref: Option<&str>,
) -> Result<Option<&'a str>, String> {
    if let Some(name) = backup_ref.filter(|n| !n.is_empty()) {
        let Some(backup) = backups.iter().find(|b| b.name == name) else {
            return Err(format!("backupRef {name:?}: no such MysqlBackup"));
        };
        if backup.group != group || backup.profile != profile {
            return Err(format!(
                "backupRef {name:?} is a backup of group {:?} with profile {:?}, not {group:?} with {profile:?}",
                backup.group, backup.profile
            ));
        }
        return Ok(backup.succeeded.then_some(backup.name));
    }
    Ok(backups
        .iter()
        .filter(|b| b.group == group && b.profile == profile && b.succeeded)
        .max_by_key(|b| (b.completed, b.name))
        .map(|b| b.name))
}

/// What the reconciler does next with one verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyStep {
    Nothing,
    Wait(String),
    Start {
        backup: String,
    },
    MarkRunning,
    /// The Job succeeded: read its result record and finish.
    Finish,
    /// The Job failed (why): read its result record for the reason, and fail.
    JobFailed(String),
    Fail(String),
}

/// What was observed about one verification.
#[derive(Debug, Clone)]
pub struct VerifyObserved<'a> {
    pub phase: Option<Phase>,
    pub created: Timestamp,
    pub job: JobState,
    /// [`choose_backup`]'s answer.
    pub backup: Result<Option<&'a str>, String>,
    /// Another verification of the same group and profile is running.
    pub blocked_by: Option<&'a str>,
}

pub fn next_verify_step(observed: &VerifyObserved<'_>, now: Timestamp) -> VerifyStep {
    if observed.phase.is_some_and(Phase::is_terminal) {
        return VerifyStep::Nothing;
    }
    match &observed.job {
        JobState::Succeeded => return VerifyStep::Finish,
        JobState::Failed(why) => return VerifyStep::JobFailed(why.clone()),
        JobState::Active if observed.phase == Some(Phase::Running) => return VerifyStep::Nothing,
        JobState::Active => return VerifyStep::MarkRunning,
        JobState::Absent if observed.phase == Some(Phase::Running) => {
            return VerifyStep::Fail(
                "the verification Job was deleted before it finished".to_owned(),
            );
        }
        JobState::Absent => {}
    }
    let backup = match &observed.backup {
        Err(why) => return VerifyStep::Fail(why.clone()),
        Ok(backup) => *backup,
    };
    let waiting = |why: String| {
        if now.has_elapsed(observed.created, NO_SOURCE_TIMEOUT) {
            VerifyStep::Fail(format!(
                "{why} for {} min",
                NO_SOURCE_TIMEOUT.as_secs() / 60
            ))
        } else {
            VerifyStep::Wait(why)
        }
    };
    let Some(backup) = backup else {
        return waiting("no succeeded backup of the profile to verify".to_owned());
    };
    if let Some(other) = observed.blocked_by {
        return waiting(format!(
            "BlockedByActiveVerification: {other} is verifying the same group and profile"
        ));
    }
    VerifyStep::Start {
        backup: backup.to_owned(),
    }
}

/// What the controller found of a Job's result record (`verifications/<name>.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordRead {
    Found(Box<VerificationRecord>),
    /// The repository holds no record under the name.
    Missing,
    /// A record that cannot be read or parsed: why.
    Corrupt(String),
    /// The repository is on a volume only Jobs mount (a PVC): what to say instead.
    OnVolume(String),
}

/// How a verification ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub succeeded: bool,
    /// The `Verified` condition's reason.
    pub reason: String,
    pub message: String,
    /// `status.sanityCheck`.
    pub sanity: Option<SanityCheckStatus>,
}

/// Judges a finished Job (`job_failure` is why it failed, `None` when it succeeded) with
/// its result record. A record of another backup is not this run's. `key` names the
/// record in messages; `wants_sanity` is whether the spec has a sanity query.
pub fn judge_ending(
    job_failure: Option<&str>,
    record: &RecordRead,
    backup_id: Option<&str>,
    key: &str,
    wants_sanity: bool,
) -> Verdict {
    let found = match record {
        RecordRead::Found(found) if backup_id.is_none_or(|id| id == found.backup_id) => found,
        RecordRead::Found(found) => {
            let why = format!(
                "the result record {key} is of backup {}, not this verification's",
                found.backup_id
            );
            return unrecorded(job_failure, &why);
        }
        RecordRead::Missing => {
            return unrecorded(job_failure, &format!("wrote no result record {key}"));
        }
        // A repository the operator cannot read: the Job succeeds only when every check
        // passed, the sanity query included.
        RecordRead::OnVolume(why) if job_failure.is_none() => {
            return Verdict {
                succeeded: true,
                reason: "Restored".to_owned(),
                message: why.clone(),
                sanity: wants_sanity.then(|| SanityCheckStatus {
                    ran: Some(true),
                    ..SanityCheckStatus::default()
                }),
            };
        }
        RecordRead::OnVolume(why) | RecordRead::Corrupt(why) => {
            return unrecorded(job_failure, why);
        }
    };
    if job_failure.is_none() && found.verified {
        let sanity = found.sanity_check.clone();
        let ran = sanity.as_ref().and_then(|s| s.ran) == Some(true);
        let message = match sanity.as_ref().and_then(|s| s.result_row.as_deref()) {
            Some(row) => format!("restored; the sanity query returned {row:?}"),
            None if ran => "restored; the sanity check passed".to_owned(),
            None if wants_sanity => {
                "every artifact checked; the sanity query did not run (nothing was restored to run it on)".to_owned()
            }
            None => "restored; every artifact checked".to_owned(),
        };
        return Verdict {
            succeeded: true,
            reason: "Restored".to_owned(),
            message,
            sanity,
        };
    }
    Verdict {
        succeeded: false,
        reason: found
            .reason
            .clone()
            .unwrap_or_else(|| VERIFICATION_FAILED.to_owned()),
        message: found.error.clone().unwrap_or_else(|| {
            format!(
                "the verification Job failed: {}",
                job_failure.unwrap_or("its result record says so")
            )
        }),
        sanity: found.sanity_check.clone(),
    }
}

const VERIFICATION_FAILED: &str = "VerificationFailed";

/// A Job's ending with no usable record: a failed Job fails with its own reason; a
/// succeeded one whose outcome is not in the repository has not proved anything.
fn unrecorded(job_failure: Option<&str>, why: &str) -> Verdict {
    let message = match job_failure {
        Some(failure) => format!("the verification Job failed: {failure} ({why})"),
        None => format!("the verification Job succeeded but {why}"),
    };
    Verdict {
        succeeded: false,
        reason: VERIFICATION_FAILED.to_owned(),
        message,
        sanity: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_780_000_000_000);

    fn view<'a>(name: &'a str, profile: &'a str, ok: bool, at: u64) -> BackupView<'a> {
        BackupView {
            name,
            group: "orders",
            profile,
            succeeded: ok,
            completed: Some(Timestamp(at)),
        }
    }

    #[test]
    fn the_newest_succeeded_backup_of_the_profile_is_chosen() {
        let backups = [
            view("a", "offsite", true, 1),
            view("b", "offsite", true, 3),
            view("c", "offsite", false, 5),
            view("d", "local", true, 9),
        ];
        assert_eq!(
            choose_backup(&backups, "orders", "offsite", None),
            Ok(Some("b"))
        );
        assert_eq!(choose_backup(&backups, "orders", "none", None), Ok(None));
        assert_eq!(
            choose_backup(&backups, "orders", "offsite", Some("a")),
            Ok(Some("a"))
        );
        assert_eq!(
            choose_backup(&backups, "orders", "offsite", Some("c")),
            Ok(None)
        );
        assert!(choose_backup(&backups, "orders", "offsite", Some("d")).is_err());
        assert!(choose_backup(&backups, "orders", "offsite", Some("zz")).is_err());
    }

    fn observed(backup: Result<Option<&str>, String>) -> VerifyObserved<'_> {
        VerifyObserved {
            phase: None,
            created: T0,
            job: JobState::Absent,
            backup,
            blocked_by: None,
        }
    }

    #[test]
    fn a_verification_starts_waits_or_fails_as_observed() {
        assert_eq!(
            next_verify_step(&observed(Ok(Some("b"))), T0),
            VerifyStep::Start { backup: "b".into() }
        );
        assert!(matches!(
            next_verify_step(&observed(Ok(None)), T0),
            VerifyStep::Wait(_)
        ));
        let late = T0.plus(NO_SOURCE_TIMEOUT);
        assert!(matches!(
            next_verify_step(&observed(Ok(None)), late),
            VerifyStep::Fail(_)
        ));
        assert!(matches!(
            next_verify_step(&observed(Err("no".into())), T0),
            VerifyStep::Fail(m) if m == "no"
        ));
        let mut blocked = observed(Ok(Some("b")));
        blocked.blocked_by = Some("other");
        assert!(
            matches!(next_verify_step(&blocked, T0), VerifyStep::Wait(m) if m.contains("BlockedByActiveVerification"))
        );
        let mut running = observed(Ok(Some("b")));
        running.phase = Some(Phase::Running);
        running.job = JobState::Active;
        assert_eq!(next_verify_step(&running, T0), VerifyStep::Nothing);
        running.job = JobState::Succeeded;
        assert_eq!(next_verify_step(&running, T0), VerifyStep::Finish);
        running.job = JobState::Failed("DeadlineExceeded: x".into());
        assert!(
            matches!(next_verify_step(&running, T0), VerifyStep::JobFailed(m) if m.contains("DeadlineExceeded"))
        );
        running.phase = Some(Phase::Succeeded);
        assert_eq!(next_verify_step(&running, T0), VerifyStep::Nothing);
    }

    fn record(verified: bool, reason: Option<&str>) -> RecordRead {
        RecordRead::Found(Box::new(VerificationRecord {
            format: 1,
            name: "v.uid".into(),
            backup_id: "b1".into(),
            finished_at: "2026-12-02T15:31:00Z".into(),
            verified,
            reason: reason.map(str::to_owned),
            error: (!verified)
                .then(|| "the sanity query returned 0, less than the minimum 1".into()),
            restored_rows: Some(3),
            sanity_check: Some(SanityCheckStatus {
                ran: Some(true),
                result_row: Some(if verified { "3" } else { "0" }.into()),
                duration_ms: Some(4),
                error: None,
            }),
        }))
    }

    #[test]
    fn the_ending_is_read_from_the_record() {
        let key = "verifications/v.uid.json";
        let ok = judge_ending(None, &record(true, None), Some("b1"), key, true);
        assert!(ok.succeeded);
        assert_eq!(
            ok.sanity.as_ref().and_then(|s| s.result_row.as_deref()),
            Some("3")
        );
        assert!(ok.message.contains("\"3\""), "{}", ok.message);

        let failed = judge_ending(
            Some("BackoffLimitExceeded: x"),
            &record(false, Some("SanityCheckFailed")),
            Some("b1"),
            key,
            true,
        );
        assert!(!failed.succeeded);
        assert_eq!(failed.reason, "SanityCheckFailed");
        assert!(failed.message.contains("minimum 1"), "{}", failed.message);
        assert_eq!(failed.sanity.and_then(|s| s.result_row), Some("0".into()));

        // Succeeded with nothing behind it proves nothing.
        let missing = judge_ending(None, &RecordRead::Missing, Some("b1"), key, true);
        assert!(!missing.succeeded);
        assert!(missing.message.contains(key), "{}", missing.message);
        // Another backup's record is not this run's.
        let other = judge_ending(None, &record(true, None), Some("b2"), key, true);
        assert!(!other.succeeded);
        // A failed Job without a record keeps its own reason.
        let bare = judge_ending(
            Some("DeadlineExceeded: y"),
            &RecordRead::Missing,
            None,
            key,
            true,
        );
        assert!(!bare.succeeded && bare.message.contains("DeadlineExceeded"));
        // A PVC repository: the Job's success is all there is to go on.
        let volume = judge_ending(
            None,
            &RecordRead::OnVolume("on the volume".into()),
            None,
            key,
            true,
        );
        assert!(volume.succeeded);
        assert_eq!(volume.sanity.and_then(|s| s.ran), Some(true));
        assert_eq!(volume.message, "on the volume");
    }
}
