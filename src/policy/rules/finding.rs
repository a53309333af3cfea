//! What a lint run reports.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::Level;

/// The object a finding is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ObjectRef {
    pub fn of(object: &Value) -> Self {
        let s = |p: &str| object.pointer(p).and_then(Value::as_str).map(str::to_owned);
        Self {
            api_version: s("/apiVersion").unwrap_or_default(),
            kind: s("/kind").unwrap_or_default(),
            namespace: s("/metadata/namespace"),
            name: s("/metadata/name").or_else(|| s("/metadata/generateName")),
        }
    }

    /// `Kind ns/name`, for humans.
    pub fn display_name(&self) -> String {
        let name = self.name.as_deref().unwrap_or("<unnamed>");
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{name}", self.kind),
            None => format!("{} {name}", self.kind),
        }
    }
}

/// Why a finding does not count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suppression {
    pub source: SuppressionSource,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SuppressionSource {
    /// The object's `lint.shipstream.io/exempt` annotation.
    Annotation,
    /// An exemption in the `--config` file.
    Config,
}

/// One violation of one rule at one place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
///
/// The rule ID, remediation, file name and object are shared (`Arc`) with the rule, the
/// document and the object's other findings: a large run holds a hundred thousand findings,
/// and copies of those strings were most of their memory.
pub struct Finding {
    pub rule_id: Arc<str>,
    pub level: Level,
    pub object: Arc<ObjectRef>,
    /// RFC 6901 pointer to the offending field (where it should be, when it is missing).
    pub path: String,
    pub message: String,
    pub remediation: Arc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppression>,
}

impl Finding {
    /// Counts toward the exit code and admission decisions.
    pub fn is_active(&self) -> bool {
        self.suppressed.is_none()
    }
}
