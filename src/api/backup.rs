//! Backups: the `spec.backup` block of a group. The `MysqlBackup` resource is in
//! [`super::backup_run`].

use k8s_openapi::api::core::v1::{PodSecurityContext, ResourceRequirements, SecurityContext};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::common::{OptionalNameRef, Quantity, SecretKeyRef, StorageSpec};
use super::restore::VerificationPointInTime;
use super::verification::SanityCheck;

/// Backup profiles, schedules and point-in-time recovery of a group.
///
/// That schedules and `pitr` name existing profiles and that profile names are unique is
/// checked by the linter and the webhook (BR-API-003), not the schema: the original's
/// schema accepted such manifests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// Image that runs the dump and restore Jobs. Pin a full version or a digest.
    #[serde(default = "default_backup_image")]
    pub image: String,
    /// Registry Secrets for the backup Jobs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<OptionalNameRef>,
    /// Where and how backups are written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<BackupProfile>,
    /// When backups run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<BackupSchedule>,
    /// A replica lagging more than this is not used as the backup source.
    #[serde(default = "default_max_lag_for_source")]
    #[schemars(range(min = 0))]
    pub max_lag_seconds_for_source: i64,
    /// Resources of the backup Jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Deadline of one backup Job, in seconds.
    #[serde(default = "default_active_deadline")]
    #[schemars(range(min = 60))]
    pub active_deadline_seconds: i64,
    /// Pod retries inside one backup Job.
    #[serde(default = "default_backoff_limit")]
    #[schemars(range(min = 0))]
    pub backoff_limit: i32,
    /// Retries of failed scheduled backups as new MysqlBackups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// Binlog archiving for point-in-time recovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitr: Option<PitrSpec>,
    /// Applied verbatim to the backup pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security_context: Option<PodSecurityContext>,
    /// Applied verbatim to the backup containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
    /// Size limit of the Jobs' staging volume, a quantity such as `20Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging_volume_size_limit: Option<Quantity>,
}

fn default_backup_image() -> String {
    "container-registry.oracle.com/mysql/community-server:9.7".to_owned()
}
fn default_max_lag_for_source() -> i64 {
    300
}
fn default_active_deadline() -> i64 {
    7200
}
fn default_backoff_limit() -> i32 {
    2
}

/// Retries of failed scheduled backups, with exponential backoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrySpec {
    /// Attempts per scheduled backup, the first included.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 10))]
    pub max_attempts: i32,
    /// Delay before the first retry, in seconds; doubles per attempt.
    #[serde(default = "default_initial_backoff")]
    #[schemars(range(min = 1))]
    pub initial_backoff_seconds: i32,
    /// Upper bound of the delay, in seconds.
    #[serde(default = "default_max_backoff")]
    #[schemars(range(min = 1))]
    pub max_backoff_seconds: i32,
}

fn one() -> i32 {
    1
}
fn default_initial_backoff() -> i32 {
    60
}
fn default_max_backoff() -> i32 {
    1800
}

/// Where and how one kind of backup is written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupProfile {
    /// Profile name (a DNS label).
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(min = 1))]
    pub name: String,
    /// The backup target.
    pub storage: BackupStorage,
    /// Dump options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<DumpSpec>,
    /// Legacy retention count; prefer `retentionPolicy`.
    #[serde(default = "default_retention")]
    #[schemars(range(min = 0))]
    pub retention: i32,
    /// Which backups to keep: a backup is kept if any rule keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy: Option<RetentionPolicy>,
    /// Scheduled restore tests of this profile's backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationSchedule>,
    /// Client-side envelope encryption of the dump.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionSpec>,
}

fn default_retention() -> i32 {
    7
}

/// Where a profile writes: the block named by `type`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(validation = Rule::new("self.type == 'S3' ? has(self.s3) : has(self.pvc)").message("storage.type must match exactly one of storage.s3 and storage.pvc"))]
#[serde(rename_all = "camelCase")]
pub struct BackupStorage {
    /// `S3` or `PVC`.
    #[serde(rename = "type")]
    pub storage_type: StorageType,
    /// Object storage target, for `type: S3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Storage>,
    /// Volume target, for `type: PVC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<PvcStorage>,
}

/// The kind of backup target.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum StorageType {
    #[default]
    S3,
    #[serde(rename = "PVC")]
    Pvc,
}

/// An S3 (or S3-compatible) location.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Storage {
    /// Bucket name.
    #[schemars(length(min = 1))]
    pub bucket: String,
    /// Key prefix; objects land under `<prefix>/<backup-name>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Bucket region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Endpoint of an S3-compatible store (MinIO, Ceph, RustFS).
    #[serde(
        default,
        rename = "endpointURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub endpoint_url: Option<String>,
    /// Name of the Secret with `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    #[schemars(length(min = 1))]
    pub credentials_secret: String,
    /// S3 storage class (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
}

/// A PersistentVolumeClaim target, mounted at `/backups`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PvcStorage {
    /// An existing claim; unset provisions `mysql-<group>-backup-<profile>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_name: Option<String>,
    /// StorageClass of a provisioned claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Size of a provisioned claim, a quantity such as `200Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// Directory inside the volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
}

