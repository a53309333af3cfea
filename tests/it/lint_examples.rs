//! The example manifests in docs/examples against the real catalog.

use std::collections::BTreeSet;

use bloodraven::policy::manifest::parse_stream;
use bloodraven::policy::rules::{BundleContext, Catalog, Level, LintConfig, Linter, Report};

fn lint_files(files: &[&str]) -> Report {
    let catalog = Catalog::builtin().expect("catalog loads");
    let linter = Linter::new(catalog, LintConfig::default());
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("example exists");
        let stream = parse_stream(Some(file), &text);
        docs.extend(stream.documents);
        errors.extend(stream.errors);
    }
    let ctx = BundleContext::of_documents(&docs);
    linter.lint(&docs, errors, &ctx)
}

const GOOD: &str = "docs/examples/production-ready.yaml";
const BAD: &str = "docs/examples/bad.yaml";

#[test]
fn production_ready_example_is_clean() {
    let report = lint_files(&[GOOD]);
    assert!(report.parse_errors.is_empty());
    let active: Vec<_> = report.findings.iter().filter(|f| f.is_active()).collect();
    assert!(active.is_empty(), "unexpected findings: {active:#?}");
    assert!(!report.fails_at(Level::Recommended));
    assert_eq!(report.summary.objects_checked, 1);
    // Secrets, StorageClass, NetworkPolicy, PrometheusRule and PDB are skipped, and counted.
    assert_eq!(
        report.summary.objects_skipped, 9,
        "{:?}",
        report.summary.skipped_kinds
    );
}

#[test]
fn bad_example_trips_every_required_rule() {
    let report = lint_files(&[GOOD, BAD]);
    let catalog = Catalog::builtin().expect("catalog loads");
    let fired: BTreeSet<&str> = report
        .findings
        .iter()
        .filter(|f| f.file.as_deref() == Some(BAD))
        .map(|f| &*f.rule_id)
        .collect();
    for rule in catalog
        .rules()
        .iter()
        .filter(|r| r.level == Level::Required)
    {
        assert!(
            fired.contains(&*rule.id),
            "{} did not fire on {BAD}",
            rule.id
        );
    }
    assert!(report.fails_at(Level::Required));
    // Nothing from the good example leaks in.
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.file.as_deref() == Some(BAD))
    );
}

#[test]
fn findings_point_at_the_offending_fields() {
    let report = lint_files(&[BAD]);
    let at = |rule: &str, name: &str| -> Vec<(String, Option<u32>)> {
        report
            .findings
            .iter()
            .filter(|f| &*f.rule_id == rule && f.object.name.as_deref() == Some(name))
            .map(|f| (f.path.clone(), f.line))
            .collect()
    };
    assert_eq!(
        at("BR-IMG-001", "legacy"),
        [("/spec/image".to_owned(), Some(8))]
    );
    assert_eq!(
        at("BR-IMG-002", "legacy"),
        [("/spec/sidecarImage".to_owned(), Some(9))]
    );
    assert_eq!(
        at("BR-CRED-001", "legacy"),
        [("/spec/credentials".to_owned(), Some(7))]
    );
    assert_eq!(
        at("BR-TLS-001", "legacy"),
        [("/spec/tls".to_owned(), Some(7))]
    );
    assert_eq!(
        at("BR-BAK-003", "legacy"),
        [(
            "/spec/backup/profiles/0/retentionPolicy".to_owned(),
            Some(30)
        )]
    );
    assert_eq!(
        at("BR-BAK-001", "legacy"),
        [("/spec/backup/schedules".to_owned(), Some(27))]
    );
    assert_eq!(
        at("BR-CRED-003", "half-credentials"),
        [("/spec/credentials/appSecret".to_owned(), Some(51))]
    );
    assert_eq!(
        at("BR-API-001", "half-credentials"),
        [("/spec/credentials/operatorSecret".to_owned(), Some(50))]
    );
    let api: Vec<String> = at("BR-API-002", "legacy")
        .into_iter()
        .chain(at("BR-API-003", "legacy"))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        api,
        [
            "/spec/backup/pitr/maxBinlogSize",
            "/spec/backup/pitr/profileName"
        ]
    );
    let pss: Vec<String> = at("BR-PSS-004", "legacy")
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert!(
        pss.contains(&"/spec/containerSecurityContext/privileged".to_owned()),
        "{pss:?}"
    );
    assert!(
        pss.contains(&"/spec/containerSecurityContext/capabilities".to_owned()),
        "{pss:?}"
    );
    let pod: Vec<String> = at("BR-PSS-002", "legacy")
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert!(
        pod.contains(&"/spec/podSecurityContext/runAsUser".to_owned()),
        "{pod:?}"
    );
    assert!(
        pod.contains(&"/spec/podSecurityContext/runAsNonRoot".to_owned()),
        "{pod:?}"
    );
}
