//! The Kubernetes objects port: read what an object looks like now, and server-side apply
//! what it should look like. The operator's reconcilers and reactions go through it; the
//! kube-rs adapter implements it over watch caches and SSA, tests may fake it.

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::error::{Categorized, Category};

/// Which object: enough to address it on the API server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// `v1`, `apps/v1`, `externaldns.k8s.io/v1alpha1`, ...
    pub api_version: String,
    pub kind: String,
    /// Empty for cluster-scoped kinds.
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    /// The key of Job `name` in `namespace` (every controller that runs a Job looks its
    /// own up by it).
    pub fn job(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            api_version: "batch/v1".to_owned(),
            kind: "Job".to_owned(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of a rendered object (`apiVersion`, `kind`, `metadata.namespace`,
    /// `metadata.name`); `None` when one of them is missing.
    pub fn of(object: &Value) -> Option<Self> {
        let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
        Some(Self {
            api_version: text("/apiVersion")?.to_owned(),
            kind: text("/kind")?.to_owned(),
            namespace: text("/metadata/namespace").unwrap_or_default().to_owned(),
            name: text("/metadata/name")?.to_owned(),
        })
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// A read or an apply failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The object cannot be sent at all (no kind, no name, a kind the adapter does not
    /// know).
    #[error("{0}")]
    Invalid(String),
    /// The API server refused it (validation, admission, a conflict).
    #[error("{key}: refused by the API server: {message}")]
    Refused { key: ObjectKey, message: String },
    /// The API server could not be reached or did not answer in time.
    #[error("{key}: {message}")]
    Unavailable { key: ObjectKey, message: String },
}

impl Categorized for ObjectError {
    fn category(&self) -> Category {
        match self {
            Self::Invalid(_) => Category::InvalidInput,
            Self::Refused { .. } => Category::Refused,
            Self::Unavailable { .. } => Category::Unavailable,
        }
    }
}

/// The cluster's objects, as the operator reads and writes them.
pub trait ObjectStore: Send + Sync {
    /// The object as last seen (from a watch cache: no API request), or `None` when it
    /// does not exist or is not cached yet.
    fn live(&self, key: &ObjectKey) -> Option<Value>;

    /// Server-side apply `desired` with field manager `bloodraven`, forcing ownership of
    /// the fields it sets. Returns once the API server accepted it.
    fn apply<'a>(&'a self, desired: &'a Value) -> BoxFuture<'a, Result<(), ObjectError>>;

    /// The cached objects of a kind in `namespace` that carry every one of `labels` (no
    /// API request), or `None` when this store does not hold that kind completely: the
    /// caller then asks the API server.
    fn select(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> Option<Vec<Value>> {
        let _ = (api_version, kind, namespace, labels);
        None
    }
}
