//! The backup objects of a group: a CronJob per `spec.backup.schedules` entry, and the Job
//! that takes one `MysqlBackup`.
//!
//! Both run this binary (the operator's image), not MySQL Shell: the Job runs
//! `bloodraven backup create`, the CronJob `bloodraven kubectl backup`, which only creates
//! the `MysqlBackup` the reconciler then turns into a Job. So a scheduled run and an ad-hoc
//! one are the same object with the same status, Events and metrics.
//!
//! Secrets reach the Job as files (0400, read-only mounts), never as environment
//! variables or arguments. The Job has no ServiceAccount token: it talks to MySQL and the
//! repository, never to the Kubernetes API.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use serde_json::{Value, json};

mod cleanup;
pub use cleanup::{cleanup_job, cleanup_job_name};

use super::names::{self, LABEL_GROUP};
use super::{Owner, RenderError};
use crate::api::backup::{BackupProfile, BackupSpec, ConcurrencyPolicy, StorageType};
use crate::api::{MysqlBackup, MysqlFailoverGroup};

/// Labels a backup Job with the id of the backup it takes.
pub const LABEL_BACKUP: &str = "shipstream.io/backup";
/// Labels a CronJob with the schedule it runs.
pub const LABEL_SCHEDULE: &str = "shipstream.io/backup-schedule";

/// Where the Job finds its secrets.
pub(super) const MYSQL_CREDS: &str = "/run/bloodraven/mysql-creds";
const S3_CREDS: &str = "/run/bloodraven/aws-creds";
const PASSPHRASE: &str = "/run/bloodraven/backup-key";
/// The backup volume of a PVC profile.
const PVC_MOUNT: &str = "/backups";
/// The distroless image's `nonroot` user.
const NONROOT_UID: i64 = 65_532;
/// A CronJob name longer than this leaves no room for the Job names it makes.
const MAX_CRON_JOB_NAME: usize = 52;

/// The profile named `name` in `spec`.
pub fn profile<'a>(spec: &'a BackupSpec, name: &str) -> Option<&'a BackupProfile> {
    spec.profiles.iter().find(|p| p.name == name)
}

/// The repository a profile stores its backups in, as `bloodraven backup` takes it:
/// `s3://bucket/prefix`, or the backup volume inside the Job.
pub fn repository_url(profile: &BackupProfile) -> Result<String, RenderError> {
    match profile.storage.storage_type {
        StorageType::S3 => {
            let s3 =
                profile.storage.s3.as_ref().ok_or_else(|| {
                    invalid_profile(profile, "storage.type S3 without storage.s3")
                })?;
            let prefix = s3.prefix.as_deref().unwrap_or("").trim_matches('/');
            Ok(if prefix.is_empty() {
                format!("s3://{}", s3.bucket)
            } else {
                format!("s3://{}/{prefix}", s3.bucket)
            })
        }
        StorageType::Pvc => {
            let pvc =
                profile.storage.pvc.as_ref().ok_or_else(|| {
                    invalid_profile(profile, "storage.type PVC without storage.pvc")
                })?;
            let sub = pvc.sub_path.as_deref().unwrap_or("").trim_matches('/');
            if sub.split('/').any(|part| part == "..") {
                return Err(invalid_profile(
                    profile,
                    "storage.pvc.subPath leaves the volume",
                ));
            }
            Ok(if sub.is_empty() {
                format!("file://{PVC_MOUNT}")
            } else {
                format!("file://{PVC_MOUNT}/{sub}")
            })
        }
    }
}

/// The claim a PVC profile's backups live on: its `claimName`, else (unset or empty) the
/// one the operator provisions, `mysql-<group>-backup-<profile>`.
pub fn backup_claim(group: &str, profile: &BackupProfile) -> Option<String> {
    let pvc = profile.storage.pvc.as_ref()?;
    Some(
        pvc.claim_name
            .clone()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| format!("mysql-{group}-backup-{}", profile.name)),
    )
}

