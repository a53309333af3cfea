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

fn with(extra: &Value) -> RestoreInputs {
    let mut value = json!({"source": {"mysqlBackupRef": {"name": "nightly-1"}}});
    value
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(value).unwrap()
}

fn render(group: &MysqlFailoverGroup, inputs: &RestoreInputs) -> Result<Value, RenderError> {
    let b = succeeded(
        backup("nightly-1", "0a1b2c3d-0000"),
        "s3://db-backups/orders/backups/nightly-1-0a1b2c3d/",
    );
    let source = resolve_source(group, inputs, Some(&b))?;
    restore_job(&RestoreJobInput {
        group,
        kind: RestoreKind::InPlace,
        inputs,
        source: &source,
        target_site: "iad",
        target_address: "a:3306",
        run: "t",
        image: "op@sha256:1",
    })
    .map(|job| serde_json::to_value(job).unwrap())
}

fn with_pitr(profile: &str) -> MysqlFailoverGroup {
    let mut group = group();
    group.spec.backup.as_mut().unwrap().pitr =
        Some(serde_json::from_value(json!({"enabled": true, "profileName": profile})).unwrap());
    group
}

fn render_as(
    group: &MysqlFailoverGroup,
    kind: RestoreKind,
    inputs: &RestoreInputs,
) -> Result<Vec<String>, RenderError> {
    let b = succeeded(
        backup("nightly-1", "0a1b2c3d-0000"),
        "s3://db-backups/orders/backups/nightly-1-0a1b2c3d/",
    );
    let source = resolve_source(group, inputs, Some(&b))?;
    let job = restore_job(&RestoreJobInput {
        group,
        kind,
        inputs,
        source: &source,
        target_site: "iad",
        target_address: "a:3306",
        run: "t",
        image: "op@sha256:1",
    })?;
    Ok(args(&serde_json::to_value(job).unwrap()))
}

fn has(args: &[String], flag: &str) -> bool {
    args.iter().any(|a| a == flag)
}

#[test]
fn one_schema_in_place_drops_and_loads_only_it_keeping_the_gtid_history() {
    let inputs = with(&json!({"loadOptions": {"includeSchemas": ["shop"]}}));
    assert_eq!(
        scope(RestoreKind::InPlace, &inputs).unwrap(),
        RestoreScope::Schema("shop".into())
    );
    let a = render_as(&group(), RestoreKind::InPlace, &inputs).unwrap();
    let at = a.iter().position(|x| x == "--include-schema").unwrap();
    assert_eq!(
        a[at..at + 3],
        ["--include-schema", "shop", "--replace-schemas"]
    );
    assert!(
        !has(&a, "--reset-gtids"),
        "the target keeps its history: {a:?}"
    );
    assert!(!has(&a, "--exclude-schema"), "{a:?}");
    // A name given twice is still one schema, passed once.
    let twice = with(&json!({"loadOptions": {"includeSchemas": ["shop", "shop"]}}));
    assert_eq!(
        scope(RestoreKind::InPlace, &twice).unwrap(),
        RestoreScope::Schema("shop".into())
    );
    let a = render_as(&group(), RestoreKind::InPlace, &twice).unwrap();
    assert_eq!(a.iter().filter(|x| *x == "--include-schema").count(), 1);
}

#[test]
fn without_a_selection_both_kinds_restore_everything() {
    for extra in [
        json!({}),
        json!({"loadOptions": {"threads": 2}}),
        json!({"loadOptions": {"includeSchemas": [], "excludeSchemas": []}}),
    ] {
        let inputs = with(&extra);
        for kind in [RestoreKind::InitFromBackup, RestoreKind::InPlace] {
            assert_eq!(scope(kind, &inputs).unwrap(), RestoreScope::Full);
            let a = render_as(&group(), kind, &inputs).unwrap();
            assert!(!has(&a, "--include-schema") && !has(&a, "--exclude-schema"));
        }
    }
}

#[test]
fn init_from_backup_takes_any_selection_and_still_resets_the_history() {
    let inputs = with(&json!({"loadOptions": {
        "includeSchemas": ["shop", "billing"], "excludeSchemas": ["scratch"]}}));
    assert_eq!(
        scope(RestoreKind::InitFromBackup, &inputs).unwrap(),
        RestoreScope::Full,
        "a new primary's peers are recloned whatever it loads"
    );
    let a = render_as(&group(), RestoreKind::InitFromBackup, &inputs).unwrap();
    let selected: Vec<(&str, &str)> = a
        .windows(2)
        .filter(|w| w[0].ends_with("-schema"))
        .map(|w| (w[0].as_str(), w[1].as_str()))
        .collect();
    assert_eq!(
        selected,
        [
            ("--include-schema", "shop"),
            ("--include-schema", "billing"),
            ("--exclude-schema", "scratch")
        ]
    );
    assert!(
        has(&a, "--reset-gtids") && !has(&a, "--replace-schemas"),
        "{a:?}"
    );
}

