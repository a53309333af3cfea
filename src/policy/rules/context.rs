//! How cross-object rules see other objects: one interface, answered from the linted files
//! by the CLI and from a cluster cache by the webhooks.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde_json::Value;

use super::kinds::is_kind;
use crate::policy::manifest::{Document, parse_stream};

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
    /// Whether some object [`ObjectContext::list`] would return satisfies `query`.
    ///
    /// A rule asks this once per object it checks, so in a bundle of thousands of groups
    /// sharing a namespace, answering it by listing (and copying) the namespace each time
    /// would make a lint run quadratic; contexts answer it without copies and may remember
    /// the answer per query.
    fn any(&self, kind: &str, namespace: &str, query: &Query) -> Lookup<bool> {
        match self.list(kind, namespace) {
            Lookup::Found(objects) => {
                Lookup::Found(objects.iter().filter(|o| is_kind(o, kind)).any(query.test))
            }
            Lookup::Missing => Lookup::Missing,
            Lookup::Unknown => Lookup::Unknown,
        }
    }
}

/// A test over objects, with a name that identifies it: the same name must always mean
/// the same test, so a context can remember answers by name.
#[derive(Debug, Clone, Copy)]
pub struct Query {
    pub name: &'static str,
    pub test: fn(&Value) -> bool,
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
///
/// Every lookup is keyed: each group in a bundle asks for its five Secrets, its
/// `NetworkPolicy`, the `StorageClasses` and the bundle objects, so anything that walked a
/// kind or a namespace per lookup made a lint run quadratic in the objects of one namespace
/// (thousands of groups with their own Secrets in one namespace took minutes).
#[derive(Debug, Default)]
pub struct BundleContext {
    objects: Vec<Value>,
    kinds: HashMap<String, KindIndex>,
    /// Answers of [`ObjectContext::any`], by (kind, namespace, query name): the bundle never
    /// changes, so each is computed once per run.
    answers: Mutex<HashMap<(String, String, &'static str), bool>>,
}

/// Positions (into `objects`, so in input order) of the objects of one kind.
#[derive(Debug, Default)]
struct KindIndex {
    all: Vec<usize>,
    by_namespace: HashMap<String, Vec<usize>>,
    without_namespace: Vec<usize>,
    /// The first object of each name, by namespace.
    named: HashMap<String, HashMap<String, usize>>,
    /// The first object of each name among those without a namespace.
    named_without_namespace: HashMap<String, usize>,
    /// The first object of each name in any namespace (lookups in `""` and `"*"`).
    named_anywhere: HashMap<String, usize>,
}

impl KindIndex {
    fn add(&mut self, i: usize, namespace: Option<&str>, name: Option<&str>) {
        self.all.push(i);
        match namespace {
            Some(ns) => self.by_namespace.entry(ns.to_owned()).or_default().push(i),
            None => self.without_namespace.push(i),
        }
        let Some(name) = name else { return };
        self.named_anywhere.entry(name.to_owned()).or_insert(i);
        match namespace {
            Some(ns) => {
                self.named
                    .entry(ns.to_owned())
                    .or_default()
                    .entry(name.to_owned())
                    .or_insert(i);
            }
            None => {
                self.named_without_namespace
                    .entry(name.to_owned())
                    .or_insert(i);
            }
        }
    }

    /// The position of the first object named `name` visible from `namespace`.
    fn find(&self, namespace: &str, name: &str) -> Option<usize> {
        if namespace.is_empty() || namespace == "*" {
            return self.named_anywhere.get(name).copied();
        }
        let in_namespace = self.named.get(namespace).and_then(|m| m.get(name)).copied();
        let without = self.named_without_namespace.get(name).copied();
        match (in_namespace, without) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The positions visible from `namespace`, in input order.
    fn visible(&self, namespace: &str) -> Vec<usize> {
        if namespace.is_empty() || namespace == "*" {
            return self.all.clone();
        }
        let mut merged: Vec<usize> = self
            .by_namespace
            .get(namespace)
            .into_iter()
            .flatten()
            .chain(&self.without_namespace)
            .copied()
            .collect();
        merged.sort_unstable();
        merged
    }
}

impl Clone for BundleContext {
    fn clone(&self) -> Self {
        Self::new(self.objects.clone())
    }
}

impl BundleContext {
    /// The context of a lint run over `documents`: only the objects some cross-object rule
    /// can look up are kept (see [`super::builtin::LOOKUP_KINDS`]).
    pub fn of_documents(documents: &[Document]) -> Self {
        Self::new(
            documents
                .iter()
                .filter(|d| {
                    d.value
                        .get("kind")
                        .and_then(Value::as_str)
                        .is_some_and(|k| super::builtin::LOOKUP_KINDS.contains(&k))
                })
                .map(|d| d.value.clone()),
        )
    }

