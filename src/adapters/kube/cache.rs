//! [`ClusterCache`]: an [`ObjectContext`] answered from memory.
//!
//! Admission must answer in milliseconds and must not build API clients per request
//! (a Polaris anti-pattern), so cross-object rules read a cache that watchers keep current.
//! Until a kind's initial list has been loaded, lookups of that kind answer
//! [`Lookup::Unknown`] and the rules stay silent rather than deny on missing data.
//!
//! Secrets are stored reduced: only the `username` value is kept (the credential rule
//! compares usernames); every other key keeps its name with an empty value, so the
//! webhook never holds passwords in memory.
//!
//! TODO(operator issue): the live fill. The operator process already runs kube-runtime
//! watchers; it should feed `Secret` and `StorageClass` events into [`ClusterCache::apply`]
//! / [`ClusterCache::delete`] and call [`ClusterCache::mark_synced`] after the initial
//! list. The cache itself, its semantics and the webhook's use of it are done and tested.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{PoisonError, RwLock};

use serde_json::{Map, Value};

use crate::engine::rules::{Lookup, ObjectContext};

/// The kinds cross-object rules read.
pub const CACHED_KINDS: [&str; 2] = ["Secret", "StorageClass"];

/// `(kind, namespace, name)`; namespace is `""` for cluster-scoped kinds.
type Key = (String, String, String);

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<Key, Value>,
    synced: BTreeSet<String>,
}

/// An in-memory copy of the cluster's Secrets and `StorageClasses`.
#[derive(Debug, Default)]
pub struct ClusterCache {
    state: RwLock<State>,
}

impl ClusterCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an object (a watch ADDED/MODIFIED event). Kinds nobody reads and
    /// objects without a name are ignored.
    pub fn apply(&self, object: &Value) {
        let Some(key) = key_of(object) else { return };
        let stored = if key.0 == "Secret" {
            reduce_secret(object)
        } else {
            object.clone()
        };
        self.write().objects.insert(key, stored);
    }

    /// Removes an object (a watch DELETED event).
    pub fn delete(&self, object: &Value) {
        if let Some(key) = key_of(object) {
            self.write().objects.remove(&key);
        }
    }

    /// Replaces every object of `kind` (a relist) and marks the kind as known.
    pub fn replace_kind(&self, kind: &str, objects: &[Value]) {
        let mut state = self.write();
        state.objects.retain(|(k, _, _), _| k != kind);
        for object in objects {
            if let Some(key) = key_of(object).filter(|k| k.0 == kind) {
                let stored = if kind == "Secret" {
                    reduce_secret(object)
                } else {
                    object.clone()
                };
                state.objects.insert(key, stored);
            }
        }
        state.synced.insert(kind.to_owned());
    }

    /// The initial list of `kind` is complete: absence now means the object does not exist.
    pub fn mark_synced(&self, kind: &str) {
        self.write().synced.insert(kind.to_owned());
    }

    pub fn is_synced(&self, kind: &str) -> bool {
        self.read().synced.contains(kind)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ObjectContext for ClusterCache {
    fn get(&self, kind: &str, namespace: &str, name: &str) -> Lookup<Value> {
        let state = self.read();
        if !state.synced.contains(kind) {
            return Lookup::Unknown;
        }
        let key = (kind.to_owned(), namespace.to_owned(), name.to_owned());
        state
            .objects
            .get(&key)
            .map_or(Lookup::Missing, |v| Lookup::Found(v.clone()))
    }

    fn list(&self, kind: &str, namespace: &str) -> Lookup<Vec<Value>> {
        let state = self.read();
        if !state.synced.contains(kind) {
            return Lookup::Unknown;
        }
        let found = state
            .objects
            .iter()
            .filter(|((k, ns, _), _)| k == kind && (namespace == "*" || ns == namespace))
            .map(|(_, v)| v.clone())
            .collect();
        Lookup::Found(found)
    }
}

fn key_of(object: &Value) -> Option<Key> {
    let kind = object.get("kind").and_then(Value::as_str)?;
    if !CACHED_KINDS.contains(&kind) {
        return None;
    }
    let name = object.pointer("/metadata/name").and_then(Value::as_str)?;
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    Some((kind.to_owned(), namespace.to_owned(), name.to_owned()))
}

/// Keeps kind, metadata name/namespace, and the keys of `data`/`stringData` with only the
/// username value.
fn reduce_secret(secret: &Value) -> Value {
    let mut out = Map::new();
    for field in ["apiVersion", "kind", "type"] {
        if let Some(v) = secret.get(field) {
            out.insert(field.to_owned(), v.clone());
        }
    }
    let mut meta = Map::new();
    for field in ["name", "namespace"] {
        if let Some(v) = secret.pointer(&format!("/metadata/{field}")) {
            meta.insert(field.to_owned(), v.clone());
        }
    }
    out.insert("metadata".to_owned(), Value::Object(meta));
    for section in ["data", "stringData"] {
        if let Some(map) = secret.get(section).and_then(Value::as_object) {
            let reduced: Map<String, Value> = map
                .iter()
                .map(|(k, v)| {
                    let kept = if k == "username" {
                        v.clone()
                    } else {
                        Value::String(String::new())
                    };
                    (k.clone(), kept)
                })
                .collect();
            out.insert(section.to_owned(), Value::Object(reduced));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_until_synced_then_authoritative() {
        let cache = ClusterCache::new();
        assert_eq!(cache.get("Secret", "db", "x"), Lookup::Unknown);
        cache.mark_synced("Secret");
        assert_eq!(cache.get("Secret", "db", "x"), Lookup::Missing);
        cache.apply(
            &json!({"kind": "Secret", "metadata": {"name": "x", "namespace": "db"},
                            "stringData": {"username": "app", "password": "hunter2"}}),
        );
        let Lookup::Found(secret) = cache.get("Secret", "db", "x") else {
            panic!("not found")
        };
        assert_eq!(secret.pointer("/stringData/username"), Some(&json!("app")));
        assert_eq!(
            secret.pointer("/stringData/password"),
            Some(&json!("")),
            "passwords are not cached"
        );
        cache.delete(&json!({"kind": "Secret", "metadata": {"name": "x", "namespace": "db"}}));
        assert_eq!(cache.get("Secret", "db", "x"), Lookup::Missing);
    }

    #[test]
    fn replace_kind_relists() {
        let cache = ClusterCache::new();
        cache.apply(&json!({"kind": "StorageClass", "metadata": {"name": "old"}}));
        cache.replace_kind(
            "StorageClass",
            &[json!({"kind": "StorageClass", "metadata": {"name": "new"}})],
        );
        assert_eq!(cache.get("StorageClass", "", "old"), Lookup::Missing);
        assert!(matches!(
            cache.get("StorageClass", "", "new"),
            Lookup::Found(_)
        ));
        let Lookup::Found(all) = cache.list("StorageClass", "*") else {
            panic!("unknown")
        };
        assert_eq!(all.len(), 1);
    }
}
