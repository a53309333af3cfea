//! One spelling per field before rules run.
//!
//! The v1alpha1 API names credential Secrets with plain strings
//! (`operatorSecret: orders-operator`). Early bloodraven manifests wrote them as objects
//! (`operatorSecret: {name: orders-operator}`), which the API server rejects. So that no rule
//! silently misses a Secret written the old way (two roles sharing one Secret, a Secret that
//! does not exist), the object form is rewritten to the string form here, and BR-API-001
//! reports the shape itself.

use std::borrow::Cow;

use serde_json::Value;

use super::model::Rule;

/// The credential roles under `spec.credentials`, in the order the API lists them.
pub const CREDENTIAL_ROLES: [&str; 5] = [
    "operatorSecret",
    "appSecret",
    "readOnlySecret",
    "monitorSecret",
    "backupSecret",
];

/// Pointers of every field of a MysqlFailoverGroup that holds a Secret name, wherever the
/// object has that field (in either spelling).
pub fn secret_name_fields(object: &Value) -> Vec<String> {
    if object.get("kind").and_then(Value::as_str) != Some("MysqlFailoverGroup") {
        return Vec::new();
    }
    let mut out: Vec<String> = CREDENTIAL_ROLES
        .iter()
        .map(|role| format!("/spec/credentials/{role}"))
        .collect();
    let profiles = object
        .pointer("/spec/backup/profiles")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    out.extend(
        (0..profiles).map(|i| format!("/spec/backup/profiles/{i}/storage/s3/credentialsSecret")),
    );
    for restore in ["initFromBackup", "restoreInPlace"] {
        out.push(format!("/spec/{restore}/source/s3/credentialsSecret"));
    }
    out.retain(|p| object.pointer(p).is_some());
    out
}

/// The Secret name of a field written as `{name: X}`, if it is written that way.
fn legacy_name(value: &Value) -> Option<&str> {
    value.as_object()?.get("name")?.as_str()
}

/// Pointers of the Secret-name fields written in the object form the API server rejects.
pub fn legacy_secret_refs(object: &Value) -> Vec<String> {
    secret_name_fields(object)
        .into_iter()
        .filter(|p| object.pointer(p).and_then(legacy_name).is_some())
        .collect()
}

/// `object` with every Secret name in its canonical string form; borrowed when nothing
/// needed rewriting, which is every manifest the API server accepts.
pub fn canonical(object: &Value) -> Cow<'_, Value> {
    let legacy = legacy_secret_refs(object);
    if legacy.is_empty() {
        return Cow::Borrowed(object);
    }
    let mut owned = object.clone();
    for pointer in legacy {
        if let Some(field) = owned.pointer_mut(&pointer)
            && let Some(name) = legacy_name(field).map(str::to_owned)
        {
            *field = Value::String(name);
        }
    }
    Cow::Owned(owned)
}

/// An object as written and in canonical form. Rules see the canonical form, except those
/// that report the spelling itself (BR-API-001).
pub struct Shaped<'a> {
    raw: &'a Value,
    canonical: Cow<'a, Value>,
}

impl<'a> Shaped<'a> {
    pub fn of(raw: &'a Value) -> Self {
        Self {
            raw,
            canonical: canonical(raw),
        }
    }

    /// The form `rule` evaluates.
    pub fn for_rule(&self, rule: &Rule) -> &Value {
        if rule.condition.reads_raw_shape() {
            self.raw
        } else {
            &self.canonical
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn group(spec: &Value) -> Value {
        json!({"kind": "MysqlFailoverGroup", "spec": spec})
    }

    #[test]
    fn object_form_becomes_the_string_form_everywhere() {
        let s3 = |secret: Value| json!({"bucket": "b", "credentialsSecret": secret});
        let raw = group(&json!({
            "credentials": {"operatorSecret": {"name": "op"}, "appSecret": "app"},
            "backup": {"profiles": [
                {"name": "a", "storage": {"type": "S3", "s3": s3(json!({"name": "s3a"}))}},
                {"name": "b", "storage": {"type": "PVC", "pvc": {}}},
            ]},
            "initFromBackup": {"source": {"s3": s3(json!("s3i"))}},
            "restoreInPlace": {"confirm": "x", "source": {"s3": s3(json!({"name": "s3r"}))}},
        }));
        assert_eq!(
            legacy_secret_refs(&raw),
            [
                "/spec/credentials/operatorSecret",
                "/spec/backup/profiles/0/storage/s3/credentialsSecret",
                "/spec/restoreInPlace/source/s3/credentialsSecret",
            ]
        );
        let canon = canonical(&raw);
        assert!(matches!(canon, Cow::Owned(_)));
        assert_eq!(canon["spec"]["credentials"]["operatorSecret"], "op");
        assert_eq!(canon["spec"]["credentials"]["appSecret"], "app");
        assert_eq!(
            canon["spec"]["backup"]["profiles"][0]["storage"]["s3"]["credentialsSecret"],
            "s3a"
        );
        assert_eq!(
            canon["spec"]["initFromBackup"]["source"]["s3"]["credentialsSecret"],
            "s3i"
        );
        assert_eq!(
            canon["spec"]["restoreInPlace"]["source"]["s3"]["credentialsSecret"],
            "s3r"
        );
        assert!(legacy_secret_refs(&canon).is_empty());
    }

    #[test]
    fn string_form_and_other_kinds_are_left_alone() {
        let ok = group(&json!({"credentials": {"operatorSecret": "op"}}));
        assert!(matches!(canonical(&ok), Cow::Borrowed(_)));
        let other = json!({"kind": "Deployment", "spec": {"credentials": {"operatorSecret": {"name": "op"}}}});
        assert!(matches!(canonical(&other), Cow::Borrowed(_)));
        // An object without a string name is not the legacy form; the schema rejects it.
        let odd = group(&json!({"credentials": {"operatorSecret": {"key": "k"}}}));
        assert!(legacy_secret_refs(&odd).is_empty());
    }
}
