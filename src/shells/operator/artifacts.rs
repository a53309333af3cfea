//! A `MysqlBackup`'s artifacts follow the object: retention deletes the objects its
//! profile no longer keeps, and a finalizer deletes a deleted object's backup from the
//! repository before the object goes.
//!
//! The finalizer is added before the backup's Job is created, so no artifact is ever
//! written for an object that could vanish without its cleanup. The decisions are pure
//! ([`crate::backup::retention::plan`], which never deletes the newest successful backup
//! or one in progress); this module observes the stored objects and acts.
//!
//! An S3 repository is cleaned by the operator itself, reading the profile's credentials
//! as the backup controller does. A backup volume is mounted only by Jobs: a cleanup Job
//! deletes the backup there, and the finalizer waits for it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt as _};
use serde_json::json;

use super::OperatorContext;
use super::job_runs::{Events, Watched, job_state, write_status};
use crate::api::backup::{BackupProfile, StorageType};
use crate::api::{MysqlBackup, MysqlFailoverGroup};
use crate::backup::retention::{BackupRecord, Outcome, RetentionPolicy, plan};
use crate::backup::run::JobState;
use crate::control::backup::Catalog;
use crate::failover::Timestamp;
use crate::ports::objects::{ObjectKey, ObjectStore as _};
use crate::render::backup::{
    backup_id, cleanup_job, cleanup_job_name, job_name, profile as find_profile, repository_url,
};

/// The finalizer that holds a deleted `MysqlBackup` until its artifacts are gone.
pub(super) const FINALIZER: &str = "shipstream.io/backup-artifacts";
/// Bounds one cleanup's deletes in the repository.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) fn has_finalizer(backup: &MysqlBackup) -> bool {
    backup.finalizers().iter().any(|f| f == FINALIZER)
}

pub(super) fn deleting(backup: &MysqlBackup) -> bool {
    backup.metadata.deletion_timestamp.is_some()
}

/// Adds the finalizer (resourceVersion-checked); true when written.
pub(super) async fn add_finalizer(ctx: &OperatorContext, backup: &MysqlBackup) -> bool {
    let mut finalizers = backup.finalizers().to_vec();
    finalizers.push(FINALIZER.to_owned());
    set_finalizers(ctx, backup, finalizers).await
}

async fn set_finalizers(
    ctx: &OperatorContext,
    backup: &MysqlBackup,
    finalizers: Vec<String>,
) -> bool {
    let api: Api<MysqlBackup> =
        Api::namespaced(ctx.client.clone(), &backup.namespace().unwrap_or_default());
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": backup.metadata.resource_version,
    }});
    match api
        .patch(
            &backup.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => true,
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => false,
        Err(e) => {
            tracing::warn!(error = %e, "cannot update the backup's finalizers");
            false
        }
    }
}

/// A deleted backup: its artifacts are removed (or skipped, saying why), then the
/// finalizer goes. A failed cleanup keeps the finalizer and is retried on the next pass.
pub(super) async fn clean_up(
    ctx: &OperatorContext,
    group: Option<&MysqlFailoverGroup>,
    backup: &MysqlBackup,
    events: &mut Events,
) {
    let profile = group
        .and_then(|g| g.spec.backup.as_ref())
        .and_then(|spec| find_profile(spec, &backup.spec.profile_name));
    let id = backup_id(backup);
    let namespace = backup.namespace().unwrap_or_default();
    if let Ok(id) = &id
        && job_state(
            ctx.objects
                .live(&ObjectKey::job(namespace.clone(), job_name(id)))
                .as_ref(),
        ) == JobState::Active
    {
        // The backup's own Job still writes: what a cleanup deleted now, it could write
        // after, leaving a complete-looking backup with holes. Its end wakes the group.
        tracing::info!(backup = %id, "deleted while its Job runs; cleaning up once it ends");
        return;
    }
    let outcome = match (profile, id) {
        (None, _) => Skipped(format!(
            "the group or its profile {:?} is gone: the artifacts (if any) are left where they were",
            backup.spec.profile_name
        )),
        (_, Err(e)) => Skipped(format!("the backup has no repository id: {e}")),
        (Some(profile), Ok(id)) => match (group, profile.storage.storage_type) {
            (Some(group), StorageType::Pvc) => {
                delete_on_volume(ctx, group, backup, profile, &id, events).await
            }
            _ => delete_artifacts(ctx, backup, profile, &id).await,
        },
    };
    let (reason, warning, message) = match &outcome {
        Deleted(message) => ("ArtifactCleanupSucceeded", false, message.clone()),
        Skipped(message) => ("ArtifactCleanupSkipped", false, message.clone()),
        Waiting => return,
        CleanupFailed(message) => {
            tracing::warn!(message = %message, "artifact cleanup failed; retrying");
            events
                .post(ctx, backup, "ArtifactCleanupFailed", true, message.clone())
                .await;
            return;
        }
    };
    let remaining: Vec<String> = backup
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if set_finalizers(ctx, backup, remaining).await {
        tracing::info!(reason, message = %message, "backup artifacts handled; finalizer removed");
        events.post(ctx, backup, reason, warning, message).await;
    }
}

