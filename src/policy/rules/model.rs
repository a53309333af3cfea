//! What a rule is: metadata every front door shows, and the condition that decides it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use json_patch::PatchOperation;
use serde::{Deserialize, Serialize};

use super::condition::Condition;

/// The checklist's requirement levels, ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// A strong default unless the platform has an equivalent control.
    Recommended,
    /// Required only where the feature or environment applies.
    EnvironmentSpecific,
    /// Must hold before production traffic.
    Required,
}

impl Level {
    pub const ALL: [Level; 3] = [
        Level::Required,
        Level::EnvironmentSpecific,
        Level::Recommended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recommended => "recommended",
            Self::EnvironmentSpecific => "environment-specific",
            Self::Required => "required",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "required" => Ok(Self::Required),
            "environment-specific" => Ok(Self::EnvironmentSpecific),
            "recommended" => Ok(Self::Recommended),
            other => Err(format!(
                "unknown level {other:?} (expected required, environment-specific or recommended)"
            )),
        }
    }
}

/// Who typically fixes a finding (the checklist's owner hints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Owner {
    Platform,
    Database,
    App,
    Security,
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Database => "database",
            Self::App => "app",
            Self::Security => "security",
        }
    }
}

/// What an admission webhook does with a finding of a `required` rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdmissionAction {
    /// Deny when the finding is required (the default).
    #[default]
    Deny,
    /// Always only warn: the rule depends on other objects, and `kubectl apply` does not
    /// guarantee they are created first, so denying would break ordinary applies.
    Warn,
}

/// One rule of the catalog.
#[derive(Debug)]
pub struct Rule {
    /// Shared with every finding of the rule.
    pub id: Arc<str>,
    pub title: String,
    pub level: Level,
    pub owner: Owner,
    /// Kinds the rule applies to (`MysqlFailoverGroup`, `Deployment`, ...).
    pub kinds: Vec<String>,
    /// The checklist section, used to group the docs.
    pub section: String,
    /// Message template; `{value}` is the offending value.
    pub message: String,
    /// Shared with every finding of the rule.
    pub remediation: Arc<str>,
    pub admission: AdmissionAction,
    pub condition: Condition,
    /// Safe fix, as RFC 6902 operations relative to the selected node.
    pub fix: Option<Vec<PatchOperation>>,
    /// The file the rule was loaded from, for error messages.
    pub source: String,
}

impl Rule {
    /// The anchor of the rule in `docs/rules.md`.
    pub fn docs_anchor(&self) -> String {
        self.id.to_ascii_lowercase()
    }

    /// Whether the rule names `kind` (in that kind's own API group).
    pub fn applies_to(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }

    /// Whether the rule judges objects of `kind` in API group `group` (`None`: the object
    /// has no `apiVersion`, see [`super::kinds::is_known`]).
    pub fn judges(&self, group: Option<&str>, kind: &str) -> bool {
        self.applies_to(kind) && super::kinds::is_known(group, kind)
    }
}
