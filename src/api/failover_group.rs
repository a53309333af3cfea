//! `MysqlFailoverGroup` (`mfg`): an N-site MySQL async-replication group.
//!
//! Field names, types and defaults follow the original operator's v1alpha1 schema, so its
//! manifests are accepted unchanged and mean the same thing; `docs/compatibility.md` lists
//! where bloodraven deliberately differs.

// The CRD's field names are the API (`operatorSecret`, `appSecret`, ...).
#![allow(clippy::struct_field_names)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, PodSecurityContext, ResourceRequirements, SecurityContext,
};
use kube::CustomResource;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::backup::BackupSpec;
use super::common::{OptionalNameRef, PullPolicy, StorageSpec};
use super::dragonfly::DragonflySpec;
use super::failover_group_status::MysqlFailoverGroupStatus;
use super::restore::{InitFromBackupSpec, RestoreInPlaceSpec};

/// The desired topology, credentials and failover policy of an N-site MySQL group.
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
    /// Sidecar and init image. Unset uses the sidecar released with the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub sidecar_image: Option<String>,
    /// Pull policy of the MySQL, sidecar and init containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    /// Registry Secrets for the group's pods, in the same namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<OptionalNameRef>,

    /// The sites of the group: 2 to 16, at least 2 of them primary-candidate.
    #[schemars(length(min = 2, max = 16))]
    pub sites: Vec<SiteSpec>,

    /// Legacy single-DSN mode: the name of a Secret with a `dsn` key. Prefer `credentials`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Per-role MySQL users, one Secret each. Exactly one of this and `secretName` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsSpec>,
    /// cert-manager TLS for client and replication traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// The DNS record that points at the active site's `lbIP`.
    pub dns: DnsSpec,

    /// Base health-poll interval (a Go duration such as `2s`).
    #[serde(default = "default_poll_interval")]
    pub poll_interval: String,
    /// Consecutive failed polls before a site is unreachable.
    #[serde(default = "default_failure_threshold")]
    #[schemars(range(min = 1))]
    pub failure_threshold: i32,
    /// Consecutive good polls before a site is writable again.
    #[serde(default = "default_recovery_threshold")]
    #[schemars(range(min = 1))]
    pub recovery_threshold: i32,
    /// Minimum time between two automatic failovers (a Go duration).
    #[serde(default = "default_failover_cooldown")]
    pub failover_cooldown: String,
    /// After a promotion, how long stale sessions on the fenced old primary are killed.
    #[serde(default = "default_connection_drain_timeout")]
    pub connection_drain_timeout: String,
    /// Tie-break order when several sites claim to be primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_brain_policy: Option<SplitBrainPolicy>,
    /// Sidecar fencing settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<SidecarSpec>,
    /// Resources of the sidecar container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar_resources: Option<ResourceRequirements>,
    /// Grace period of the MySQL pods, in seconds.
    #[serde(default = "default_termination_grace")]
    #[schemars(range(min = 1))]
    pub termination_grace_period_seconds: i64,
    /// Clone and network timeouts for reseeding a site, in seconds.
    #[serde(default = "default_clone_timeout")]
    #[schemars(range(min = 60))]
    pub clone_timeout: i64,
    /// Settings merged into every site's my.cnf; changes roll the sites in order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mysql_conf: BTreeMap<String, String>,
    /// Replication lag alerting.
    #[serde(default)]
    pub replication: ReplicationSpec,
    /// How spec changes roll out to the sites.
    #[serde(default)]
    pub update_strategy: UpdateStrategy,
    /// Labels added to the MySQL pods; the operator's own keys win.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,
    /// Annotations added to the MySQL pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,
    /// Settings of the client-facing Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_template: Option<ServiceTemplate>,
    /// Applied verbatim to the MySQL pod. Unset keeps compatibility with old PVCs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security_context: Option<PodSecurityContext>,
    /// Applied verbatim to the mysql and sidecar containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
    /// Extra containers in every MySQL pod, such as mysqld-exporter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_containers: Vec<Container>,
    /// Extra init containers; they run after the built-in one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_init_containers: Vec<Container>,
    /// Backup profiles, schedules and point-in-time recovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,
    /// One-shot restore into the initial primary when the group is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from_backup: Option<InitFromBackupSpec>,
    /// Destructive restore of a live group, armed by a new `confirm` token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_in_place: Option<RestoreInPlaceSpec>,
    /// Defaults for planned switchovers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_failover: Option<PlannedFailoverSpec>,
    /// An optional Dragonfly cache that fails over with MySQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dragonfly: Option<DragonflySpec>,
}

fn default_mysql_image() -> String {
    "mysql:9.7".to_owned()
}
fn default_poll_interval() -> String {
    "2s".to_owned()
}
fn default_failure_threshold() -> i32 {
    3
}
fn default_recovery_threshold() -> i32 {
    2
}
fn default_failover_cooldown() -> String {
    "5m".to_owned()
}
fn default_connection_drain_timeout() -> String {
    "30s".to_owned()
}
fn default_termination_grace() -> i64 {
    60
}
fn default_clone_timeout() -> i64 {
    3600
}

/// Whether a site may be promoted. The failover core uses this same type
/// ([`crate::failover::SiteRole`]).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
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

impl SiteRole {
    pub fn is_candidate(self) -> bool {
        self == Self::PrimaryCandidate
    }

