//! `bloodraven lint` as a user runs it: the real binary, exit codes, formats, stdin, --fix.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bloodraven(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bloodraven"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("binary finishes")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

#[test]
fn exit_codes_follow_fail_on() {
    assert_eq!(
        code(&bloodraven(
            &["lint", "docs/examples/production-ready.yaml"],
            None
        )),
        0
    );
    let dir = bloodraven(&["lint", "docs/examples/"], None);
    assert_eq!(code(&dir), 1, "{}", String::from_utf8_lossy(&dir.stdout));
    assert_eq!(
        code(&bloodraven(
            &["lint", "--fail-on", "none", "docs/examples/"],
            None
        )),
        0
    );
    // The good example still has no recommended findings either.
    assert_eq!(
        code(&bloodraven(
            &[
                "lint",
                "--fail-on",
                "recommended",
                "docs/examples/production-ready.yaml"
            ],
            None
        )),
        0
    );
    assert_eq!(code(&bloodraven(&["lint", "/no/such/path"], None)), 2);
    assert_eq!(
        code(&bloodraven(&["lint", "--format", "yaml", "docs"], None)),
        2
    );
}

#[test]
fn parse_errors_exit_2_with_location_and_other_input_is_still_linted() {
    let out = bloodraven(
        &["lint", "-f", "json", "-"],
        Some(
            "apiVersion: shipstream.io/v1alpha1\nkind: MysqlFailoverGroup\nmetadata: {name: a}\nspec: {image: mysql:latest}\n---\nkind: [broken\n",
        ),
    );
    assert_eq!(code(&out), 2);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["summary"]["parseErrors"], 1);
    assert!(
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["ruleId"] == "BR-IMG-001")
    );
    let e = &report["parseErrors"][0];
    assert!(e["line"].as_u64().is_some_and(|l| l >= 6), "{e}");
    assert!(e["column"].as_u64().is_some(), "{e}");
}

#[test]
fn json_findings_carry_every_field() {
    let out = bloodraven(&["lint", "-f", "json", "docs/examples/bad.yaml"], None);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json report");
    let f = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["ruleId"] == "BR-TLS-001")
        .expect("BR-TLS-001");
    assert_eq!(f["level"], "required");
    assert_eq!(f["path"], "/spec/tls");
    assert_eq!(f["file"], "docs/examples/bad.yaml");
    assert_eq!(f["line"], 7);
    assert_eq!(f["object"]["kind"], "MysqlFailoverGroup");
    assert_eq!(f["object"]["namespace"], "legacy");
    assert_eq!(f["object"]["name"], "legacy");
    assert!(
        f["remediation"]
            .as_str()
            .is_some_and(|r| r.contains("cert-manager"))
    );
}

#[test]
fn fix_fills_defaults_in_place_keeping_comments_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("group.yaml");
    let original = "# our orders database\napiVersion: shipstream.io/v1alpha1\nkind: MysqlFailoverGroup\nmetadata:\n  name: orders  # keep\nspec:\n  image: mysql:9.7.4\n  podSecurityContext:\n    fsGroup: 999\n    runAsNonRoot: true\n  backup:\n    pitr:\n      enabled: true\n      profileName: p\n";
    std::fs::write(&path, original).expect("write");
    let p = path.to_str().expect("utf-8 path");

    let dry = bloodraven(&["lint", "--fix", "--dry-run", p], None);
    assert_eq!(code(&dry), 0);
    assert!(String::from_utf8_lossy(&dry.stdout).contains("/spec/failoverCooldown"));
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        original,
        "--dry-run writes nothing"
    );

    bloodraven(&["lint", "--fix", "--fail-on", "none", p], None);
    let fixed = std::fs::read_to_string(&path).expect("read");
    assert!(fixed.starts_with("# our orders database\n"), "{fixed}");
    assert!(fixed.contains("  name: orders  # keep\n"), "{fixed}");
    assert!(
        fixed.contains("    fsGroupChangePolicy: OnRootMismatch\n"),
        "{fixed}"
    );
    assert!(fixed.contains("      maxBinlogSize: 100M\n"), "{fixed}");
    assert!(fixed.contains("  failoverCooldown: 5m\n"), "{fixed}");
    assert!(
        fixed.contains("  updateStrategy: OrderedUpdate\n"),
        "{fixed}"
    );

    bloodraven(&["lint", "--fix", "--fail-on", "none", p], None);
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        fixed,
        "a second --fix changes nothing"
    );
    assert_eq!(
        code(&bloodraven(&["lint", "--fix", "-"], Some("kind: X\n"))),
        2,
        "stdin cannot be fixed in place"
    );
}

#[test]
fn rules_and_crds_commands() {
    let rules = bloodraven(&["rules"], None);
    let list: Value = serde_json::from_slice(&rules.stdout).expect("rules json");
    assert!(list.as_array().is_some_and(|l| l.len() >= 40));
    let check = bloodraven(&["crds", "--out", "crds", "--check"], None);
    assert_eq!(
        code(&check),
        0,
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
