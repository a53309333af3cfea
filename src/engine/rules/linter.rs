//! Running the catalog over objects: findings, suppressions, summaries and fixes.

use std::collections::BTreeMap;
use std::sync::Arc;

use json_patch::PatchOperation;
use serde::Serialize;
use serde_json::Value;

use super::catalog::Catalog;
use super::condition::Violation;
use super::config::LintConfig;
use super::context::ObjectContext;
use super::exempt;
use super::finding::{Finding, ObjectRef, Suppression, SuppressionSource};
use super::model::{Level, Rule};
use crate::engine::manifest::{Document, ParseError};

/// The catalog plus the user's configuration.
#[derive(Debug, Clone)]
pub struct Linter {
    catalog: Arc<Catalog>,
    config: Arc<LintConfig>,
}

/// What checking one object produced.
#[derive(Debug, Clone, Default)]
pub struct ObjectOutcome {
    /// False when no rule applies to the object's kind; it was skipped.
    pub known_kind: bool,
    pub findings: Vec<Finding>,
}

/// Counts for a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub documents: usize,
    pub objects_checked: usize,
    pub objects_skipped: usize,
    /// Skipped objects by kind.
    pub skipped_kinds: BTreeMap<String, usize>,
    pub parse_errors: usize,
    /// Active (not suppressed) findings by level.
    pub findings: BTreeMap<Level, usize>,
    pub suppressed: usize,
}

/// A whole lint run: findings in input order, parse errors, and the summary.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub parse_errors: Vec<ParseError>,
    pub summary: Summary,
}

impl Report {
    /// Whether any active finding is at or above `threshold`.
    pub fn fails_at(&self, threshold: Level) -> bool {
        self.findings
            .iter()
            .any(|f| f.is_active() && f.level >= threshold)
    }
}

impl Linter {
    pub fn new(catalog: Arc<Catalog>, config: LintConfig) -> Self {
        Self {
            catalog,
            config: Arc::new(config),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Lints every document; `parse_errors` are carried into the report.
    pub fn lint(
        &self,
        documents: &[Document],
        parse_errors: Vec<ParseError>,
        ctx: &dyn ObjectContext,
    ) -> Report {
        let mut report = Report {
            summary: Summary {
                documents: documents.len(),
                parse_errors: parse_errors.len(),
                ..Summary::default()
            },
            parse_errors,
            ..Report::default()
        };
        for doc in documents {
            let outcome = self.check(doc, ctx);
            if outcome.known_kind {
                report.summary.objects_checked += 1;
            } else {
                report.summary.objects_skipped += 1;
                let kind = doc
                    .value
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("<no kind>");
                *report.summary.skipped_kinds.entry(kind.to_owned()).or_default() += 1;
            }
            report.findings.extend(outcome.findings);
        }
        for f in &report.findings {
            if f.is_active() {
                *report.summary.findings.entry(f.level).or_default() += 1;
            } else {
                report.summary.suppressed += 1;
            }
        }
        report
    }

    /// Checks one object against every enabled rule for its kind.
    pub fn check(&self, doc: &Document, ctx: &dyn ObjectContext) -> ObjectOutcome {
        let object = &doc.value;
        let Some(kind) = object.get("kind").and_then(Value::as_str) else {
            return ObjectOutcome::default();
        };
        let object_ref = ObjectRef::of(object);
        let (exemptions, _) = exempt::parse(object);
        let mut outcome = ObjectOutcome::default();
        for rule in self.rules_for(kind) {
            outcome.known_kind = true;
            if !self.config.enabled(&rule.id) {
                continue;
            }
            let violations = rule.condition.evaluate(object, ctx);
            if violations.is_empty() {
                continue;
            }
            let suppressed = self.suppression(rule, &object_ref, &exemptions);
            let level = self.config.level(&rule.id, rule.level);
            for v in violations {
                outcome.findings.push(Finding {
                    rule_id: rule.id.clone(),
                    level,
                    object: object_ref.clone(),
                    message: rule.message.replace("{value}", &v.value),
                    remediation: rule.remediation.clone(),
                    file: doc.file.as_deref().map(str::to_owned),
                    line: doc.file.as_ref().map(|_| doc.line_of(&v.pointer)),
                    path: v.pointer,
                    suppressed: suppressed.clone(),
                });
            }
        }
        outcome
    }

    /// The safe fixes for `object`: the fix operations of every enabled, unsuppressed rule
    /// that fires, in catalog order, with paths made absolute. Applying them makes those
    /// rules hold, so a second call returns nothing.
    pub fn fixes(&self, object: &Value, ctx: &dyn ObjectContext) -> Vec<PatchOperation> {
        let Some(kind) = object.get("kind").and_then(Value::as_str) else {
            return Vec::new();
        };
        let object_ref = ObjectRef::of(object);
        let (exemptions, _) = exempt::parse(object);
        let mut ops = Vec::new();
        for rule in self.rules_for(kind) {
            let Some(fix) = &rule.fix else { continue };
            if !self.config.enabled(&rule.id)
                || self.suppression(rule, &object_ref, &exemptions).is_some()
            {
                continue;
            }
            for violation in rule.condition.evaluate(object, ctx) {
                ops.extend(fix.iter().filter_map(|op| rebase(op, &violation)));
            }
        }
        dedupe(ops)
    }

    fn rules_for<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Rule> {
        self.catalog.rules().iter().filter(move |r| r.applies_to(kind))
    }

    fn suppression(
        &self,
        rule: &Rule,
        object: &ObjectRef,
        exemptions: &[exempt::Exemption],
    ) -> Option<Suppression> {
        if let Some(reason) = self.config.exemption(&rule.id, object) {
            return Some(Suppression {
                source: SuppressionSource::Config,
                reason: reason.to_owned(),
            });
        }
        if !self.config.annotation_may_exempt(&rule.id) {
            return None;
        }
        exemptions
            .iter()
            .find(|e| e.rule_id == rule.id)
            .map(|e| Suppression {
                source: SuppressionSource::Annotation,
                reason: e.reason.clone(),
            })
    }
}

/// Rewrites a fix operation written relative to the violated node's parent object.
///
/// Fix paths in rule files start at the object the rule's `select` matched, so one fix
/// serves every matched node (every backup profile, every security context).
fn rebase(op: &PatchOperation, violation: &Violation) -> Option<PatchOperation> {
    let mut value = serde_json::to_value(op).ok()?;
    for key in ["path", "from"] {
        if let Some(Value::String(p)) = value.get_mut(key) {
            *p = format!("{}{p}", violation.base);
        }
    }
    serde_json::from_value(value).ok()
}

fn dedupe(ops: Vec<PatchOperation>) -> Vec<PatchOperation> {
    let mut out: Vec<PatchOperation> = Vec::with_capacity(ops.len());
    for op in ops {
        if !out.contains(&op) {
            out.push(op);
        }
    }
    out
}