/// `S3` or `PVC`, as `status.storageType` says it.
pub fn storage_type(profile: &BackupProfile) -> &'static str {
    match profile.storage.storage_type {
        StorageType::S3 => "S3",
        StorageType::Pvc => "PVC",
    }
}

/// The repository id of a `MysqlBackup`'s backup: its name (cut to fit) and the start of
/// its uid, so a backup deleted and created again under the same name never reuses an id.
pub fn backup_id(backup: &MysqlBackup) -> Result<String, RenderError> {
    let name = backup
        .metadata
        .name
        .as_deref()
        .ok_or(RenderError::MissingMetadata("name"))?;
    let uid = backup
        .metadata
        .uid
        .as_deref()
        .ok_or(RenderError::MissingMetadata("uid"))?;
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(46)
        .collect();
    let uid: String = uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    Ok(format!("{}-{uid}", stem.trim_end_matches('-')))
}

/// The Job that takes backup `id`.
pub fn job_name(id: &str) -> String {
    format!("backup-{id}")
}

/// What the backup Job of one `MysqlBackup` is made from.
#[derive(Debug, Clone)]
pub struct BackupJobInput<'a> {
    pub group: &'a MysqlFailoverGroup,
    pub backup: &'a MysqlBackup,
    pub profile: &'a BackupProfile,
    /// The site chosen as the source, and where its MySQL is reached (`host:port`).
    pub source_site: &'a str,
    pub source_address: &'a str,
    /// The operator's own image: the Job runs `bloodraven backup create`.
    pub image: &'a str,
}

/// The Job that takes `input.backup`, owned by the `MysqlBackup` so it goes with it.
pub fn backup_job(input: &BackupJobInput<'_>) -> Result<Job, RenderError> {
    let owner = Owner::new(input.group)?;
    let spec = owner.spec.backup.clone().unwrap_or_default();
    let id = backup_id(input.backup)?;
    let profile = input.profile;
    let url = repository_url(profile)?;
    let mut args: Vec<String> = [
        "backup",
        "create",
        "--source",
        input.source_address,
        "--to",
        &url,
        "--id",
        &id,
        "--user-file",
        &format!("{MYSQL_CREDS}/username"),
        "--password-file",
        &format!("{MYSQL_CREDS}/password"),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if let Some(dump) = &profile.dump {
        args.extend(["--threads".to_owned(), dump.threads.max(1).to_string()]);
        for schema in &dump.include_schemas {
            args.extend(["--include-schema".to_owned(), schema.clone()]);
        }
        for schema in &dump.exclude_schemas {
            args.extend(["--exclude-schema".to_owned(), schema.clone()]);
        }
    }
    let (volumes, mounts) = job_volumes_for(&owner, &spec, profile, &mut args, JobPurpose::Backup)?;
    let labels = job_labels(owner.name, &id);
    let backup_owner = super::controller_ref(input.backup)?;
    let mut container = engine_container(BACKUP_CONTAINER, input.image, &args, &spec, &mounts);
    leave_termination_record(&mut container);
    let metadata = json!({
        "name": job_name(&id),
        "namespace": owner.namespace,
        "labels": labels,
        "annotations": {"shipstream.io/source-site": input.source_site},
        "ownerReferences": [backup_owner],
    });
    let pod = json!({
        "securityContext": pod_context(&spec),
        "imagePullSecrets": pull_secrets(&spec),
        "containers": [container],
        "volumes": volumes,
    });
    run_once_job(&metadata, spec.backoff_limit, &spec, pod)
}

/// The container that runs this binary's backup engine in the operator's image, with the
/// backup spec's resources and the restricted security context.
pub(super) fn engine_container(
    name: &str,
    image: &str,
    args: &[String],
    spec: &BackupSpec,
    mounts: &[Value],
) -> Value {
    json!({
        "name": name,
        "image": image,
        "args": args,
        "resources": spec.resources,
        "securityContext": container_context(spec),
        "volumeMounts": mounts,
        "env": [{"name": "RUST_LOG", "value": "info"}],
    })
}

/// The engine's container in a backup Job's pod.
pub const BACKUP_CONTAINER: &str = "backup";

/// Where the engine in a Job's pod leaves its record (`--termination-log`): the
/// container's termination message, which the kubelet copies into the pod's status. It is
/// how the operator learns a run's result when the repository is on a volume only Jobs
/// mount; with S3 it reads the repository and this is for `kubectl` alone.
pub const TERMINATION_LOG: &str = "/dev/termination-log";

/// Points the engine `container` at [`TERMINATION_LOG`], with the path and policy spelled
/// out rather than left to the API server's defaults.
pub(super) fn leave_termination_record(container: &mut Value) {
    if let Some(args) = container.get_mut("args").and_then(Value::as_array_mut) {
        args.extend([json!("--termination-log"), json!(TERMINATION_LOG)]);
    }
    container["terminationMessagePath"] = json!(TERMINATION_LOG);
    container["terminationMessagePolicy"] = json!("File");
}

/// The shape every Job of the operator's shares (backup, verification, restore): one pod
/// that runs to its end, with no ServiceAccount token (it never talks to the API server)
/// and no Service links, labelled like the Job, within the backup spec's deadline. `pod`
/// holds the rest of the pod spec.
pub(super) fn run_once_job(
    metadata: &Value,
    backoff_limit: i32,
    spec: &BackupSpec,
    pod: Value,
) -> Result<Job, RenderError> {
    let labels = metadata.get("labels").cloned().unwrap_or(Value::Null);
    let mut pod_spec = serde_json::Map::from_iter([
        ("restartPolicy".to_owned(), json!("Never")),
        ("automountServiceAccountToken".to_owned(), json!(false)),
        ("enableServiceLinks".to_owned(), json!(false)),
    ]);
    if let Value::Object(pod) = pod {
        pod_spec.extend(pod);
    }
    from_json(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": backoff_limit,
            "activeDeadlineSeconds": spec.active_deadline_seconds,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        }
    }))
}

