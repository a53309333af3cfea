//! `spec.dragonfly` and `status.dragonfly`: an optional Dragonfly cache co-managed with the
//! MySQL topology.

use k8s_openapi::api::core::v1::{PodSecurityContext, ResourceRequirements, SecurityContext};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// A Dragonfly cache per site whose master follows the MySQL active site.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(validation = Rule::new("!self.enabled || (has(self.image) && self.image != '')").message("dragonfly.image is required when dragonfly is enabled"))]
#[serde(rename_all = "camelCase")]
pub struct DragonflySpec {
    /// Whether the operator manages Dragonfly for this group.
    #[serde(default)]
    pub enabled: bool,
    /// Dragonfly image. Pin v1.38.0 or later; `:latest` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Client port.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Admin port (replication takeover).
    #[serde(default = "default_admin_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub admin_port: i32,
    /// Memory limit passed as `--maxmemory`, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_memory_mb: Option<i32>,
    /// Dragonfly I/O threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub proactor_threads: Option<i32>,
    /// Extra Dragonfly flags; flags the operator owns are filtered out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Password authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<DragonflyAuth>,
    /// Resources of the Dragonfly container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Dragonfly's part of a planned failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_failover: Option<DragonflyPlannedFailover>,
    /// Snapshot location for snapshot-restore upgrades.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<DragonflySnapshot>,
    /// Applied verbatim to the Dragonfly pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security_context: Option<PodSecurityContext>,
    /// Applied verbatim to the Dragonfly container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
}

fn default_port() -> i32 {
    6379
}
fn default_admin_port() -> i32 {
    9999
}

/// Dragonfly password authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DragonflyAuth {
    /// Secret that holds the password.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// Key of the password in the Secret.
    #[serde(default = "default_password_key")]
    pub password_key: String,
}

fn default_password_key() -> String {
    "password".to_owned()
}

/// Dragonfly's part of a planned failover.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DragonflyPlannedFailover {
    /// How long to wait for the target replica to catch up.
    #[serde(default = "default_max_sync_wait")]
    pub max_sync_wait: String,
    /// `proceed` (keep MySQL availability, sessions may be lost) or `fail`.
    #[serde(default)]
    pub on_sync_timeout: OnSyncTimeout,
}

fn default_max_sync_wait() -> String {
    "30s".to_owned()
}

/// What a planned failover does when Dragonfly cannot prove its sessions were preserved.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OnSyncTimeout {
    /// Keep MySQL availability; cache and sessions may be lost.
    #[default]
    Proceed,
    /// Keep the old active site.
    Fail,
}

/// Where Dragonfly snapshots go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DragonflySnapshot {
    /// Snapshot directory; `s3://bucket/prefix` is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// ServiceAccount for workload-identity access to the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Secret with S3 credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_name: Option<String>,
    /// S3 endpoint for S3-compatible stores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
    /// Whether the S3 endpoint uses HTTPS.
    #[serde(
        default,
        rename = "s3UseHTTPS",
        skip_serializing_if = "Option::is_none"
    )]
    pub s3_use_https: Option<bool>,
    /// Whether S3 requests sign their payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_sign_payload: Option<bool>,
}

/// What the operator observed of the Dragonfly cache.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DragonflyStatus {
    /// Whether Dragonfly is managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The site whose Dragonfly is master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_site: Option<String>,
    /// Disabled, Reconciling, ConfiguringReplication, Ready, Degraded or Promoting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When a Dragonfly master was last promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_promotion_time: Option<String>,
    /// The site last promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_promotion_target: Option<String>,
    /// Per-site Dragonfly state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<DragonflySiteStatus>,
    /// A snapshot-restore upgrade, when one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<DragonflyUpgradeStatus>,
}

/// One site's Dragonfly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DragonflySiteStatus {
    /// Site name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// master, replica, stale-master, unconfigured, unreachable or unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Whether the site's Dragonfly answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reachable: Option<bool>,
    /// Whether it serves traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// The site's Dragonfly Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// The site's Dragonfly pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// Replication state from `INFO replication`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_state: Option<String>,
    /// Link status from `INFO replication`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_status: Option<String>,
    /// Whether a full sync is in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_in_progress: Option<bool>,
    /// Seconds since the replica last heard from the master; -1 means never.
    #[serde(
        default,
        rename = "lastIOSecondsAgo",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_io_seconds_ago: Option<i64>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A snapshot-restore upgrade of Dragonfly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DragonflyUpgradeStatus {
    /// Pending, SavingSnapshot, UpdatingActive, ..., Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Image before the upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_image: Option<String>,
    /// Image after the upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_image: Option<String>,
    /// The site whose master was upgraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_site: Option<String>,
    /// Where the snapshot was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_dir: Option<String>,
    /// When the upgrade started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub start_time: Option<String>,
    /// When the snapshot was saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub snapshot_time: Option<String>,
    /// When the upgrade ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub completion_time: Option<String>,
    /// Machine-readable reason of the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
