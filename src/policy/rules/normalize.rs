//! The object as rules see it: explicit `null` and empty values read as missing.
//!
//! The API server stores `spec.tls: null` or `spec.backup: {}` as written, and the operator
//! reads both as "unset". A rule written as "this field is required" must therefore fire on
//! them exactly as on an absent field, in every front door (lint, `/lint`, `/validate`,
//! `/mutate`, `--fix`). Doing this once, before any rule runs, keeps every rule file simple:
//! a JSON Schema `required` then means "present and meaningful".
//!
//! Only mapping members are removed, never sequence items: removing an item would shift
//! the indices of its siblings, and findings are reported by pointer into the original
//! document (its position map and any JSON Patch are keyed by those pointers). Items are
//! normalized inside, and a `null` item stays `null` for the rules' type checks to judge.

use std::borrow::Cow;

use serde_json::Value;

/// `object` with every `null`, `{}`, `""` and `[]` mapping member removed, recursively,
/// until none is left (a mapping emptied by the removal is itself removed). Borrows when
/// there is nothing to remove, which is the common case.
pub fn normalize(object: &Value) -> Cow<'_, Value> {
    if has_removable(object) {
        let mut owned = object.clone();
        prune(&mut owned);
        Cow::Owned(owned)
    } else {
        Cow::Borrowed(object)
    }
}

/// Whether a value reads as missing when it is a mapping member.
fn is_vacant(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Whether pruning would change `value`: some mapping member anywhere in it is vacant.
fn has_removable(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.values().any(|v| is_vacant(v) || has_removable(v)),
        Value::Array(items) => items.iter().any(has_removable),
        _ => false,
    }
}

/// Post-order: children are pruned before their parent decides whether they are vacant,
/// so one pass reaches the fixpoint.
fn prune(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                prune(child);
            }
            map.retain(|_, v| !is_vacant(v));
        }
        Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn removes_null_and_empty_members_to_a_fixpoint() {
        let object = json!({"spec": {
            "tls": null, "backup": {"pitr": {}, "profiles": [{"name": "p", "retentionPolicy": null}, null, {}]},
            "image": "", "sites": [], "credentials": null, "secretName": "dsn",
            "podSecurityContext": {"seccompProfile": {"type": null}},
            "replicas": 0, "enabled": false,
        }});
        let got = normalize(&object);
        assert!(matches!(got, Cow::Owned(_)));
        assert_eq!(
            *got,
            json!({"spec": {
                "backup": {"profiles": [{"name": "p"}, null, {}]},
                "secretName": "dsn", "replicas": 0, "enabled": false,
            }})
        );
    }

    #[test]
    fn borrows_when_nothing_is_vacant() {
        let object = json!({"spec": {"a": [1, {"b": false}], "c": 0, "d": "x"}});
        assert!(matches!(normalize(&object), Cow::Borrowed(_)));
        // A vacant value inside a list item is still found.
        let nested = json!({"spec": {"a": [{"b": null}]}});
        assert_eq!(*normalize(&nested), json!({"spec": {"a": [{}]}}));
    }
}