enum CleanupOutcome {
    Deleted(String),
    Skipped(String),
    /// A cleanup Job is at work, or has failed and said so once: the finalizer stays.
    Waiting,
    CleanupFailed(String),
}
use CleanupOutcome::{CleanupFailed, Deleted, Skipped, Waiting};

/// A backup on a volume only Jobs mount: a cleanup Job deletes it (`bloodraven backup
/// delete`), and the finalizer goes once the Job succeeded. A failed Job keeps the
/// finalizer and says once, in the status and an Event, how to go on: deleting the Job
/// runs it again; removing the finalizer leaves the artifacts.
async fn delete_on_volume(
    ctx: &OperatorContext,
    group: &MysqlFailoverGroup,
    backup: &MysqlBackup,
    profile: &BackupProfile,
    id: &str,
    events: &mut Events,
) -> CleanupOutcome {
    let url = repository_url(profile).unwrap_or_default();
    let Some(image) = ctx.jobs.image.as_deref() else {
        return Skipped(format!(
            "backup {id} is on the backup volume ({url}) and the operator has no --job-image to run a cleanup Job: `bloodraven backup delete --from {url} --id {id}` in a pod that mounts it removes it"
        ));
    };
    let name = cleanup_job_name(id);
    match job_state(
        ctx.objects
            .live(&ObjectKey::job(
                backup.namespace().unwrap_or_default(),
                name.clone(),
            ))
            .as_ref(),
    ) {
        JobState::Absent => {
            let job = match cleanup_job(group, backup, profile, image)
                .map_err(|e| e.to_string())
                .and_then(|job| serde_json::to_value(job).map_err(|e| e.to_string()))
            {
                Ok(job) => job,
                Err(e) => return Skipped(format!("no cleanup Job for backup {id}: {e}")),
            };
            if let Err(e) = ctx.objects.apply(&job).await {
                return CleanupFailed(format!("creating the cleanup Job {name}: {e}"));
            }
            tracing::info!(job = %name, "cleanup Job created");
            let message = format!("Job {name} deletes backup {id} from {url}");
            events
                .post(ctx, backup, "ArtifactCleanupStarted", false, message)
                .await;
            Waiting
        }
        JobState::Active => Waiting,
        JobState::Succeeded => Deleted(format!("backup {id} deleted from {url} by Job {name}")),
        JobState::Failed(why) => {
            let message = format!(
                "the cleanup Job {name} failed ({why}): delete the Job to run it again, or remove the finalizer {FINALIZER} to leave backup {id} in {url}"
            );
            let said = backup.status.as_ref().and_then(|s| s.message.as_deref());
            if said != Some(message.as_str())
                && write_status(ctx, backup, &json!({"message": message})).await
            {
                tracing::warn!(job = %name, %why, "cleanup Job failed");
                events
                    .post(ctx, backup, "ArtifactCleanupFailed", true, message)
                    .await;
            }
            Waiting
        }
    }
}

