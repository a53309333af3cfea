//! The operator's desired objects for a `MysqlFailoverGroup`, rendered as pure data.
//!
//! [`render`] turns a group (its metadata and spec) into the typed Kubernetes objects the
//! reconcile loop server-side applies: per site a Deployment, a PVC, a client-facing and an
//! operator-only Service; per group the my.cnf ConfigMap, the primary and replicas
//! Services and a PodDisruptionBudget. [`dns::dns_endpoint`] renders the DNSEndpoint, which
//! depends on the confirmed active site rather than on the spec alone.
//!
//! No I/O, no clock, no randomness: every map is a `BTreeMap` and every list follows the
//! spec's order, so rendering the same group twice gives equal objects and "nothing
//! changed" is a plain comparison.

pub mod backup;
pub mod deployment;
pub mod diff;
pub mod disruption;
pub mod dns;
pub mod mycnf;
pub mod names;
pub mod pitr;
pub mod placement;
pub mod platform;
pub mod restore;
pub mod rollout;
pub mod security;
pub mod services;
pub mod sidecar_token;
mod spec;
pub mod status;
pub mod storage;
pub mod tools;
pub mod verification;
pub mod webhook_certs;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::Value;

use crate::api::failover_group::{MysqlFailoverGroupSpec, SiteSpec};
use crate::api::{API_VERSION, MysqlFailoverGroup};
use crate::error::{Categorized, Category};

/// Operator-wide settings that are not part of a group's spec.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// The data volume size for a site whose spec gives none (a PVC must request a size).
    pub default_storage_size: Quantity,
    /// `host:port` of the operator's sidecar endpoint (`serve --sidecar-address`, the
    /// chart's Service), for groups whose `spec.sidecar.bloodravenAddress` is unset.
    pub sidecar_operator_address: Option<String>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            default_storage_size: Quantity("10Gi".to_owned()),
            sidecar_operator_address: None,
        }
    }
}

/// Why a group cannot be rendered. Each is a problem in the group's own object.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the MysqlFailoverGroup has no metadata.{0}")]
    MissingMetadata(&'static str),
    #[error("{what} name {name:?} {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
    #[error("{field} entry {key:?} is not a `key = value` line mysqld can read")]
    InvalidMysqlConf { field: &'static str, key: String },
    #[error("sites {0:?} and {1:?} hash to the same MySQL server-id; rename one")]
    ServerIdCollision(String, String),
    #[error("site {0:?} is not in spec.sites")]
    UnknownSite(String),
    #[error("site {0:?} has no lbIP to point DNS at")]
    NoLbIp(String),
    /// The restore's inputs cannot make a Job (the reference's `RestoreBuildFailed`).
    #[error("restore: {0}")]
    Restore(String),
    /// `spec.backup.pitr` cannot make the binary-log archiver.
    #[error("spec.backup.pitr: {0}")]
    Pitr(String),
    /// A rendered object does not have the shape of its kind (a bug here, not in the
    /// group).
    #[error("rendered object is malformed: {0}")]
    Internal(String),
}

impl Categorized for RenderError {
    fn category(&self) -> Category {
        match self {
            Self::Internal(_) => Category::Internal,
            _ => Category::InvalidInput,
        }
    }
}

/// Everything [`render`] produces for one group, in a stable order.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObjects {
    /// `mysql-<group>-config`: one `<site>.cnf` key per site.
    pub config_map: ConfigMap,
    /// One per site, in `spec.sites` order, then one per PVC backup profile that names no
    /// claim, in `spec.backup.profiles` order.
    pub persistent_volume_claims: Vec<PersistentVolumeClaim>,
    /// One per site, in `spec.sites` order.
    pub deployments: Vec<Deployment>,
    /// Per site the client-facing and the internal Service, then primary and replicas.
    pub services: Vec<Service>,
    /// `mysql-<group>`.
    pub pod_disruption_budget: PodDisruptionBudget,
}

impl DesiredObjects {
    /// Every object as JSON (with `apiVersion` and `kind`), in apply order: configuration
    /// and storage before the workloads that mount them, then the Services and the budget.
    pub fn to_values(&self) -> Result<Vec<Value>, serde_json::Error> {
        let mut out = vec![serde_json::to_value(&self.config_map)?];
        for pvc in &self.persistent_volume_claims {
            out.push(serde_json::to_value(pvc)?);
        }
        for deployment in &self.deployments {
            out.push(serde_json::to_value(deployment)?);
        }
        for service in &self.services {
            out.push(serde_json::to_value(service)?);
        }
        out.push(serde_json::to_value(&self.pod_disruption_budget)?);
        Ok(out)
    }
}

