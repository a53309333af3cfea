//! The rendered objects checked by real tools, on the golden cases of `render_golden`:
//! - `kubernetes-validate` (PyPI; the upstream OpenAPI schemas, strict: unknown fields are
//!   errors) against Kubernetes 1.36 and against the newest version it ships. The
//!   DNSEndpoint is skipped there: it is external-dns's custom kind, which the tool has no
//!   schema for.
//! - `bloodraven lint` (the built binary): the product's own hardening checklist finds
//!   nothing required in what its operator writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::render_golden::{CASES, load_group, render_values, to_yaml};
use crate::support::tools::{dep_tool, output_text};

const K8S_VERSION: &str = "1.36.0";

fn kubernetes_validate() -> PathBuf {
    dep_tool("kubernetes-validate")
}

fn run(mut command: Command) -> Output {
    command.output().expect("the tool runs")
}

/// Writes `values` (one object per file, so a failure names the object) and validates them.
fn validate(dir: &Path, values: &[Value], version: Option<&str>) -> Output {
    let mut files = Vec::new();
    for v in values {
        let file = dir.join(format!(
            "{}-{}.yaml",
            v["kind"].as_str().unwrap(),
            v["metadata"]["name"].as_str().unwrap()
        ));
        std::fs::write(&file, to_yaml(std::slice::from_ref(v))).unwrap();
        files.push(file);
    }
    let mut command = Command::new(kubernetes_validate());
    command.arg("--strict");
    if let Some(version) = version {
        command.args(["--kubernetes-version", version]);
    }
    command.args(&files);
    run(command)
}

fn without_dns(values: Vec<Value>) -> Vec<Value> {
    values
        .into_iter()
        .filter(|v| v["kind"] != "DNSEndpoint")
        .collect()
}

#[test]
fn render_objects_pass_kubernetes_validate() {
    for (case, active) in CASES {
        let values = without_dns(render_values(&load_group(case), active));
        assert!(values.len() >= 12, "{case}: {} objects", values.len());
        let dir = tempfile::tempdir().unwrap();
        for version in [Some(K8S_VERSION), None] {
            let out = validate(dir.path(), &values, version);
            assert!(
                out.status.success(),
                "{case} against {version:?}:\n{}",
                output_text(&out)
            );
        }
    }
}

#[test]
fn render_kubernetes_validate_catches_a_broken_object() {
    // Proves the check above can fail: the same Deployment with a field of the wrong type,
    // or with an unknown field (the tool stops at the first error, so one at a time), is
    // refused.
    let (case, active) = CASES[0];
    let values = without_dns(render_values(&load_group(case), active));
    let deployment = values.iter().find(|v| v["kind"] == "Deployment").unwrap();
    let mut wrong_type = deployment.clone();
    wrong_type["spec"]["replicas"] = Value::from("one");
    let mut unknown_field = deployment.clone();
    unknown_field["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] =
        Value::from("Always");
    for (broken, field) in [(wrong_type, "replicas"), (unknown_field, "imagePullPolcy")] {
        let dir = tempfile::tempdir().unwrap();
        let out = validate(dir.path(), &[broken], Some(K8S_VERSION));
        assert!(!out.status.success(), "{field}: {}", output_text(&out));
        assert!(output_text(&out).contains(field), "{}", output_text(&out));
    }
}

fn lint(yaml: &str) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, yaml).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_bloodraven"));
    command.args(["lint", "--format", "json"]).arg(&file);
    let out = run(command);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("lint JSON: {e}\n{}", output_text(&out)));
    (out.status.code().expect("exit code"), report)
}

fn required_findings(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == "required")
        .map(|f| format!("{} {} {}", f["ruleId"], f["object"]["name"], f["message"]))
        .collect()
}