/// What a Job does with the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JobPurpose {
    /// Writes a backup, logging in to the source with the group's backup account.
    Backup,
    /// Reads one back into the pod's own server (no account of the group's).
    Verify,
    /// Reads one into the group's primary, logging in with the operator's account (the
    /// load creates schemas, sets `gtid_purged` and may drop schemas).
    Restore,
    /// Archives the writer's binary logs, logging in with the operator's account (reading
    /// binary logs over the replication protocol needs `REPLICATION SLAVE`, which the
    /// backup account need not have), sealing with the profile's passphrase.
    Archive,
    /// Deletes one backup from a repository on a volume: no database, no passphrase.
    Cleanup,
}

/// The Job's volumes and mounts (credentials as read-only files, scratch space, the backup
/// volume), and the flags that point the command at them.
pub(super) fn job_volumes_for(
    owner: &Owner<'_>,
    spec: &BackupSpec,
    profile: &BackupProfile,
    args: &mut Vec<String>,
    purpose: JobPurpose,
) -> Result<(Vec<Value>, Vec<Value>), RenderError> {
    let mut volumes = vec![json!({"name": "tmp", "emptyDir": staging(spec)})];
    let mut mounts = vec![json!({"name": "tmp", "mountPath": "/tmp"})];
    if !matches!(purpose, JobPurpose::Verify | JobPurpose::Cleanup) {
        let mysql_secret = owner
            .spec
            .credentials
            .as_ref()
            .map(|c| match purpose {
                JobPurpose::Backup => c
                    .backup_secret
                    .clone()
                    .unwrap_or_else(|| c.operator_secret.clone()),
                _ => c.operator_secret.clone(),
            })
            .ok_or_else(|| invalid_profile(profile, "needs spec.credentials to log in with"))?;
        volumes.push(secret_volume(
            "mysql-creds",
            &mysql_secret,
            &[("username", "username"), ("password", "password")],
        ));
        mounts.push(json!({"name": "mysql-creds", "mountPath": MYSQL_CREDS, "readOnly": true}));
    }
    if let Some(s3) = &profile.storage.s3 {
        if let Some(endpoint) = &s3.endpoint_url {
            args.extend(["--s3-endpoint".to_owned(), endpoint.clone()]);
        }
        if let Some(region) = &s3.region {
            args.extend(["--s3-region".to_owned(), region.clone()]);
        }
        args.extend(["--s3-credentials-dir".to_owned(), S3_CREDS.to_owned()]);
        volumes.push(json!({"name": "aws-creds", "secret": {
            "secretName": s3.credentials_secret, "defaultMode": 0o400}}));
        mounts.push(json!({"name": "aws-creds", "mountPath": S3_CREDS, "readOnly": true}));
    }
    if let Some(claim) = backup_claim(owner.name, profile) {
        volumes.push(json!({"name": "backups", "persistentVolumeClaim": {"claimName": claim}}));
        mounts.push(json!({"name": "backups", "mountPath": PVC_MOUNT}));
    }
    if let Some(encryption) = profile
        .encryption
        .as_ref()
        .filter(|_| purpose != JobPurpose::Cleanup)
    {
        let secret = &encryption.passphrase_secret;
        volumes.push(secret_volume(
            "backup-key",
            &secret.name,
            &[(&secret.key, "passphrase")],
        ));
        mounts.push(json!({"name": "backup-key", "mountPath": PASSPHRASE, "readOnly": true}));
        let flag = match purpose {
            JobPurpose::Backup | JobPurpose::Archive => "--encrypt-passphrase-file",
            JobPurpose::Verify | JobPurpose::Restore | JobPurpose::Cleanup => "--passphrase-file",
        };
        args.extend([flag.to_owned(), format!("{PASSPHRASE}/passphrase")]);
    }
    Ok((volumes, mounts))
}

