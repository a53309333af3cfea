//! The backup controller while this replica leads: each group's schedule CronJobs (kept by
//! [`super::schedules`]), and each `MysqlBackup`'s Job and status.
//!
//! The decisions are [`crate::backup::run::next_step`] (pure); this module observes (the
//! watch caches, the group's failover status, the repository's manifest) and acts (apply
//! the Job, patch the status, post Events, count the run).
//!
//! The status is a view of the repository: when the Job succeeds, the backup's manifest,
//! written last by `bloodraven backup create`, gives the GTID set, the size and the times.
//! A Job that says it succeeded with no manifest behind it is a failure. Status writes
//! carry the resourceVersion the decision was made on, so after a leader change two
//! replicas never both record (and count) the same ending.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt as _;
use kube::runtime::watcher::{self, Event};
use serde_json::json;

use super::archiver::Archivers;
use super::job_record::{self, JobRef};
use super::job_runs::{Ending, Events, Watched, count_run, created, job_state, write_status};
use super::verifications::Verifications;
use super::{OperatorContext, artifacts, schedules};
use crate::adapters::kube::secrets::read_secret_data;
use crate::adapters::storage::{ObjectRepository, S3Settings};
use crate::api::backup::{BackupProfile, StorageType};
use crate::api::{MysqlBackup, MysqlBackupVerification, MysqlFailoverGroup};
use crate::backup::manifest::Manifest;
use crate::backup::run::{self, Chosen, FailReason, Observed, Phase, Step, human_size};
use crate::control::backup::Catalog;
use crate::failover::{GroupStatus, Timestamp};
use crate::ports::artifacts::BlobStore;
use crate::ports::objects::{ObjectKey, ObjectStore as _};
use crate::render::backup::{self as render, BackupJobInput, backup_id, job_name, repository_url};
use crate::telemetry::backup::RunKind;

/// Bounds one read of a backup's manifest from the repository.
pub(super) const MANIFEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The `MysqlBackup` objects seen by the watch, by namespace and name.
pub(super) struct BackupObjects {
    known: Watched<MysqlBackup>,
    archivers: Archivers,
    verifications: Verifications,
    events: Events,
    /// When a group's backups next need a pass without any event (a retry falls due).
    wakeups: BTreeMap<(String, String), Timestamp>,
}

impl Default for BackupObjects {
    fn default() -> Self {
        Self {
            known: Watched::default(),
            archivers: Archivers::default(),
            verifications: Verifications::default(),
            events: Events::new("Backup"),
            wakeups: BTreeMap::new(),
        }
    }
}

/// One event of the backup watches: a MysqlBackup's or a MysqlBackupVerification's.
// Events pass through one at a time, straight from the watch: boxing either would buy
// nothing but an allocation per event.
#[allow(clippy::large_enum_variant)]
pub(super) enum BackupEvent {
    Backup(Result<Event<MysqlBackup>, watcher::Error>),
    Verification(Result<Event<MysqlBackupVerification>, watcher::Error>),
}

impl BackupObjects {
    /// The earliest time a group's backups need a pass that no event will bring.
    pub(super) fn next_wake(&self) -> Option<Timestamp> {
        self.wakeups.values().min().copied()
    }

