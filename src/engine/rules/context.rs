//! How cross-object rules see other objects: one interface, answered from the linted files
//! by the CLI and from a cluster cache by the webhooks.

use serde_json::Value;

/// The answer to a lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<T> {
    Found(T),
    /// The source is authoritative and has no such object.
    Missing,
    /// The source cannot tell (not cached, no permission); rules must not guess.
    Unknown,
}

/// Read access to the objects around the one being checked.
pub trait ObjectContext: Send + Sync {
    /// The object of `kind` named `name` in `namespace` (`""` for cluster-scoped kinds).
    fn get(&self, kind: &str, namespace: &str, name: &str) -> Lookup<Value>;
    /// Every object of `kind` in `namespace` (`""` for cluster-scoped kinds, `"*"` for every
    /// namespace).
    fn list(&self, kind: &str, namespace: &str) -> Lookup<Vec<Value>>;
}

/// A context that knows nothing: every cross-object rule stays silent.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyContext;

impl ObjectContext for EmptyContext {
    fn get(&self, _: &str, _: &str, _: &str) -> Lookup<Value> {
        Lookup::Unknown
    }
    fn list(&self, _: &str, _: &str) -> Lookup<Vec<Value>> {
        Lookup::Unknown
    }
}

/// The objects of one lint run (every file given to the CLI, or one `POST /lint` body).
///
/// Objects without a namespace are treated as belonging to whatever namespace the release
/// is installed in, which is how `helm template` output looks.
#[derive(Debug, Clone, Default)]
pub struct BundleContext {
    objects: Vec<Value>,
}

impl BundleContext {
    pub fn new(objects: impl IntoIterator<Item = Value>) -> Self {
        Self {
            objects: objects.into_iter().collect(),
        }
    }

    fn matching<'a>(
        &'a self,
        kind: &'a str,
        namespace: &'a str,
    ) -> impl Iterator<Item = &'a Value> {
        self.objects.iter().filter(move |o| {
            o.get("kind").and_then(Value::as_str) == Some(kind) && {
                let ns = o.pointer("/metadata/namespace").and_then(Value::as_str);
                namespace.is_empty() || namespace == "*" || ns.is_none_or(|ns| ns == namespace)
            }
        })
    }
}

impl ObjectContext for BundleContext {
    fn get(&self, kind: &str, namespace: &str, name: &str) -> Lookup<Value> {
        self.matching(kind, namespace)
            .find(|o| o.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
            .map_or(Lookup::Missing, |o| Lookup::Found(o.clone()))
    }

    fn list(&self, kind: &str, namespace: &str) -> Lookup<Vec<Value>> {
        Lookup::Found(self.matching(kind, namespace).cloned().collect())
    }
}
