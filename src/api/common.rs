//! Small types shared by several CRDs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A reference to another object in the same namespace by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    #[schemars(length(min = 1))]
    pub name: String,
}

/// A key in a Secret in the same namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    #[schemars(length(min = 1))]
    pub name: String,
    #[serde(default = "default_passphrase_key")]
    pub key: String,
}

fn default_passphrase_key() -> String {
    "passphrase".to_owned()
}

/// Requested storage for a PersistentVolumeClaim the operator creates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// A Kubernetes quantity such as `100Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

/// `imagePullPolicy` values, as for Pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}
