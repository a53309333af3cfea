//! The group's DNSEndpoint (external-dns's `externaldns.k8s.io/v1alpha1` kind):
//! `bloodraven-<group>`, one A record `spec.dns.hostname` → the active site's `lbIP` with
//! TTL `spec.dns.ttl`.
//!
//! It takes the active site as an argument instead of reading the spec or status: the
//! failover loop renders it only once a promotion is confirmed writable, so DNS never
//! points at a site that cannot take writes yet.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::{Owner, RenderError, find_site, names};
use crate::api::MysqlFailoverGroup;

/// `apiVersion` of external-dns's DNSEndpoint.
pub const API_VERSION: &str = "externaldns.k8s.io/v1alpha1";
/// `kind` of external-dns's DNSEndpoint.
pub const KIND: &str = "DNSEndpoint";

/// A DNSEndpoint object, with only the fields bloodraven writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsEndpoint {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: DnsEndpointSpec,
}

/// `spec` of a DNSEndpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsEndpointSpec {
    pub endpoints: Vec<Endpoint>,
}

/// One record of a DNSEndpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub dns_name: String,
    pub record_type: String,
    pub targets: Vec<String>,
    #[serde(rename = "recordTTL")]
    pub record_ttl: i64,
}

/// The DNSEndpoint pointing `spec.dns.hostname` at `active_site`'s `lbIP`.
pub fn dns_endpoint(
    group: &MysqlFailoverGroup,
    active_site: &str,
) -> Result<DnsEndpoint, RenderError> {
    let owner = Owner::new(group)?;
    let site = find_site(owner.spec, active_site)?;
    let lb_ip = site
        .lb_ip
        .clone()
        .filter(|ip| !ip.is_empty())
        .ok_or_else(|| RenderError::NoLbIp(site.name.clone()))?;
    Ok(DnsEndpoint {
        api_version: API_VERSION.to_owned(),
        kind: KIND.to_owned(),
        metadata: owner.meta(
            names::dns_endpoint(owner.name),
            names::group_labels(owner.name),
        ),
        spec: DnsEndpointSpec {
            endpoints: vec![Endpoint {
                dns_name: owner.spec.dns.hostname.clone(),
                record_type: "A".to_owned(),
                targets: vec![lb_ip],
                record_ttl: owner.spec.dns.ttl,
            }],
        },
    })
}
