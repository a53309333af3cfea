//! Restores are fields of the group, not a resource: `initFromBackup` and `restoreInPlace`.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::backup::S3Storage;
use super::common::{LocalRef, SecretKeyRef};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(validation = Rule::new("[has(self.mysqlBackupRef), has(self.s3), has(self.pvc)].filter(x, x).size() == 1").message("restore source needs exactly one of mysqlBackupRef, s3 and pvc"))]
#[serde(rename_all = "camelCase")]
pub struct RestoreSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mysql_backup_ref: Option<LocalRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Storage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<RestorePvc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestorePvc {
    pub claim_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadOptions {
    #[serde(default = "default_threads")]
    pub threads: u32,
    #[serde(default = "yes")]
    pub reset_progress: bool,
    #[serde(default = "yes")]
    pub skip_binlog: bool,
    #[serde(default = "yes")]
    pub load_indexes: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_schemas: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_schemas: Vec<String>,
}

fn default_threads() -> u32 {
    4
}
fn yes() -> bool {
    true
}

/// Replay archived binlogs up to a moment (UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PointInTime {
    #[serde(default)]
    pub mode: PointInTimeMode,
    /// RFC 3339 or `YYYY-MM-DD HH:MM:SS` (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decryption {
    pub passphrase_secret: SecretKeyRef,
}

/// What to restore and how: shared by `initFromBackup` and `restoreInPlace`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreInputs {
    pub source: RestoreSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_options: Option<LoadOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_in_time: Option<PointInTime>,
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
