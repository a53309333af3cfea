//! Restores are fields of the group, not a resource: `initFromBackup` and `restoreInPlace`.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::backup::S3Storage;
use super::common::{OptionalNameRef, SecretKeyRef};

/// Where a restore reads the dump from: exactly one of the three.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(validation = Rule::new("[has(self.mysqlBackupRef), has(self.s3), has(self.pvc)].filter(x, x).size() == 1").message("restore source needs exactly one of mysqlBackupRef, s3 and pvc"))]
#[serde(rename_all = "camelCase")]
pub struct RestoreSource {
    /// A MysqlBackup in the same namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mysql_backup_ref: Option<OptionalNameRef>,
    /// A dump in object storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Storage>,
    /// A dump on a volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<RestorePvc>,
}

/// A dump on an existing PersistentVolumeClaim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestorePvc {
    /// The claim that holds the dump.
    #[schemars(length(min = 1))]
    pub claim_name: String,
    /// Directory of the dump inside the volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
}

/// mysqlsh load options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadOptions {
    /// Load threads.
    #[serde(default = "default_threads")]
    #[schemars(range(min = 1))]
    pub threads: i32,
    /// Start the load from scratch instead of resuming.
    #[serde(default = "yes")]
    pub reset_progress: bool,
    /// Do not write the loaded data to the binlog.
    #[serde(default = "yes")]
    pub skip_binlog: bool,
    /// Build secondary indexes during the load.
    #[serde(default = "yes")]
    pub load_indexes: bool,
    /// Only these schemas are loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_schemas: Vec<String>,
    /// Schemas left out of the load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_schemas: Vec<String>,
}

fn default_threads() -> i32 {
    4
}
fn yes() -> bool {
    true
}

/// Replay archived binlogs after the dump, up to a moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestorePointInTime {
    /// Replay up to this moment: RFC 3339 or `YYYY-MM-DD HH:MM:SS` (UTC).
    #[schemars(length(min = 1))]
    pub stop_datetime: String,
    /// A GTID set to skip during the replay (`mysqlbinlog --exclude-gtids`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_gtids: Option<String>,
}

/// Which binlogs a verification replays after loading the dump.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationPointInTime {
    /// `none`, `latest` (every archived binlog) or `timestamp`.
    #[serde(default)]
    pub mode: PointInTimeMode,
    /// With `mode: timestamp`: RFC 3339 or `YYYY-MM-DD HH:MM:SS` (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// How far a verification replays binlogs.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PointInTimeMode {
    #[default]
    None,
    Latest,
    Timestamp,
}

/// How an encrypted dump is decrypted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decryption {
    /// The Secret key holding the passphrase.
    pub passphrase_secret: SecretKeyRef,
}

/// What to restore and how: shared by `initFromBackup` and `restoreInPlace`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreInputs {
    /// Where the dump is.
    pub source: RestoreSource,
    /// mysqlsh load options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_options: Option<LoadOptions>,
    /// Replay archived binlogs up to a moment; needs `backup.pitr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_in_time: Option<RestorePointInTime>,
    /// Decryption of an encrypted dump.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decryption: Option<Decryption>,
}

/// One-shot bootstrap restore into the initial primary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitFromBackupSpec {
    #[serde(flatten)]
    pub inputs: RestoreInputs,
}

/// Re-armable destructive restore of a live group; `confirm` is an anti-replay token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreInPlaceSpec {
    /// An RFC 3339 timestamp, strictly newer than the last one used.
    #[schemars(length(min = 1))]
    pub confirm: String,
    #[serde(flatten)]
    pub inputs: RestoreInputs,
}