    /// The context of a lint run over raw stream texts, without parsing every document:
    /// only documents that mention a looked-up kind as a whole word are parsed. Lets a
    /// caller stream huge inputs (parse, check, drop) and still answer cross-object
    /// lookups about the whole bundle.
    pub fn from_texts<'t>(texts: impl IntoIterator<Item = &'t str>) -> Self {
        let mut objects = Vec::new();
        for text in texts {
            for chunk in document_chunks(text) {
                if !super::builtin::LOOKUP_KINDS
                    .iter()
                    .any(|k| mentions_word(chunk, k))
                {
                    continue;
                }
                let stream = parse_stream(None, chunk);
                objects.extend(stream.documents.into_iter().map(|d| d.value).filter(|v| {
                    v.get("kind")
                        .and_then(Value::as_str)
                        .is_some_and(|k| super::builtin::LOOKUP_KINDS.contains(&k))
                }));
            }
        }
        Self::new(objects)
    }

    pub fn new(objects: impl IntoIterator<Item = Value>) -> Self {
        let objects: Vec<Value> = objects.into_iter().collect();
        let mut kinds: HashMap<String, KindIndex> = HashMap::new();
        for (i, o) in objects.iter().enumerate() {
            let Some(kind) = o.get("kind").and_then(Value::as_str) else {
                continue;
            };
            let namespace = o.pointer("/metadata/namespace").and_then(Value::as_str);
            let name = o.pointer("/metadata/name").and_then(Value::as_str);
            kinds
                .entry(kind.to_owned())
                .or_default()
                .add(i, namespace, name);
        }
        Self {
            objects,
            kinds,
            answers: Mutex::default(),
        }
    }

    /// The objects of `kind` visible from `namespace`, in input order.
    fn matching<'a>(&'a self, kind: &str, namespace: &str) -> impl Iterator<Item = &'a Value> {
        self.kinds
            .get(kind)
            .map(|index| index.visible(namespace))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| self.objects.get(i))
    }
}

/// The text of each document of a stream, split at `---` lines.
fn document_chunks(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut offset = 0;
        for line in rest.split_inclusive('\n') {
            if offset > 0 && line.starts_with("---") {
                let (chunk, tail) = rest.split_at(offset);
                rest = tail;
                return Some(chunk);
            }
            offset += line.len();
        }
        Some(std::mem::take(&mut rest))
    })
}

/// Whether `word` appears in `text` not as part of a longer identifier.
fn mentions_word(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(is_ident)
            && !text[i + word.len()..].chars().next().is_some_and(is_ident)
    })
}

impl ObjectContext for BundleContext {
    fn get(&self, kind: &str, namespace: &str, name: &str) -> Lookup<Value> {
        self.kinds
            .get(kind)
            .and_then(|index| index.find(namespace, name))
            .and_then(|i| self.objects.get(i))
            .map_or(Lookup::Missing, |o| Lookup::Found(o.clone()))
    }

    fn list(&self, kind: &str, namespace: &str) -> Lookup<Vec<Value>> {
        Lookup::Found(self.matching(kind, namespace).cloned().collect())
    }

    fn any(&self, kind: &str, namespace: &str, query: &Query) -> Lookup<bool> {
        // "" and "*" see the same objects.
        let scope = if namespace == "*" { "" } else { namespace };
        let key = (kind.to_owned(), scope.to_owned(), query.name);
        if let Some(known) = self.answers().get(&key) {
            return Lookup::Found(*known);
        }
        let found = self
            .matching(kind, scope)
            .filter(|o| is_kind(o, kind))
            .any(query.test);
        self.answers().insert(key, found);
        Lookup::Found(found)
    }
}

