use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use super::*;
use crate::backup::manifest::is_valid_id;

/// The render tests' group with a credentials block and two profiles: S3 (encrypted) and
/// PVC, and two schedules.
pub(in crate::render) fn group() -> MysqlFailoverGroup {
    let mut group = crate::render::tests::group();
    let extra: crate::api::failover_group::MysqlFailoverGroupSpec = serde_json::from_value(json!({
        "image": "mysql:9.7.4",
        "sites": [{"name": "iad"}, {"name": "pdx"}],
        "dns": {"hostname": "orders-db.example.com"},
        "credentials": {"operatorSecret": "orders-operator", "backupSecret": "orders-backup"},
        "backup": {
            "profiles": [
                {"name": "offsite", "storage": {"type": "S3", "s3": {
                    "bucket": "db-backups", "prefix": "/orders/", "region": "eu-west-1",
                    "endpointURL": "http://minio.storage:9000",
                    "credentialsSecret": "orders-s3"}},
                 "dump": {"threads": 6},
                 "encryption": {"passphraseSecret": {"name": "orders-backup-key", "key": "pass"}}},
                {"name": "local", "storage": {"type": "PVC", "pvc": {"subPath": "orders"}}}
            ],
            "schedules": [
                {"name": "nightly", "profileName": "offsite", "schedule": "30 2 * * *",
                 "timeZone": "Europe/Berlin", "concurrencyPolicy": "Replace"},
                {"name": "hourly", "profileName": "local", "schedule": "0 * * * *"}
            ]
        }
    }))
    .unwrap();
    group.spec.credentials = extra.credentials;
    group.spec.backup = extra.backup;
    group
}

pub(in crate::render) fn backup(name: &str, uid: &str) -> MysqlBackup {
    let mut backup: MysqlBackup = serde_json::from_value(json!({
        "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlBackup",
        "metadata": {"name": name, "namespace": "db"},
        "spec": {"failoverGroupRef": {"name": "orders"}, "profileName": "offsite"}
    }))
    .unwrap();
    backup.metadata = ObjectMeta {
        uid: Some(uid.to_owned()),
        ..backup.metadata
    };
    backup
}

fn job_for(group: &MysqlFailoverGroup, backup: &MysqlBackup, profile_name: &str) -> Value {
    let spec = group.spec.backup.as_ref().unwrap();
    let job = backup_job(&BackupJobInput {
        group,
        backup,
        profile: profile(spec, profile_name).unwrap(),
        source_site: "pdx",
        source_address: "mysql-orders-pdx-internal.db.svc:3306",
        image: "ghcr.io/example/bloodraven@sha256:abc",
    })
    .unwrap();
    serde_json::to_value(job).unwrap()
}

pub(in crate::render) fn args(job: &Value) -> Vec<String> {
    job.pointer("/spec/template/spec/containers/0/args")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

pub(in crate::render) fn after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).map(String::as_str)
}

