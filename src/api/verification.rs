//! `MysqlBackupVerification` (`mbv`): restore a backup into a throwaway mysqld and prove it loads.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{LocalRef, OptionalNameRef, StorageSpec};
use super::restore::VerificationPointInTime;

/// One restore test of a backup.
#[derive(CustomResource, KubeSchema, Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "shipstream.io",
    version = "v1alpha1",
    kind = "MysqlBackupVerification",
    plural = "mysqlbackupverifications",
    shortname = "mbv",
    category = "bloodraven",
    namespaced,
    status = "MysqlBackupVerificationStatus",
    printcolumn = r#"{"name":"Group","type":"string","jsonPath":".spec.failoverGroupRef.name"}"#,
    printcolumn = r#"{"name":"Profile","type":"string","jsonPath":".spec.profileName"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Backup","type":"string","jsonPath":".status.backupRef.name"}"#,
    printcolumn = r#"{"name":"Started","type":"date","jsonPath":".status.startTime"}"#,
    printcolumn = r#"{"name":"Completed","type":"date","jsonPath":".status.completionTime"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MysqlBackupVerificationSpec {
    /// The group whose backup is verified, in the same namespace.
    pub failover_group_ref: LocalRef,
    /// The group's backup profile.
    #[schemars(length(min = 1))]
    pub profile_name: String,
    /// The MysqlBackup to verify; unset or empty means the latest Succeeded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_ref: Option<OptionalNameRef>,
    /// Scratch volume; the default size is 1.5 times the backup, at least 10Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// Keep the volume of a failed verification for inspection.
    #[serde(default = "yes")]
    pub keep_on_failure: bool,
    /// Seconds a finished verification is kept; 0 keeps it.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: i32,
    /// Resources of the verification pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Free text: who asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_by: Option<String>,
    /// Replay binlogs after loading the dump.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_in_time: Option<VerificationPointInTime>,
    /// A query whose result proves the data loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sanity_check: Option<SanityCheck>,
}

fn yes() -> bool {
    true
}

/// A query run against the restored data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SanityCheck {
    /// SQL returning one scalar; an empty result counts as 0.
    #[schemars(length(min = 1))]
    pub query: String,
    /// What the result must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<SanityExpectation>,
}

/// What a sanity check's result must satisfy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SanityExpectation {
    /// The scalar must be at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_rows: Option<i64>,
    /// The query must finish within this many seconds.
    #[serde(default = "default_max_duration")]
    #[schemars(range(min = 1))]
    pub max_duration_seconds: i32,
}

fn default_max_duration() -> i32 {
    60
}

/// What the verification did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MysqlBackupVerificationStatus {
    /// Pending, Provisioning, Restoring, Checking, Cleaning, Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// When the verification started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub start_time: Option<String>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub completion_time: Option<String>,
    /// Whole seconds from start to completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    /// The backup that was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_ref: Option<VerifiedBackup>,
    /// The verification Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// The verification pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// The scratch volume's claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc_name: Option<String>,
    /// A Service of the throwaway mysqld, when one exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// How far binlogs were replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_through_binlog: Option<ReplayedBinlog>,
    /// The sanity check's outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sanity_check: Option<SanityCheckStatus>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Verified` and `ResourcesCleanedUp`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The backup a verification restored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedBackup {
    /// MysqlBackup name.
    pub name: String,
    /// MysqlBackup UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Where the dump is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// `S3` or `PVC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<String>,
}

/// The last binlog event a verification replayed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayedBinlog {
    /// Binlog file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Position in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    /// Event time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub timestamp: Option<String>,
}

/// A sanity check's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SanityCheckStatus {
    /// Whether the query ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran: Option<bool>,
    /// The result row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_row: Option<String>,
    /// Query time in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// The error, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