    /// The groups whose wake-up time has come (forgotten here; the pass sets them again
    /// if still needed).
    pub(super) fn take_due(&mut self, now: Timestamp) -> Vec<(String, String)> {
        let due: Vec<_> = self
            .wakeups
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(key, _)| key.clone())
            .collect();
        for key in &due {
            self.wakeups.remove(key);
        }
        due
    }

    /// Deleted backups whose group is gone keep the finalizer nobody else will remove: let
    /// them go (their artifacts are left, saying so). Called on the resync, once the group
    /// watch has had time to list every group.
    pub(super) async fn release_orphans(
        &mut self,
        ctx: &OperatorContext,
        groups: &std::collections::BTreeSet<(String, String)>,
    ) {
        for backup in self.known.all() {
            let key = (
                backup.namespace().unwrap_or_default(),
                backup.spec.failover_group_ref.name.clone(),
            );
            if artifacts::deleting(&backup)
                && artifacts::has_finalizer(&backup)
                && !groups.contains(&key)
            {
                artifacts::clean_up(ctx, None, &backup, &mut self.events).await;
            }
        }
    }

    /// The `MysqlBackup` named `name` in `namespace`, as last watched.
    pub(super) fn backup(&self, namespace: &str, name: &str) -> Option<Arc<MysqlBackup>> {
        self.known.get(namespace, name)
    }

    /// Takes one event of the backup watches; answers the group whose backups changed.
    pub(super) async fn observe(&mut self, event: Option<BackupEvent>) -> Option<(String, String)> {
        let failed = match event? {
            BackupEvent::Backup(Ok(Event::Apply(b) | Event::InitApply(b))) => {
                return Some(self.known.seen(b));
            }
            BackupEvent::Backup(Ok(Event::Delete(b))) => {
                self.known.gone(&b);
                return None;
            }
            BackupEvent::Verification(Ok(Event::Apply(v) | Event::InitApply(v))) => {
                return Some(self.verifications.seen(v));
            }
            BackupEvent::Verification(Ok(Event::Delete(v))) => {
                self.verifications.gone(&v);
                return None;
            }
            BackupEvent::Backup(Ok(Event::Init | Event::InitDone))
            | BackupEvent::Verification(Ok(Event::Init | Event::InitDone)) => return None,
            BackupEvent::Backup(Err(e)) | BackupEvent::Verification(Err(e)) => e,
        };
        tracing::warn!(error = %failed, "backup watch failed; it retries");
        tokio::time::sleep(Duration::from_secs(1)).await;
        None
    }

    /// Keeps the group's CronJobs as its schedules say, moves each of its backups on, and
    /// sets the last-success gauges from the stored objects.
    pub(super) async fn reconcile_group(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
        failover: Option<&GroupStatus>,
    ) {
        let span = tracing::info_span!("backups", namespace = %group.namespace().unwrap_or_default(), group = %group.name_any());
        let pass = self.reconcile_group_inner(ctx, group, failover);
        tracing::Instrument::instrument(pass, span).await;
    }

    async fn reconcile_group_inner(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
        failover: Option<&GroupStatus>,
    ) {
        if let Err(e) = schedules::sync_schedules(ctx, group).await {
            tracing::warn!(error = %e, "cannot bring the backup schedules' CronJobs in line");
        }
        self.archivers.reconcile_group(ctx, group).await;
        let namespace = group.namespace().unwrap_or_default();
        let backups = self.known.of_group(&namespace, &group.name_any());
        for backup in &backups {
            let span = tracing::info_span!("backup", name = %backup.name_any(), profile = %backup.spec.profile_name);
            if artifacts::deleting(backup) {
                if artifacts::has_finalizer(backup) {
                    let cleanup = artifacts::clean_up(ctx, Some(group), backup, &mut self.events);
                    tracing::Instrument::instrument(cleanup, span).await;
                }
                continue;
            }
            let step = self.reconcile_backup(ctx, group, failover, backup);
            tracing::Instrument::instrument(step, span).await;
        }
        record_last_successes(ctx, group, &backups);
        schedules::publish_status(ctx, group, &backups).await;
        artifacts::apply_retention(ctx, group, &backups, &mut self.known).await;
        let in_namespace = self.known.in_namespace(&namespace);
        self.verifications
            .reconcile_group(ctx, group, &in_namespace)
            .await;
    }

    async fn reconcile_backup(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
        failover: Option<&GroupStatus>,
        backup: &MysqlBackup,
    ) {
        let status = backup.status.clone().unwrap_or_default();
        let phase = Phase::parse(status.phase.as_deref());
        if phase == Some(Phase::Failed)
            && let Some(due) =
                super::retries::retry_failed(ctx, group, backup, &mut self.events).await
        {
            let key = (group.namespace().unwrap_or_default(), group.name_any());
            let wake = self.wakeups.entry(key).or_insert(due);
            *wake = (*wake).min(due);
        }
        if phase.is_some_and(Phase::is_terminal) {
            return;
        }
        // The finalizer before any Job: no artifact is written for an object that could go
        // without its cleanup. The write brings the next pass, which starts the backup.
        if phase != Some(Phase::Running) && !artifacts::has_finalizer(backup) {
            artifacts::add_finalizer(ctx, backup).await;
            return;
        }
        let now = crate::shells::backup::now();
        let spec = group.spec.backup.clone().unwrap_or_default();
        let Some(profile) = render::profile(&spec, &backup.spec.profile_name) else {
            let message = format!(
                "profile {:?} is not in the group's spec.backup.profiles",
                backup.spec.profile_name
            );
            self.fail(ctx, group, backup, FailReason::InvalidSource, &message)
                .await;
            return;
        };
        let id = match backup_id(backup) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(error = %e, "cannot name the backup");
                return;
            }
        };
        let namespace = group.namespace().unwrap_or_default();
        let job_key = ObjectKey::job(namespace.clone(), job_name(&id));
        let observed = Observed {
            phase,
            created: created(backup).unwrap_or(now),
            source_override: backup.spec.source_site_override.as_deref(),
            sites: &group.spec.sites,
            group: failover,
            max_lag_seconds: u64::try_from(spec.max_lag_seconds_for_source).unwrap_or(0),
            job: job_state(ctx.objects.live(&job_key).as_ref()),
        };
        match run::next_step(&observed, now) {
            Step::Nothing => {}
            Step::Wait(message) => {
                if phase != Some(Phase::Pending) || status.message.as_deref() != Some(&message) {
                    let patch = json!({"phase": "Pending", "message": message});
                    let _ = write_status(ctx, backup, &patch).await;
                }
            }
            Step::Start { site, chosen } => {
                self.start(ctx, group, failover, backup, profile, &id, &site, chosen)
                    .await;
            }
            Step::MarkRunning => {
                let patch = json!({"phase": "Running", "jobName": job_key.name});
                let _ = write_status(ctx, backup, &patch).await;
            }
            Step::Finish => self.finish(ctx, group, backup, profile, &id).await,
            Step::Fail { reason, message } => {
                self.fail(ctx, group, backup, reason, &message).await;
            }
        }
    }

    /// Creates the Job against `site` and records the start.
    #[allow(clippy::too_many_arguments)] // one backup's whole context, all borrowed
    async fn start(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
        failover: Option<&GroupStatus>,
        backup: &MysqlBackup,
        profile: &BackupProfile,
        id: &str,
        site: &str,
        chosen: Chosen,
    ) {
        let status = backup.status.clone().unwrap_or_default();
        let now = crate::shells::backup::now();
        let namespace = group.namespace().unwrap_or_default();
        let job_name = job_name(id);
        let Some(image) = ctx.jobs.image.as_deref() else {
            let message = "waiting: the operator was started without --job-image (BLOODRAVEN_OPERATOR_IMAGE), the image backup Jobs run";
            if status.message.as_deref() != Some(message) {
                let _ = write_status(
                    ctx,
                    backup,
                    &json!({"phase": "Pending", "message": message}),
                )
                .await;
            }
            return;
        };
        let address = ctx.endpoints.address(&namespace, &group.name_any(), site);
        let job = render::backup_job(&BackupJobInput {
            group,
            backup,
            profile,
            source_site: site,
            source_address: &address,
            image,
        });
        let job = match job.map(serde_json::to_value) {
            Ok(Ok(job)) => job,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot encode the backup Job");
                return;
            }
            Err(e) => {
                let message = format!("cannot render the backup Job: {e}");
                self.fail(ctx, group, backup, FailReason::InvalidSource, &message)
                    .await;
                return;
            }
        };
        if let Err(e) = ctx.objects.apply(&job).await {
            tracing::warn!(error = %e, "cannot create the backup Job; retrying");
            return;
        }
        let location = location(profile, id);
        let patch = json!({
            "phase": "Running",
            "startTime": now.rfc3339(),
            "jobName": job_name,
            "sourceSite": site,
            "activeSiteAtStart": failover.and_then(|s| s.active_site.clone()),
            "location": location,
            "storageType": render::storage_type(profile),
            "encrypted": profile.encryption.is_some(),
            "encryptionAlgorithm": profile.encryption.as_ref().map(|_| "AES-256-GCM"),
            "attempt": backup
                .spec
                .triggered_by
                .as_deref()
                .and_then(crate::backup::retry::parse_trigger)
                .map_or(1, |a| a.number),
            "observedGeneration": backup.metadata.generation,
            "message": format!("backing up from site {site} ({})", chosen.as_str()),
        });
        if write_status(ctx, backup, &patch).await {
            tracing::info!(site = %site, reason = chosen.as_str(), job = %job_name, "backup started");
            let message = format!(
                "backup Job {} started on site {site} ({}) into {location}",
                job_name,
                chosen.as_str()
            );
            self.events
                .post(ctx, backup, "BackupStarted", false, message)
                .await;
        }
    }

    /// The Job succeeded: record what the manifest says.
    async fn finish(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
        backup: &MysqlBackup,
        profile: &BackupProfile,
        id: &str,
    ) {
        let now = crate::shells::backup::now();
        let manifest = match read_manifest(ctx, backup, profile, id).await {
            Ok(ManifestRead::Found(manifest)) => manifest,
            Ok(ManifestRead::Unreadable(why)) => {
                if let Some(manifest) = left_by_job(ctx, backup, id).await {
                    self.succeeded(ctx, group, backup, id, &manifest).await;
                    return;
                }
                // A PVC profile: the repository is on a volume only the Job mounts.
                let ending = Ending {
                    status: json!({
                        "phase": "Succeeded",
                        "completionTime": now.rfc3339(),
                        "message": why,
                    }),
                    reason: "BackupSucceeded",
                    warning: false,
                    message: why,
                };
                let profile = &backup.spec.profile_name;
                self.events
                    .record_ending(ctx, backup, ending, || {
                        count_run(ctx, group, RunKind::Backup, profile, "succeeded");
                    })
                    .await;
                return;
            }
            Ok(ManifestRead::Missing) => {
                let message = format!(
                    "the backup Job succeeded but the repository holds no complete backup {id}"
                );
                self.fail(ctx, group, backup, FailReason::JobFailed, &message)
                    .await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the backup's manifest; retrying");
                let patch =
                    json!({"message": format!("the Job succeeded; reading its manifest: {e}")});
                let _ = write_status(ctx, backup, &patch).await;
                return;
            }
        };
        self.succeeded(ctx, group, backup, id, &manifest).await;
    }

    /// Records a succeeded backup from its manifest: the repository's, or the one its Job
    /// left in the pod's termination message.
    async fn succeeded(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
        backup: &MysqlBackup,
        id: &str,
        manifest: &Manifest,
    ) {
        let status = json!({
            "phase": "Succeeded",
            "startTime": manifest.started_at,
            "completionTime": manifest.finished_at,
            "gtidExecuted": manifest.gtid_executed,
            "sizeBytes": manifest.stored_bytes,
            "size": human_size(manifest.stored_bytes),
            "encrypted": manifest.encryption.is_some(),
            "encryptionAlgorithm": manifest.encryption.as_ref().map(|e| e.cipher.clone()),
            "message": format!("{} backup of {} ({} artifacts)", manifest.method.as_str(), manifest.source, manifest.artifacts),
        });
        let ending = Ending {
            status,
            reason: "BackupSucceeded",
            warning: false,
            message: format!(
                "backup {id} complete: {}, GTID set {}",
                human_size(manifest.stored_bytes),
                manifest.gtid_executed
            ),
        };
        let count = || {
            tracing::info!(bytes = manifest.stored_bytes, gtids = %manifest.gtid_executed, "backup succeeded");
            let (started, finished) = times(manifest);
            ctx.metrics
                .group_backups(&group.namespace().unwrap_or_default(), &group.name_any())
                .succeeded(
                    RunKind::Backup,
                    &backup.spec.profile_name,
                    finished,
                    finished.since(started),
                    manifest.stored_bytes,
                );
        };
        self.events.record_ending(ctx, backup, ending, count).await;
    }

    async fn fail(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
        backup: &MysqlBackup,
        reason: FailReason,
        message: &str,
    ) {
        let ending = Ending::failed("BackupFailed", message);
        let count = || {
            tracing::warn!(reason = reason.as_str(), message, "backup failed");
            let profile = &backup.spec.profile_name;
            count_run(ctx, group, RunKind::Backup, profile, reason.as_str());
        };
        self.events.record_ending(ctx, backup, ending, count).await;
    }
}

