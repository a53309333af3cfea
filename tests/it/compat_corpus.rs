//! The compatibility corpus in `tests/compat/`: manifests written the way the original
//! operator's examples write them. `scripts/crd-conformance.sh` proves the API server
//! accepts each with `crds/`; this test pins exactly which findings the linter reports for
//! each, as `(ruleId, path)` lines in `NAME.findings.txt` beside the manifest.
//!
//! After a deliberate change, `BLOODRAVEN_BLESS=1 cargo nextest run -E 'test(compat_corpus)'`
//! rewrites the expectation files; review the diff before committing it.

use std::path::{Path, PathBuf};

use bloodraven::policy::manifest::parse_stream;
use bloodraven::policy::rules::{BundleContext, Catalog, LintConfig, Linter};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat")
}

/// Every manifest of the corpus, sorted.
fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/compat exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The findings of one file as sorted `RULE-ID /json/pointer` lines.
fn finding_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("readable manifest");
    let stream = parse_stream(Some(&path.display().to_string()), &text);
    assert!(
        stream.errors.is_empty(),
        "{}: {:?}",
        path.display(),
        stream.errors
    );
    let linter = Linter::new(Catalog::builtin().expect("catalog"), LintConfig::default());
    let ctx = BundleContext::of_documents(&stream.documents);
    let report = linter.lint(&stream.documents, Vec::new(), &ctx);
    assert_eq!(
        report.summary.objects_skipped,
        0,
        "{}: every object of the corpus is a bloodraven kind",
        path.display()
    );
    let mut lines: Vec<String> = report
        .findings
        .iter()
        .map(|f| format!("{} {}", f.rule_id, f.path))
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

#[test]
fn the_corpus_covers_the_originals_examples() {
    let names: Vec<String> = corpus_files()
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    for want in [
        "two-site-reader",
        "tls-five-secrets",
        "s3-backups-verification",
        "pvc-backups",
        "playground-three-site",
        "legacy-secretname-dragonfly",
        "adhoc-backup",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "tests/compat/{want}.yaml is missing"
        );
    }
}

#[test]
fn each_manifest_has_exactly_its_expected_findings() {
    let bless = std::env::var_os("BLOODRAVEN_BLESS").is_some();
    let mut drift = Vec::new();
    for file in corpus_files() {
        let got = finding_lines(&file);
        let expected_path = file.with_extension("findings.txt");
        if bless {
            let mut text = got.join("\n");
            text.push('\n');
            std::fs::write(&expected_path, text).expect("writable expectation");
            continue;
        }
        let want: Vec<String> = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        if got != want {
            drift.push(format!(
                "{}:\n  expected {want:#?}\n  got {got:#?}",
                file.display()
            ));
        }
    }
    assert!(drift.is_empty(), "findings drifted:\n{}", drift.join("\n"));
}
