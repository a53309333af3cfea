//! `spec.dragonfly`: an optional Dragonfly cache co-managed with the MySQL topology.

use k8s_openapi::api::core::v1::{PodSecurityContext, ResourceRequirements, SecurityContext};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(validation = Rule::new("!self.enabled || (has(self.image) && self.image != '')").message("dragonfly.image is required when dragonfly is enabled"))]
#[serde(rename_all = "camelCase")]
pub struct DragonflySpec {
    #[serde(default)]
    pub enabled: bool,
    /// Pin v1.38.0 or later; `:latest` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u32,
    #[serde(default = "default_admin_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub admin_port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proactor_threads: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<DragonflyAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_failover: Option<DragonflyPlannedFailover>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<DragonflySnapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security_context: Option<PodSecurityContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
}

fn default_port() -> u32 {
    6379
}
fn default_admin_port() -> u32 {
    9999
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DragonflyAuth {
    pub secret_name: String,
    #[serde(default = "default_password_key")]
    pub password_key: String,
}

fn default_password_key() -> String {
    "password".to_owned()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DragonflyPlannedFailover {
    #[serde(default = "default_max_sync_wait")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub max_sync_wait: String,
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DragonflySnapshot {
    pub dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
    #[serde(
        default,
        rename = "s3UseHTTPS",
        skip_serializing_if = "Option::is_none"
    )]
    pub s3_use_https: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_sign_payload: Option<bool>,
}
