//! [`ClusterCache`]: an [`ObjectContext`] answered from memory.
//!
//! Admission must answer in milliseconds and must not build API clients per request
//! (a Polaris anti-pattern), so cross-object rules read a cache that watchers
//! ([`super::watch`]) keep current.
//!
//! The cache knows what it covers. A kind is covered once the initial list of a watch has
//! completed, either for every namespace or for the namespaces the server was told to watch.
//! Outside its coverage a lookup answers [`Lookup::Unknown`], so rules stay silent rather
//! than deny on data the server never had (a Secret in an unwatched namespace is not
//! "missing").
//!
//! What is stored is reduced: Secrets keep only the `username` value (the credential rules
//! compare usernames) and the names of their other keys, so the webhook never keeps
//! passwords (a [`Listing`] is reduced as it is filled); other objects lose `managedFields` and the last-applied annotation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{PoisonError, RwLock};

use serde_json::{Map, Value};

use crate::policy::rules::{Lookup, ObjectContext, Query};

/// `(kind, namespace, name)`; namespace is `""` for cluster-scoped kinds.
type Key = (String, String, String);

/// Which namespaces a kind's objects are known for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Coverage {
    /// Every namespace (and cluster-scoped kinds).
    All,
    /// Only these namespaces.
    Namespaces(BTreeSet<String>),
}

impl Coverage {
    fn covers(&self, namespace: &str) -> bool {
        match self {
            Self::All => true,
            // "*" asks about every namespace; only a cluster-wide watch can answer that.
            Self::Namespaces(set) => namespace != "*" && set.contains(namespace),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<Key, Value>,
    coverage: BTreeMap<String, Coverage>,
}

impl State {
    fn covers(&self, kind: &str, namespace: &str) -> bool {
        self.coverage.get(kind).is_some_and(|c| c.covers(namespace))
    }

    /// The objects of `kind`, without walking the other kinds (keys sort by kind first).
    fn of_kind<'s>(&'s self, kind: &'s str) -> impl Iterator<Item = (&'s Key, &'s Value)> {
        self.objects
            .range((kind.to_owned(), String::new(), String::new())..)
            .take_while(move |((k, _, _), _)| k == kind)
    }

    /// The objects [`ObjectContext::list`] returns, without walking other namespaces (keys
    /// sort by kind, then namespace), so a lookup costs the namespace, not the cluster.
    fn visible<'s>(
        &'s self,
        kind: &'s str,
        namespace: &'s str,
    ) -> Box<dyn Iterator<Item = &'s Value> + 's> {
        if namespace == "*" {
            return Box::new(self.of_kind(kind).map(|(_, v)| v));
        }
        Box::new(
            self.objects
                .range((kind.to_owned(), namespace.to_owned(), String::new())..)
                .take_while(move |((k, ns, _), _)| k == kind && ns == namespace)
                .map(|(_, v)| v),
        )
    }
}

/// The objects of one complete list, already reduced to what the cache keeps, so a relist
/// in progress never holds a Secret's passwords either.
#[derive(Debug, Default)]
pub struct Listing(Vec<(Key, Value)>);

impl Listing {
    pub fn push(&mut self, object: &Value) {
        self.0.extend(stored_form(object));
    }
}

impl<'v> FromIterator<&'v Value> for Listing {
    fn from_iter<I: IntoIterator<Item = &'v Value>>(objects: I) -> Self {
        Self(objects.into_iter().filter_map(stored_form).collect())
    }
}

/// An in-memory copy of the cluster objects cross-object rules read.
#[derive(Debug, Default)]
pub struct ClusterCache {
    state: RwLock<State>,
}