/// One CronJob per schedule: each run creates a `MysqlBackup` through the plugin command.
/// `service_account` may create `MysqlBackup` objects (the chart's operator account).
pub fn schedule_cron_jobs(
    group: &MysqlFailoverGroup,
    image: &str,
    service_account: &str,
) -> Result<Vec<CronJob>, RenderError> {
    let owner = Owner::new(group)?;
    let Some(spec) = owner.spec.backup.as_ref() else {
        return Ok(Vec::new());
    };
    spec.schedules
        .iter()
        .map(|schedule| {
            if profile(spec, &schedule.profile_name).is_none() {
                return Err(RenderError::InvalidName {
                    what: "backup schedule profileName",
                    name: schedule.profile_name.clone(),
                    reason: "names no profile in spec.backup.profiles",
                });
            }
            let name = cron_job_name(owner.name, &schedule.name);
            let mut labels = names::group_labels(owner.name);
            labels.insert(LABEL_SCHEDULE.to_owned(), schedule.name.clone());
            let policy = match schedule.concurrency_policy {
                ConcurrencyPolicy::Allow => "Allow",
                ConcurrencyPolicy::Forbid => "Forbid",
                ConcurrencyPolicy::Replace => "Replace",
            };
            let args = [
                "kubectl",
                "backup",
                owner.name,
                "--namespace",
                owner.namespace,
                "--profile",
                &schedule.profile_name,
                "--triggered-by",
                &format!("schedule/{}", schedule.name),
            ];
            let cron = json!({
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": owner.meta(name, labels.clone()),
                "spec": {
                    "schedule": schedule.schedule,
                    "timeZone": schedule.time_zone,
                    "suspend": schedule.suspend,
                    "startingDeadlineSeconds": schedule.starting_deadline_seconds,
                    "concurrencyPolicy": policy,
                    "successfulJobsHistoryLimit": schedule.successful_jobs_history_limit,
                    "failedJobsHistoryLimit": schedule.failed_jobs_history_limit,
                    "jobTemplate": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "backoffLimit": 2,
                            "activeDeadlineSeconds": 600,
                            "template": {
                                "metadata": {"labels": labels},
                                "spec": {
                                    "restartPolicy": "Never",
                                    "serviceAccountName": service_account,
                                    "enableServiceLinks": false,
                                    "securityContext": pod_context(spec),
                                    "containers": [{
                                        "name": "trigger",
                                        "image": image,
                                        "args": args,
                                        "securityContext": container_context(spec),
                                        "resources": {
                                            "requests": {"cpu": "10m", "memory": "32Mi"},
                                            "limits": {"memory": "64Mi"},
                                        },
                                    }],
                                }
                            }
                        }
                    }
                }
            });
            from_json(cron)
        })
        .collect()
}

