//! Admission decisions: `/validate` and `/mutate` answers computed from one request.
//!
//! Everything here is synchronous and free of I/O, so handlers can run it on a blocking
//! thread and tests can call it directly.

pub mod message;
pub mod mutate;
pub mod review;
pub mod validate;

use serde_json::Value;

use review::AdmissionRequest;

/// The API group of the resources we admit.
pub const GROUP: &str = "shipstream.io";

/// Admission settings from [`super::ServeOptions`].
#[derive(Debug, Clone)]
pub struct Policy {
    pub operator_service_account: String,
    pub ratchet: bool,
}

/// The object as the rules should see it: on CREATE the namespace may only be in the
/// request, and cross-object rules look up Secrets in the object's namespace.
fn with_namespace(object: &Value, request: &AdmissionRequest) -> Value {
    let mut object = object.clone();
    let Some(ns) = request.namespace.as_deref().filter(|ns| !ns.is_empty()) else {
        return object;
    };
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if !meta.get("namespace").is_some_and(Value::is_string) {
            meta.insert("namespace".to_owned(), Value::String(ns.to_owned()));
        }
    } else if let Some(map) = object.as_object_mut() {
        map.insert(
            "metadata".to_owned(),
            serde_json::json!({ "namespace": ns }),
        );
    }
    object
}
