//! "Nothing to apply": whether a live object already holds every field a desired object
//! sets.
//!
//! Server-side apply with the same field manager is idempotent, but each request still costs
//! an API round trip (and, on some servers, a write to etcd). The reconcile loop therefore
//! asks [`covers`] first and sends nothing when the live object, as the watch cache holds
//! it, already says what we would say.
//!
//! The live object holds more than we set (defaults, status, fields of other managers,
//! server bookkeeping), so coverage is one-sided:
//! - maps: every desired key is present in the live map and covered there;
//! - lists: same length, element by element (a reordered or grown list is a change);
//! - scalars: equal, except quantities under `requests`, `limits` or `sizeLimit`, which are
//!   compared by value because kube-apiserver stores them in canonical form (`1024Mi` comes
//!   back as `1Gi`, `0.5` as `500m`);
//! - a desired `null`, empty list or empty map is covered by an absent field: Go's
//!   `omitempty` drops them when the server stores the object, so they never come back;
//! - `metadata`: fields the server owns (uid, resourceVersion, managedFields, ...) are
//!   ignored; `ownerReferences` is compared as a subset, since other controllers may add
//!   theirs.

use serde_json::{Map, Value};

/// `metadata` fields the API server sets; a desired object that carries one (a copy of a
/// live object) does not ask for it.
const SERVER_OWNED_METADATA: [&str; 8] = [
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Map keys whose string values are Kubernetes quantities.
const QUANTITY_MAPS: [&str; 2] = ["requests", "limits"];
const QUANTITY_FIELDS: [&str; 1] = ["sizeLimit"];

/// Whether `live` already holds every field `desired` sets (see the module docs for what
/// "holds" means per JSON type).
pub fn covers(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(live), Value::Object(desired)) => desired.iter().all(|(key, want)| {
            if key == "metadata" {
                live.get(key)
                    .is_some_and(|have| metadata_covers(have, want))
            } else {
                field_covers(live, key, want, Context::Plain)
            }
        }),
        _ => value_covers(live, desired, Context::Plain),
    }
}

/// What the enclosing map says about its string values.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Plain,
    Quantities,
}

fn field_covers(live: &Map<String, Value>, key: &str, want: &Value, context: Context) -> bool {
    let context = if context == Context::Quantities || QUANTITY_FIELDS.contains(&key) {
        Context::Quantities
    } else {
        Context::Plain
    };
    match live.get(key) {
        Some(have) => {
            let inner = if QUANTITY_MAPS.contains(&key) && want.is_object() {
                Context::Quantities
            } else {
                context
            };
            value_covers(have, want, inner)
        }
        None => is_empty(want),
    }
}

fn value_covers(have: &Value, want: &Value, context: Context) -> bool {
    match (have, want) {
        (Value::Object(have), Value::Object(want)) => want
            .iter()
            .all(|(key, w)| field_covers(have, key, w, context)),
        (Value::Array(have), Value::Array(want)) => {
            have.len() == want.len()
                && have
                    .iter()
                    .zip(want)
                    .all(|(h, w)| value_covers(h, w, Context::Plain))
        }
        (Value::String(have), Value::String(want)) if context == Context::Quantities => {
            have == want || quantity::equal(have, want)
        }
        (_, Value::Null) => true,
        _ => have == want,
    }
}