#[test]
fn an_in_place_selection_other_than_one_included_schema_is_refused_saying_why() {
    for (extra, why) in [
        (
            json!({"includeSchemas": ["shop", "billing"]}),
            "names 2 schemas (billing, shop)",
        ),
        (
            json!({"excludeSchemas": ["scratch"]}),
            "dropped and never loaded back",
        ),
        (
            json!({"includeSchemas": ["shop"], "excludeSchemas": ["scratch"]}),
            "excludeSchemas is refused",
        ),
        (json!({"includeSchemas": [""]}), "a schema name is empty"),
        (json!({"excludeSchemas": [" "]}), "a schema name is empty"),
    ] {
        let inputs = with(&json!({"loadOptions": extra}));
        let e = scope(RestoreKind::InPlace, &inputs).unwrap_err();
        assert!(
            matches!(&e, RenderError::Restore(m) if m.contains(why)),
            "{extra}: {e}"
        );
        // The Job is never made from them: the run fails before anything is touched.
        assert!(render_as(&group(), RestoreKind::InPlace, &inputs).is_err());
    }
    let empty = with(&json!({"loadOptions": {"includeSchemas": [""]}}));
    assert!(scope(RestoreKind::InitFromBackup, &empty).is_err());
}

#[test]
fn a_selection_never_goes_with_a_point_in_time_replay() {
    // With the archive in place, so only the combination is refused.
    let group = with_pitr("offsite");
    for selection in [
        json!({"includeSchemas": ["shop"]}),
        json!({"excludeSchemas": ["scratch"]}),
    ] {
        let inputs = with(&json!({"loadOptions": selection,
            "pointInTime": {"stopDatetime": "2026-12-01T10:30:00Z"}}));
        for kind in [RestoreKind::InitFromBackup, RestoreKind::InPlace] {
            let e = render_as(&group, kind, &inputs).unwrap_err();
            assert!(
                matches!(&e, RenderError::Restore(m) if m.contains("mysqlbinlog --database")),
                "{e}"
            );
        }
    }
    let whole = with(&json!({"pointInTime": {"stopDatetime": "2026-12-01T10:30:00Z"}}));
    assert!(render_as(&group, RestoreKind::InPlace, &whole).is_ok());
}

#[test]
fn point_in_time_without_the_archive_is_a_build_failure_saying_why() {
    let inputs = with(&json!({"pointInTime": {"stopDatetime": "2026-12-01T00:00:00Z"}}));
    let e = render(&group(), &inputs).unwrap_err();
    assert!(
        matches!(&e, RenderError::Restore(m) if m.contains("spec.backup.pitr.enabled")),
        "{e}"
    );
    let mut off = with_pitr("offsite");
    off.spec
        .backup
        .as_mut()
        .unwrap()
        .pitr
        .as_mut()
        .unwrap()
        .enabled = false;
    assert!(render(&off, &inputs).is_err());
    // The archive goes to another repository than the backup's: nothing to replay there.
    let e = render(&with_pitr("local"), &inputs).unwrap_err();
    assert!(e.to_string().contains("file:///backups/orders"), "{e}");
    let e = render(&with_pitr("gone"), &inputs).unwrap_err();
    assert!(e.to_string().contains("names no profile"), "{e}");
    for bad in [
        json!({"pointInTime": {"stopDatetime": "yesterday"}}),
        json!({"pointInTime": {"stopDatetime": "2026-12-01 00:00:00", "excludeGtids": "nope"}}),
    ] {
        let e = render(&with_pitr("offsite"), &with(&bad)).unwrap_err();
        assert!(matches!(e, RenderError::Restore(_)), "{e}");
    }
}