#[test]
fn render_objects_pass_bloodraven_lint() {
    for (case, active) in CASES {
        let group = load_group(case);
        let values = render_values(&group, active);
        let (code, report) = lint(&to_yaml(&values));
        assert_eq!(required_findings(&report), Vec::<String>::new(), "{case}");
        assert_eq!(code, 0, "{case}: {report}");
        assert_eq!(report["summary"]["parseErrors"], 0, "{case}");
        // The Deployments are objects the catalog's workload rules apply to.
        assert_eq!(
            report["summary"]["objectsChecked"],
            group.spec.sites.len(),
            "{case}: {}",
            report["summary"]
        );
    }
}

#[test]
fn render_lint_flags_an_unpinned_image() {
    // Proves the lint check above is not vacuous: the same group with a floating MySQL tag
    // renders Deployments with a required finding.
    let (case, active) = CASES[0];
    let mut group = load_group(case);
    group.spec.image = "mysql:latest".to_owned();
    let (code, report) = lint(&to_yaml(&render_values(&group, active)));
    assert_eq!(code, 1, "{report}");
    let required = required_findings(&report);
    // Both the init container and mysqld run the image, in every site's Deployment.
    assert_eq!(required.len(), group.spec.sites.len() * 2, "{required:?}");
    assert!(
        required.iter().all(|f| f.contains("BR-WL-001")),
        "{required:?}"
    );
}

/// The backup objects (`render::backup`): the Job of a MysqlBackup and the CronJobs of the
/// schedules, for an S3 profile with encryption and a PVC profile.
fn backup_values() -> Vec<Value> {
    use bloodraven::api::{MysqlBackup, MysqlFailoverGroup};
    use bloodraven::render::backup::{BackupJobInput, backup_job, profile, schedule_cron_jobs};
    let group: MysqlFailoverGroup = serde_json::from_value(serde_json::json!({
        "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlFailoverGroup",
        "metadata": {"name": "orders", "namespace": "db", "uid": "0b9c4f6e-1111"},
        "spec": {
            "image": format!("mysql@sha256:{}", "cd".repeat(32)),
            "sites": [{"name": "iad"}, {"name": "pdx"}],
            "dns": {"hostname": "orders.example.com"},
            "credentials": {"operatorSecret": "orders-operator"},
            "backup": {
                "stagingVolumeSizeLimit": "20Gi",
                "profiles": [
                    {"name": "offsite", "storage": {"type": "S3", "s3": {"bucket": "b",
                        "credentialsSecret": "s3", "endpointURL": "https://s3.example.com"}},
                     "encryption": {"passphraseSecret": {"name": "key"}}},
                    {"name": "local", "storage": {"type": "PVC", "pvc": {"claimName": "backups"}}}
                ],
                "schedules": [{"name": "nightly", "profileName": "offsite", "schedule": "0 3 * * *"},
                              {"name": "hourly", "profileName": "local", "schedule": "0 * * * *",
                               "startingDeadlineSeconds": 300}],
                "pitr": {"enabled": true, "profileName": "offsite", "archivePollInterval": "30s"}
            }
        }
    }))
    .unwrap();
    let backup: MysqlBackup = serde_json::from_value(serde_json::json!({
        "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlBackup",
        "metadata": {"name": "orders-manual", "namespace": "db", "uid": "77aa-bb"},
        "spec": {"failoverGroupRef": {"name": "orders"}, "profileName": "offsite"}
    }))
    .unwrap();
    let image = format!("ghcr.io/example/bloodraven@sha256:{}", "ab".repeat(32));
    let spec = group.spec.backup.as_ref().unwrap();
    let mut values = Vec::new();
    for name in ["offsite", "local"] {
        let job = backup_job(&BackupJobInput {
            group: &group,
            backup: &backup,
            profile: profile(spec, name).unwrap(),
            source_site: "pdx",
            source_address: "mysql-orders-pdx-internal.db.svc:3306",
            image: &image,
        })
        .unwrap();
        let mut value = serde_json::to_value(job).unwrap();
        // One file per object: the two Jobs share a name (one backup, two profiles here).
        value["metadata"]["name"] = Value::from(format!("backup-{name}"));
        values.push(value);
    }
    for cron in schedule_cron_jobs(&group, &image, "bloodraven-backup-trigger").unwrap() {
        values.push(serde_json::to_value(cron).unwrap());
    }
    let verification: bloodraven::api::MysqlBackupVerification =
        serde_json::from_value(serde_json::json!({
            "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlBackupVerification",
            "metadata": {"name": "orders-verify", "namespace": "db", "uid": "99cc"},
            "spec": {"failoverGroupRef": {"name": "orders"}, "profileName": "offsite",
                     "storage": {"storageClassName": "fast"},
                     "sanityCheck": {"query": "SELECT 1"}}
        }))
        .unwrap();
    let job = bloodraven::render::verification::verification_job(
        &bloodraven::render::verification::VerificationJobInput {
            group: &group,
            verification: &verification,
            profile: profile(spec, "offsite").unwrap(),
            backup_id: "orders-manual-77aabb",
            backup_bytes: 25 << 30,
            image: &image,
        },
    )
    .unwrap();
    values.push(serde_json::to_value(job).unwrap());
    values.extend(two_image_values(&group, &backup, &verification, &image));
    values
}

