//! The machine format: `bloodraven.lint/v1`, described by `docs/lint-report.schema.json`.
//!
//! Field names are the camelCase serde names of [`Finding`] and [`Summary`], so the JSON
//! format, `POST /lint` and the admission webhook's structured output agree. Additive
//! changes keep `v1`; renaming or removing a field means `v2`.

use std::io;

use serde::Serialize;

use super::sink::{Streamed, write_pretty};
use super::{INFORMATION_URI, RenderOptions, TOOL_NAME, Truncation};
use crate::policy::manifest::ParseError;
use crate::policy::rules::{Catalog, Finding, Report, Summary};

/// The `schemaVersion` of every JSON report.
pub const SCHEMA_VERSION: &str = "bloodraven.lint/v1";

#[derive(Serialize)]
#[serde(rename_all = "camelCase", bound(serialize = "Streamed<F>: Serialize"))]
struct JsonReport<'r, F> {
    schema_version: &'static str,
    tool: Tool<'r>,
    summary: &'r Summary,
    findings: Streamed<F>,
    parse_errors: Vec<JsonParseError<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated: Option<&'r Truncation>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Tool<'r> {
    name: &'static str,
    version: &'r str,
    information_uri: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonFinding<'r> {
    #[serde(flatten)]
    finding: &'r Finding,
    /// The rule's documentation; absent for rules the catalog does not know.
    #[serde(skip_serializing_if = "Option::is_none")]
    help_uri: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonParseError<'r> {
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'r str>,
    line: u32,
    column: u32,
    message: &'r str,
}

impl<'r> From<&'r ParseError> for JsonParseError<'r> {
    fn from(e: &'r ParseError) -> Self {
        Self {
            file: e.location.file.as_deref(),
            line: e.location.line,
            column: e.location.column,
            message: &e.message,
        }
    }
}

pub fn write(
    report: &Report,
    catalog: &Catalog,
    opts: &RenderOptions,
    writer: &mut dyn io::Write,
) -> io::Result<()> {
    let doc = JsonReport {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: TOOL_NAME,
            version: &opts.tool_version,
            information_uri: INFORMATION_URI,
        },
        summary: &report.summary,
        findings: Streamed(|| {
            report.findings.iter().map(|finding| JsonFinding {
                finding,
                help_uri: catalog
                    .get(&finding.rule_id)
                    .map(|rule| opts.help_uri(&rule.docs_anchor())),
            })
        }),
        parse_errors: report
            .parse_errors
            .iter()
            .map(JsonParseError::from)
            .collect(),
        truncated: opts.truncation.as_ref(),
    };
    write_pretty(writer, &doc)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    fn render(report: &Report, catalog: &Catalog, opts: &RenderOptions) -> String {
        crate::policy::report::render(report, catalog, crate::policy::report::Format::Json, opts)
    }

    use super::*;
    use crate::policy::report::fixtures;

    const SCHEMA: &str = include_str!("../../../docs/lint-report.schema.json");

    fn validate(doc: &Value) -> Result<(), String> {
        let schema: Value = serde_json::from_str(SCHEMA).map_err(|e| e.to_string())?;
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| format!("docs/lint-report.schema.json is not a schema: {e}"))?;
        let errors: Vec<String> = validator
            .iter_errors(doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    fn rendered(report: &Report) -> Result<Value, String> {
        let out = render(report, &fixtures::catalog(), &RenderOptions::default());
        serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))
    }

    #[test]
    fn output_validates_against_the_published_schema() -> Result<(), String> {
        validate(&rendered(&fixtures::report())?)?;
        validate(&rendered(&Report::default())?)
    }

    #[test]
    fn schema_rejects_drift() -> Result<(), String> {
        // The schema must be strict enough to notice a renamed or missing field.
        let mut doc = rendered(&fixtures::report())?;
        doc["findings"][0]["rule_id"] = json!("BR-TEST-001");
        assert!(
            validate(&doc).is_err(),
            "unknown finding field must be rejected"
        );
        let mut doc = rendered(&fixtures::report())?;
        doc["schemaVersion"] = json!("bloodraven.lint/v2");
        assert!(
            validate(&doc).is_err(),
            "another schema version must be rejected"
        );
        let mut doc = rendered(&fixtures::report())?;
        doc["findings"][0]["level"] = json!("critical");
        assert!(validate(&doc).is_err(), "unknown level must be rejected");
        Ok(())
    }

    #[test]
    fn carries_findings_summary_and_parse_errors() -> Result<(), String> {
        let doc = rendered(&fixtures::report())?;
        assert_eq!(doc["schemaVersion"], "bloodraven.lint/v1");
        assert_eq!(doc["tool"]["name"], "bloodraven");
        assert_eq!(doc["tool"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(doc["summary"]["objectsChecked"], 4);
        assert_eq!(
            doc["summary"]["findings"],
            json!({"recommended": 1, "environment-specific": 1, "required": 2})
        );
        assert_eq!(
            doc["summary"]["skippedKinds"],
            json!({"ConfigMap": 1, "Service": 1})
        );
        assert_eq!(doc["summary"]["suppressed"], 2);
        let first = &doc["findings"][0];
        assert_eq!(first["ruleId"], "BR-TEST-001");
        assert_eq!(first["level"], "required");
        assert_eq!(
            first["object"],
            json!({"apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlFailoverGroup", "namespace": "prod", "name": "db"})
        );
        assert_eq!(first["path"], "/spec/tls");
        assert_eq!(first["file"], "deploy/prod.yaml");
        assert_eq!(first["line"], 12);
        assert_eq!(
            first["helpUri"],
            "https://github.com/shipstream/bloodraven/blob/main/docs/rules.md#br-test-001"
        );
        assert_eq!(
            doc["findings"][2]["suppressed"],
            json!({"source": "annotation", "reason": "scraped by the platform agent"})
        );
        assert_eq!(doc["findings"][3]["suppressed"]["source"], "config");
        assert_eq!(
            doc["parseErrors"][0],
            json!({"file": "broken.yaml", "line": 3, "column": 7, "message": "did not find expected key <&>\"'"})
        );
        let findings = doc["findings"].as_array().map_or(0, Vec::len);
        assert_eq!(
            findings, 6,
            "suppressed findings are reported, never dropped"
        );
        Ok(())
    }

    #[test]
    fn empty_report_has_every_top_level_field() -> Result<(), String> {
        let doc = rendered(&Report::default())?;
        assert_eq!(doc["findings"], json!([]));
        assert_eq!(doc["parseErrors"], json!([]));
        assert_eq!(doc["summary"]["objectsChecked"], 0);
        Ok(())
    }

    #[test]
    fn unknown_rules_get_no_help_uri() -> Result<(), String> {
        let mut report = fixtures::report();
        report.findings[0].rule_id = "BR-GONE-001".into();
        let doc = rendered(&report)?;
        assert!(
            doc["findings"][0].get("helpUri").is_none(),
            "{}",
            doc["findings"][0]
        );
        validate(&doc)
    }
}
