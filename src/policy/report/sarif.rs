//! SARIF 2.1.0 for code-scanning dashboards (GitHub, GitLab, Azure DevOps).
//!
//! Validity is the feature users ask for most (other linters' SARIF is rejected for empty
//! strings and missing driver names), so every string SARIF requires to be non-empty gets a
//! fallback, every URI is percent-encoded, and `tests/it/report_sarif.rs` validates the
//! output against the official schema.

use std::fmt::Write as _;
use std::io;

use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::sanitize::file_uri;
use super::sink::{Streamed, write_pretty};
use super::{INFORMATION_URI, RenderOptions, TOOL_NAME, Truncation};
use crate::policy::manifest::ParseError;
use crate::policy::rules::{Catalog, Finding, Level, ObjectRef, Report, Rule, SuppressionSource};

pub const SARIF_SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// SARIF's severity for a checklist level.
fn sarif_level(level: Level) -> &'static str {
    match level {
        Level::Required => "error",
        Level::EnvironmentSpecific => "warning",
        Level::Recommended => "note",
    }
}

/// The log's top level, in the order SARIF documents show it.
#[derive(Serialize)]
#[serde(bound(serialize = "Run<F>: Serialize"))]
struct Log<F> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<F>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase", bound(serialize = "Streamed<F>: Serialize"))]
struct Run<F> {
    tool: Value,
    invocations: [Value; 1],
    column_kind: &'static str,
    results: Streamed<F>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<Value>,
}

pub fn write(
    report: &Report,
    catalog: &Catalog,
    opts: &RenderOptions,
    writer: &mut dyn io::Write,
) -> io::Result<()> {
    let rules = catalog.rules();
    let mut driver = Map::new();
    driver.insert("name".into(), json!(TOOL_NAME));
    if !opts.tool_version.is_empty() {
        driver.insert("version".into(), json!(opts.tool_version));
    }
    driver.insert("informationUri".into(), json!(INFORMATION_URI));
    driver.insert(
        "rules".into(),
        Value::Array(rules.iter().map(|r| rule_descriptor(r, opts)).collect()),
    );
    let log = Log {
        schema: SARIF_SCHEMA_URI,
        version: "2.1.0",
        runs: [Run {
            tool: json!({"driver": driver}),
            invocations: [truncated(
                invocation(&report.parse_errors),
                opts.truncation.as_ref(),
            )],
            column_kind: "unicodeCodePoints",
            results: Streamed(|| report.findings.iter().map(|f| result(f, rules))),
            properties: opts
                .truncation
                .as_ref()
                .map(|t| json!({"truncated": true, "truncation": t})),
        }],
    };
    write_pretty(writer, &log)
}

fn rule_descriptor(rule: &Rule, opts: &RenderOptions) -> Value {
    let help_uri = opts.help_uri(&rule.docs_anchor());
    let title = non_empty(&rule.title, &rule.id);
    let mut full = format!("{title}: {}", rule.message.replace("{value}", "<value>"));
    if !full.ends_with('.') {
        full.push('.');
    }
    let help = non_empty(&rule.remediation, title);
    json!({
        "id": rule.id,
        "name": pascal_case(title).unwrap_or_else(|| rule.id.to_string()),
        "shortDescription": {"text": title},
        "fullDescription": {"text": full},
        "help": {
            "text": format!("{help}\n\nDocumentation: {help_uri}"),
            "markdown": format!("{help}\n\n[Documentation]({help_uri})"),
        },
        "helpUri": help_uri,
        "defaultConfiguration": {"level": sarif_level(rule.level)},
        "properties": {
            "owner": rule.owner.as_str(),
            "level": rule.level.as_str(),
            "section": rule.section,
            "kinds": rule.kinds,
            "tags": [rule.section, rule.owner.as_str(), "kubernetes"],
        },
    })
}