fn is_empty(want: &Value) -> bool {
    match want {
        Value::Null => true,
        Value::Array(list) => list.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

fn metadata_covers(have: &Value, want: &Value) -> bool {
    let (Some(have), Some(want)) = (have.as_object(), want.as_object()) else {
        return value_covers(have, want, Context::Plain);
    };
    want.iter().all(|(key, w)| {
        if SERVER_OWNED_METADATA.contains(&key.as_str()) {
            true
        } else if key == "ownerReferences" {
            subset_list(have.get(key), w)
        } else {
            field_covers(have, key, w, Context::Plain)
        }
    })
}

/// Every desired element is covered by some live element, whatever the order and whatever
/// else the live list holds.
fn subset_list(have: Option<&Value>, want: &Value) -> bool {
    let Some(want) = want.as_array() else {
        return have.is_some_and(|h| value_covers(h, want, Context::Plain));
    };
    let have = have
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    want.iter()
        .all(|w| have.iter().any(|h| value_covers(h, w, Context::Plain)))
}

/// Kubernetes quantities compared by value: enough of the grammar
/// (`<decimal><suffix>`, suffixes `n u m "" k M G T P E` and `Ki Mi Gi Ti Pi Ei`) for the
/// forms kube-apiserver rewrites. Exponent forms (`1e3`) are not parsed and compare as text.
mod quantity {
    /// Both parse and denote the same amount.
    pub fn equal(a: &str, b: &str) -> bool {
        matches!((nanos(a), nanos(b)), (Some(x), Some(y)) if x == y)
    }

    /// The quantity in billionths of a unit, exactly, or `None` when it does not parse or
    /// does not fit.
    fn nanos(text: &str) -> Option<i128> {
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        let multiplier: i128 = match suffix {
            "n" => 1,
            "u" => 1_000,
            "m" => 1_000_000,
            "" => 1_000_000_000,
            "k" => 1_000_000_000_000,
            "M" => 10_i128.pow(15),
            "G" => 10_i128.pow(18),
            "T" => 10_i128.pow(21),
            "P" => 10_i128.pow(24),
            "E" => 10_i128.pow(27),
            binary => {
                let power = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
                    .iter()
                    .position(|s| *s == binary)?;
                (1_i128 << (10 * (power + 1))).checked_mul(1_000_000_000)?
            }
        };
        let (negative, digits) = match number.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, number.strip_prefix('+').unwrap_or(number)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if (whole.is_empty() && fraction.is_empty())
            || !whole
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        // value = digits / 10^len(fraction) * multiplier; exact only when the division
        // leaves no remainder, which holds for every canonical form.
        let mut mantissa: i128 = 0;
        for b in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add(i128::from(b - b'0'))?;
        }
        let scale = 10_i128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
        let scaled = mantissa.checked_mul(multiplier)?;
        if scaled % scale != 0 {
            return None;
        }
        let value = scaled / scale;
        Some(if negative { -value } else { value })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn canonical_forms_are_equal() {
            for (a, b) in [
                ("1Gi", "1073741824"),
                ("1024Mi", "1Gi"),
                ("0.5", "500m"),
                ("1000m", "1"),
                ("1.5Gi", "1536Mi"),
                ("1k", "1000"),
                ("100M", "100000k"),
            ] {
                assert!(equal(a, b), "{a} = {b}");
            }
            for (a, b) in [
                ("1Gi", "1G"),
                ("1", "2"),
                ("1Gi", "x"),
                ("", ""),
                ("1e3", "1k"),
            ] {
                assert!(!equal(a, b), "{a} != {b}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "mysql-orders-iad", "namespace": "db",
                "labels": {"app.kubernetes.io/managed-by": "bloodraven"},
                "ownerReferences": [{"apiVersion": "shipstream.io/v1alpha1",
                    "kind": "MysqlFailoverGroup", "name": "orders", "uid": "u1",
                    "controller": true}]},
            "spec": {"replicas": 1, "template": {"spec": {
                "containers": [{"name": "mysql", "image": "mysql:9.7.4",
                    "resources": {"requests": {"memory": "1024Mi", "cpu": "0.5"}}}],
                "imagePullSecrets": [],
                "volumes": [{"name": "data", "emptyDir": {}}]}}}
        })
    }

    /// What the API server hands back for [`deployment`]: defaults, bookkeeping, status,
    /// canonical quantities, an extra owner, empty lists dropped.
    fn stored() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "mysql-orders-iad", "namespace": "db", "uid": "x",
                "resourceVersion": "42", "generation": 3,
                "managedFields": [{"manager": "bloodraven"}],
                "labels": {"app.kubernetes.io/managed-by": "bloodraven", "extra": "y"},
                "annotations": {"deployment.kubernetes.io/revision": "1"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Other", "name": "o",
                    "uid": "u0"},
                    {"apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlFailoverGroup",
                    "name": "orders", "uid": "u1", "controller": true,
                    "blockOwnerDeletion": true}]},
            "spec": {"replicas": 1, "revisionHistoryLimit": 10, "template": {"spec": {
                "containers": [{"name": "mysql", "image": "mysql:9.7.4",
                    "imagePullPolicy": "IfNotPresent",
                    "resources": {"requests": {"memory": "1Gi", "cpu": "500m"}}}],
                "volumes": [{"name": "data", "emptyDir": {}}]}}},
            "status": {"replicas": 1}
        })
    }

    #[test]
    fn a_stored_object_covers_what_was_applied() {
        assert!(covers(&stored(), &deployment()));
    }

    #[test]
    fn a_changed_field_is_not_covered() {
        for (pointer, value) in [
            ("/spec/replicas", json!(3)),
            (
                "/spec/template/spec/containers/0/image",
                json!("mysql:9.7.5"),
            ),
            (
                "/spec/template/spec/containers/0/resources/requests/memory",
                json!("2Gi"),
            ),
            ("/metadata/labels/app.kubernetes.io~1managed-by", json!("x")),
        ] {
            let mut live = stored();
            *live.pointer_mut(pointer).unwrap() = value;
            assert!(!covers(&live, &deployment()), "{pointer}");
        }
        let mut live = stored();
        live["metadata"]["ownerReferences"]
            .as_array_mut()
            .unwrap()
            .pop();
        assert!(!covers(&live, &deployment()), "our ownerReference is gone");
        let mut live = stored();
        live["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "sidecar"}));
        assert!(!covers(&live, &deployment()), "a grown list is a change");
    }

    #[test]
    fn quantities_are_compared_by_value_only_where_they_are_quantities() {
        assert!(covers(
            &json!({"spec": {"resources": {"requests": {"storage": "10737418240"}}}}),
            &json!({"spec": {"resources": {"requests": {"storage": "10Gi"}}}}),
        ));
        assert!(!covers(
            &json!({"metadata": {"labels": {"size": "1024Mi"}}}),
            &json!({"metadata": {"labels": {"size": "1Gi"}}}),
        ));
        assert!(!covers(
            &json!({"data": {"a": "0.5"}}),
            &json!({"data": {"a": "500m"}})
        ));
    }

    #[test]
    fn server_owned_metadata_in_the_desired_object_is_ignored() {
        let mut desired = deployment();
        desired["metadata"]["resourceVersion"] = json!("1");
        desired["metadata"]["uid"] = json!("other");
        assert!(covers(&stored(), &desired));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z0-9]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,4}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Drops map entries of `value` according to `mask` (list lengths stay, as coverage
    /// requires).
    fn sub_object(value: &Value, mask: &mut impl Iterator<Item = bool>) -> Value {
        match value {
            Value::Object(map) => {
                let mut kept = Map::new();
                for (k, v) in map {
                    if mask.next().unwrap_or(true) {
                        kept.insert(k.clone(), sub_object(v, mask));
                    }
                }
                Value::Object(kept)
            }
            Value::Array(list) => Value::Array(list.iter().map(|v| sub_object(v, mask)).collect()),
            leaf => leaf.clone(),
        }
    }

    /// Pointers to every scalar leaf of `value`.
    fn leaves(value: &Value, at: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    leaves(
                        v,
                        &format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            Value::Array(list) => {
                for (i, v) in list.iter().enumerate() {
                    leaves(v, &format!("{at}/{i}"), out);
                }
            }
            _ => out.push(at.to_owned()),
        }
    }

    proptest! {
        #[test]
        fn an_object_covers_itself(value in json_value()) {
            prop_assert!(covers(&value, &value));
        }

        #[test]
        fn an_object_covers_its_sub_objects(
            value in json_value(),
            mask in prop::collection::vec(any::<bool>(), 64),
        ) {
            let sub = sub_object(&value, &mut mask.into_iter());
            prop_assert!(covers(&value, &sub));
        }

        #[test]
        fn changing_a_desired_leaf_breaks_coverage(value in json_value(), pick in any::<usize>()) {
            let mut found = Vec::new();
            leaves(&value, "", &mut found);
            prop_assume!(!found.is_empty());
            let pointer = &found[pick % found.len()];
            let mut desired = value.clone();
            let leaf = desired.pointer_mut(pointer).unwrap();
            // A leaf of another type never equals the old one.
            *leaf = match leaf {
                Value::String(_) => json!(1.5),
                _ => json!("changed"),
            };
            prop_assert!(!covers(&value, &desired), "{pointer}");
        }
    }
}