/// The last-success gauges of each profile, from the newest Succeeded backup: derived from
/// stored objects, so they survive restarts and leader changes.
fn record_last_successes(
    ctx: &OperatorContext,
    group: &MysqlFailoverGroup,
    backups: &[Arc<MysqlBackup>],
) {
    let mut newest: BTreeMap<&str, (Timestamp, Timestamp, u64)> = BTreeMap::new();
    for backup in backups {
        let Some(status) = &backup.status else {
            continue;
        };
        if status.phase.as_deref() != Some("Succeeded") {
            continue;
        }
        let Some(finished) = status
            .completion_time
            .as_deref()
            .and_then(Timestamp::parse_rfc3339)
        else {
            continue;
        };
        let started = status
            .start_time
            .as_deref()
            .and_then(Timestamp::parse_rfc3339)
            .unwrap_or(finished);
        let bytes = status
            .size_bytes
            .and_then(|b| u64::try_from(b).ok())
            .unwrap_or(0);
        let entry = newest
            .entry(&backup.spec.profile_name)
            .or_insert((started, finished, bytes));
        if finished > entry.1 {
            *entry = (started, finished, bytes);
        }
    }
    if newest.is_empty() {
        return;
    }
    let metrics = ctx
        .metrics
        .group_backups(&group.namespace().unwrap_or_default(), &group.name_any());
    for (profile, (started, finished, bytes)) in newest {
        metrics.record_last_success(
            RunKind::Backup,
            profile,
            finished,
            finished.since(started),
            bytes,
        );
    }
}

