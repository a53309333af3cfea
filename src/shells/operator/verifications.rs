//! The verification controller while this replica leads: each `MysqlBackupVerification`
//! becomes a Job that restores the chosen backup into a throwaway mysqld in its own pod and
//! runs the sanity query ([`crate::render::verification`]). Decisions are
//! [`crate::backup::verification::next_verify_step`] (pure); this module observes and acts.

use std::sync::Arc;

use kube::ResourceExt as _;
use serde_json::json;

use super::OperatorContext;
use super::backups::{MANIFEST_TIMEOUT, open_repository};
use super::job_record::{self, JobRef};
use super::job_runs::{Ending, Events, Watched, count_run, created, job_state, write_status};
use crate::api::backup::BackupProfile;
use crate::api::{MysqlBackup, MysqlBackupVerification, MysqlFailoverGroup};
use crate::backup::run::Phase;
use crate::backup::sanity::{MAX_RECORD_BYTES, VerificationRecord, record_key, record_name};
use crate::backup::verification::{
    BackupView, RecordRead, VerifyObserved, VerifyStep, choose_backup, judge_ending,
    next_verify_step,
};
use crate::failover::Timestamp;
use crate::ports::artifacts::BlobError;
use crate::ports::objects::{ObjectKey, ObjectStore as _};
use crate::render::backup::{backup_id, profile as find_profile, repository_url, storage_type};
use crate::render::verification::{
    VERIFY_CONTAINER, VerificationJobInput, job_name, verification_job,
};
use crate::telemetry::backup::RunKind;

/// The verification phases the status uses (the reference's names).
const RESTORING: &str = "Restoring";

/// The `MysqlBackupVerification` objects seen by the watch.
pub(super) struct Verifications {
    known: Watched<MysqlBackupVerification>,
    events: Events,
}

impl Default for Verifications {
    fn default() -> Self {
        Self {
            known: Watched::default(),
            events: Events::new("Verification"),
        }
    }
}

/// `Restoring` (and the reference's other in-flight phases) read as running.
fn phase_of(verification: &MysqlBackupVerification) -> Option<Phase> {
    let text = verification.status.as_ref()?.phase.as_deref()?;
    match text {
        "Provisioning" | "Restoring" | "Checking" | "Cleaning" => Some(Phase::Running),
        other => Phase::parse(Some(other)),
    }
}

impl Verifications {
    pub(super) fn seen(&mut self, verification: MysqlBackupVerification) -> (String, String) {
        self.known.seen(verification)
    }

    pub(super) fn gone(&mut self, verification: &MysqlBackupVerification) {
        self.known.gone(verification);
    }

    /// Moves each of the group's verifications on; `backups` are the namespace's backups.
    pub(super) async fn reconcile_group(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
        backups: &[Arc<MysqlBackup>],
    ) {
        let namespace = group.namespace().unwrap_or_default();
        let name = group.name_any();
        let mine = self.known.of_group(&namespace, &name);
        for verification in &mine {
            let blocked_by = mine
                .iter()
                .find(|other| {
                    other.name_any() != verification.name_any()
                        && other.spec.profile_name == verification.spec.profile_name
                        && phase_of(other) == Some(Phase::Running)
                })
                .map(|other| other.name_any());
            let span = tracing::info_span!("verification", name = %verification.name_any());
            let pass = self.reconcile_one(ctx, group, backups, verification, blocked_by.as_deref());
            tracing::Instrument::instrument(pass, span).await;
        }
    }

    async fn reconcile_one(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
        backups: &[Arc<MysqlBackup>],
        verification: &MysqlBackupVerification,
        blocked_by: Option<&str>,
    ) {
        let phase = phase_of(verification);
        if phase.is_some_and(Phase::is_terminal) {
            return;
        }
        let now = crate::shells::backup::now();
        let spec = group.spec.backup.clone().unwrap_or_default();
        let Some(profile) = find_profile(&spec, &verification.spec.profile_name) else {
            let message = format!(
                "profile {:?} is not in the group's spec.backup.profiles",
                verification.spec.profile_name
            );
            self.fail(ctx, group, verification, &message).await;
            return;
        };
        let job_key = ObjectKey::job(
            group.namespace().unwrap_or_default(),
            job_name(&verification.name_any()),
        );
        let views: Vec<BackupView<'_>> = backups.iter().map(|b| view(b)).collect();
        let observed = VerifyObserved {
            phase,
            created: created(verification).unwrap_or(now),
            job: job_state(ctx.objects.live(&job_key).as_ref()),
            backup: choose_backup(
                &views,
                &group.name_any(),
                &verification.spec.profile_name,
                verification
                    .spec
                    .backup_ref
                    .as_ref()
                    .map(|r| r.name.as_str()),
            ),
            blocked_by,
        };
        match next_verify_step(&observed, now) {
            VerifyStep::Nothing => {}
            VerifyStep::Wait(message) => {
                let current = verification
                    .status
                    .as_ref()
                    .and_then(|s| s.message.as_deref());
                if current != Some(message.as_str()) {
                    let patch = json!({"phase": "Pending", "message": message});
                    let _ = write_status(ctx, verification, &patch).await;
                }
            }
            VerifyStep::Start { backup } => {
                let Some(backup) = backups.iter().find(|b| b.name_any() == backup) else {
                    return;
                };
                self.start(ctx, group, verification, profile, backup, &job_key.name)
                    .await;
            }
            VerifyStep::MarkRunning => {
                let patch = json!({"phase": RESTORING, "jobName": job_key.name});
                let _ = write_status(ctx, verification, &patch).await;
            }
            VerifyStep::Finish => {
                self.finish(ctx, group, verification, backups, profile, now, None)
                    .await;
            }
            VerifyStep::JobFailed(why) => {
                self.finish(ctx, group, verification, backups, profile, now, Some(why))
                    .await;
            }
            VerifyStep::Fail(message) => self.fail(ctx, group, verification, &message).await,
        }
    }

