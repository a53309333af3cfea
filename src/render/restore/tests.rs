use serde_json::{Value, json};

use super::*;
use crate::render::backup::tests::{after, args, backup, group};

fn inputs(source: &Value) -> RestoreInputs {
    serde_json::from_value(json!({"source": source})).unwrap()
}

fn succeeded(mut b: MysqlBackup, location: &str) -> MysqlBackup {
    b.status =
        Some(serde_json::from_value(json!({"phase": "Succeeded", "location": location})).unwrap());
    b
}

fn job(
    group: &MysqlFailoverGroup,
    inputs: &RestoreInputs,
    source: &RestoreSource,
    kind: RestoreKind,
) -> Value {
    let job = restore_job(&RestoreJobInput {
        group,
        kind,
        inputs,
        source,
        target_site: "iad",
        target_address: "mysql-orders-iad-internal.db.svc:3306",
        run: "2026-12-02T10:00:00Z",
        image: "ghcr.io/example/bloodraven@sha256:abc",
    })
    .unwrap();
    serde_json::to_value(job).unwrap()
}

#[test]
fn a_backup_reference_restores_from_its_profile_repository() {
    let group = group();
    let b = succeeded(
        backup("nightly-1", "0a1b2c3d-0000"),
        "s3://db-backups/orders/backups/nightly-1-0a1b2c3d/",
    );
    let inputs = inputs(&json!({"mysqlBackupRef": {"name": "nightly-1"}}));
    let source = resolve_source(&group, &inputs, Some(&b)).unwrap();
    assert_eq!(source.id, "nightly-1-0a1b2c3d");
    assert_eq!(source.profile_label, "offsite");
    let in_place = job(&group, &inputs, &source, RestoreKind::InPlace);
    let a = args(&in_place);
    assert_eq!(&a[..2], ["backup", "restore"]);
    assert_eq!(after(&a, "--from"), Some("s3://db-backups/orders"));
    assert_eq!(after(&a, "--id"), Some("nightly-1-0a1b2c3d"));
    assert_eq!(
        after(&a, "--target"),
        Some("mysql-orders-iad-internal.db.svc:3306")
    );
    assert_eq!(
        after(&a, "--s3-endpoint"),
        Some("http://minio.storage:9000")
    );
    assert_eq!(
        after(&a, "--passphrase-file"),
        Some("/run/bloodraven/backup-key/passphrase")
    );
    assert!(a.contains(&"--replace-schemas".to_owned()));
    assert!(!a.contains(&"--reset-gtids".to_owned()));
    // The operator's account, never the backup account: the load writes.
    let volumes = in_place
        .pointer("/spec/template/spec/volumes")
        .unwrap()
        .to_string();
    assert!(
        volumes.contains("orders-operator") && !volumes.contains("orders-backup\""),
        "{volumes}"
    );
    assert_eq!(in_place.pointer("/spec/backoffLimit"), Some(&json!(0)));
    assert_eq!(
        in_place.pointer("/metadata/ownerReferences/0/kind"),
        Some(&json!("MysqlFailoverGroup"))
    );
    assert_eq!(
        in_place.pointer("/spec/template/spec/automountServiceAccountToken"),
        Some(&json!(false))
    );
    let init = job(&group, &inputs, &source, RestoreKind::InitFromBackup);
    let a = args(&init);
    assert!(
        a.contains(&"--reset-gtids".to_owned()) && !a.contains(&"--replace-schemas".to_owned())
    );
    assert_ne!(
        init.pointer("/metadata/name"),
        in_place.pointer("/metadata/name")
    );
}

#[test]
fn a_backup_reference_must_be_succeeded_known_and_stored_where_its_profile_reads() {
    let group = group();
    let inputs = inputs(&json!({"mysqlBackupRef": {"name": "nightly-1"}}));
    let missing = resolve_source(&group, &inputs, None)
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("no MysqlBackup \"nightly-1\""),
        "{missing}"
    );
    let running = backup("nightly-1", "0a1b2c3d-0000");
    let e = resolve_source(&group, &inputs, Some(&running))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not Succeeded"), "{e}");
    let elsewhere = succeeded(
        backup("nightly-1", "0a1b2c3d-0000"),
        "s3://other/backups/x/",
    );
    let e = resolve_source(&group, &inputs, Some(&elsewhere))
        .unwrap_err()
        .to_string();
    assert!(e.contains("stored at s3://other"), "{e}");
    let mut unknown = succeeded(backup("nightly-1", "0a1b2c3d-0000"), "s3://x/");
    unknown.spec.profile_name = "gone".into();
    let e = resolve_source(&group, &inputs, Some(&unknown))
        .unwrap_err()
        .to_string();
    assert!(e.contains("profile \"gone\""), "{e}");
}

