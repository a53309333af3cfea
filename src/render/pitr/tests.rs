use serde_json::{Value, json};

use super::*;
use crate::render::backup::tests::{after, group};

fn with_pitr(pitr: &Value) -> MysqlFailoverGroup {
    let mut group = group();
    group.spec.backup.as_mut().unwrap().pitr = Some(serde_json::from_value(pitr.clone()).unwrap());
    group
}

fn archiver(group: &MysqlFailoverGroup) -> Option<Value> {
    archiver_deployment(group, "op@sha256:1")
        .unwrap()
        .map(|d| serde_json::to_value(d).unwrap())
}

fn container_args(deployment: &Value) -> Vec<String> {
    deployment
        .pointer("/spec/template/spec/containers/0/args")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn no_archiver_without_pitr_enabled() {
    assert!(archiver(&group()).is_none());
    assert!(
        archiver(&with_pitr(
            &json!({"enabled": false, "profileName": "offsite"})
        ))
        .is_none()
    );
}

#[test]
fn the_archiver_follows_the_writer_service_into_the_pitr_profile() {
    let group =
        with_pitr(&json!({"enabled": true, "profileName": "offsite", "archivePollInterval": "5m"}));
    let deployment = archiver(&group).expect("an archiver");
    assert_eq!(
        deployment["metadata"]["name"],
        "mysql-orders-binlog-archiver"
    );
    assert_eq!(
        deployment["metadata"]["ownerReferences"][0]["kind"],
        "MysqlFailoverGroup"
    );
    let a = container_args(&deployment);
    assert_eq!(&a[..2], ["binlog", "archive"]);
    assert_eq!(
        after(&a, "--source"),
        Some("mysql-orders-primary.db.svc:3306")
    );
    assert_eq!(after(&a, "--to"), Some("s3://db-backups/orders"));
    assert_eq!(after(&a, "--interval"), Some("300"));
    assert!(a.iter().any(|x| x == "--rotate"), "{a:?}");
    assert!(a.iter().any(|x| x == "--prune"), "{a:?}");
    assert_eq!(
        after(&a, "--encrypt-passphrase-file"),
        Some("/run/bloodraven/backup-key/passphrase")
    );
    assert_eq!(
        after(&a, "--mysqlbinlog"),
        Some(crate::render::tools::MYSQLBINLOG)
    );
    let pod = deployment.pointer("/spec/template/spec").unwrap();
    assert_eq!(pod["containers"][0]["image"], "mysql:9.7.4");
    assert_eq!(pod["initContainers"][0]["image"], "op@sha256:1");
    assert_eq!(pod["automountServiceAccountToken"], false);
    // The operator's account: reading binary logs needs REPLICATION SLAVE.
    let volumes = pod["volumes"].to_string();
    assert!(volumes.contains("orders-operator"), "{volumes}");
    assert!(!volumes.contains("orders-backup\""), "{volumes}");
    // Not a MySQL pod: no Service, PDB or site selector picks it.
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels[LABEL_NAME], ARCHIVER_APP);
    assert_eq!(labels[LABEL_ARCHIVER], "true");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
}

#[test]
fn a_bad_pitr_spec_is_an_error_saying_which_field() {
    for (pitr, field) in [
        (json!({"enabled": true}), "profileName"),
        (json!({"enabled": true, "profileName": "gone"}), "gone"),
        (
            json!({"enabled": true, "profileName": "offsite", "archivePollInterval": "soon"}),
            "archivePollInterval",
        ),
    ] {
        let e = archiver_deployment(&with_pitr(&pitr), "op").unwrap_err();
        assert!(e.to_string().contains(field), "{e}");
    }
}

#[test]
fn poll_intervals_read_as_seconds() {
    assert_eq!(poll_seconds("60s"), Some(60));
    assert_eq!(poll_seconds("90"), Some(90));
    assert_eq!(poll_seconds("5m"), Some(300));
    assert_eq!(poll_seconds("1h"), Some(3_600));
    for bad in ["0s", "", "s", "1d", "-5s", "1.5m"] {
        assert_eq!(poll_seconds(bad), None, "{bad}");
    }
}

#[test]
fn an_archiver_on_a_volume_serves_its_summary_and_one_on_s3_does_not() {
    let on_volume = archiver(&with_pitr(
        &json!({"enabled": true, "profileName": "local"}),
    ))
    .unwrap();
    let a = container_args(&on_volume);
    assert_eq!(after(&a, "--to"), Some("file:///backups/orders"), "{a:?}");
    assert_eq!(after(&a, "--status-listen"), Some("0.0.0.0:8085"), "{a:?}");
    let container = on_volume
        .pointer("/spec/template/spec/containers/0")
        .unwrap();
    assert_eq!(container["name"], ARCHIVER_CONTAINER);
    assert_eq!(
        container["ports"],
        json!([{"name": "archive-status", "containerPort": 8085, "protocol": "TCP"}])
    );

    let on_s3 = archiver(&with_pitr(
        &json!({"enabled": true, "profileName": "offsite"}),
    ))
    .unwrap();
    let a = container_args(&on_s3);
    assert!(!a.iter().any(|x| x == "--status-listen"), "{a:?}");
    assert!(
        on_s3
            .pointer("/spec/template/spec/containers/0/ports")
            .is_none(),
        "{on_s3}"
    );
}
