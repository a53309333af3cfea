//! Rules that need code: they read other objects through [`ObjectContext`] or parse
//! something a JSON Schema cannot. Each registers under a name that a file in
//! `lint-rules/` refers to, so its metadata lives in the same catalog as every other rule.

mod api;
mod bundle;
mod credentials;
mod exemption;
mod storage_class;

use serde_json::Value;

use super::condition::Violation;
use super::context::{Lookup, ObjectContext};
use super::kinds::is_kind;

/// Every kind a builtin check looks up through the context. A bundle only needs to keep
/// these, which keeps linting large bundles from holding every object twice.
pub const LOOKUP_KINDS: [&str; 5] = [
    "Secret",
    "StorageClass",
    "NetworkPolicy",
    "PrometheusRule",
    "PodDisruptionBudget",
];

/// A rule condition written in Rust.
pub trait BuiltinCheck: Send + Sync {
    /// Whether the check reads other objects (and so depends on what the context knows).
    fn cross_object(&self) -> bool;
    /// Whether the check reports the spelling of fields and so reads the object as written
    /// instead of its canonical form.
    fn reads_raw_shape(&self) -> bool {
        false
    }
    fn check(&self, object: &Value, ctx: &dyn ObjectContext) -> Vec<Violation>;
}

/// Finds a builtin check by the name rule files use.
pub fn lookup(name: &str) -> Option<&'static dyn BuiltinCheck> {
    Some(match name {
        "legacy-secret-shape" => &api::LegacySecretShape,
        "backup-references" => &api::BackupReferences,
        "exemption-annotation" => &exemption::ExemptionAnnotation,
        "credential-secrets" => &credentials::CredentialSecrets,
        "distinct-credential-secrets" => &credentials::DistinctCredentialSecrets,
        "storage-class" => &storage_class::StorageClassSettings,
        "bundle-network-policy" => &bundle::NETWORK_POLICY,
        "bundle-prometheus-rule" => &bundle::PROMETHEUS_RULE,
        "bundle-operator-pdb" => &bundle::OPERATOR_PDB,
        _ => return None,
    })
}

/// A violation of a builtin check; builtins have no `select`, so fixes start at the root.
fn violation(pointer: impl Into<String>, value: impl Into<String>) -> Violation {
    Violation {
        base: String::new(),
        pointer: pointer.into(),
        value: value.into(),
    }
}

fn namespace_of(object: &Value) -> &str {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The object of `kind` named `name`, in that kind's API group only: a look-alike of the same
/// kind and name from another group (a CRD anyone may define) is not what the rule means.
/// The context is keyed by kind alone, so only when it answers with a look-alike is the
/// namespace listed to find the real one.
fn get_known(ctx: &dyn ObjectContext, kind: &str, namespace: &str, name: &str) -> Lookup<Value> {
    match ctx.get(kind, namespace, name) {
        Lookup::Found(object) if !is_kind(&object, kind) => match ctx.list(kind, namespace) {
            Lookup::Found(all) => all
                .into_iter()
                .find(|o| {
                    is_kind(o, kind)
                        && o.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
                })
                .map_or(Lookup::Missing, Lookup::Found),
            Lookup::Missing => Lookup::Missing,
            Lookup::Unknown => Lookup::Unknown,
        },
        other => other,
    }
}