fn result(f: &Finding, rules: &[Rule]) -> Value {
    let mut r = Map::new();
    r.insert(
        "ruleId".into(),
        json!(non_empty(&f.rule_id, "unknown-rule")),
    );
    if let Some(index) = rules.iter().position(|rule| rule.id == f.rule_id) {
        r.insert("ruleIndex".into(), json!(index));
    }
    r.insert("level".into(), json!(sarif_level(f.level)));
    r.insert(
        "message".into(),
        json!({"text": non_empty(&f.message, &f.rule_id)}),
    );
    r.insert("locations".into(), json!([location(f)]));
    // Line numbers move whenever a manifest is edited; the object and pointer identify the
    // problem, so dashboards keep tracking one alert across edits.
    r.insert(
        "partialFingerprints".into(),
        json!({"bloodravenFinding/v1": fingerprint(f)}),
    );
    if let Some(s) = &f.suppressed {
        let kind = match s.source {
            // The exempt annotation lives in the manifest itself.
            SuppressionSource::Annotation => "inSource",
            SuppressionSource::Config => "external",
        };
        let mut suppression = Map::new();
        suppression.insert("kind".into(), json!(kind));
        suppression.insert("status".into(), json!("accepted"));
        if !s.reason.is_empty() {
            suppression.insert("justification".into(), json!(s.reason));
        }
        r.insert("suppressions".into(), json!([suppression]));
    }
    r.insert(
        "properties".into(),
        json!({
            "jsonPointer": f.path,
            "object": f.object,
            "remediation": f.remediation,
        }),
    );
    Value::Object(r)
}

fn location(f: &Finding) -> Value {
    let mut loc = Map::new();
    if let Some(file) = &f.file {
        let mut physical = Map::new();
        physical.insert(
            "artifactLocation".into(),
            json!({"uri": artifact_uri(file)}),
        );
        if let Some(line) = f.line {
            physical.insert("region".into(), json!({"startLine": line.max(1)}));
        }
        loc.insert("physicalLocation".into(), Value::Object(physical));
    }
    loc.insert(
        "logicalLocations".into(),
        json!([{
            "name": object_path(&f.object),
            "fullyQualifiedName": format!("{}#{}", object_path(&f.object), f.path),
            "kind": "resource",
        }]),
    );
    Value::Object(loc)
}

/// The `artifactLocation.uri` of a linted file. SARIF reads a URI that starts with `/` as
/// relative to a base, and code-scanning tools (Microsoft's Multitool: SARIF1004) reject
/// it without one, so an absolute path becomes an absolute `file:` URI; a relative path
/// stays a relative reference, resolved against the directory the linter ran in.
fn artifact_uri(file: &str) -> String {
    let slashed = file.replace('\\', "/");
    let bytes = slashed.as_bytes();
    let drive =
        bytes.len() >= 3 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' && bytes[2] == b'/';
    if drive {
        // `C:/dir/x.yaml`: the drive letter and its colon are kept as they are.
        return format!("file:///{}{}", &slashed[..2], file_uri(&slashed[2..]));
    }
    if slashed.starts_with('/') {
        // Collapse `//host`-looking prefixes: a path is never an authority.
        return format!("file:///{}", file_uri(slashed.trim_start_matches('/')));
    }
    file_uri(file)
}