    /// Core sites (candidates and DR followers) count for total loss, split brain and
    /// readiness; site-local readers do not.
    pub fn is_core(self) -> bool {
        self != Self::ReadOnly
    }
}

/// One site (a zone or data centre) of the group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(validation = Rule::new("self.role == 'read-only' || (has(self.lbIP) && self.lbIP != '' && has(self.taintNodeSelector) && size(self.taintNodeSelector) > 0)").message("primary-candidate and dr-only sites need lbIP and taintNodeSelector"))]
#[serde(rename_all = "camelCase")]
pub struct SiteSpec {
    /// Unique site name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// `primary-candidate` (promotable), `dr-only` or `read-only` (a reader).
    #[serde(default)]
    pub role: SiteRole,
    /// Scheduling zone of the site's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub zone: Option<String>,
    /// Selects the nodes that receive this group's taint for this site.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub taint_node_selector: BTreeMap<String, String>,
    /// Load-balancer IP the DNS record points at while this site is active.
    #[serde(default, rename = "lbIP", skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub lb_ip: Option<String>,
    /// The site's data volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// Resources of the MySQL container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// my.cnf overrides for this site only, applied after the group's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mysql_conf: BTreeMap<String, String>,
    /// Per-site overrides of the client-facing Service settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_template: Option<ServiceTemplate>,
}

/// Names of the per-role credential Secrets; each holds `username` and `password`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSpec {
    /// Secret of the operator user (all privileges with grant option).
    #[schemars(length(min = 1))]
    pub operator_secret: String,
    /// Secret of the application user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_secret: Option<String>,
    /// Secret of the read-only user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_secret: Option<String>,
    /// Secret of the monitoring user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_secret: Option<String>,
    /// Secret of the backup user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_secret: Option<String>,
}

/// cert-manager TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// The cert-manager issuer that signs the group's certificate.
    pub issuer_ref: IssuerRef,
    /// Secret the certificate is written to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub secret_name: Option<String>,
}

/// A cert-manager issuer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRef {
    /// Issuer name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// `Issuer` (namespaced) or `ClusterIssuer`.
    #[serde(default)]
    pub kind: IssuerKind,
}

/// The kind of a cert-manager issuer.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum IssuerKind {
    #[default]
    Issuer,
    ClusterIssuer,
}

/// The DNS record of the group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsSpec {
    /// Host name of the A record.
    #[schemars(length(min = 1))]
    pub hostname: String,
    /// Record TTL in seconds.
    #[serde(default = "default_dns_ttl")]
    #[schemars(range(min = 1))]
    pub ttl: i64,
}

fn default_dns_ttl() -> i64 {
    60
}

/// How a split brain is resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SplitBrainPolicy {
    /// Primary-candidate site names, most preferred first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub site_priorities: Vec<String>,
}

/// Sidecar fencing settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SidecarSpec {
    /// With the operator and every peer silent this long, the sidecar fences its site.
    #[serde(default = "default_lease_timeout")]
    pub lease_timeout: String,
    /// Tick of the sidecar's fencing monitor.
    #[serde(default = "default_peer_check_interval")]
    pub peer_check_interval: String,
    /// The operator's auxiliary address (`host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bloodraven_address: Option<String>,
}

fn default_lease_timeout() -> String {
    "20s".to_owned()
}
fn default_peer_check_interval() -> String {
    "5s".to_owned()
}

/// Replication lag alerting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationSpec {
    /// Lag above this sets Degraded/ReplicationLagging. An alert, not a promotion gate.
    #[serde(default = "default_max_lag")]
    #[schemars(range(min = 0))]
    pub max_lag_seconds: i64,
    /// Lag above which a reader leaves the read pool; unset inherits `maxLagSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub read_only_max_lag_seconds: Option<i64>,
}

impl Default for ReplicationSpec {
    fn default() -> Self {
        Self {
            max_lag_seconds: default_max_lag(),
            read_only_max_lag_seconds: None,
        }
    }
}

fn default_max_lag() -> i64 {
    300
}

/// How spec changes roll out.
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

/// Settings of the client-facing Services.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceTemplate {
    /// Service type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub service_type: Option<ServiceType>,
    /// External traffic policy of a LoadBalancer or NodePort Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_traffic_policy: Option<TrafficPolicy>,
    /// Node port of a NodePort Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub node_port: Option<i32>,
    /// Annotations added to the Services.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A Service type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ServiceType {
    ClusterIP,
    LoadBalancer,
    NodePort,
}

/// A Service's external traffic policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum TrafficPolicy {
    Cluster,
    Local,
}

/// Defaults for planned switchovers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedFailoverSpec {
    /// How long to wait for the target to catch up before giving up.
    #[serde(default = "default_max_lag_wait")]
    pub max_lag_wait: String,
    /// How long sessions on the old primary may drain after the fence.
    #[serde(default = "default_connection_drain_timeout")]
    pub drain_timeout: String,
    /// During the failover cooldown: `reject` the request or `defer` it.
    #[serde(default)]
    pub on_cooldown: OnCooldown,
}

fn default_max_lag_wait() -> String {
    "5m".to_owned()
}

/// What a planned failover requested during the cooldown does: fail at once with
/// `CooldownActive`, or wait for the cooldown to end and validate again.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OnCooldown {
    #[default]
    Reject,
    Defer,
}
