//! `/mutate`: the catalog's safe fixes as one JSON Patch.
//!
//! Only fixes the rule files declare are applied, so the webhook cannot do anything the
//! `lint --fix` path would not. As a second line of defence, operations that would touch
//! images or credential references are dropped whatever a rule file says: a mutating
//! webhook must never change what runs or which secrets it uses.

use json_patch::{Patch, PatchOperation};
use serde_json::Value;

use super::review::{AdmissionRequest, AdmissionResponse, Operation};
use super::with_namespace;
use crate::policy::rules::pointer::tokens;
use crate::policy::rules::{Linter, ObjectContext};
use crate::shells::serve::metrics::Decision;

/// The answer, whether it patches, and operations refused by the guard (for logs).
#[derive(Debug)]
pub struct Mutation {
    pub response: AdmissionResponse,
    pub decision: Decision,
    pub dropped: usize,
}

/// Computes the patch for one mutating admission request. Never denies.
pub fn mutate(request: &AdmissionRequest, linter: &Linter, ctx: &dyn ObjectContext) -> Mutation {
    let uid = request.uid.as_str();
    let unchanged = |dropped| Mutation {
        response: AdmissionResponse::allow(uid, Vec::new()),
        decision: Decision::Allowed,
        dropped,
    };
    let (Operation::Create | Operation::Update, Some(object), None) =
        (request.operation, &request.object, &request.sub_resource)
    else {
        return unchanged(0);
    };
    let ops = linter.fixes(&with_namespace(object, request), ctx);
    let total = ops.len();
    let ops: Vec<PatchOperation> = ops.into_iter().filter(allowed).collect();
    let dropped = total - ops.len();
    if ops.is_empty() {
        return unchanged(dropped);
    }
    // Patch the object exactly as the API server will; a patch that does not apply would
    // make the API server fail the request, so send none instead.
    let patch = Patch(ops);
    let mut probe = object.clone();
    if json_patch::patch(&mut probe, &patch).is_err() {
        return unchanged(total);
    }
    let Ok(bytes) = serde_json::to_vec(&patch) else {
        return unchanged(total);
    };
    Mutation {
        response: AdmissionResponse::allow(uid, Vec::new()).with_patch(&bytes),
        decision: Decision::Patched,
        dropped,
    }
}

/// Whether an operation stays clear of images and credentials.
fn allowed(op: &PatchOperation) -> bool {
    let Ok(value) = serde_json::to_value(op) else {
        return false;
    };
    ["path", "from"]
        .iter()
        .filter_map(|k| value.get(*k).and_then(Value::as_str))
        .all(|path| !touches_forbidden(path))
}

fn touches_forbidden(path: &str) -> bool {
    tokens(path).any(|token| {
        let t = token.to_ascii_lowercase();
        t == "image"
            || t.ends_with("image")
            || t == "images"
            || t.contains("secret")
            || t.contains("credential")
            || t.contains("password")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_refuses_images_and_credentials_but_not_pull_policy() {
        assert!(touches_forbidden("/spec/image"));
        assert!(touches_forbidden("/spec/sidecarImage"));
        assert!(touches_forbidden("/spec/credentials/appSecret/name"));
        assert!(touches_forbidden("/spec/secretName"));
        assert!(!touches_forbidden("/spec/imagePullPolicy"));
        assert!(!touches_forbidden("/spec/failoverCooldown"));
        assert!(!touches_forbidden(
            "/spec/podSecurityContext/fsGroupChangePolicy"
        ));
    }
}
