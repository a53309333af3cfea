//! Small types shared by several CRDs.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A reference to another object in the same namespace by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    /// Name of the referenced object, in the same namespace.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// A reference by name whose name may be left empty, as the original's schema allows for
/// `imagePullSecrets[]`, `mysqlBackupRef` and a verification's `backupRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptionalNameRef {
    /// Name of the referenced object, in the same namespace.
    #[serde(default)]
    pub name: String,
}

/// A key in a Secret in the same namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the same namespace.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Key in the Secret that holds the value.
    #[serde(default = "default_passphrase_key")]
    #[schemars(length(min = 1))]
    pub key: String,
}

fn default_passphrase_key() -> String {
    "passphrase".to_owned()
}

/// The pattern Kubernetes uses for a `resource.Quantity` written as a string.
pub const QUANTITY_PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// A Kubernetes quantity, written either as a string (`100Gi`) or as a plain integer
/// (`100`, meaning bytes). Both spellings are accepted by the schema and mean the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Quantity {
    Int(i64),
    String(String),
}

impl Quantity {
    /// The quantity as Kubernetes prints it: an integer becomes its decimal digits.
    pub fn canonical(&self) -> Cow<'_, str> {
        match self {
            Self::Int(i) => Cow::Owned(i.to_string()),
            Self::String(s) => Cow::Borrowed(s),
        }
    }
}

impl JsonSchema for Quantity {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Quantity".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "x-kubernetes-int-or-string": true,
            "pattern": QUANTITY_PATTERN,
        })
    }
}

/// Requested storage for a PersistentVolumeClaim the operator creates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// StorageClass of the claim; unset uses the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Requested size, a Kubernetes quantity such as `100Gi` (an integer means bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
}

/// `imagePullPolicy` values, as for Pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}