impl ClusterCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an object (a watch ADDED/MODIFIED event). Objects without a kind or
    /// a name are ignored.
    pub fn apply(&self, object: &Value) {
        if let Some((key, stored)) = stored_form(object) {
            self.write().objects.insert(key, stored);
        }
    }

    /// Removes an object (a watch DELETED event).
    pub fn delete(&self, object: &Value) {
        if let Some(key) = key_of(object) {
            self.write().objects.remove(&key);
        }
    }

    /// Replaces every object of `kind` in `namespace` (`None`: in every namespace) with
    /// `listing`, the result of a complete list, and marks that scope as known.
    pub fn replace(&self, kind: &str, namespace: Option<&str>, listing: Listing) {
        let stored = listing
            .0
            .into_iter()
            .filter(|((k, ns, _), _)| k == kind && namespace.is_none_or(|n| n == ns));
        let mut state = self.write();
        state
            .objects
            .retain(|(k, ns, _), _| k != kind || namespace.is_some_and(|n| n != ns));
        state.objects.extend(stored);
        let coverage = match (namespace, state.coverage.remove(kind)) {
            (None, _) | (Some(_), Some(Coverage::All)) => Coverage::All,
            (Some(ns), Some(Coverage::Namespaces(mut set))) => {
                set.insert(ns.to_owned());
                Coverage::Namespaces(set)
            }
            (Some(ns), None) => Coverage::Namespaces(BTreeSet::from([ns.to_owned()])),
        };
        state.coverage.insert(kind.to_owned(), coverage);
    }

    /// The objects of `kind` already applied are complete for every namespace: absence now
    /// means the object does not exist.
    pub fn mark_synced(&self, kind: &str) {
        self.write().coverage.insert(kind.to_owned(), Coverage::All);
    }

    /// Whether lookups of `kind` in `namespace` (`""` for cluster-scoped kinds, `"*"` for
    /// every namespace) are answered from the cache.
    pub fn covers(&self, kind: &str, namespace: &str) -> bool {
        self.read().covers(kind, namespace)
    }

    /// How many objects of `kind` are cached.
    pub fn count(&self, kind: &str) -> usize {
        self.read().of_kind(kind).count()
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
        if !state.covers(kind, namespace) {
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
        if !state.covers(kind, namespace) {
            return Lookup::Unknown;
        }
        Lookup::Found(state.visible(kind, namespace).cloned().collect())
    }

    fn any(&self, kind: &str, namespace: &str, query: &Query) -> Lookup<bool> {
        let state = self.read();
        if !state.covers(kind, namespace) {
            return Lookup::Unknown;
        }
        Lookup::Found(state.visible(kind, namespace).any(query.test))
    }
}

fn key_of(object: &Value) -> Option<Key> {
    let kind = object.get("kind").and_then(Value::as_str)?;
    let name = object.pointer("/metadata/name").and_then(Value::as_str)?;
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    Some((kind.to_owned(), namespace.to_owned(), name.to_owned()))
}

/// The key and the reduced copy the cache keeps of `object`.
fn stored_form(object: &Value) -> Option<(Key, Value)> {
    let key = key_of(object)?;
    let stored = if key.0 == "Secret" {
        reduce_secret(object)
    } else {
        without_bookkeeping(object)
    };
    Some((key, stored))
}