#[test]
fn the_job_backs_up_the_chosen_source_into_the_profile_repository() {
    let group = group();
    let backup = backup("orders-manual-1", "5e0d1c2b-aaaa-bbbb-cccc-ddddeeeeffff");
    let job = job_for(&group, &backup, "offsite");
    let args = args(&job);
    assert_eq!(&args[..2], ["backup", "create"]);
    assert_eq!(
        after(&args, "--source"),
        Some("mysql-orders-pdx-internal.db.svc:3306")
    );
    assert_eq!(after(&args, "--to"), Some("s3://db-backups/orders"));
    assert_eq!(after(&args, "--id"), Some("orders-manual-1-5e0d1c2b"));
    assert_eq!(after(&args, "--threads"), Some("6"));
    assert_eq!(
        after(&args, "--s3-endpoint"),
        Some("http://minio.storage:9000")
    );
    assert_eq!(after(&args, "--s3-region"), Some("eu-west-1"));
    assert_eq!(after(&args, "--s3-credentials-dir"), Some(S3_CREDS));
    assert_eq!(
        after(&args, "--encrypt-passphrase-file"),
        Some("/run/bloodraven/backup-key/passphrase")
    );
    assert_eq!(job["metadata"]["name"], "backup-orders-manual-1-5e0d1c2b");
    let kind = |v: &Value| {
        crate::adapters::kube::objects::ManagedKind::of(
            v["apiVersion"].as_str().unwrap(),
            v["kind"].as_str().unwrap(),
        )
    };
    assert!(
        kind(&job).is_some(),
        "the operator watches and applies Jobs"
    );
    let cron = serde_json::to_value(&schedule_cron_jobs(&group, "img", "sa").unwrap()[0]).unwrap();
    assert!(kind(&cron).is_some(), "and CronJobs");
    assert_eq!(
        job["metadata"]["labels"][LABEL_BACKUP],
        "orders-manual-1-5e0d1c2b"
    );
    assert_eq!(job["metadata"]["labels"][LABEL_GROUP], "orders");
    assert_eq!(
        job["metadata"]["annotations"]["shipstream.io/source-site"],
        "pdx"
    );
    let owner = &job["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "MysqlBackup");
    assert_eq!(owner["uid"], "5e0d1c2b-aaaa-bbbb-cccc-ddddeeeeffff");
    assert_eq!(owner["controller"], true);
}

#[test]
fn secrets_are_read_only_files_and_the_pod_has_no_api_token() {
    let group = group();
    let job = job_for(&group, &backup("b", "u-1"), "offsite");
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert!(container.get("envFrom").is_none());
    let env = serde_json::to_string(&container["env"]).unwrap();
    assert!(!env.contains("secretKeyRef"), "{env}");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    let volumes = pod["volumes"].as_array().unwrap();
    let secret = |name: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("volume {name}"))["secret"]
            .clone()
    };
    // The backup account, not the operator's, when the group names one.
    assert_eq!(secret("mysql-creds")["secretName"], "orders-backup");
    assert_eq!(secret("mysql-creds")["defaultMode"], 0o400);
    assert_eq!(secret("aws-creds")["secretName"], "orders-s3");
    assert_eq!(secret("backup-key")["secretName"], "orders-backup-key");
    assert_eq!(secret("backup-key")["items"][0]["key"], "pass");
    for mount in container["volumeMounts"].as_array().unwrap() {
        if mount["name"] != "tmp" {
            assert_eq!(mount["readOnly"], true, "{mount}");
        }
    }
    assert_eq!(job["spec"]["backoffLimit"], 2);
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 7200);
}