#[test]
fn a_point_in_time_restore_replays_on_the_mysql_image_with_the_copied_binary() {
    let group = with_pitr("offsite");
    let inputs = with(&json!({"pointInTime": {
        "stopDatetime": "2026-12-01 10:30:00",
        "excludeGtids": "3e11fa47-71ca-11e1-9e33-c80aa9429562:5"}}));
    let job = render(&group, &inputs).unwrap();
    let a = args(&job);
    assert_eq!(after(&a, "--until-time"), Some("2026-12-01T10:30:00Z"));
    assert_eq!(
        after(&a, "--exclude-gtids"),
        Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:5")
    );
    assert_eq!(
        after(&a, "--mysqlbinlog"),
        Some(crate::render::tools::MYSQLBINLOG)
    );
    assert_eq!(after(&a, "--mysql"), Some(crate::render::tools::MYSQL));
    // The record of what was replayed also goes to the termination message, for a
    // repository on a volume the operator does not mount.
    assert_eq!(after(&a, "--termination-log"), Some("/dev/termination-log"));
    let pod = job.pointer("/spec/template/spec").unwrap();
    assert_eq!(pod["containers"][0]["terminationMessagePolicy"], "File");
    assert_eq!(pod["containers"][0]["image"], "mysql:9.7.4");
    assert_eq!(
        pod["containers"][0]["command"],
        json!([crate::render::tools::COPIED_BINARY])
    );
    assert_eq!(pod["initContainers"][0]["image"], "op@sha256:1");
    assert_eq!(pod["initContainers"][0]["args"][0], "copy-self");
    assert_eq!(
        stop_datetime(&inputs).as_deref(),
        Some("2026-12-01T10:30:00Z")
    );
    // Without pointInTime the Job stays on the operator's image, with no init container.
    let plain = render(&group, &with(&json!({}))).unwrap();
    let pod = plain.pointer("/spec/template/spec").unwrap();
    assert_eq!(pod["containers"][0]["image"], "op@sha256:1");
    assert!(pod.get("initContainers").is_none());
    assert!(!args(&plain).contains(&"--until-time".to_owned()));
    assert!(!args(&plain).contains(&"--record-as".to_owned()));
    assert!(!args(&plain).contains(&"--termination-log".to_owned()));
}

#[test]
fn an_archive_in_its_own_s3_repository_is_read_there_with_its_own_secrets() {
    let mut group = with_pitr("binlogs");
    group.spec.backup.as_mut().unwrap().profiles.push(
        serde_json::from_value(json!({"name": "binlogs", "storage": {"type": "S3", "s3": {
            "bucket": "db-binlogs", "prefix": "orders", "region": "us-east-2",
            "endpointURL": "http://other.storage:9000", "credentialsSecret": "binlogs-s3"}},
            "encryption": {"passphraseSecret": {"name": "binlogs-key", "key": "k"}}}))
        .unwrap(),
    );
    let inputs = with(&json!({"pointInTime": {"stopDatetime": "2026-12-01T10:30:00Z"}}));
    let job = render(&group, &inputs).unwrap();
    let a = args(&job);
    // The backup is still read from its own repository, with its own secrets.
    assert_eq!(after(&a, "--from"), Some("s3://db-backups/orders"));
    assert_eq!(
        after(&a, "--s3-credentials-dir"),
        Some("/run/bloodraven/aws-creds")
    );
    assert_eq!(after(&a, "--binlogs-from"), Some("s3://db-binlogs/orders"));
    assert_eq!(
        after(&a, "--binlogs-s3-endpoint"),
        Some("http://other.storage:9000")
    );
    assert_eq!(after(&a, "--binlogs-s3-region"), Some("us-east-2"));
    let creds = after(&a, "--binlogs-s3-credentials-dir").unwrap();
    let key = after(&a, "--binlogs-passphrase-file").unwrap();
    assert_ne!(creds, "/run/bloodraven/aws-creds");
    let pod = job.pointer("/spec/template/spec").unwrap();
    let volumes = pod["volumes"].as_array().unwrap();
    let secret_of = |name: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == name)
            .and_then(|v| v["secret"]["secretName"].as_str())
            .map(str::to_owned)
    };
    assert_eq!(
        secret_of("binlogs-aws-creds").as_deref(),
        Some("binlogs-s3")
    );
    assert_eq!(secret_of("binlogs-key").as_deref(), Some("binlogs-key"));
    let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
    for (volume, path) in [
        ("binlogs-aws-creds", creds),
        ("binlogs-key", key.trim_end_matches("/passphrase")),
    ] {
        assert!(
            mounts
                .iter()
                .any(|m| m["name"] == volume && m["mountPath"] == path),
            "{volume} at {path}: {mounts:?}"
        );
    }
    // In the backup's own repository, none of it.
    let beside = render(&with_pitr("offsite"), &inputs).unwrap();
    assert!(!args(&beside).iter().any(|a| a.starts_with("--binlogs-")));
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