/// Drops what no rule reads and what can be large: `managedFields` and the last-applied
/// annotation (a full copy of the object as the client sent it).
fn without_bookkeeping(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    copy
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

    fn secret(ns: &str, name: &str) -> Value {
        json!({"kind": "Secret", "metadata": {"name": name, "namespace": ns},
               "stringData": {"username": "app", "password": "hunter2"}})
    }

    #[test]
    fn unknown_until_synced_then_authoritative() {
        let cache = ClusterCache::new();
        assert_eq!(cache.get("Secret", "db", "x"), Lookup::Unknown);
        cache.mark_synced("Secret");
        assert_eq!(cache.get("Secret", "db", "x"), Lookup::Missing);
        cache.apply(&secret("db", "x"));
        let Lookup::Found(found) = cache.get("Secret", "db", "x") else {
            panic!("not found")
        };
        assert_eq!(found.pointer("/stringData/username"), Some(&json!("app")));
        assert_eq!(
            found.pointer("/stringData/password"),
            Some(&json!("")),
            "passwords are not cached"
        );
        cache.delete(&json!({"kind": "Secret", "metadata": {"name": "x", "namespace": "db"}}));
        assert_eq!(cache.get("Secret", "db", "x"), Lookup::Missing);
    }

    #[test]
    fn replace_relists_a_kind() {
        let cache = ClusterCache::new();
        cache.apply(&json!({"kind": "StorageClass", "metadata": {"name": "old"}}));
        cache.replace(
            "StorageClass",
            None,
            [json!({"kind": "StorageClass", "metadata": {"name": "new"}})]
                .iter()
                .collect(),
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

    #[test]
    fn a_namespaced_watch_answers_only_for_its_namespaces() {
        let cache = ClusterCache::new();
        cache.replace(
            "Secret",
            Some("db"),
            [secret("db", "a"), secret("other", "b")].iter().collect(),
        );
        assert!(matches!(cache.get("Secret", "db", "a"), Lookup::Found(_)));
        assert_eq!(cache.get("Secret", "db", "zz"), Lookup::Missing);
        // Not watched: unknown, never "missing".
        assert_eq!(cache.get("Secret", "other", "b"), Lookup::Unknown);
        assert_eq!(cache.list("Secret", "*"), Lookup::Unknown);
        assert_eq!(
            cache.count("Secret"),
            1,
            "objects outside the scope are dropped"
        );

        cache.replace(
            "Secret",
            Some("apps"),
            [secret("apps", "c")].iter().collect(),
        );
        assert!(cache.covers("Secret", "db") && cache.covers("Secret", "apps"));
        // A relist of one namespace leaves the other alone.
        cache.replace("Secret", Some("db"), Listing::default());
        assert_eq!(cache.get("Secret", "db", "a"), Lookup::Missing);
        assert!(matches!(cache.get("Secret", "apps", "c"), Lookup::Found(_)));
    }

    #[test]
    fn namespace_lookups_see_only_their_namespace() {
        let cache = ClusterCache::new();
        for (ns, name) in [("a", "np1"), ("b", "np2"), ("a", "np3"), ("c", "np4")] {
            cache.apply(
                &json!({"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}}),
            );
        }
        cache.apply(&json!({"kind": "Secret", "metadata": {"name": "s", "namespace": "a"}}));
        cache.mark_synced("NetworkPolicy");
        let names = |l: Lookup<Vec<Value>>| match l {
            Lookup::Found(v) => v
                .iter()
                .map(|o| o["metadata"]["name"].as_str().unwrap_or("?").to_owned())
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(names(cache.list("NetworkPolicy", "a")), ["np1", "np3"]);
        assert_eq!(names(cache.list("NetworkPolicy", "*")).len(), 4);
        assert_eq!(
            names(cache.list("NetworkPolicy", "d")),
            Vec::<String>::new()
        );
        let query = Query {
            name: "np4",
            test: |o| o["metadata"]["name"] == "np4",
        };
        assert_eq!(cache.any("NetworkPolicy", "c", &query), Lookup::Found(true));
        assert_eq!(
            cache.any("NetworkPolicy", "a", &query),
            Lookup::Found(false)
        );
        assert_eq!(cache.any("NetworkPolicy", "*", &query), Lookup::Found(true));
        assert_eq!(cache.any("Secret", "a", &query), Lookup::Unknown);
    }

    #[test]
    fn bookkeeping_is_not_cached() {
        let cache = ClusterCache::new();
        cache.replace(
            "NetworkPolicy",
            None,
            [json!({"kind": "NetworkPolicy", "metadata": {"name": "np", "namespace": "db",
                "managedFields": [{"manager": "kubectl"}],
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "x"}}})]
            .iter()
            .collect(),
        );
        let Lookup::Found(np) = cache.get("NetworkPolicy", "db", "np") else {
            panic!("not found")
        };
        assert_eq!(np.pointer("/metadata/managedFields"), None);
        assert_eq!(
            np.pointer("/metadata/annotations"),
            Some(&json!({"team": "x"}))
        );
    }
}
