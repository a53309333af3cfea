//! The group's Services.
//!
//! - `mysql-<group>-<site>`: a site's client-facing Service, the mysql port only; it
//!   selects the site's pod while the failover loop labels it healthy. Its type and
//!   annotations come from `spec.serviceTemplate` overlaid with the site's
//!   `serviceTemplate` (site keys win); `nodePort` only from the site's, since one port
//!   cannot be shared by several Services.
//! - `mysql-<group>-<site>-internal`: operator-only (probes, replication, clone, backup).
//!   Always ClusterIP, ignores the healthy label and publishes not-ready addresses, so the
//!   operator can reach a mysqld that is starting, lagging or fenced.
//! - `mysql-<group>-primary` and `mysql-<group>-replicas`: follow the role and healthy
//!   labels the failover loop moves between pods; the group's `serviceTemplate` applies.
//!
//! `externalTrafficPolicy` and `nodePort` are dropped on an effective ClusterIP, where the
//! API server would refuse them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::deployment::{MYSQL_PORT, MYSQL_PORT_NAME, SIDECAR_PORT, SIDECAR_PORT_NAME};
use super::{Owner, names};
use crate::api::failover_group::{ServiceTemplate, ServiceType, SiteSpec, TrafficPolicy};

/// The effective client-facing settings after overlaying templates.
#[derive(Debug, Default)]
struct Exposure {
    service_type: Option<ServiceType>,
    external_traffic_policy: Option<TrafficPolicy>,
    node_port: Option<i32>,
    annotations: BTreeMap<String, String>,
}

impl Exposure {
    fn group(template: Option<&ServiceTemplate>) -> Self {
        template.map_or_else(Self::default, |t| Self {
            service_type: t.service_type,
            external_traffic_policy: t.external_traffic_policy,
            node_port: None,
            annotations: t.annotations.clone(),
        })
    }

    fn site(group: Option<&ServiceTemplate>, site: Option<&ServiceTemplate>) -> Self {
        let mut exposure = Self::group(group);
        if let Some(t) = site {
            exposure.service_type = t.service_type.or(exposure.service_type);
            exposure.external_traffic_policy = t
                .external_traffic_policy
                .or(exposure.external_traffic_policy);
            exposure.node_port = t.node_port;
            exposure
                .annotations
                .extend(t.annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        exposure
    }
}

fn type_name(t: ServiceType) -> &'static str {
    match t {
        ServiceType::ClusterIP => "ClusterIP",
        ServiceType::LoadBalancer => "LoadBalancer",
        ServiceType::NodePort => "NodePort",
    }
}

fn policy_name(p: TrafficPolicy) -> &'static str {
    match p {
        TrafficPolicy::Cluster => "Cluster",
        TrafficPolicy::Local => "Local",
    }
}

fn service(
    owner: &Owner<'_>,
    name: String,
    labels: BTreeMap<String, String>,
    selector: BTreeMap<String, String>,
    exposure: Exposure,
    publish_not_ready: bool,
) -> Service {
    let service_type = exposure.service_type.unwrap_or(ServiceType::ClusterIP);
    let external = service_type != ServiceType::ClusterIP;
    let mut metadata = owner.meta(name, labels);
    metadata.annotations = (!exposure.annotations.is_empty()).then_some(exposure.annotations);
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(type_name(service_type).to_owned()),
            selector: Some(selector),
            ports: Some(ports(
                exposure.node_port.filter(|_| external),
                publish_not_ready,
            )),
            external_traffic_policy: exposure
                .external_traffic_policy
                .filter(|_| external)
                .map(|p| policy_name(p).to_owned()),
            publish_not_ready_addresses: publish_not_ready.then_some(true),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The mysql port; on the internal Service also the sidecar's, which the other sites'
/// sidecars call (`/peer/active-site`) and the operator reads.
fn ports(node_port: Option<i32>, internal: bool) -> Vec<ServicePort> {
    let mut ports = vec![ServicePort {
        name: Some(MYSQL_PORT_NAME.to_owned()),
        port: MYSQL_PORT,
        target_port: Some(IntOrString::String(MYSQL_PORT_NAME.to_owned())),
        protocol: Some("TCP".to_owned()),
        node_port,
        ..ServicePort::default()
    }];
    if internal {
        ports.push(ServicePort {
            name: Some(SIDECAR_PORT_NAME.to_owned()),
            port: SIDECAR_PORT,
            target_port: Some(IntOrString::String(SIDECAR_PORT_NAME.to_owned())),
            protocol: Some("TCP".to_owned()),
            ..ServicePort::default()
        });
    }
    ports
}

fn healthy(mut selector: BTreeMap<String, String>) -> BTreeMap<String, String> {
    selector.insert(names::LABEL_HEALTHY.to_owned(), "yes".to_owned());
    selector
}

/// `mysql-<group>-<site>`.
pub(crate) fn client_service(owner: &Owner<'_>, site: &SiteSpec) -> Service {
    service(
        owner,
        names::site(owner.name, &site.name),
        names::site_labels(owner.name, &site.name),
        healthy(names::site_selector(owner.name, &site.name)),
        Exposure::site(
            owner.spec.service_template.as_ref(),
            site.service_template.as_ref(),
        ),
        false,
    )
}

/// `mysql-<group>-<site>-internal`.
pub(crate) fn internal_service(owner: &Owner<'_>, site: &SiteSpec) -> Service {
    service(
        owner,
        names::internal_service(owner.name, &site.name),
        names::site_labels(owner.name, &site.name),
        names::site_selector(owner.name, &site.name),
        Exposure::default(),
        true,
    )
}

/// `mysql-<group>-primary`.
pub(crate) fn primary_service(owner: &Owner<'_>) -> Service {
    let mut selector = names::group_selector(owner.name);
    selector.insert(names::LABEL_ROLE.to_owned(), "primary".to_owned());
    service(
        owner,
        names::primary_service(owner.name),
        names::group_labels(owner.name),
        selector,
        Exposure::group(owner.spec.service_template.as_ref()),
        false,
    )
}

/// `mysql-<group>-replicas`.
pub(crate) fn replicas_service(owner: &Owner<'_>) -> Service {
    let mut selector = names::group_selector(owner.name);
    selector.insert(names::LABEL_ROLE.to_owned(), "replica".to_owned());
    service(
        owner,
        names::replicas_service(owner.name),
        names::group_labels(owner.name),
        healthy(selector),
        Exposure::group(owner.spec.service_template.as_ref()),
        false,
    )
}
