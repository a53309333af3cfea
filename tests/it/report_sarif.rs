//! SARIF output is checked against the official SARIF 2.1.0 schema and Microsoft's SARIF
//! Multitool, so code-scanning uploads are never rejected (kube-score's SARIF was, for
//! empty strings). Both come from the npm package `@microsoft/sarif-multitool-linux@5.7.0`,
//! installed into `.deps/sarif/` by `scripts/install-test-deps.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bloodraven::policy::manifest::{Document, parse_stream};
use bloodraven::policy::report::{Format, RenderOptions, render};
use bloodraven::policy::rules::{BundleContext, Catalog, LintConfig, Linter, Report};
use serde_json::{Value, json};

const INSTALL: &str = "scripts/install-test-deps.sh sarif";

const RULES: &[(&str, &str)] = &[
    (
        "BR-TEST-001.yaml",
        "id: BR-TEST-001\ntitle: TLS is configured\nlevel: required\nowner: security\n\
         section: TLS\nkinds: [MysqlFailoverGroup]\nmessage: TLS is not configured\n\
         remediation: Set spec.tls.issuerRef to a cert-manager issuer.\n\
         check:\n  select: /spec\n  schema: {required: [tls]}\n",
    ),
    (
        "BR-TEST-002.yaml",
        "id: BR-TEST-002\ntitle: Metrics are scraped\nlevel: recommended\nowner: platform\n\
         section: Observability\nkinds: [MysqlFailoverGroup]\n\
         message: 'monitoring is {value}'\nremediation: Add a PodMonitor.\n\
         check:\n  select: /spec\n  schema: {required: [monitoring]}\n",
    ),
    (
        "BR-TEST-003.yaml",
        "id: BR-TEST-003\ntitle: 'Images are pinned <no :latest> & \"no bare majors\"'\n\
         level: environment-specific\nowner: app\nsection: Image supply chain\n\
         kinds: [MysqlFailoverGroup]\nmessage: 'image {value} is not pinned'\n\
         remediation: Use a full version or a digest.\n\
         check:\n  select: /spec/image\n  schema: {pattern: '^[^:]+:[0-9]+\\.[0-9]+'}\n",
    ),
];

const PROD: &str = "\
apiVersion: shipstream.io/v1alpha1
kind: MysqlFailoverGroup
metadata:
  name: db
  namespace: prod
  annotations:
    lint.shipstream.io/exempt: 'BR-TEST-002: scraped by the platform agent'
spec:
  image: mysql:latest
  sites: []
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: prod}
";

const DEV: &str = "\
apiVersion: shipstream.io/v1alpha1
kind: MysqlFailoverGroup
metadata: {name: db, namespace: dev}
spec:
  image: mysql:9.7.4
  monitoring: {}
";