/// mysqlsh dump options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DumpSpec {
    /// Dump threads.
    #[serde(default = "default_threads")]
    #[schemars(range(min = 1))]
    pub threads: i32,
    /// Chunk size, such as `64M`.
    #[serde(default = "default_chunk")]
    pub bytes_per_chunk: String,
    /// `none`, `gzip` or `zstd`.
    #[serde(default)]
    pub compression: Compression,
    /// Schemas left out of the dump.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_schemas: Vec<String>,
    /// Only these schemas are dumped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_schemas: Vec<String>,
    /// A consistent dump (needs BACKUP_ADMIN).
    #[serde(default = "yes")]
    pub consistent: bool,
    /// MySQL HeatWave Service compatibility checks.
    #[serde(default)]
    pub ocimds: bool,
}

fn default_threads() -> i32 {
    4
}
fn default_chunk() -> String {
    "64M".to_owned()
}
fn yes() -> bool {
    true
}

/// Dump compression.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    #[default]
    Zstd,
}

/// Keep a backup if any rule says keep; `minKeep` is the safety floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicy {
    /// Keep the newest N successful backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub count: Option<i32>,
    /// Keep successful backups younger than this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_age_days: Option<i32>,
    /// Never keep fewer successful backups than this.
    #[serde(default = "one")]
    #[schemars(range(min = 0))]
    pub min_keep: i32,
    /// Failed backups kept for inspection.
    #[serde(default = "default_max_failed_keep")]
    #[schemars(range(min = 0))]
    pub max_failed_keep: i32,
}

fn default_max_failed_keep() -> i32 {
    10
}

/// A profile's scheduled restore tests (rendered as a CronJob of MysqlBackupVerifications).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSchedule {
    /// Whether verifications are scheduled.
    #[serde(default)]
    pub enabled: bool,
    /// Five-field cron expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// IANA time zone of the schedule.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Pauses the schedule.
    #[serde(default)]
    pub suspend: bool,
    /// `Forbid` or `Replace`: what happens when a run is still going.
    #[serde(default)]
    pub concurrency_policy: VerificationConcurrencyPolicy,
    /// Deadline for starting a missed run, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_deadline_seconds: Option<i64>,
    /// Successful CronJob runs kept.
    #[serde(default = "three")]
    #[schemars(range(min = 0))]
    pub successful_jobs_history_limit: i32,
    /// Failed CronJob runs kept.
    #[serde(default = "three")]
    #[schemars(range(min = 0))]
    pub failed_jobs_history_limit: i32,
    /// Scratch volume of each verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// Keep a failed verification's volume for inspection.
    #[serde(default = "yes")]
    pub keep_on_failure: bool,
    /// Seconds a finished verification is kept; 0 keeps it.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: i32,
    /// Which finished verifications are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy: Option<VerificationRetention>,
    /// Replay binlogs after loading the dump.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_in_time: Option<VerificationPointInTime>,
    /// A query whose result proves the data loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sanity_check: Option<SanityCheck>,
}

/// What a verification schedule does while a run is still going.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum VerificationConcurrencyPolicy {
    #[default]
    Forbid,
    Replace,
}

/// Finished MysqlBackupVerifications kept per profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationRetention {
    /// Successful verifications kept.
    #[serde(default = "default_keep_successful")]
    #[schemars(range(min = 0))]
    pub keep_successful: i32,
    /// Failed verifications kept.
    #[serde(default = "default_keep_failures")]
    #[schemars(range(min = 0))]
    pub keep_failures: i32,
}

fn default_keep_successful() -> i32 {
    30
}
fn default_keep_failures() -> i32 {
    10
}

/// Client-side envelope encryption of a profile's dumps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionSpec {
    /// Cipher; only `AES-256-GCM`.
    #[serde(default)]
    pub algorithm: EncryptionAlgorithm,
    /// The Secret key holding the passphrase.
    pub passphrase_secret: SecretKeyRef,
}

/// Backup cipher.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum EncryptionAlgorithm {
    #[default]
    #[serde(rename = "AES-256-GCM")]
    Aes256Gcm,
}

/// When a profile's backups run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupSchedule {
    /// Schedule name (a DNS label).
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(min = 1))]
    pub name: String,
    /// The profile to back up with.
    #[schemars(length(min = 1))]
    pub profile_name: String,
    /// A five-field cron expression.
    #[schemars(length(min = 1))]
    pub schedule: String,
    /// IANA zone copied to the CronJob; pin it.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Pauses the schedule.
    #[serde(default)]
    pub suspend: bool,
    /// Deadline for starting a missed run, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_deadline_seconds: Option<i64>,
    /// `Allow`, `Forbid` or `Replace`: what happens when a run is still going.
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// Successful CronJob runs kept.
    #[serde(default = "three")]
    #[schemars(range(min = 0))]
    pub successful_jobs_history_limit: i32,
    /// Failed CronJob runs kept.
    #[serde(default = "three")]
    #[schemars(range(min = 0))]
    pub failed_jobs_history_limit: i32,
}

fn default_time_zone() -> String {
    "Etc/UTC".to_owned()
}
fn three() -> i32 {
    3
}

/// A CronJob's concurrency policy.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum ConcurrencyPolicy {
    Allow,
    #[default]
    Forbid,
    Replace,
}

/// Binlog archiving for point-in-time recovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PitrSpec {
    /// Whether binlogs are archived.
    #[serde(default)]
    pub enabled: bool,
    /// The profile whose storage receives the binlogs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub profile_name: Option<String>,
    /// `max_binlog_size`, such as `100M`.
    #[serde(default = "default_max_binlog_size")]
    pub max_binlog_size: String,
    /// How often the archiver looks for sealed binlogs.
    #[serde(default = "default_archive_poll")]
    pub archive_poll_interval: String,
}

fn default_max_binlog_size() -> String {
    "100M".to_owned()
}
fn default_archive_poll() -> String {
    "60s".to_owned()
}