    async fn start(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
        verification: &MysqlBackupVerification,
        profile: &BackupProfile,
        backup: &MysqlBackup,
        job_name: &str,
    ) {
        let Some(image) = ctx.jobs.image.as_deref() else {
            let message = "waiting: the operator was started without --job-image (BLOODRAVEN_OPERATOR_IMAGE), the image verification Jobs run";
            let current = verification
                .status
                .as_ref()
                .and_then(|s| s.message.as_deref());
            if current != Some(message) {
                let _ = write_status(
                    ctx,
                    verification,
                    &json!({"phase": "Pending", "message": message}),
                )
                .await;
            }
            return;
        };
        let (Ok(id), Ok(url)) = (backup_id(backup), repository_url(profile)) else {
            return;
        };
        let bytes = backup
            .status
            .as_ref()
            .and_then(|s| s.size_bytes)
            .and_then(|b| u64::try_from(b).ok())
            .unwrap_or(0);
        let job = verification_job(&VerificationJobInput {
            group,
            verification,
            profile,
            backup_id: &id,
            backup_bytes: bytes,
            image,
        })
        .map_err(|e| e.to_string())
        .and_then(|job| serde_json::to_value(job).map_err(|e| e.to_string()));
        let job = match job {
            Ok(job) => job,
            Err(message) => {
                // The reference's reason for inputs that cannot make a Job (such as a
                // pointInTime replay without the archive).
                let message = format!("cannot render the verification Job: {message}");
                self.fail_as(
                    ctx,
                    group,
                    verification,
                    "VerificationBuildFailed",
                    &message,
                )
                .await;
                return;
            }
        };
        if let Err(e) = ctx.objects.apply(&job).await {
            tracing::warn!(error = %e, "cannot create the verification Job; retrying");
            return;
        }
        let patch = json!({
            "phase": RESTORING,
            "startTime": crate::shells::backup::now().rfc3339(),
            "jobName": job_name,
            "backupRef": {
                "name": backup.name_any(),
                "uid": backup.metadata.uid,
                "location": format!("{url}/backups/{id}/"),
                "storageType": storage_type(profile),
            },
            "observedGeneration": verification.metadata.generation,
            "message": format!("restoring backup {} into a throwaway server", backup.name_any()),
        });
        if write_status(ctx, verification, &patch).await {
            let message = format!(
                "verification Job {job_name} started for backup {}",
                backup.name_any()
            );
            self.events
                .post(ctx, verification, "VerificationStarted", false, message)
                .await;
        }
    }

