//! `MysqlFailoverGroup` (`mfg`): an N-site MySQL async-replication group.
//!
//! Field names and defaults follow the original operator so existing manifests keep working.

// The CRD's field names are the API (`operatorSecret`, `appSecret`, ...).
#![allow(clippy::struct_field_names)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LocalObjectReference, PodSecurityContext, ResourceRequirements, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::backup::BackupSpec;
use super::common::{LocalRef, PullPolicy, StorageSpec};
use super::dragonfly::DragonflySpec;
use super::restore::{InitFromBackupSpec, RestoreInPlaceSpec};

#[derive(CustomResource, KubeSchema, Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "shipstream.io",
    version = "v1alpha1",
    kind = "MysqlFailoverGroup",
    plural = "mysqlfailovergroups",
    shortname = "mfg",
    category = "bloodraven",
    namespaced,
    status = "MysqlFailoverGroupStatus",
    printcolumn = r#"{"name":"Active","type":"string","jsonPath":".status.activeSite"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(
    validation = Rule::new("has(self.secretName) != has(self.credentials)").message("exactly one of spec.secretName and spec.credentials must be set"),
    validation = Rule::new("self.sites.all(s, self.sites.exists_one(t, t.name == s.name))").message("site names must be unique"),
    validation = Rule::new("self.sites.filter(s, s.role == 'primary-candidate').size() >= 2").message("at least 2 sites must have role primary-candidate"),
    validation = Rule::new("!has(self.splitBrainPolicy) || !has(self.splitBrainPolicy.sitePriorities) || self.splitBrainPolicy.sitePriorities.all(p, self.sites.exists(s, s.name == p && s.role == 'primary-candidate'))").message("splitBrainPolicy.sitePriorities must name primary-candidate sites"),
)]
#[serde(rename_all = "camelCase")]
pub struct MysqlFailoverGroupSpec {
    /// MySQL image for every site. Pin a full version or a digest.
    #[serde(default = "default_mysql_image")]
    pub image: String,
    /// Sidecar and init image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    #[schemars(length(min = 2, max = 16))]
    pub sites: Vec<SiteSpec>,

    /// Legacy single-DSN mode: a Secret with a `dsn` key. Prefer `credentials`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    pub dns: DnsSpec,

    #[serde(default = "default_poll_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub poll_interval: String,
    #[serde(default = "default_failure_threshold")]
    #[schemars(range(min = 1))]
    pub failure_threshold: u32,
    #[serde(default = "default_recovery_threshold")]
    #[schemars(range(min = 1))]
    pub recovery_threshold: u32,
    #[serde(default = "default_failover_cooldown")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub failover_cooldown: String,
    #[serde(default = "default_connection_drain_timeout")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub connection_drain_timeout: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_brain_policy: Option<SplitBrainPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<SidecarSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar_resources: Option<ResourceRequirements>,
    #[serde(default = "default_termination_grace")]
    #[schemars(range(min = 1))]
    pub termination_grace_period_seconds: u32,
    #[serde(default = "default_clone_timeout")]
    #[schemars(range(min = 60))]
    pub clone_timeout: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mysql_conf: BTreeMap<String, String>,
    #[serde(default)]
    pub replication: ReplicationSpec,
    #[serde(default)]
    pub update_strategy: UpdateStrategy,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_template: Option<ServiceTemplate>,
    /// Applied verbatim to the MySQL pod. Unset keeps compatibility with old PVCs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security_context: Option<PodSecurityContext>,
    /// Applied verbatim to the mysql and sidecar containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from_backup: Option<InitFromBackupSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_in_place: Option<RestoreInPlaceSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_failover: Option<PlannedFailoverSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dragonfly: Option<DragonflySpec>,
}

fn default_mysql_image() -> String {
    "mysql:9.7".to_owned()
}
fn default_poll_interval() -> String {
    "2s".to_owned()
}
fn default_failure_threshold() -> u32 {
    3
}
fn default_recovery_threshold() -> u32 {
    2
}
fn default_failover_cooldown() -> String {
    "5m".to_owned()
}
fn default_connection_drain_timeout() -> String {
    "30s".to_owned()
}
fn default_termination_grace() -> u32 {
    60
}
fn default_clone_timeout() -> u32 {
    3600
}