/// The manifest the backup's Job left in its pod's termination message (a repository on
/// a volume). Only the manifest of this backup counts; without one (the pod gone, the
/// manifest too long to leave) the status says where the backup is instead.
async fn left_by_job(
    ctx: &OperatorContext,
    backup: &MysqlBackup,
    id: &str,
) -> Option<Box<Manifest>> {
    let namespace = backup.namespace().unwrap_or_default();
    let name = job_name(id);
    let job = JobRef {
        namespace: &namespace,
        name: &name,
        container: render::BACKUP_CONTAINER,
    };
    match job_record::read::<Manifest>(ctx, &job).await {
        Ok(Some(manifest)) if manifest.id == id => Some(Box::new(manifest)),
        Ok(Some(other)) => {
            tracing::warn!(job = %name, found = %other.id, "the Job's termination message is another backup's manifest");
            None
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the backup Job's termination message");
            None
        }
    }
}

enum ManifestRead {
    Found(Box<Manifest>),
    Missing,
    /// The operator cannot read this repository (a PVC); why, for the status.
    Unreadable(String),
}

async fn read_manifest(
    ctx: &OperatorContext,
    backup: &MysqlBackup,
    profile: &BackupProfile,
    id: &str,
) -> Result<ManifestRead, String> {
    let namespace = backup.namespace().unwrap_or_default();
    let store = match open_repository(ctx, &namespace, profile).await? {
        Ok(store) => store,
        Err(url) => {
            return Ok(ManifestRead::Unreadable(format!(
                "the Job succeeded; backup {id} is on the backup volume ({url}), which only Jobs mount: `bloodraven backup list --from {url}` in a pod that mounts it shows its manifest"
            )));
        }
    };
    let url = repository_url(profile).map_err(|e| e.to_string())?;
    let catalog = Catalog::new(store, crate::shells::backup::ABANDONED_AFTER);
    match tokio::time::timeout(MANIFEST_TIMEOUT, catalog.manifest(id)).await {
        Ok(Ok(Some(manifest))) => Ok(ManifestRead::Found(Box::new(manifest))),
        Ok(Ok(None)) => Ok(ManifestRead::Missing),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer from {url} within {MANIFEST_TIMEOUT:?}")),
    }
}