/// The two-image pods (the operator's binary copied onto the MySQL image): a verification
/// that replays, a point-in-time restore, and the binary-log archiver.
fn two_image_values(
    group: &bloodraven::api::MysqlFailoverGroup,
    backup: &bloodraven::api::MysqlBackup,
    verification: &bloodraven::api::MysqlBackupVerification,
    image: &str,
) -> Vec<Value> {
    use bloodraven::render::backup::profile;
    let spec = group.spec.backup.as_ref().unwrap();
    let mut values = Vec::new();
    let mut replaying = verification.clone();
    replaying.metadata.name = Some("orders-verify-pitr".to_owned());
    replaying.spec.point_in_time =
        Some(serde_json::from_value(serde_json::json!({"mode": "latest"})).unwrap());
    let job = bloodraven::render::verification::verification_job(
        &bloodraven::render::verification::VerificationJobInput {
            group,
            verification: &replaying,
            profile: profile(spec, "offsite").unwrap(),
            backup_id: "orders-manual-77aabb",
            backup_bytes: 25 << 30,
            image,
        },
    )
    .unwrap();
    values.push(serde_json::to_value(job).unwrap());
    let inputs: bloodraven::api::restore::RestoreInputs =
        serde_json::from_value(serde_json::json!({
            "source": {"mysqlBackupRef": {"name": "orders-manual"}},
            "pointInTime": {"stopDatetime": "2026-12-01 10:30:00"}
        }))
        .unwrap();
    let mut succeeded = backup.clone();
    succeeded.status = Some(
        serde_json::from_value(serde_json::json!({"phase": "Succeeded",
            "location": "s3://b/backups/orders-manual-77aabb/"}))
        .unwrap(),
    );
    let source =
        bloodraven::render::restore::resolve_source(group, &inputs, Some(&succeeded)).unwrap();
    let job =
        bloodraven::render::restore::restore_job(&bloodraven::render::restore::RestoreJobInput {
            group,
            kind: bloodraven::backup::restore_run::RestoreKind::InPlace,
            inputs: &inputs,
            source: &source,
            target_site: "iad",
            target_address: "mysql-orders-iad-internal.db.svc:3306",
            run: "2026-12-02T10:00:00Z",
            image,
        })
        .unwrap();
    values.push(serde_json::to_value(job).unwrap());
    let archiver = bloodraven::render::pitr::archiver_deployment(group, image)
        .unwrap()
        .expect("PITR is on");
    values.push(serde_json::to_value(archiver).unwrap());
    values
}

#[test]
fn render_backup_objects_pass_kubernetes_validate_and_bloodraven_lint() {
    let values = backup_values();
    assert_eq!(values.len(), 8);
    let dir = tempfile::tempdir().unwrap();
    for version in [Some(K8S_VERSION), None] {
        let out = validate(dir.path(), &values, version);
        assert!(out.status.success(), "{version:?}:\n{}", output_text(&out));
    }
    let (code, report) = lint(&to_yaml(&values));
    assert_eq!(required_findings(&report), Vec::<String>::new());
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["summary"]["parseErrors"], 0);
}