    /// Ends a verification whose Job ended (`job_failure` says why it failed), judged
    /// with the result record the Job wrote to the repository.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
        verification: &MysqlBackupVerification,
        backups: &[Arc<MysqlBackup>],
        profile: &BackupProfile,
        now: Timestamp,
        job_failure: Option<String>,
    ) {
        let name = record_name(
            &verification.name_any(),
            verification.metadata.uid.as_deref(),
        );
        let key = record_key(&name);
        let record = match read_record(ctx, verification, profile, &name).await {
            Ok(record) => record,
            Err(e) if job_failure.is_none() => {
                tracing::warn!(error = %e, "cannot read the verification's record; retrying");
                let patch = json!({"message": format!("the Job succeeded; reading its result record {key}: {e}")});
                let _ = write_status(ctx, verification, &patch).await;
                return;
            }
            Err(e) => RecordRead::Corrupt(format!("its result record could not be read: {e}")),
        };
        let backup_id = verification
            .status
            .as_ref()
            .and_then(|s| s.backup_ref.as_ref())
            .and_then(|r| backups.iter().find(|b| b.name_any() == r.name))
            .and_then(|b| backup_id(b).ok());
        let verdict = judge_ending(
            job_failure.as_deref(),
            &record,
            backup_id.as_deref(),
            &key,
            verification.spec.sanity_check.is_some(),
        );
        if !verdict.succeeded {
            let condition = condition("Verified", "False", &verdict.reason, &verdict.message);
            let mut ending = Ending::failed("VerificationFailed", &verdict.message)
                .with("conditions", json!([condition]));
            if let Some(sanity) = &verdict.sanity {
                ending = ending.with("sanityCheck", json!(sanity));
            }
            let count = || {
                tracing::warn!(message = %verdict.message, "verification failed");
                let profile = &verification.spec.profile_name;
                count_run(ctx, group, RunKind::Verification, profile, "failed");
            };
            self.events
                .record_ending(ctx, verification, ending, count)
                .await;
            return;
        }
        let started = verification
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_deref())
            .and_then(Timestamp::parse_rfc3339)
            .unwrap_or(now);
        let took = now.since(started);
        let ending = Ending {
            status: json!({
                "phase": "Succeeded",
                "completionTime": now.rfc3339(),
                "durationSeconds": took.as_secs(),
                "sanityCheck": verdict.sanity,
                "conditions": [condition("Verified", "True", &verdict.reason, "the backup restored into a throwaway server")],
                "message": verdict.message,
            }),
            reason: "VerificationSucceeded",
            warning: false,
            message: format!("backup verified in {} s", took.as_secs()),
        };
        let count = || {
            ctx.metrics
                .group_backups(&group.namespace().unwrap_or_default(), &group.name_any())
                .succeeded(
                    RunKind::Verification,
                    &verification.spec.profile_name,
                    now,
                    took,
                    0,
                );
        };
        self.events
            .record_ending(ctx, verification, ending, count)
            .await;
    }

    async fn fail(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
        verification: &MysqlBackupVerification,
        message: &str,
    ) {
        self.fail_as(ctx, group, verification, "VerificationFailed", message)
            .await;
    }

    /// Ends the verification as Failed with `reason` (the Event's and the condition's).
    async fn fail_as(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
        verification: &MysqlBackupVerification,
        reason: &'static str,
        message: &str,
    ) {
        let condition = condition("Verified", "False", reason, message);
        let ending = Ending::failed(reason, message).with("conditions", json!([condition]));
        let count = || {
            tracing::warn!(message, "verification failed");
            let profile = &verification.spec.profile_name;
            count_run(ctx, group, RunKind::Verification, profile, "failed");
        };
        self.events
            .record_ending(ctx, verification, ending, count)
            .await;
    }
}

/// Reads the Job's result record, bounded like a backup's manifest. `Err` is a read that
/// may work next time.
async fn read_record(
    ctx: &OperatorContext,
    verification: &MysqlBackupVerification,
    profile: &BackupProfile,
    name: &str,
) -> Result<RecordRead, String> {
    let key = &record_key(name);
    let namespace = verification.namespace().unwrap_or_default();
    let store = match open_repository(ctx, &namespace, profile).await? {
        Ok(store) => store,
        Err(url) => {
            // A backup volume the operator does not mount: the Job left the record in its
            // pod's termination message.
            let job = JobRef {
                namespace: &namespace,
                name: &job_name(&verification.name_any()),
                container: VERIFY_CONTAINER,
            };
            return Ok(
                match job_record::read::<VerificationRecord>(ctx, &job).await? {
                    Some(record) if record.name == name => RecordRead::Found(Box::new(record)),
                    _ => RecordRead::OnVolume(format!(
                        "restored and checked; the result record {key} is on the backup volume ({url}), which only Jobs mount, and the Job's pod left none"
                    )),
                },
            );
        }
    };
    match tokio::time::timeout(MANIFEST_TIMEOUT, store.get(key, MAX_RECORD_BYTES)).await {
        Ok(Ok(bytes)) => Ok(serde_json::from_slice(&bytes).map_or_else(
            |e| RecordRead::Corrupt(format!("its result record {key} does not parse: {e}")),
            |record| RecordRead::Found(Box::new(record)),
        )),
        Ok(Err(BlobError::Missing { .. })) => Ok(RecordRead::Missing),
        Ok(Err(BlobError::TooLarge { size, .. })) => Ok(RecordRead::Corrupt(format!(
            "its result record {key} is {size} bytes, too large to be one"
        ))),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {MANIFEST_TIMEOUT:?}")),
    }
}

fn view(backup: &MysqlBackup) -> BackupView<'_> {
    let status = backup.status.as_ref();
    BackupView {
        name: backup.metadata.name.as_deref().unwrap_or(""),
        group: &backup.spec.failover_group_ref.name,
        profile: &backup.spec.profile_name,
        succeeded: status.and_then(|s| s.phase.as_deref()) == Some("Succeeded"),
        completed: status
            .and_then(|s| s.completion_time.as_deref())
            .and_then(Timestamp::parse_rfc3339),
    }
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> serde_json::Value {
    json!({
        "type": kind, "status": status, "reason": reason,
        "message": message.chars().take(1024).collect::<String>(),
        "lastTransitionTime": crate::shells::backup::now().rfc3339(),
    })
}