/// The profile's repository as the operator reads it: S3 with the profile's credentials
/// Secret. `Ok(Err(url))` for a repository on a volume only Jobs mount.
pub(super) async fn open_repository(
    ctx: &OperatorContext,
    namespace: &str,
    profile: &BackupProfile,
) -> Result<Result<Arc<dyn BlobStore>, String>, String> {
    let url = repository_url(profile).map_err(|e| e.to_string())?;
    let (StorageType::S3, Some(s3)) = (profile.storage.storage_type, &profile.storage.s3) else {
        return Ok(Err(url));
    };
    let data = read_secret_data(&ctx.client, namespace, &s3.credentials_secret)
        .await
        .map_err(|e| e.to_string())?;
    let settings = S3Settings {
        endpoint: s3.endpoint_url.clone(),
        region: s3.region.clone(),
        ..S3Settings::default()
    }
    .with_credentials(|key| {
        data.get(key)
            .and_then(|v| String::from_utf8(v.clone()).ok())
            .filter(|v| !v.is_empty())
    });
    let store = ObjectRepository::open(&url, &settings).map_err(|e| e.to_string())?;
    Ok(Ok(Arc::new(store)))
}

fn location(profile: &BackupProfile, id: &str) -> String {
    let url = repository_url(profile).unwrap_or_default();
    format!("{url}/backups/{id}/")
}

fn times(manifest: &Manifest) -> (Timestamp, Timestamp) {
    let finished =
        Timestamp::parse_rfc3339(&manifest.finished_at).unwrap_or_else(crate::shells::backup::now);
    let started = Timestamp::parse_rfc3339(&manifest.started_at).unwrap_or(finished);
    (started, finished)
}
