//! Object names, label keys and label sets of the objects rendered for a group.
//!
//! Names follow the original operator so dashboards, runbooks and `kubectl` habits carry
//! over: for group `orders` and site `iad` the site Deployment is `mysql-orders-iad`, its PVC
//! `mysql-orders-iad-data`, the shared my.cnf ConfigMap `mysql-orders-config`, the Services
//! `mysql-orders-iad`, `mysql-orders-iad-internal`, `mysql-orders-primary` and
//! `mysql-orders-replicas`, the PodDisruptionBudget `mysql-orders` and the DNSEndpoint
//! `bloodraven-orders`.

use std::collections::BTreeMap;

use super::RenderError;

/// `app.kubernetes.io/name`: always `mysql` on MySQL objects.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`: the group's name.
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/managed-by`: always `bloodraven`.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// `app.kubernetes.io/part-of`: always `bloodraven`. It opts the rendered workloads into the
/// catalog's workload rules (pinned images, Restricted containers), so `bloodraven lint`
/// checks what the operator itself writes.
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
/// `shipstream.io/failover-group`: the group's name.
pub const LABEL_GROUP: &str = "shipstream.io/failover-group";
/// `shipstream.io/site`: the site's name.
pub const LABEL_SITE: &str = "shipstream.io/site";
/// `shipstream.io/backup-profile`: the backup profile a provisioned backup volume serves.
pub const LABEL_BACKUP_PROFILE: &str = "shipstream.io/backup-profile";
/// `shipstream.io/role` on pods (`primary`, `replica`, `fenced`). The failover loop patches
/// it on the pod itself, never in a template, so a role change does not roll the pod.
pub const LABEL_ROLE: &str = "shipstream.io/role";
/// `shipstream.io/healthy` on pods (`yes`, `no`), patched like the role label.
pub const LABEL_HEALTHY: &str = "shipstream.io/healthy";
/// Pod-template annotation carrying the SHA-256 of the site's my.cnf: a change to it (and
/// only to it) rolls that site's pod.
pub const ANNOTATION_CONFIG_CHECKSUM: &str = "bloodraven.shipstream.io/config-checksum";

const MYSQL: &str = "mysql";
const BLOODRAVEN: &str = "bloodraven";

/// The name of a site's Deployment (also its client-facing Service).
pub fn site(group: &str, site: &str) -> String {
    format!("mysql-{group}-{site}")
}

/// The name of a site's data PersistentVolumeClaim.
pub fn data_pvc(group: &str, site_name: &str) -> String {
    format!("{}-data", site(group, site_name))
}

/// The name of the ConfigMap holding every site's my.cnf.
pub fn config_map(group: &str) -> String {
    format!("mysql-{group}-config")
}

/// The name of a site's operator-only Service.
pub fn internal_service(group: &str, site_name: &str) -> String {
    format!("{}-internal", site(group, site_name))
}

/// The name of the Service that selects the pod labelled primary.
pub fn primary_service(group: &str) -> String {
    format!("mysql-{group}-primary")
}

/// The name of the Service that selects the healthy replicas.
pub fn replicas_service(group: &str) -> String {
    format!("mysql-{group}-replicas")
}

/// The name of the group's PodDisruptionBudget.
pub fn pdb(group: &str) -> String {
    format!("mysql-{group}")
}

/// The name of the group's DNSEndpoint.
pub fn dns_endpoint(group: &str) -> String {
    format!("bloodraven-{group}")
}

/// The cert-manager Secret MySQL serves TLS from when `spec.tls.secretName` is unset.
pub fn default_tls_secret(group: &str) -> String {
    format!("mysql-{group}-tls")
}

/// The Secret holding the bearer token (key [`SIDECAR_TOKEN_KEY`]) the group's sidecars
/// require from each other.
pub fn sidecar_token_secret(group: &str) -> String {
    format!("mysql-{group}-sidecar-token")
}

/// The key of the sidecar token in [`sidecar_token_secret`].
pub const SIDECAR_TOKEN_KEY: &str = "token";
/// The key of the token Secret holding the operator's serving CA, which the sidecars
/// alone trust for the operator's active-site endpoint.
pub const SIDECAR_OPERATOR_CA_KEY: &str = "ca.crt";

/// The operator's active-site endpoint for the sidecars of `namespace/group` (served by
/// every `bloodraven serve` replica on `--sidecar-listen`).
pub fn sidecar_active_site_path(namespace: &str, group: &str) -> String {
    format!("/sidecar/v1/namespaces/{namespace}/groups/{group}/active-site")
}

/// The key of a site's my.cnf in the group's ConfigMap.
pub fn config_key(site_name: &str) -> String {
    format!("{site_name}.cnf")
}

/// The labels every object of the group carries.
pub fn group_labels(group: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_owned(), MYSQL.to_owned()),
        (LABEL_INSTANCE.to_owned(), group.to_owned()),
        (LABEL_MANAGED_BY.to_owned(), BLOODRAVEN.to_owned()),
        (LABEL_PART_OF.to_owned(), BLOODRAVEN.to_owned()),
        (LABEL_GROUP.to_owned(), group.to_owned()),
    ])
}

/// The labels of one site's objects: the group's plus the site.
pub fn site_labels(group: &str, site_name: &str) -> BTreeMap<String, String> {
    let mut labels = group_labels(group);
    labels.insert(LABEL_SITE.to_owned(), site_name.to_owned());
    labels
}

/// Selects every MySQL pod of the group (and nothing else the group may run, such as
/// Dragonfly pods sharing the instance label).
pub fn group_selector(group: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_owned(), MYSQL.to_owned()),
        (LABEL_INSTANCE.to_owned(), group.to_owned()),
    ])
}

/// Selects one site's MySQL pod, whatever its role or health. Also the Deployment's
/// (immutable) selector, so it must never grow.
pub fn site_selector(group: &str, site_name: &str) -> BTreeMap<String, String> {
    let mut selector = group_selector(group);
    selector.insert(LABEL_SITE.to_owned(), site_name.to_owned());
    selector
}

/// Checks that `name` is usable as a Service name (an RFC 1035 label: at most 63 characters
/// of lower-case letters, digits and `-`, starting with a letter and ending with an
/// alphanumeric), the strictest name any rendered object has.
pub fn check_dns_label(what: &'static str, name: &str) -> Result<(), RenderError> {
    let reason = if name.len() > 63 {
        Some("is longer than 63 characters")
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("does not start with a lower-case letter")
    } else if !name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        Some("does not end with a lower-case letter or digit")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Some("has characters other than a-z, 0-9 and '-'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(RenderError::InvalidName {
            what,
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_original_operator() {
        assert_eq!(site("orders", "iad"), "mysql-orders-iad");
        assert_eq!(data_pvc("orders", "iad"), "mysql-orders-iad-data");
        assert_eq!(config_map("orders"), "mysql-orders-config");
        assert_eq!(
            internal_service("orders", "iad"),
            "mysql-orders-iad-internal"
        );
        assert_eq!(primary_service("orders"), "mysql-orders-primary");
        assert_eq!(replicas_service("orders"), "mysql-orders-replicas");
        assert_eq!(pdb("orders"), "mysql-orders");
        assert_eq!(dns_endpoint("orders"), "bloodraven-orders");
    }

    #[test]
    fn site_labels_extend_group_labels() {
        let labels = site_labels("orders", "iad");
        assert_eq!(labels[LABEL_NAME], "mysql");
        assert_eq!(labels[LABEL_INSTANCE], "orders");
        assert_eq!(labels[LABEL_MANAGED_BY], "bloodraven");
        assert_eq!(labels[LABEL_GROUP], "orders");
        assert_eq!(labels[LABEL_SITE], "iad");
        assert_eq!(labels.len(), group_labels("orders").len() + 1);
        // Selectors never carry the role or health labels the failover loop moves.
        assert!(!site_selector("orders", "iad").contains_key(LABEL_ROLE));
        assert!(!site_selector("orders", "iad").contains_key(LABEL_HEALTHY));
    }

    #[test]
    fn dns_label_check_rejects_what_a_service_name_cannot_be() {
        assert!(check_dns_label("Service", "mysql-orders-iad-internal").is_ok());
        for bad in ["Mysql", "mysql-", "1mysql", "mysql.orders", "mysql_orders"] {
            assert!(check_dns_label("Service", bad).is_err(), "{bad}");
        }
        let long = format!("mysql-{}", "a".repeat(58));
        assert_eq!(long.len(), 64);
        let err = check_dns_label("Service", &long).unwrap_err();
        assert!(err.to_string().contains("63"), "{err}");
    }
}
