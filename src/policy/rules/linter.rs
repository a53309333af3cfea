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
use super::kinds::{api_group, is_known};
use super::model::{Level, Rule};
use super::normalize::normalize;
use super::pointer::select;
use super::shapes::Shaped;
use crate::policy::manifest::{Document, ParseError, escape_pointer_token};

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
        let mut run = Report::default();
        for doc in documents {
            self.add(&mut run, doc, ctx);
        }
        Self::finish(run, parse_errors)
    }

    /// Checks one document into a report under construction. With [`Linter::finish`] this
    /// lets a caller lint a stream one document at a time and drop each afterwards.
    pub fn add(&self, report: &mut Report, doc: &Document, ctx: &dyn ObjectContext) {
        report.summary.documents += 1;
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
            *report
                .summary
                .skipped_kinds
                .entry(kind.to_owned())
                .or_default() += 1;
        }
        report.findings.extend(outcome.findings);
    }

    /// Completes a report built with [`Linter::add`]: parse errors and finding counts.
    pub fn finish(mut report: Report, parse_errors: Vec<ParseError>) -> Report {
        report.summary.parse_errors = parse_errors.len();
        report.parse_errors = parse_errors;
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
        let normalized = normalize(&doc.value);
        let object = &*normalized;
        let Some(kind) = object.get("kind").and_then(Value::as_str) else {
            return ObjectOutcome::default();
        };
        let object_ref = Arc::new(ObjectRef::of(object));
        let (exemptions, _) = exempt::parse(object);
        let shaped = Shaped::of(object);
        let mut outcome = ObjectOutcome::default();
        for rule in self.rules_for(api_group(object), kind) {
            outcome.known_kind = true;
            if !self.config.enabled(&rule.id) {
                continue;
            }
            let violations = rule.condition.evaluate(shaped.for_rule(rule), ctx);
            if violations.is_empty() {
                continue;
            }
            let suppressed = self.suppression(rule, &object_ref, &exemptions);
            let level = self.config.level(&rule.id, rule.level);
            for v in violations {
                outcome.findings.push(Finding {
                    rule_id: Arc::clone(&rule.id),
                    level,
                    object: Arc::clone(&object_ref),
                    message: rule.message.replace("{value}", &v.value),
                    remediation: Arc::clone(&rule.remediation),
                    file: doc.file.clone(),
                    line: doc.file.as_ref().map(|_| doc.line_of(&v.pointer)),
                    path: v.pointer,
                    suppressed: suppressed.clone(),
                });
            }
        }
        outcome
    }

    /// The safe changes for `object`: the catalog's defaults for missing fields, then the fix
    /// operations of every enabled, unsuppressed rule that fires, in catalog order, with
    /// paths made absolute.
    ///
    /// Fixes only ever *add a missing field*: a value the user set is never overwritten, and
    /// images and credentials are never touched. Applying the result and asking again
    /// returns nothing, which is what a reinvoked mutating webhook needs. A member that is
    /// `null` or empty counts as missing; RFC 6902 `add` onto an existing member replaces
    /// it, so the patch applies to the object as given.
    pub fn fixes(&self, object: &Value, ctx: &dyn ObjectContext) -> Vec<PatchOperation> {
        let normalized = normalize(object);
        let object = &*normalized;
        let Some(kind) = object.get("kind").and_then(Value::as_str) else {
            return Vec::new();
        };
        let object_ref = ObjectRef::of(object);
        let (exemptions, _) = exempt::parse(object);
        let shaped = Shaped::of(object);
        let mut ops = Vec::new();
        let group = api_group(object);
        for default in self.catalog.safe_defaults() {
            if !default.kinds.iter().any(|k| k == kind) || !is_known(group, kind) {
                continue;
            }
            for (pointer, node) in select(object, &default.select) {
                if node.is_object() && node.get(&default.field).is_none() {
                    ops.extend(add_op(
                        &format!("{pointer}/{}", escape_pointer_token(&default.field)),
                        &default.value,
                    ));
                }
            }
        }
        for rule in self.rules_for(group, kind) {
            let Some(fix) = &rule.fix else { continue };
            if !self.config.enabled(&rule.id)
                || self.suppression(rule, &object_ref, &exemptions).is_some()
            {
                continue;
            }
            for violation in rule.condition.evaluate(shaped.for_rule(rule), ctx) {
                ops.extend(
                    fix.iter()
                        .filter_map(|op| rebase(op, &violation))
                        .filter(|op| fills_missing(object, op)),
                );
            }
        }
        dedupe(ops)
    }

    fn rules_for<'a>(
        &'a self,
        group: Option<&'a str>,
        kind: &'a str,
    ) -> impl Iterator<Item = &'a Rule> {
        self.catalog
            .rules()
            .iter()
            .filter(move |r| r.judges(group, kind))
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
            .find(|e| *e.rule_id == *rule.id)
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

/// Whether `op` is an `add` whose target does not exist yet but whose parent does.
fn fills_missing(object: &Value, op: &PatchOperation) -> bool {
    let Ok(Value::Object(op)) = serde_json::to_value(op) else {
        return false;
    };
    let (Some("add"), Some(path)) = (
        op.get("op").and_then(Value::as_str),
        op.get("path").and_then(Value::as_str),
    ) else {
        return false;
    };
    let parent = path.rfind('/').map_or("", |cut| &path[..cut]);
    object.pointer(path).is_none() && object.pointer(parent).is_some_and(Value::is_object)
}

fn add_op(path: &str, value: &Value) -> Option<PatchOperation> {
    // Built through serde so the pointer type of the json-patch version in use is respected.
    serde_json::from_value(serde_json::json!({"op": "add", "path": path, "value": value})).ok()
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
