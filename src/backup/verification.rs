//! The life of one `MysqlBackupVerification`, decided from what was observed and the time:
//! which backup it checks, whether it may start (one at a time per group and profile), and
//! how its Job's ending reads.

use super::run::{JobState, NO_SOURCE_TIMEOUT, Phase};
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
    Start { backup: String },
    MarkRunning,
    Finish,
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
    /// `spec.pointInTime.mode` is other than `none`.
    pub wants_point_in_time: bool,
}

pub fn next_verify_step(observed: &VerifyObserved<'_>, now: Timestamp) -> VerifyStep {
    if observed.phase.is_some_and(Phase::is_terminal) {
        return VerifyStep::Nothing;
    }
    match &observed.job {
        JobState::Succeeded => return VerifyStep::Finish,
        JobState::Failed(why) => {
            return VerifyStep::Fail(format!("the verification Job failed: {why}"));
        }
        JobState::Active if observed.phase == Some(Phase::Running) => return VerifyStep::Nothing,
        JobState::Active => return VerifyStep::MarkRunning,
        JobState::Absent if observed.phase == Some(Phase::Running) => {
            return VerifyStep::Fail(
                "the verification Job was deleted before it finished".to_owned(),
            );
        }
        JobState::Absent => {}
    }
    if observed.wants_point_in_time {
        return VerifyStep::Fail(
            "pointInTime replay is not supported by verifications yet; use mode none (or restore with `bloodraven backup restore --until-time`)"
                .to_owned(),
        );
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
            wants_point_in_time: false,
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
        let mut pitr = observed(Ok(Some("b")));
        pitr.wants_point_in_time = true;
        assert!(
            matches!(next_verify_step(&pitr, T0), VerifyStep::Fail(m) if m.contains("pointInTime"))
        );
        let mut running = observed(Ok(Some("b")));
        running.phase = Some(Phase::Running);
        running.job = JobState::Active;
        assert_eq!(next_verify_step(&running, T0), VerifyStep::Nothing);
        running.job = JobState::Succeeded;
        assert_eq!(next_verify_step(&running, T0), VerifyStep::Finish);
        running.job = JobState::Failed("DeadlineExceeded: x".into());
        assert!(
            matches!(next_verify_step(&running, T0), VerifyStep::Fail(m) if m.contains("DeadlineExceeded"))
        );
        running.phase = Some(Phase::Succeeded);
        assert_eq!(next_verify_step(&running, T0), VerifyStep::Nothing);
    }
}
