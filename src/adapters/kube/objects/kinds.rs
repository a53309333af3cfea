//! The kinds the operator manages, and where the API server serves them.
//!
//! A fixed table rather than discovery: the operator writes only these kinds, a typo'd or
//! unexpected kind must fail loudly ([`ManagedKind::of`] answers `None`), and metric labels
//! stay bounded by the table.

use kube::api::{ApiResource, GroupVersionKind};

/// A kind of child object, with its API coordinates. All are namespaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagedKind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

/// Every kind [`crate::render`] produces, DNSEndpoint and the backup Jobs and CronJobs
/// included.
pub const MANAGED_KINDS: [ManagedKind; 8] = [
    ManagedKind {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
    },
    ManagedKind {
        group: "",
        version: "v1",
        kind: "PersistentVolumeClaim",
        plural: "persistentvolumeclaims",
    },
    ManagedKind {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
    },
    ManagedKind {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
    },
    ManagedKind {
        group: "policy",
        version: "v1",
        kind: "PodDisruptionBudget",
        plural: "poddisruptionbudgets",
    },
    ManagedKind {
        group: "batch",
        version: "v1",
        kind: "Job",
        plural: "jobs",
    },
    ManagedKind {
        group: "batch",
        version: "v1",
        kind: "CronJob",
        plural: "cronjobs",
    },
    ManagedKind {
        group: "externaldns.k8s.io",
        version: "v1alpha1",
        kind: crate::render::dns::KIND,
        plural: "dnsendpoints",
    },
];

/// Pods: watched (the site pods the operator labels, reduced to their metadata) but never
/// applied, so [`ManagedKind::of`] does not know them. The watch replaces a LIST per site
/// on every label check.
pub const POD: ManagedKind = ManagedKind {
    group: "",
    version: "v1",
    kind: "Pod",
    plural: "pods",
};

impl ManagedKind {
    /// The managed kind an object's `apiVersion` and `kind` name, if any.
    pub fn of(api_version: &str, kind: &str) -> Option<&'static Self> {
        MANAGED_KINDS
            .iter()
            .find(|k| k.kind == kind && k.api_version() == api_version)
    }

    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::api::MysqlFailoverGroup;
    use crate::api::failover_group::{DnsSpec, MysqlFailoverGroupSpec, SiteSpec};
    use crate::ports::objects::ObjectKey;
    use crate::render::{RenderOptions, dns, render};

    #[test]
    fn every_rendered_kind_is_managed_and_nothing_else_is() {
        let spec = MysqlFailoverGroupSpec {
            image: "mysql:9.7.4".to_owned(),
            sites: vec![SiteSpec {
                name: "iad".to_owned(),
                lb_ip: Some("10.0.0.1".to_owned()),
                ..SiteSpec::default()
            }],
            dns: DnsSpec {
                hostname: "db.example.com".to_owned(),
                ttl: 60,
            },
            ..MysqlFailoverGroupSpec::default()
        };
        let mut group = MysqlFailoverGroup::new("orders", spec);
        group.metadata = ObjectMeta {
            name: Some("orders".to_owned()),
            namespace: Some("db".to_owned()),
            uid: Some("u".to_owned()),
            ..ObjectMeta::default()
        };
        let mut rendered = render(&group, &RenderOptions::default())
            .unwrap()
            .to_values()
            .unwrap();
        rendered.push(serde_json::to_value(dns::dns_endpoint(&group, "iad").unwrap()).unwrap());
        // The backup kinds come from `render::backup`, whose tests check that what it
        // renders is managed; here they complete the table.
        for kind in ["Job", "CronJob"] {
            rendered.push(serde_json::json!({"apiVersion": "batch/v1", "kind": kind,
                "metadata": {"name": "x", "namespace": "db"}}));
        }
        let mut kinds: Vec<&str> = rendered
            .iter()
            .map(|v| {
                let key = ObjectKey::of(v).unwrap();
                ManagedKind::of(&key.api_version, &key.kind)
                    .unwrap_or_else(|| panic!("{key} is not managed"))
                    .kind
            })
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), MANAGED_KINDS.len());
        assert_eq!(ManagedKind::of("v1", "Secret"), None);
        assert_eq!(ManagedKind::of("apps/v1beta1", "Deployment"), None);
    }
}
