//! Which objects a rule is about: a kind only means something within its API group.
//!
//! A CRD named `MysqlFailoverGroup` in `evil.example.com` is not ours, and judging it by our
//! rules (or reading a look-alike `Secret` from another group as credentials) would let
//! anyone who can create such a CRD shape what the linter reports. So every kind a rule
//! file may name has exactly one group here, and objects are matched on both.

use serde_json::Value;

/// Every kind the rules and the cross-object lookups name, with its API group (`""` is
/// the core group, `apiVersion: v1`).
const KIND_GROUPS: [(&str, &str); 13] = [
    ("MysqlFailoverGroup", "shipstream.io"),
    ("MysqlBackup", "shipstream.io"),
    ("MysqlBackupVerification", "shipstream.io"),
    ("Deployment", "apps"),
    ("StatefulSet", "apps"),
    ("DaemonSet", "apps"),
    ("Job", "batch"),
    ("CronJob", "batch"),
    ("Secret", ""),
    ("StorageClass", "storage.k8s.io"),
    ("NetworkPolicy", "networking.k8s.io"),
    ("PrometheusRule", "monitoring.coreos.com"),
    ("PodDisruptionBudget", "policy"),
];

/// The API group `kind` belongs to, for the kinds rules know.
pub fn group_of(kind: &str) -> Option<&'static str> {
    KIND_GROUPS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, g)| *g)
}

/// The group of an object's `apiVersion` (`apps/v1` is `apps`, `v1` is the core group
/// `""`); `None` when the object has no string `apiVersion`.
pub fn api_group(object: &Value) -> Option<&str> {
    let api_version = object.get("apiVersion")?.as_str()?;
    Some(api_version.rsplit_once('/').map_or("", |(group, _)| group))
}

/// Whether an object whose kind is `kind` and whose group is `group` is the known kind.
/// An object without an `apiVersion` (a template fragment) is matched on its kind alone:
/// it names no other group, and the API server refuses it anyway.
pub fn is_known(group: Option<&str>, kind: &str) -> bool {
    group_of(kind).is_some_and(|expected| group.is_none_or(|g| g == expected))
}

/// Whether `object` is of `kind` in that kind's group.
pub fn is_kind(object: &Value, kind: &str) -> bool {
    object.get("kind").and_then(Value::as_str) == Some(kind) && is_known(api_group(object), kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_group_and_kind() {
        let ours = json!({"apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlFailoverGroup"});
        let evil = json!({"apiVersion": "evil.example.com/v1", "kind": "MysqlFailoverGroup"});
        let core = json!({"apiVersion": "v1", "kind": "Secret"});
        let fake = json!({"apiVersion": "fake.io/v1", "kind": "Secret"});
        let fragment = json!({"kind": "MysqlFailoverGroup"});
        assert!(is_kind(&ours, "MysqlFailoverGroup"));
        assert!(!is_kind(&evil, "MysqlFailoverGroup"));
        assert!(is_kind(&core, "Secret"));
        assert!(!is_kind(&fake, "Secret"));
        assert!(is_kind(&fragment, "MysqlFailoverGroup"));
        assert!(!is_kind(&ours, "Secret"));
        assert_eq!(api_group(&json!({"apiVersion": "apps/v1"})), Some("apps"));
        assert!(!is_known(Some("apps"), "Unheard"));
    }
}