impl BundleContext {
    fn answers(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String, &'static str), bool>> {
        self.answers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(kind: &str, ns: Option<&str>, name: &str) -> Value {
        let mut metadata = json!({"name": name});
        if let Some(ns) = ns {
            metadata["namespace"] = json!(ns);
        }
        json!({"kind": kind, "metadata": metadata})
    }

    #[test]
    fn lookups_respect_kind_namespace_and_order() {
        let bundle = BundleContext::new([
            obj("Secret", Some("a"), "s1"),
            obj("Secret", None, "s2"),
            obj("Secret", Some("b"), "s1"),
            obj("NetworkPolicy", Some("a"), "np"),
            obj("Secret", Some("a"), "s3"),
        ]);
        let names = |l: Lookup<Vec<Value>>| match l {
            Lookup::Found(v) => v
                .iter()
                .map(|o| o["metadata"]["name"].as_str().unwrap_or("?").to_owned())
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        assert_eq!(names(bundle.list("Secret", "a")), ["s1", "s2", "s3"]);
        assert_eq!(names(bundle.list("Secret", "*")), ["s1", "s2", "s1", "s3"]);
        assert_eq!(names(bundle.list("Secret", "")), ["s1", "s2", "s1", "s3"]);
        assert_eq!(names(bundle.list("ConfigMap", "a")), Vec::<String>::new());
        assert_eq!(
            bundle.get("Secret", "b", "s1"),
            Lookup::Found(obj("Secret", Some("b"), "s1"))
        );
        assert_eq!(
            bundle.get("Secret", "b", "s2"),
            Lookup::Found(obj("Secret", None, "s2"))
        );
        assert_eq!(bundle.get("Secret", "c", "s1"), Lookup::Missing);
        assert_eq!(
            bundle.get("NetworkPolicy", "a", "np"),
            Lookup::Found(obj("NetworkPolicy", Some("a"), "np"))
        );
    }

    #[test]
    fn lookups_are_keyed_and_any_is_answered_once_per_namespace() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static TESTED: AtomicUsize = AtomicUsize::new(0);
        fn selects_operator(o: &Value) -> bool {
            TESTED.fetch_add(1, Ordering::Relaxed);
            o["metadata"]["name"] == "operator"
        }
        let query = Query {
            name: "operator pdb",
            test: selects_operator,
        };
        // 2,000 groups' worth of objects in one namespace, none of them the operator's.
        let groups = 2_000;
        let bundle = BundleContext::new(
            (0..groups)
                .flat_map(|i| {
                    [
                        obj("Secret", Some("shared"), &format!("db-{i}-app")),
                        obj("PodDisruptionBudget", Some("shared"), &format!("db-{i}")),
                    ]
                })
                .chain([obj("Secret", None, "helm-release")]),
        );
        for i in 0..groups {
            assert_eq!(
                bundle.get("Secret", "shared", &format!("db-{i}-app")),
                Lookup::Found(obj("Secret", Some("shared"), &format!("db-{i}-app")))
            );
            assert_eq!(
                bundle.any("PodDisruptionBudget", "shared", &query),
                Lookup::Found(false)
            );
        }
        assert_eq!(
            bundle.get("Secret", "shared", "helm-release"),
            Lookup::Found(obj("Secret", None, "helm-release"))
        );
        assert_eq!(bundle.get("Secret", "other", "db-1-app"), Lookup::Missing);
        assert_eq!(
            TESTED.load(Ordering::Relaxed),
            groups,
            "every object is tested once per run, not once per asking group"
        );
        assert_eq!(
            bundle.any("PodDisruptionBudget", "*", &query),
            Lookup::Found(false)
        );
        let with_operator =
            BundleContext::new([obj("PodDisruptionBudget", Some("ops"), "operator")]);
        assert_eq!(
            with_operator.any("PodDisruptionBudget", "*", &query),
            Lookup::Found(true)
        );
        assert_eq!(
            with_operator.any("PodDisruptionBudget", "db", &query),
            Lookup::Found(false)
        );
    }

    #[test]
    fn from_texts_finds_what_a_full_parse_finds() {
        let text = "kind: MysqlFailoverGroup\nspec:\n  credentials: {operatorSecret: op}\n---\nkind: Secret\nmetadata: {name: op, namespace: a}\n---\n\"kind\": \"StorageClass\"\n---\nkind: ConfigMap\ndata: {note: Secrets}\n";
        let texts = BundleContext::from_texts([text]);
        let full = parse_stream(None, text);
        let docs = BundleContext::of_documents(&full.documents);
        assert_eq!(texts.objects, docs.objects);
        assert_eq!(texts.objects.len(), 2);
        assert!(mentions_word("kind: Secret\n", "Secret"));
        assert!(!mentions_word("operatorSecret: x", "Secret"));
        assert_eq!(document_chunks("a\n---\nb\n---\n").count(), 3);
    }
}