async fn delete_artifacts(
    ctx: &OperatorContext,
    backup: &MysqlBackup,
    profile: &BackupProfile,
    id: &str,
) -> CleanupOutcome {
    let url = repository_url(profile).unwrap_or_default();
    if profile.storage.storage_type != StorageType::S3 {
        return Skipped(format!(
            "backup {id} is on the backup volume ({url}), which only Jobs mount: `bloodraven backup delete --from {url} --id {id}` in a pod that mounts it removes it"
        ));
    }
    let namespace = backup.namespace().unwrap_or_default();
    let catalog = match super::backups::open_repository(ctx, &namespace, profile).await {
        Ok(Ok(store)) => Catalog::new(store, crate::shells::backup::ABANDONED_AFTER),
        Ok(Err(_)) => return Skipped(format!("{url} is not readable by the operator")),
        Err(e) => return CleanupFailed(format!("opening {url}: {e}")),
    };
    match tokio::time::timeout(CLEANUP_TIMEOUT, catalog.delete(id)).await {
        Ok(Ok(())) => Deleted(format!("backup {id} deleted from {url}")),
        Ok(Err(e)) => CleanupFailed(format!("deleting backup {id} from {url}: {e}")),
        Err(_) => CleanupFailed(format!(
            "deleting backup {id} from {url}: no answer within {CLEANUP_TIMEOUT:?}"
        )),
    }
}

/// Deletes the group's `MysqlBackup` objects each profile's retention no longer keeps
/// (their finalizer then removes the artifacts). The newest successful backup of a profile
/// and any backup in progress are always kept.
///
/// Each answer to a DELETE goes into `known` at once (the object now deleting, or gone),
/// so the next pass, which may come before the watch shows the deletion, neither sends the
/// same DELETE again nor counts the object as kept.
pub(super) async fn apply_retention(
    ctx: &OperatorContext,
    group: &MysqlFailoverGroup,
    backups: &[Arc<MysqlBackup>],
    known: &mut Watched<MysqlBackup>,
) {
    let Some(spec) = group.spec.backup.as_ref() else {
        return;
    };
    let now = crate::shells::backup::now();
    for profile in &spec.profiles {
        let policy = match RetentionPolicy::from_profile(profile) {
            Ok(policy) => policy,
            Err(e) => {
                tracing::warn!(profile = %profile.name, error = %e, "retention not applied");
                continue;
            }
        };
        let mine: BTreeMap<String, &Arc<MysqlBackup>> = backups
            .iter()
            .filter(|b| b.spec.profile_name == profile.name && !deleting(b))
            .map(|b| (b.name_any(), b))
            .collect();
        let records: Vec<BackupRecord> =
            mine.iter().map(|(name, b)| record(name, b, now)).collect();
        for deletion in plan(&records, &policy, now).delete {
            let Some(backup) = mine.get(&deletion.id) else {
                continue;
            };
            let api: Api<MysqlBackup> =
                Api::namespaced(ctx.client.clone(), &backup.namespace().unwrap_or_default());
            match api.delete(&deletion.id, &DeleteParams::default()).await {
                Ok(answer) => {
                    tracing::info!(profile = %profile.name, backup = %deletion.id, reason = %deletion.reason, "retention: backup deleted");
                    match answer.left() {
                        // Held by its finalizer: stored with its deletion timestamp.
                        Some(deleting) => {
                            known.seen(deleting);
                        }
                        None => known.gone(backup),
                    }
                }
                Err(kube::Error::Api(e)) if e.code == 404 => known.gone(backup),
                Err(e) => {
                    tracing::warn!(backup = %deletion.id, error = %e, "retention: cannot delete the backup");
                }
            }
        }
    }
}

/// One stored backup as retention sees it.
fn record(name: &str, backup: &MysqlBackup, now: Timestamp) -> BackupRecord {
    let status = backup.status.clone().unwrap_or_default();
    let time = |t: Option<&str>| t.and_then(Timestamp::parse_rfc3339);
    let outcome = match status.phase.as_deref() {
        Some("Succeeded") => Outcome::Succeeded,
        Some("Failed") => Outcome::Failed,
        _ => Outcome::InProgress,
    };
    let finished_at = time(status.completion_time.as_deref())
        .or_else(|| time(status.start_time.as_deref()))
        .or_else(|| super::job_runs::created(backup))
        .unwrap_or(now);
    BackupRecord {
        id: name.to_owned(),
        finished_at,
        outcome,
    }
}
