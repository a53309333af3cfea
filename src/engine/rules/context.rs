//! How cross-object rules see other objects: one interface, answered from the linted files
//! by the CLI and from a cluster cache by the webhooks.

use std::collections::HashMap;

use serde_json::Value;

use crate::engine::manifest::{Document, parse_stream};

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
///
/// Lookups are indexed by kind and namespace: every group in a bundle asks for its Secrets,
/// `NetworkPolicy` and `StorageClasses`, so scanning the whole bundle per lookup made a lint
/// run quadratic in the number of objects.
#[derive(Debug, Clone, Default)]
pub struct BundleContext {
    objects: Vec<Value>,
    /// Positions of the objects of each kind, in input order.
    by_kind: HashMap<String, Vec<usize>>,
    /// Positions of the objects of each (kind, namespace); `None` for objects without one.
    by_kind_namespace: HashMap<(String, Option<String>), Vec<usize>>,
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
        let mut by_kind: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_kind_namespace: HashMap<(String, Option<String>), Vec<usize>> = HashMap::new();
        for (i, o) in objects.iter().enumerate() {
            let Some(kind) = o.get("kind").and_then(Value::as_str) else {
                continue;
            };
            let ns = o.pointer("/metadata/namespace").and_then(Value::as_str);
            by_kind.entry(kind.to_owned()).or_default().push(i);
            by_kind_namespace
                .entry((kind.to_owned(), ns.map(str::to_owned)))
                .or_default()
                .push(i);
        }
        Self {
            objects,
            by_kind,
            by_kind_namespace,
        }
    }

    /// The objects of `kind` visible from `namespace`, in input order.
    fn matching<'a>(&'a self, kind: &str, namespace: &str) -> Vec<&'a Value> {
        let positions: Vec<usize> = if namespace.is_empty() || namespace == "*" {
            self.by_kind.get(kind).cloned().unwrap_or_default()
        } else {
            let key = |ns: Option<&str>| (kind.to_owned(), ns.map(str::to_owned));
            let mut merged: Vec<usize> = [key(Some(namespace)), key(None)]
                .iter()
                .filter_map(|k| self.by_kind_namespace.get(k))
                .flatten()
                .copied()
                .collect();
            merged.sort_unstable();
            merged
        };
        positions
            .into_iter()
            .filter_map(|i| self.objects.get(i))
            .collect()
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
        self.matching(kind, namespace)
            .into_iter()
            .find(|o| o.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
            .map_or(Lookup::Missing, |o| Lookup::Found(o.clone()))
    }

    fn list(&self, kind: &str, namespace: &str) -> Lookup<Vec<Value>> {
        Lookup::Found(
            self.matching(kind, namespace)
                .into_iter()
                .cloned()
                .collect(),
        )
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
