//! Backups: the `spec.backup` block of a group and the `MysqlBackup` (`mb`) resource.

use k8s_openapi::api::core::v1::{
    LocalObjectReference, PodSecurityContext, ResourceRequirements, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{LocalRef, SecretKeyRef, StorageSpec};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(
    validation = Rule::new("self.schedules.all(s, self.profiles.exists(p, p.name == s.profileName))").message("every schedule must name an existing profile"),
    validation = Rule::new("!has(self.pitr) || !self.pitr.enabled || self.profiles.exists(p, p.name == self.pitr.profileName)").message("pitr.profileName must name an existing profile"),
    validation = Rule::new("self.profiles.all(p, self.profiles.exists_one(q, q.name == p.name))").message("profile names must be unique"),
)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// Image that runs the dump and restore Jobs. Pin a full version or a digest.
    #[serde(default = "default_backup_image")]
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub profiles: Vec<BackupProfile>,
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub schedules: Vec<BackupSchedule>,
    #[serde(default = "default_max_lag_for_source")]
    pub max_lag_seconds_for_source: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default = "default_active_deadline")]
    #[schemars(range(min = 60))]
    pub active_deadline_seconds: u32,
    #[serde(default = "default_backoff_limit")]
    pub backoff_limit: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitr: Option<PitrSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security_context: Option<PodSecurityContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging_volume_size_limit: Option<String>,
}

fn default_backup_image() -> String {
    "container-registry.oracle.com/mysql/community-server:9.7".to_owned()
}
fn default_max_lag_for_source() -> u32 {
    300
}
fn default_active_deadline() -> u32 {
    7200
}
fn default_backoff_limit() -> u32 {
    2
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrySpec {
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 10))]
    pub max_attempts: u32,
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff_seconds: u32,
    #[serde(default = "default_max_backoff")]
    pub max_backoff_seconds: u32,
}

fn one() -> u32 {
    1
}
fn default_initial_backoff() -> u32 {
    60
}
fn default_max_backoff() -> u32 {
    1800
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupProfile {
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 63))]
    pub name: String,
    pub storage: BackupStorage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<DumpSpec>,
    /// Legacy count; prefer `retentionPolicy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy: Option<RetentionPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationSchedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionSpec>,
}

/// Where a profile writes: exactly one of `s3` or `pvc`, matching `type`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(validation = Rule::new("self.type == 'S3' ? (has(self.s3) && !has(self.pvc)) : (has(self.pvc) && !has(self.s3))").message("storage.type must match exactly one of storage.s3 and storage.pvc"))]
#[serde(rename_all = "camelCase")]
pub struct BackupStorage {
    #[serde(rename = "type")]
    pub storage_type: StorageType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Storage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<PvcStorage>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum StorageType {
    #[default]
    S3,
    #[serde(rename = "PVC")]
    Pvc,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Storage {
    #[schemars(length(min = 1))]
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(
        default,
        rename = "endpointURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub endpoint_url: Option<String>,
    pub credentials_secret: LocalRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PvcStorage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DumpSpec {
    #[serde(default = "default_threads")]
    #[schemars(range(min = 1, max = 64))]
    pub threads: u32,
    #[serde(default = "default_chunk")]
    pub bytes_per_chunk: String,
    #[serde(default)]
    pub compression: Compression,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_schemas: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_schemas: Vec<String>,
    #[serde(default = "yes")]
    pub consistent: bool,
    #[serde(default)]
    pub ocimds: bool,
}

fn default_threads() -> u32 {
    4
}
fn default_chunk() -> String {
    "64M".to_owned()
}
fn yes() -> bool {
    true
}

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
    #[serde(default)]
    pub count: u32,
    #[serde(default)]
    pub max_age_days: u32,
    #[serde(default = "one")]
    pub min_keep: u32,
    #[serde(default = "default_max_failed_keep")]
    pub max_failed_keep: u32,
}

fn default_max_failed_keep() -> u32 {
    10
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSchedule {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    #[serde(default)]
    pub suspend: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    #[serde(default = "yes")]
    pub keep_on_failure: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionSpec {
    #[serde(default)]
    pub algorithm: EncryptionAlgorithm,
    pub passphrase_secret: SecretKeyRef,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum EncryptionAlgorithm {
    #[default]
    #[serde(rename = "AES-256-GCM")]
    Aes256Gcm,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupSchedule {
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 52))]
    pub name: String,
    #[schemars(length(min = 1, max = 63))]
    pub profile_name: String,
    /// A five-field cron expression.
    #[schemars(length(min = 1))]
    pub schedule: String,
    /// IANA zone copied to the CronJob; pin it.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    #[serde(default)]
    pub suspend: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_deadline_seconds: Option<u32>,
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    #[serde(default = "three")]
    pub successful_jobs_history_limit: u32,
    #[serde(default = "three")]
    pub failed_jobs_history_limit: u32,
}

fn default_time_zone() -> String {
    "Etc/UTC".to_owned()
}
fn three() -> u32 {
    3
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum ConcurrencyPolicy {
    #[default]
    Forbid,
    Replace,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PitrSpec {
    #[serde(default)]
    pub enabled: bool,
    #[schemars(length(min = 1, max = 63))]
    pub profile_name: String,
    /// `max_binlog_size`, e.g. `100M`.
    #[serde(default = "default_max_binlog_size")]
    #[schemars(regex(pattern = r"^[0-9]+[KMG]?$"))]
    pub max_binlog_size: String,
    #[serde(default = "default_archive_poll")]
    pub archive_poll_interval: String,
}

fn default_max_binlog_size() -> String {
    "100M".to_owned()
}
fn default_archive_poll() -> String {
    "60s".to_owned()
}

/// One backup run, ad hoc or created by a schedule.
#[derive(CustomResource, KubeSchema, Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "shipstream.io",
    version = "v1alpha1",
    kind = "MysqlBackup",
    plural = "mysqlbackups",
    shortname = "mb",
    category = "bloodraven",
    namespaced,
    status = "MysqlBackupStatus",
    printcolumn = r#"{"name":"Group","type":"string","jsonPath":".spec.failoverGroupRef.name"}"#,
    printcolumn = r#"{"name":"Profile","type":"string","jsonPath":".spec.profileName"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MysqlBackupSpec {
    pub failover_group_ref: LocalRef,
    #[schemars(length(min = 1))]
    pub profile_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_site_override: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_by: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MysqlBackupStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid_executed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog_pos: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