/// Whether a site may be promoted.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum SiteRole {
    /// Promotable.
    #[default]
    PrimaryCandidate,
    /// A passive follower: never promoted, counted in readiness.
    DrOnly,
    /// A non-promotable reader serving a site-local read pool.
    ReadOnly,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(validation = Rule::new("self.role == 'read-only' || (has(self.lbIP) && self.lbIP != '' && has(self.taintNodeSelector) && size(self.taintNodeSelector) > 0)").message("primary-candidate and dr-only sites need lbIP and taintNodeSelector"))]
#[serde(rename_all = "camelCase")]
pub struct SiteSpec {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(default)]
    pub role: SiteRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub taint_node_selector: BTreeMap<String, String>,
    #[serde(default, rename = "lbIP", skip_serializing_if = "Option::is_none")]
    pub lb_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mysql_conf: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_template: Option<ServiceTemplate>,
}

/// Per-role credential Secrets; each holds `username` and `password`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSpec {
    pub operator_secret: LocalRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_secret: Option<LocalRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_secret: Option<LocalRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_secret: Option<LocalRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_secret: Option<LocalRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    pub issuer_ref: IssuerRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRef {
    #[schemars(length(min = 1))]
    pub name: String,
    #[serde(default)]
    pub kind: IssuerKind,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum IssuerKind {
    #[default]
    Issuer,
    ClusterIssuer,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsSpec {
    #[schemars(length(min = 1))]
    pub hostname: String,
    #[serde(default = "default_dns_ttl")]
    #[schemars(range(min = 1))]
    pub ttl: u32,
}

fn default_dns_ttl() -> u32 {
    60
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SplitBrainPolicy {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 253)))]
    pub site_priorities: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SidecarSpec {
    #[serde(default = "default_lease_timeout")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub lease_timeout: String,
    #[serde(default = "default_peer_check_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub peer_check_interval: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bloodraven_address: Option<String>,
}

fn default_lease_timeout() -> String {
    "20s".to_owned()
}
fn default_peer_check_interval() -> String {
    "5s".to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationSpec {
    /// Lag above this sets Degraded/ReplicationLagging. An alert, not a promotion gate.
    #[serde(default = "default_max_lag")]
    pub max_lag_seconds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_max_lag_seconds: Option<u32>,
}

impl Default for ReplicationSpec {
    fn default() -> Self {
        Self {
            max_lag_seconds: default_max_lag(),
            read_only_max_lag_seconds: None,
        }
    }
}

fn default_max_lag() -> u32 {
    300
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum UpdateStrategy {
    /// Roll the replica, fail over, then roll the former primary.
    #[default]
    OrderedUpdate,
    /// Restart every site at once (a write outage).
    Recreate,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceTemplate {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub service_type: Option<ServiceType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_traffic_policy: Option<TrafficPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub node_port: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ServiceType {
    ClusterIP,
    LoadBalancer,
    NodePort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum TrafficPolicy {
    Cluster,
    Local,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedFailoverSpec {
    #[serde(default = "default_max_lag_wait")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub max_lag_wait: String,
    #[serde(default = "default_connection_drain_timeout")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub drain_timeout: String,
    #[serde(default)]
    pub on_cooldown: OnCooldown,
}

fn default_max_lag_wait() -> String {
    "5m".to_owned()
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OnCooldown {
    #[default]
    Reject,
    Defer,
}

/// What the operator observed. Written only by the operator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MysqlFailoverGroupStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_site: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<SiteStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failover: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failover_target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_gtid_executed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_failover: Option<PlannedFailoverStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitr: Option<PitrStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteStatus {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicating: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_behind_source: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid_executed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergent_gtid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergent_transaction_count: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedFailoverStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_primary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_gtid_at_fence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_gtid_at_promotion: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions_lost: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PitrStatus {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_archived_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_archived_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