/// `Kind/namespace/name` (`Kind/name` without a namespace), never empty.
fn object_path(o: &ObjectRef) -> String {
    let kind = non_empty(&o.kind, "Object");
    let name = o
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or("<unnamed>");
    match o.namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

fn fingerprint(f: &Finding) -> String {
    let mut h = Sha256::new();
    for part in [
        &*f.rule_id,
        f.object.api_version.as_str(),
        &object_path(&f.object),
        &f.path,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize()[..16]
        .iter()
        .fold(String::with_capacity(32), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// Parse errors are problems of the run, not results: SARIF puts them in the invocation,
/// and a run that could not read all its input did not execute successfully.
fn invocation(errors: &[ParseError]) -> Value {
    let notifications: Vec<Value> = errors
        .iter()
        .map(|e| {
            let mut n = Map::new();
            n.insert("level".into(), json!("error"));
            n.insert(
                "message".into(),
                json!({"text": non_empty(&e.message, "could not parse the document")}),
            );
            if let Some(file) = &e.location.file {
                n.insert(
                    "locations".into(),
                    json!([{"physicalLocation": {
                        "artifactLocation": {"uri": artifact_uri(file)},
                        "region": {
                            "startLine": e.location.line.max(1),
                            "startColumn": e.location.column.max(1),
                        },
                    }}]),
                );
            }
            Value::Object(n)
        })
        .collect();
    json!({
        "executionSuccessful": errors.is_empty(),
        "toolExecutionNotifications": notifications,
    })
}

/// The invocation with a warning notification saying that results were left out.
fn truncated(mut invocation: Value, truncation: Option<&Truncation>) -> Value {
    if let (Some(t), Some(notifications)) = (
        truncation,
        invocation
            .get_mut("toolExecutionNotifications")
            .and_then(Value::as_array_mut),
    ) {
        notifications.push(json!({
            "level": "warning",
            "descriptor": {"id": "truncated"},
            "message": {"text": t.describe()},
        }));
    }
    invocation
}

fn non_empty<'a>(text: &'a str, fallback: &'a str) -> &'a str {
    if text.trim().is_empty() {
        fallback
    } else {
        text
    }
}

/// SARIF's `name` is an identifier-like form of the title: `TLS is configured` becomes
/// `TlsIsConfigured`.
fn pascal_case(title: &str) -> Option<String> {
    let name: String = title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::report::fixtures;

    fn render(report: &Report, catalog: &Catalog, opts: &RenderOptions) -> String {
        crate::policy::report::render(report, catalog, crate::policy::report::Format::Sarif, opts)
    }

    fn rendered(report: &Report) -> Result<Value, String> {
        let out = render(report, &fixtures::catalog(), &RenderOptions::default());
        serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))
    }

    /// Every string in the log, with its pointer.
    fn strings(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
        match v {
            Value::String(s) => out.push((at.to_owned(), s.clone())),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    strings(item, &format!("{at}/{i}"), out);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    strings(item, &format!("{at}/{k}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn driver_lists_every_catalog_rule_with_metadata() -> Result<(), String> {
        let log = rendered(&fixtures::report())?;
        assert_eq!(log["version"], "2.1.0");
        assert_eq!(log["$schema"], SARIF_SCHEMA_URI);
        let driver = &log["runs"][0]["tool"]["driver"];
        assert_eq!(driver["name"], "bloodraven");
        assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
        let rules = driver["rules"].as_array().cloned().unwrap_or_default();
        assert_eq!(rules.len(), 3);
        let tls = &rules[0];
        assert_eq!(tls["id"], "BR-TEST-001");
        assert_eq!(tls["name"], "TlsIsConfigured");
        assert_eq!(tls["shortDescription"]["text"], "TLS is configured");
        assert_eq!(
            tls["fullDescription"]["text"],
            "TLS is configured: TLS is not configured."
        );
        assert!(
            tls["help"]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Set spec.tls.issuerRef to a cert-manager issuer.")),
            "{tls}"
        );
        assert_eq!(
            tls["helpUri"],
            "https://github.com/shipstream/bloodraven/blob/main/docs/rules.md#br-test-001"
        );
        assert_eq!(tls["defaultConfiguration"]["level"], "error");
        assert_eq!(tls["properties"]["owner"], "security");
        assert_eq!(tls["properties"]["level"], "required");
        assert_eq!(tls["properties"]["section"], "TLS");
        assert_eq!(rules[1]["defaultConfiguration"]["level"], "note");
        assert_eq!(rules[2]["defaultConfiguration"]["level"], "warning");
        assert_eq!(
            rules[2]["fullDescription"]["text"],
            "PITR <when> RPO & \"needs\" it: PITR is off."
        );
        Ok(())
    }

    #[test]
    fn absolute_paths_become_file_uris_and_relative_ones_stay_relative() {
        assert_eq!(artifact_uri("deploy/prod.yaml"), "deploy/prod.yaml");
        assert_eq!(artifact_uri("./a b.yaml"), "a%20b.yaml");
        assert_eq!(artifact_uri("-"), "stdin");
        assert_eq!(artifact_uri("/abs/dir/x.yaml"), "file:///abs/dir/x.yaml");
        assert_eq!(artifact_uri("//abs/ü.yaml"), "file:///abs/%C3%BC.yaml");
        assert_eq!(artifact_uri(r"C:\ci\db.yaml"), "file:///C:/ci/db.yaml");
    }

    #[test]
    fn results_point_at_file_line_object_and_pointer() -> Result<(), String> {
        let log = rendered(&fixtures::report())?;
        let results = &log["runs"][0]["results"];
        let first = &results[0];
        assert_eq!(first["ruleId"], "BR-TEST-001");
        assert_eq!(first["ruleIndex"], 0);
        assert_eq!(first["level"], "error");
        assert_eq!(first["message"]["text"], "TLS is not configured");
        let loc = &first["locations"][0];
        assert_eq!(
            loc["physicalLocation"]["artifactLocation"]["uri"],
            "deploy/prod.yaml"
        );
        assert_eq!(loc["physicalLocation"]["region"]["startLine"], 12);
        assert_eq!(
            loc["logicalLocations"][0]["name"],
            "MysqlFailoverGroup/prod/db"
        );
        assert_eq!(
            loc["logicalLocations"][0]["fullyQualifiedName"],
            "MysqlFailoverGroup/prod/db#/spec/tls"
        );
        assert_eq!(first["properties"]["jsonPointer"], "/spec/tls");
        assert_eq!(results[1]["level"], "warning");
        assert_eq!(results[1]["ruleIndex"], 2);
        // stdin
        assert_eq!(
            results[4]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "stdin"
        );
        Ok(())
    }

    #[test]
    fn in_memory_findings_have_only_a_logical_location() -> Result<(), String> {
        let log = rendered(&fixtures::report())?;
        let loc = &log["runs"][0]["results"][5]["locations"][0];
        assert!(loc.get("physicalLocation").is_none(), "{loc}");
        assert_eq!(
            loc["logicalLocations"][0]["name"],
            "MysqlFailoverGroup/<unnamed>"
        );
        assert_eq!(
            loc["logicalLocations"][0]["fullyQualifiedName"],
            "MysqlFailoverGroup/<unnamed>#/spec/monitoring"
        );
        Ok(())
    }

    #[test]
    fn suppressions_carry_kind_and_justification() -> Result<(), String> {
        let log = rendered(&fixtures::report())?;
        let results = &log["runs"][0]["results"];
        assert_eq!(
            results[2]["suppressions"],
            json!([{"kind": "inSource", "status": "accepted", "justification": "scraped by the platform agent"}])
        );
        assert_eq!(results[3]["suppressions"][0]["kind"], "external");
        assert_eq!(
            results[3]["suppressions"][0]["justification"],
            "dev namespace"
        );
        assert!(results[0].get("suppressions").is_none());
        Ok(())
    }

    #[test]
    fn parse_errors_are_tool_notifications() -> Result<(), String> {
        let log = rendered(&fixtures::report())?;
        let invocation = &log["runs"][0]["invocations"][0];
        assert_eq!(invocation["executionSuccessful"], false);
        let n = &invocation["toolExecutionNotifications"];
        assert_eq!(n[0]["level"], "error");
        assert_eq!(n[0]["message"]["text"], "did not find expected key <&>\"'");
        let physical = &n[0]["locations"][0]["physicalLocation"];
        assert_eq!(physical["artifactLocation"]["uri"], "broken.yaml");
        assert_eq!(
            physical["region"],
            json!({"startLine": 3, "startColumn": 7})
        );
        assert_eq!(
            n[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "stdin"
        );
        let clean = rendered(&Report::default())?;
        assert_eq!(
            clean["runs"][0]["invocations"][0]["executionSuccessful"],
            true
        );
        assert_eq!(clean["runs"][0]["results"], json!([]));
        Ok(())
    }

    #[test]
    fn never_emits_empty_strings() -> Result<(), String> {
        let mut report = fixtures::report();
        report.findings[0].message = String::new();
        std::sync::Arc::make_mut(&mut report.findings[0].object).name = Some(String::new());
        report.findings[1].suppressed = Some(crate::policy::rules::Suppression {
            source: SuppressionSource::Config,
            reason: String::new(),
        });
        report.parse_errors[0].message = String::new();
        let log = rendered(&report)?;
        let mut all = Vec::new();
        strings(&log, "", &mut all);
        let empty: Vec<&String> = all
            .iter()
            // Result property bags carry the finding's data as it is (a root pointer is ""
            // by definition); SARIF requires nothing of them.
            .filter(|(at, s)| {
                s.is_empty() && !(at.contains("/results/") && at.contains("/properties/"))
            })
            .map(|(at, _)| at)
            .collect();
        assert!(empty.is_empty(), "empty strings at {empty:?}");
        Ok(())
    }

    #[test]
    fn fingerprints_ignore_lines_but_not_objects() {
        let report = fixtures::report();
        let mut moved = report.findings[0].clone();
        moved.line = Some(99);
        assert_eq!(fingerprint(&report.findings[0]), fingerprint(&moved));
        let mut other = moved.clone();
        std::sync::Arc::make_mut(&mut other.object).namespace = Some("staging".into());
        assert_ne!(fingerprint(&moved), fingerprint(&other));
        assert_eq!(fingerprint(&moved).len(), 32);
    }

    #[test]
    fn unknown_rules_have_no_rule_index() -> Result<(), String> {
        let mut report = fixtures::report();
        report.findings[0].rule_id = "BR-GONE-001".into();
        let log = rendered(&report)?;
        let first = &log["runs"][0]["results"][0];
        assert_eq!(first["ruleId"], "BR-GONE-001");
        assert!(first.get("ruleIndex").is_none());
        Ok(())
    }

    #[test]
    fn pascal_case_names() {
        assert_eq!(
            pascal_case("MySQL image is pinned").as_deref(),
            Some("MysqlImageIsPinned")
        );
        assert_eq!(pascal_case("--"), None);
    }
}