/// A controller reference to `object` (a Job owned by the MysqlBackup or verification it
/// runs, so it goes with it).
pub(crate) fn controller_ref<K>(object: &K) -> Result<OwnerReference, RenderError>
where
    K: kube::Resource<DynamicType = ()>,
{
    let meta = object.meta();
    Ok(OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: meta
            .name
            .clone()
            .ok_or(RenderError::MissingMetadata("name"))?,
        uid: meta
            .uid
            .clone()
            .ok_or(RenderError::MissingMetadata("uid"))?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// The identity every rendered object hangs off: where it lives and who owns it.
#[derive(Debug, Clone)]
pub(crate) struct Owner<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub reference: OwnerReference,
    pub spec: &'a MysqlFailoverGroupSpec,
    /// The group opted in to the sidecar ([`crate::api::annotations::SIDECAR`]).
    pub sidecar: bool,
    /// [`RenderOptions::sidecar_operator_address`].
    pub sidecar_operator_address: Option<&'a str>,
}

impl<'a> Owner<'a> {
    fn new(group: &'a MysqlFailoverGroup) -> Result<Self, RenderError> {
        let name = group
            .metadata
            .name
            .as_deref()
            .ok_or(RenderError::MissingMetadata("name"))?;
        let namespace = group
            .metadata
            .namespace
            .as_deref()
            .ok_or(RenderError::MissingMetadata("namespace"))?;
        let uid = group
            .metadata
            .uid
            .as_deref()
            .ok_or(RenderError::MissingMetadata("uid"))?;
        Ok(Self {
            name,
            namespace,
            reference: OwnerReference {
                api_version: API_VERSION.to_owned(),
                kind: "MysqlFailoverGroup".to_owned(),
                name: name.to_owned(),
                uid: uid.to_owned(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            },
            spec: &group.spec,
            sidecar: crate::api::annotations::sidecar_enabled(group),
            sidecar_operator_address: None,
        })
    }

    /// Metadata of a child object: namespaced beside the group, labelled, owned by it.
    pub(crate) fn meta(&self, name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.to_owned()),
            labels: Some(labels),
            owner_references: Some(vec![self.reference.clone()]),
            ..ObjectMeta::default()
        }
    }
}

/// Renders the objects the reconcile loop keeps in place for `group`.
pub fn render(
    group: &MysqlFailoverGroup,
    options: &RenderOptions,
) -> Result<DesiredObjects, RenderError> {
    let mut owner = Owner::new(group)?;
    owner.sidecar_operator_address = options.sidecar_operator_address.as_deref();
    check_names(&owner)?;

    let mut configs = BTreeMap::new();
    let mut deployments = Vec::with_capacity(owner.spec.sites.len());
    let mut pvcs = Vec::with_capacity(owner.spec.sites.len());
    let mut services = Vec::with_capacity(owner.spec.sites.len() * 2 + 2);
    for site in &owner.spec.sites {
        let config = mycnf::render_site(owner.name, owner.spec, site)?;
        deployments.push(deployment::site_deployment(&owner, site, &config.checksum));
        configs.insert(names::config_key(&site.name), config.content);
        pvcs.push(storage::data_pvc(&owner, site, options));
        services.push(services::client_service(&owner, site));
        services.push(services::internal_service(&owner, site));
    }
    pvcs.extend(storage::backup_pvcs(&owner, options));
    services.push(services::primary_service(&owner));
    services.push(services::replicas_service(&owner));

    Ok(DesiredObjects {
        config_map: ConfigMap {
            metadata: owner.meta(
                names::config_map(owner.name),
                names::group_labels(owner.name),
            ),
            data: Some(configs),
            ..ConfigMap::default()
        },
        persistent_volume_claims: pvcs,
        deployments,
        services,
        pod_disruption_budget: disruption::pdb(&owner),
    })
}

/// Rejects names that would render objects the API server refuses, before any is built:
/// the group and site names end up in Service names and label values.
fn check_names(owner: &Owner<'_>) -> Result<(), RenderError> {
    names::check_dns_label("Service", &names::primary_service(owner.name))?;
    names::check_dns_label("Service", &names::replicas_service(owner.name))?;
    let mut ids: BTreeMap<u32, &str> = BTreeMap::new();
    for site in &owner.spec.sites {
        names::check_dns_label("site", &site.name)?;
        names::check_dns_label("Service", &names::internal_service(owner.name, &site.name))?;
        let id = mycnf::server_id(owner.name, &site.name);
        if let Some(other) = ids.insert(id, &site.name) {
            return Err(RenderError::ServerIdCollision(
                other.to_owned(),
                site.name.clone(),
            ));
        }
    }
    Ok(())
}

/// The site named `name`, for renderers that take a site chosen elsewhere.
pub(crate) fn find_site<'a>(
    spec: &'a MysqlFailoverGroupSpec,
    name: &str,
) -> Result<&'a SiteSpec, RenderError> {
    spec.sites
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| RenderError::UnknownSite(name.to_owned()))
}

#[cfg(test)]
pub(crate) mod tests;