#[test]
fn a_pvc_profile_writes_to_its_claim() {
    let group = group();
    let job = job_for(&group, &backup("b", "u-1"), "local");
    let args = args(&job);
    assert_eq!(after(&args, "--to"), Some("file:///backups/orders"));
    assert!(after(&args, "--s3-credentials-dir").is_none());
    assert!(after(&args, "--encrypt-passphrase-file").is_none());
    // The operator does not mount the volume: the manifest also goes to the pod's status.
    assert_eq!(
        after(&args, "--termination-log"),
        Some("/dev/termination-log")
    );
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(container["terminationMessagePolicy"], "File");
    let volumes = job["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    let claim = volumes.iter().find(|v| v["name"] == "backups").unwrap();
    assert_eq!(
        claim["persistentVolumeClaim"]["claimName"],
        "mysql-orders-backup-local"
    );
}

#[test]
fn repository_paths_cannot_leave_the_volume() {
    let mut group = group();
    let spec = group.spec.backup.as_mut().unwrap();
    spec.profiles[1].storage.pvc.as_mut().unwrap().sub_path = Some("a/../../etc".to_owned());
    assert!(repository_url(&spec.profiles[1]).is_err());
    spec.profiles[0].storage.s3.as_mut().unwrap().prefix = None;
    assert_eq!(
        repository_url(&spec.profiles[0]).unwrap(),
        "s3://db-backups"
    );
}

#[test]
fn backup_ids_are_valid_repository_ids_and_unique_per_object() {
    let long = "x".repeat(240);
    for name in [
        "a",
        "orders-nightly-20261202023000",
        long.as_str(),
        "with.dots.in.name",
    ] {
        let id = backup_id(&backup(name, "0123abcd-ffff")).unwrap();
        assert!(is_valid_id(&id), "{id}");
        assert!(job_name(&id).len() <= 63, "{id}");
    }
    let first = backup_id(&backup("same", "11111111-a")).unwrap();
    let second = backup_id(&backup("same", "22222222-a")).unwrap();
    assert_ne!(first, second);
}

#[test]
fn schedules_become_cron_jobs_that_create_backups() {
    let group = group();
    let crons = schedule_cron_jobs(&group, "img@sha256:abc", "bloodraven").unwrap();
    assert_eq!(crons.len(), 2);
    let nightly = serde_json::to_value(&crons[0]).unwrap();
    assert_eq!(nightly["metadata"]["name"], "mysql-orders-backup-nightly");
    assert_eq!(
        nightly["metadata"]["ownerReferences"][0]["kind"],
        "MysqlFailoverGroup"
    );
    assert_eq!(nightly["spec"]["schedule"], "30 2 * * *");
    assert_eq!(nightly["spec"]["timeZone"], "Europe/Berlin");
    assert_eq!(nightly["spec"]["concurrencyPolicy"], "Replace");
    let pod = &nightly["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "bloodraven");
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        [
            "kubectl",
            "backup",
            "orders",
            "--namespace",
            "db",
            "--profile",
            "offsite",
            "--triggered-by",
            "schedule/nightly"
        ]
    );
    let hourly = serde_json::to_value(&crons[1]).unwrap();
    assert_eq!(hourly["spec"]["timeZone"], "Etc/UTC");
    assert_eq!(hourly["spec"]["concurrencyPolicy"], "Forbid");
    assert_eq!(hourly["spec"]["successfulJobsHistoryLimit"], 3);
}

#[test]
fn a_schedule_naming_no_profile_is_refused_and_names_fit() {
    let mut group = group();
    group.spec.backup.as_mut().unwrap().schedules[0].profile_name = "nope".to_owned();
    let error = schedule_cron_jobs(&group, "img", "sa").unwrap_err();
    assert!(error.to_string().contains("nope"), "{error}");
    let name = cron_job_name(&"g".repeat(40), &"s".repeat(40));
    assert!(name.len() <= MAX_CRON_JOB_NAME, "{name}");
    assert_ne!(name, cron_job_name(&"g".repeat(40), &"s".repeat(39)));
}

#[test]
fn a_group_without_backups_has_no_cron_jobs() {
    let mut group = group();
    group.spec.backup = None;
    assert!(schedule_cron_jobs(&group, "img", "sa").unwrap().is_empty());
}

#[test]
fn the_profiles_schema_filters_reach_the_dump() {
    let mut group = group();
    let dump = group.spec.backup.as_mut().expect("backup").profiles[0]
        .dump
        .as_mut()
        .expect("dump");
    dump.include_schemas = vec!["shop".to_owned(), "billing".to_owned()];
    dump.exclude_schemas = vec!["billing".to_owned()];
    let backup = backup("orders-manual-1", "5e0d1c2b-aaaa-bbbb-cccc-ddddeeeeffff");
    let args = args(&job_for(&group, &backup, "offsite"));
    let values = |flag: &str| -> Vec<&str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    };
    assert_eq!(values("--include-schema"), ["shop", "billing"]);
    assert_eq!(values("--exclude-schema"), ["billing"]);
    let plain = args_of_default();
    assert!(!plain.iter().any(|a| a.ends_with("-schema")), "{plain:?}");
}

fn args_of_default() -> Vec<String> {
    let backup = backup("orders-manual-1", "5e0d1c2b-aaaa-bbbb-cccc-ddddeeeeffff");
    args(&job_for(&group(), &backup, "offsite"))
}