/// `mysql-<group>-backup-<schedule>`, shortened with a digest when it would not fit.
pub fn cron_job_name(group: &str, schedule: &str) -> String {
    let name = format!("mysql-{group}-backup-{schedule}");
    if name.len() <= MAX_CRON_JOB_NAME {
        return name;
    }
    let digest = crate::digest::sha256_hex(name.as_bytes());
    let keep = MAX_CRON_JOB_NAME - 9;
    format!("{}-{}", name[..keep].trim_end_matches('-'), &digest[..8])
}

pub(super) fn job_labels(group: &str, id: &str) -> BTreeMap<String, String> {
    let mut labels = names::group_labels(group);
    labels.insert(LABEL_BACKUP.to_owned(), id.to_owned());
    labels.insert(LABEL_GROUP.to_owned(), group.to_owned());
    labels
}

pub(super) fn secret_volume(name: &str, secret: &str, items: &[(&str, &str)]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(key, path)| json!({"key": key, "path": path}))
        .collect();
    json!({"name": name, "secret": {"secretName": secret, "defaultMode": 0o400, "items": items}})
}

fn staging(spec: &BackupSpec) -> Value {
    match &spec.staging_volume_size_limit {
        Some(limit) => json!({"sizeLimit": limit}),
        None => json!({}),
    }
}

pub(super) fn pull_secrets(spec: &BackupSpec) -> Value {
    let names: Vec<Value> = spec
        .image_pull_secrets
        .iter()
        .filter(|s| !s.name.is_empty())
        .map(|s| json!({"name": s.name}))
        .collect();
    Value::Array(names)
}

pub(super) fn pod_context(spec: &BackupSpec) -> Value {
    spec.pod_security_context.as_ref().map_or_else(
        || {
            json!({
                "runAsNonRoot": true,
                "runAsUser": NONROOT_UID,
                "runAsGroup": NONROOT_UID,
                "fsGroup": NONROOT_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            })
        },
        |c| serde_json::to_value(c).unwrap_or(Value::Null),
    )
}

pub(super) fn container_context(spec: &BackupSpec) -> Value {
    spec.container_security_context.as_ref().map_or_else(
        || {
            json!({
                "allowPrivilegeEscalation": false,
                "privileged": false,
                "runAsNonRoot": true,
                "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            })
        },
        |c| serde_json::to_value(c).unwrap_or(Value::Null),
    )
}

fn invalid_profile(profile: &BackupProfile, reason: &'static str) -> RenderError {
    RenderError::InvalidName {
        what: "backup profile",
        name: profile.name.clone(),
        reason,
    }
}

/// Typed from JSON built here: a shape mistake is a bug, reported rather than panicking.
pub(super) fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, RenderError> {
    serde_json::from_value(strip_nulls(value)).map_err(|e| RenderError::Internal(e.to_string()))
}

/// Drops `null` members, which the typed objects would reject for non-optional fields and
/// which the API server would store as absent anyway.
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

#[cfg(test)]
pub(super) mod tests;
