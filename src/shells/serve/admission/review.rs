//! The `admission.k8s.io/v1` `AdmissionReview` wire format, only the fields we use.
//!
//! Hand-written rather than kube-core's typed review so that objects stay plain JSON (the
//! rule engine works on `serde_json::Value`) and so that every response field is under our
//! control: `status` only on denial, `patch` and `patchType` only together.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IncomingReview {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    request: Option<AdmissionRequest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    /// A metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Connect => "connect",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupVersionResource {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub resource: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserInfo {
    #[serde(default)]
    pub username: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    pub uid: String,
    #[serde(default)]
    pub resource: GroupVersionResource,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    pub operation: Operation,
    #[serde(default)]
    pub user_info: UserInfo,
    #[serde(default)]
    pub object: Option<Value>,
    #[serde(default)]
    pub old_object: Option<Value>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// Why a body is not an `AdmissionReview` we can answer (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedReview(pub String);

impl crate::error::Categorized for MalformedReview {
    fn category(&self) -> crate::error::Category {
        crate::error::Category::InvalidInput
    }
}

/// Parses and checks a request body.
pub fn parse(body: &[u8]) -> Result<AdmissionRequest, MalformedReview> {
    let review: IncomingReview = serde_json::from_slice(body)
        .map_err(|e| MalformedReview(format!("body is not an AdmissionReview: {e}")))?;
    if review.api_version != API_VERSION || review.kind != KIND {
        return Err(MalformedReview(format!(
            "expected apiVersion {API_VERSION} kind {KIND}, got apiVersion {:?} kind {:?}",
            truncate(&review.api_version),
            truncate(&review.kind)
        )));
    }
    let request = review
        .request
        .ok_or_else(|| MalformedReview("AdmissionReview has no request".to_owned()))?;
    if request.uid.is_empty() {
        return Err(MalformedReview("request.uid is empty".to_owned()));
    }
    let needs_object = matches!(request.operation, Operation::Create | Operation::Update);
    if needs_object && !request.object.as_ref().is_some_and(Value::is_object) {
        return Err(MalformedReview(format!(
            "request.object must be an object for {:?}",
            request.operation
        )));
    }
    Ok(request)
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// `metav1.Status` as the API server reads it from a denial.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub status: &'static str,
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    /// Always present, as the API server requires.
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    patch: Option<EncodedPatch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `patch` and `patchType` live in one value so neither can be sent without the other.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct EncodedPatch {
    patch: String,
    patch_type: &'static str,
}

impl AdmissionResponse {
    pub fn allow(uid: &str, warnings: Vec<String>) -> Self {
        Self {
            uid: uid.to_owned(),
            allowed: true,
            status: None,
            patch: None,
            warnings,
        }
    }

    /// A denial with HTTP-style code 403 (the API server would turn a missing code into 400).
    pub fn deny(uid: &str, message: String, warnings: Vec<String>) -> Self {
        Self {
            uid: uid.to_owned(),
            allowed: false,
            status: Some(Status {
                status: "Failure",
                code: 403,
                reason: "Forbidden",
                message,
            }),
            patch: None,
            warnings,
        }
    }

    /// Attaches an RFC 6902 patch (serialized JSON, base64 on the wire).
    #[must_use]
    pub fn with_patch(mut self, patch_json: &[u8]) -> Self {
        self.patch = Some(EncodedPatch {
            patch: base64::engine::general_purpose::STANDARD.encode(patch_json),
            patch_type: "JSONPatch",
        });
        self
    }

    pub fn has_patch(&self) -> bool {
        self.patch.is_some()
    }

    /// The whole review to send back: same apiVersion and kind as the request.
    pub fn into_review(self) -> OutgoingReview {
        OutgoingReview {
            api_version: API_VERSION,
            kind: KIND,
            response: self,
        }
    }
}

/// The reply body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutgoingReview {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: AdmissionResponse,
}
