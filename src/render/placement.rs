//! Where a site's pod runs.
//!
//! - `taintNodeSelector` becomes the pod's `nodeSelector` for primary-candidate and dr-only
//!   sites: those are the nodes that carry the site's `shipstream.io/db-readonly-<group>`
//!   taint, so MySQL runs on the nodes whose other workloads follow its writability.
//!   Read-only sites ignore `taintNodeSelector` (readers never taint), so it does not place
//!   them either.
//! - `zone` becomes a required node affinity on `topology.kubernetes.io/zone`, so a
//!   rescheduled pod cannot silently leave its fault domain.
//! - Every MySQL pod tolerates its own group's taint: the taint exists to evict the
//!   application from a read-only site, never the database that may be promoted there.

use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Toleration,
};

use crate::api::failover_group::{SiteRole, SiteSpec};

/// The well-known node label of a node's zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The taint the failover loop puts on a non-writable site's nodes.
pub fn taint_key(group: &str) -> String {
    format!("shipstream.io/db-readonly-{group}")
}

/// The site pod's `nodeSelector`, if the site is placed by one.
pub fn node_selector(site: &SiteSpec) -> Option<std::collections::BTreeMap<String, String>> {
    (site.role != SiteRole::ReadOnly && !site.taint_node_selector.is_empty())
        .then(|| site.taint_node_selector.clone())
}

/// The site pod's affinity: its zone, if it has one.
pub fn affinity(site: &SiteSpec) -> Option<Affinity> {
    let zone = site.zone.as_ref()?;
    Some(Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(vec![NodeSelectorRequirement {
                        key: ZONE_LABEL.to_owned(),
                        operator: "In".to_owned(),
                        values: Some(vec![zone.clone()]),
                    }]),
                    match_fields: None,
                }],
            }),
            preferred_during_scheduling_ignored_during_execution: None,
        }),
        ..Affinity::default()
    })
}

/// Tolerations of every MySQL pod of the group.
pub fn tolerations(group: &str) -> Vec<Toleration> {
    vec![Toleration {
        key: Some(taint_key(group)),
        operator: Some("Exists".to_owned()),
        effect: Some("NoExecute".to_owned()),
        ..Toleration::default()
    }]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn candidates_are_placed_on_their_taint_nodes_and_readers_are_not() {
        let selector = BTreeMap::from([("shipstream.io/site.orders".to_owned(), "iad".to_owned())]);
        let mut site = SiteSpec {
            name: "iad".to_owned(),
            taint_node_selector: selector.clone(),
            zone: Some("us-east-1a".to_owned()),
            ..SiteSpec::default()
        };
        assert_eq!(node_selector(&site), Some(selector));
        let terms = affinity(&site)
            .unwrap()
            .node_affinity
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .unwrap()
            .node_selector_terms;
        let expr = &terms[0].match_expressions.as_ref().unwrap()[0];
        assert_eq!(expr.key, ZONE_LABEL);
        assert_eq!(expr.values.as_deref(), Some(&["us-east-1a".to_owned()][..]));
        site.role = SiteRole::ReadOnly;
        assert_eq!(node_selector(&site), None);
        site.zone = None;
        assert!(affinity(&site).is_none());
    }

    #[test]
    fn pods_tolerate_their_own_group_taint() {
        let t = &tolerations("orders")[0];
        assert_eq!(t.key.as_deref(), Some("shipstream.io/db-readonly-orders"));
        assert_eq!(t.effect.as_deref(), Some("NoExecute"));
        assert_eq!(t.operator.as_deref(), Some("Exists"));
    }
}