const BROKEN: &str = "\
apiVersion: shipstream.io/v1alpha1
kind: MysqlFailoverGroup
metadata: {name: ok, namespace: prod}
spec: {image: 'mysql:9.7.4', tls: {}, monitoring: {}}
---
spec: [unclosed
  image: x
";

const STDIN: &str = "\
apiVersion: shipstream.io/v1alpha1
kind: MysqlFailoverGroup
metadata: {name: from-stdin}
spec:
  image: 'mysql:9'
";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A report made the way the CLI and the webhook make one: parsed files (one of them
/// stdin, one of them broken), an in-memory object, an annotation and a config exemption.
fn report(catalog: &Arc<Catalog>) -> Result<Report, String> {
    let mut documents: Vec<Document> = Vec::new();
    let mut errors = Vec::new();
    for (file, text) in [
        ("deploy/prod.yaml", PROD),
        ("deploy/my dev.yaml", DEV),
        ("broken.yaml", BROKEN),
        ("-", STDIN),
    ] {
        let stream = parse_stream(Some(file), text);
        documents.extend(stream.documents);
        errors.extend(stream.errors);
    }
    documents.push(Document::in_memory(json!({
        "apiVersion": "shipstream.io/v1alpha1",
        "kind": "MysqlFailoverGroup",
        "metadata": {"generateName": "admitted-"},
        "spec": {"image": "mysql:9.7.4", "tls": {}},
    })));
    // The built-in catalog does not know the test rules; it is linted without exemptions.
    let config = if catalog.get("BR-TEST-001").is_some() {
        LintConfig::parse(
            "lint.yaml",
            "exemptions:\n- rule: BR-TEST-001\n  namespace: dev\n  reason: dev clusters have no cert-manager\n",
            catalog,
        )
        .map_err(|e| e.to_string())?
    } else {
        LintConfig::default()
    };
    let bundle = BundleContext::of_documents(&documents);
    let linter = Linter::new(Arc::clone(catalog), config);
    Ok(linter.lint(&documents, errors, &bundle))
}

fn sarif_for(catalog: &Arc<Catalog>) -> Result<(String, Report), String> {
    let report = report(catalog)?;
    let out = render(&report, catalog, Format::Sarif, &RenderOptions::default());
    Ok((out, report))
}

fn test_catalog() -> Result<Arc<Catalog>, String> {
    Catalog::from_files(RULES)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// The official schema, or an error that says how to install it. Never a skip.
fn official_schema(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "the official SARIF 2.1.0 schema is missing at {} ({e}); install it with `{INSTALL}`",
            path.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn schema_errors(schema: &Value, log: &Value) -> Result<Vec<String>, String> {
    // The schema's formats (uri, uri-reference, date-time, uuid) are part of validity; no
    // `$ref` leaves the document, and this crate build cannot fetch any.
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| format!("the SARIF schema does not compile: {e}"))?;
    Ok(validator
        .iter_errors(log)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect())
}

#[test]
fn missing_schema_fails_with_the_install_command() {
    let err = official_schema(Path::new("/nonexistent/sarif-2.1.0.json"));
    assert!(
        matches!(&err, Err(m) if m.contains("scripts/install-test-deps.sh")),
        "{err:?}"
    );
}

#[test]
fn the_pipeline_report_covers_every_sarif_case() -> Result<(), String> {
    let catalog = test_catalog()?;
    let (out, report) = sarif_for(&catalog)?;
    assert_eq!(report.parse_errors.len(), 1, "{:?}", report.parse_errors);
    let log: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
    let run = &log["runs"][0];
    let results = run["results"].as_array().cloned().unwrap_or_default();
    let uris: Vec<&str> = results
        .iter()
        .filter_map(|r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str())
        .collect();
    assert!(uris.contains(&"stdin"), "{uris:?}");
    assert!(uris.contains(&"deploy/my%20dev.yaml"), "{uris:?}");
    let kinds: Vec<&str> = results
        .iter()
        .filter_map(|r| r["suppressions"][0]["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["inSource", "external"]);
    assert!(
        results
            .iter()
            .any(|r| r["locations"][0].get("physicalLocation").is_none()
                && r["locations"][0]["logicalLocations"][0]["name"]
                    == "MysqlFailoverGroup/admitted-"),
        "an in-memory object has a logical location only: {results:?}"
    );
    assert!(
        results.iter().any(
            |r| r["message"]["text"] == "image mysql:latest is not pinned"
                && r["locations"][0]["physicalLocation"]["region"]["startLine"] == 9
        ),
        "{results:?}"
    );
    let invocation = &run["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    assert_eq!(
        invocation["toolExecutionNotifications"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
            ["uri"],
        "broken.yaml"
    );
    Ok(())
}

#[test]
fn sarif_validates_against_the_official_schema() -> Result<(), String> {
    let schema = official_schema(&repo_root().join(".deps/sarif/sarif-2.1.0.json"))?;
    let test = test_catalog()?;
    let builtin = Catalog::builtin().map_err(|e| e.to_string())?;
    for (name, catalog) in [("test catalog", &test), ("built-in catalog", &builtin)] {
        let (out, _) = sarif_for(catalog)?;
        let log: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
        let errors = schema_errors(&schema, &log)?;
        assert!(
            errors.is_empty(),
            "{name}: SARIF is invalid:\n{}\n{out}",
            errors.join("\n")
        );
    }
    let empty = render(
        &Report::default(),
        &test,
        Format::Sarif,
        &RenderOptions::default(),
    );
    let log: Value = serde_json::from_str(&empty).map_err(|e| e.to_string())?;
    let errors = schema_errors(&schema, &log)?;
    assert!(errors.is_empty(), "empty report: {errors:?}");
    Ok(())
}

/// A way to make a valid log invalid, and what it is.
type Breakage = (&'static str, fn(&mut Value));

#[test]
fn schema_validation_is_not_vacuous() -> Result<(), String> {
    let schema = official_schema(&repo_root().join(".deps/sarif/sarif-2.1.0.json"))?;
    let (out, _) = sarif_for(&test_catalog()?)?;
    let good: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
    let breakages: [Breakage; 4] = [
        ("driver without a name", |v| {
            if let Some(d) = v["runs"][0]["tool"]["driver"].as_object_mut() {
                d.remove("name");
            }
        }),
        ("startLine 0", |v| {
            v["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
                json!(0);
        }),
        ("unknown suppression kind", |v| {
            for r in v["runs"][0]["results"].as_array_mut().into_iter().flatten() {
                if r.get("suppressions").is_some() {
                    r["suppressions"][0]["kind"] = json!("annotation");
                }
            }
        }),
        ("relative helpUri", |v| {
            v["runs"][0]["tool"]["driver"]["rules"][0]["helpUri"] = json!("rules.md#br-test-001");
        }),
    ];
    for (what, breakage) in breakages {
        let mut bad = good.clone();
        breakage(&mut bad);
        assert!(
            !schema_errors(&schema, &bad)?.is_empty(),
            "the schema accepted {what}"
        );
    }
    Ok(())
}

/// Runs `Sarif.Multitool validate` over `logs` and returns what it printed.
fn multitool(tool: &Path, dir: &Path, logs: &[&Path]) -> Result<String, String> {
    let output = Command::new(tool)
        .arg("validate")
        .args(logs)
        .arg("-o")
        .arg(dir.join("validation.sarif"))
        .args(["--log", "ForceOverwrite"])
        .env("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1")
        .output()
        .map_err(|e| format!("running {}: {e}", tool.display()))?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Microsoft's validator also applies its SARIF rules beyond the schema. It exits 0 even
/// when it finds errors, so its output is what counts.
#[test]
fn sarif_multitool_reports_no_errors() -> Result<(), String> {
    let tool = repo_root().join(".deps/sarif/Sarif.Multitool");
    if !tool.is_file() {
        return Err(format!(
            "Sarif.Multitool is missing at {}; install it with `{INSTALL}`",
            tool.display()
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (out, _) = sarif_for(&test_catalog()?)?;
    let good = dir.path().join("bloodraven.sarif");
    std::fs::write(&good, &out).map_err(|e| e.to_string())?;
    // A known-bad log proves the validator ran and reports errors the way we parse them.
    let bad = dir.path().join("broken.sarif");
    std::fs::write(
        &bad,
        r#"{"version":"2.1.0","runs":[{"tool":{"driver":{}}}]}"#,
    )
    .map_err(|e| e.to_string())?;
    let stdout = multitool(&tool, dir.path(), &[&good, &bad])?;
    let errors: Vec<&str> = stdout.lines().filter(|l| l.contains(": error ")).collect();
    assert!(
        errors.iter().any(|l| l.contains("broken.sarif")),
        "the validator did not flag the known-bad log:\n{stdout}"
    );
    let ours: Vec<&&str> = errors
        .iter()
        .filter(|l| l.contains("bloodraven.sarif"))
        .collect();
    assert!(
        ours.is_empty(),
        "Sarif.Multitool found errors:\n{stdout}\n{out}"
    );
    Ok(())
}

/// `bloodraven lint --format sarif` of a relative and of an absolute directory: the URIs are
/// a relative reference and an absolute `file:` URI, and both logs pass the official schema
/// and the Multitool (which rejects a rooted path as a relative reference, SARIF1004).
#[test]
fn sarif_uris_are_valid_for_relative_and_absolute_inputs() -> Result<(), String> {
    let tool = repo_root().join(".deps/sarif/Sarif.Multitool");
    if !tool.is_file() {
        return Err(format!(
            "Sarif.Multitool is missing at {}; install it with `{INSTALL}`",
            tool.display()
        ));
    }
    let schema = official_schema(&repo_root().join(".deps/sarif/sarif-2.1.0.json"))?;
    let absolute = repo_root().join("docs/examples");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut logs = Vec::new();
    for (name, input) in [
        ("relative", "docs/examples".to_owned()),
        ("absolute", absolute.display().to_string()),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_bloodraven"))
            .args(["lint", "--format", "sarif", &input])
            .current_dir(repo_root())
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let log: Value = serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
        let uris: Vec<String> = log["runs"][0]["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        assert!(!uris.is_empty(), "{name}: no results with a file");
        for uri in &uris {
            if name == "relative" {
                assert!(uri.starts_with("docs/examples/"), "{name}: {uri}");
            } else {
                let want = format!("file://{}/", absolute.display());
                assert!(uri.starts_with(&want), "{name}: {uri} (want {want}...)");
            }
        }
        assert!(
            !text.contains("uriBaseId"),
            "{name}: no uriBaseId without originalUriBaseIds"
        );
        let errors = schema_errors(&schema, &log)?;
        assert!(errors.is_empty(), "{name}: {}", errors.join("\n"));
        let path = dir.path().join(format!("{name}.sarif"));
        std::fs::write(&path, &text).map_err(|e| e.to_string())?;
        logs.push(path);
    }
    let paths: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();
    let stdout = multitool(&tool, dir.path(), &paths)?;
    let ours: Vec<&str> = stdout.lines().filter(|l| l.contains(": error ")).collect();
    assert!(ours.is_empty(), "Sarif.Multitool found errors:\n{stdout}");
    Ok(())
}