#[test]
fn s3_and_pvc_sources_name_one_backup_directory() {
    let group = group();
    let s3 = inputs(
        &json!({"s3": {"bucket": "dr", "prefix": "/site-a/orders/backups/b-1234/",
        "endpointURL": "http://minio:9000", "credentialsSecret": "dr-s3"},
        }),
    );
    let mut s3 = s3;
    s3.decryption =
        Some(serde_json::from_value(json!({"passphraseSecret": {"name": "dr-key"}})).unwrap());
    let source = resolve_source(&group, &s3, None).unwrap();
    assert_eq!(
        (source.id.as_str(), source.profile_label.as_str()),
        ("b-1234", EXTERNAL_PROFILE)
    );
    let j = job(&group, &s3, &source, RestoreKind::InitFromBackup);
    let a = args(&j);
    assert_eq!(after(&a, "--from"), Some("s3://dr/site-a/orders"));
    assert_eq!(
        after(&a, "--s3-credentials-dir"),
        Some("/run/bloodraven/aws-creds")
    );
    assert!(
        j.to_string().contains("dr-key"),
        "the decryption secret is mounted"
    );

    let pvc =
        inputs(&json!({"pvc": {"claimName": "old-backups", "subPath": "orders/backups/b-9"}}));
    let source = resolve_source(&group, &pvc, None).unwrap();
    let j = job(&group, &pvc, &source, RestoreKind::InPlace);
    assert_eq!(after(&args(&j), "--from"), Some("file:///backups/orders"));
    assert!(j.to_string().contains("\"claimName\":\"old-backups\""));

    for bad in ["orders", "orders/backups", "backups/..", "../backups/x", ""] {
        let s = inputs(&json!({"pvc": {"claimName": "c", "subPath": bad}}));
        assert!(
            resolve_source(&group, &s, None).is_err(),
            "{bad:?} accepted"
        );
    }
}

#[test]
fn per_schema_and_point_in_time_restores_are_refused_with_why() {
    let group = group();
    let b = succeeded(
        backup("nightly-1", "0a1b2c3d-0000"),
        "s3://db-backups/orders/backups/nightly-1-0a1b2c3d/",
    );
    for extra in [
        json!({"loadOptions": {"includeSchemas": ["shop"]}}),
        json!({"pointInTime": {"stopDatetime": "2026-12-01T00:00:00Z"}}),
    ] {
        let mut value = json!({"source": {"mysqlBackupRef": {"name": "nightly-1"}}});
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let inputs: RestoreInputs = serde_json::from_value(value).unwrap();
        let source = resolve_source(&group, &inputs, Some(&b)).unwrap();
        let e = restore_job(&RestoreJobInput {
            group: &group,
            kind: RestoreKind::InPlace,
            inputs: &inputs,
            source: &source,
            target_site: "iad",
            target_address: "a:3306",
            run: "t",
            image: "i",
        })
        .unwrap_err();
        assert!(matches!(e, RenderError::Restore(_)), "{e}");
    }
}

#[test]
fn job_names_fit_and_differ_per_token() {
    let long = "g".repeat(80);
    for kind in [RestoreKind::InitFromBackup, RestoreKind::InPlace] {
        assert!(job_name(&long, kind, "2026-12-02T10:00:00Z").len() <= 63);
    }
    assert_ne!(
        job_name("orders", RestoreKind::InPlace, "2026-12-02T10:00:00Z"),
        job_name("orders", RestoreKind::InPlace, "2026-12-02T10:00:01Z")
    );
    assert_eq!(
        job_name("orders", RestoreKind::InitFromBackup, "x"),
        "restore-orders-init"
    );
}
