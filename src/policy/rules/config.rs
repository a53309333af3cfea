//! The `--config` file: enable or disable rules, override levels, exempt objects, and decide
//! whether object annotations may exempt anything at all.
//!
//! ```yaml
//! rules:
//!   BR-PITR-001: { level: required }   # our RPO needs PITR
//!   BR-NET-002: { enabled: false }
//! exemptions:
//!   - rule: BR-TLS-001
//!     namespace: dev
//!     reason: dev clusters have no cert-manager
//! annotationExemptions:
//!   allowed: true
//!   rules: [BR-OBS-001]                # only these may be exempted by annotation
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::catalog::Catalog;
use super::finding::ObjectRef;
use super::model::Level;
use crate::error::{Categorized, Category};
use crate::policy::manifest::parse_stream;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LintConfig {
    #[serde(default)]
    pub rules: BTreeMap<String, RuleSetting>,
    #[serde(default)]
    pub exemptions: Vec<ConfigExemption>,
    #[serde(default)]
    pub annotation_exemptions: AnnotationPolicy,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleSetting {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub level: Option<Level>,
}

/// Exempts matching objects from one rule. Unset selectors match everything.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigExemption {
    pub rule: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnnotationPolicy {
    /// Whether `lint.shipstream.io/exempt` is honoured at all.
    #[serde(default = "yes")]
    pub allowed: bool,
    /// When non-empty, only these rules may be exempted by annotation.
    #[serde(default)]
    pub rules: Vec<String>,
}

impl Default for AnnotationPolicy {
    fn default() -> Self {
        Self {
            allowed: true,
            rules: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

/// A configuration file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    pub source_name: String,
    pub message: String,
}

impl Categorized for ConfigError {
    fn category(&self) -> Category {
        Category::Config
    }
}

impl LintConfig {
    /// Parses a config file and checks every rule ID it names against the catalog, so a
    /// typo cannot silently disable nothing.
    pub fn parse(source_name: &str, text: &str, catalog: &Catalog) -> Result<Self, ConfigError> {
        let fail = |message: String| ConfigError {
            source_name: source_name.to_owned(),
            message,
        };
        let mut stream = parse_stream(Some(source_name), text);
        if let Some(e) = stream.errors.first() {
            return Err(fail(e.to_string()));
        }
        let value = match stream.documents.len() {
            0 => return Ok(Self::default()),
            1 => stream.documents.remove(0).value,
            n => return Err(fail(format!("expected one YAML document, found {n}"))),
        };
        let config: LintConfig = serde_json::from_value(value).map_err(|e| fail(e.to_string()))?;
        let named = config
            .rules
            .keys()
            .chain(config.exemptions.iter().map(|e| &e.rule))
            .chain(config.annotation_exemptions.rules.iter());
        for id in named {
            if catalog.get(id).is_none() {
                return Err(fail(format!("unknown rule id {id:?}")));
            }
        }
        if let Some(e) = config
            .exemptions
            .iter()
            .find(|e| e.reason.trim().is_empty())
        {
            return Err(fail(format!("exemption of {} has an empty reason", e.rule)));
        }
        Ok(config)
    }

    pub fn enabled(&self, rule_id: &str) -> bool {
        self.rules
            .get(rule_id)
            .and_then(|s| s.enabled)
            .unwrap_or(true)
    }

    pub fn level(&self, rule_id: &str, default: Level) -> Level {
        self.rules
            .get(rule_id)
            .and_then(|s| s.level)
            .unwrap_or(default)
    }

    /// The reason of the first config exemption covering `rule_id` for `object`.
    pub fn exemption(&self, rule_id: &str, object: &ObjectRef) -> Option<&str> {
        let matches = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == have)
        };
        self.exemptions
            .iter()
            .find(|e| {
                e.rule == rule_id
                    && matches(&e.kind, Some(object.kind.as_str()))
                    && matches(&e.namespace, object.namespace.as_deref())
                    && matches(&e.name, object.name.as_deref())
            })
            .map(|e| e.reason.as_str())
    }

    pub fn annotation_may_exempt(&self, rule_id: &str) -> bool {
        self.annotation_exemptions.allowed
            && (self.annotation_exemptions.rules.is_empty()
                || self
                    .annotation_exemptions
                    .rules
                    .iter()
                    .any(|r| r == rule_id))
    }
}
