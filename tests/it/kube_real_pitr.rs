//! Point-in-time recovery in the operator, against the real API server, a real MySQL pair
//! and a real S3 server (SeaweedFS): the binary-log archiver Deployment, `status.pitr`, a
//! `pointInTime` restore and a verification that replays.
//!
//! Nothing runs pods here, so the test plays the kubelet's and the Job controller's parts
//! as `kube_real_backup` does: it runs the archiver Deployment's command itself (the real
//! `bloodraven binlog archive` with the rendered flags, one pass, against the real
//! primary, with MySQL's real tools) and records Job endings by hand. The operator reads
//! `status.pitr` from what that command wrote to the repository.
//!
//! Run by `scripts/kube-apiserver-test.sh PATH/TO/crd-apiserver.sh`; CI runs it.

use std::process::Command;
use std::time::Duration;

use bloodraven::api::{MysqlBackup, MysqlBackupVerification};
use bloodraven::render::tools::{COPIED_BINARY, COPY_CONTAINER};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PodSpec, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::failover_common::TestResult;
use crate::kube_real_backup::{end_job, verification_job, wait_for};
use crate::kube_real_operator::{Fixture, Operator, PITR_ONLY_REQUESTS, Timing};
use crate::support::s3::{ACCESS_KEY, SECRET_KEY, SeaweedS3};
use crate::support::tools::dep_tool;

const BIN: &str = env!("CARGO_BIN_EXE_bloodraven");
const GROUP: &str = "orders";
const IMAGE: &str = "ghcr.io/example/bloodraven@sha256:0123";
/// The fixture group's MySQL image: the two-image pods' working containers run it.
const MYSQL_IMAGE: &str = "mysql:9.7.0";
const ARCHIVER: &str = "mysql-orders-binlog-archiver";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_pitr_archiver_status_point_in_time_restore_and_replaying_verification()
-> TestResult {
    let s3 = SeaweedS3::start();
    s3.create_bucket("backups");
    let fixture = Fixture::start_with(Timing::Fast).await?;
    // A short resync: status.pitr is refreshed on the backup pass, which nothing else may
    // bring while the test waits for the archive to show.
    let operator =
        fixture.operator_with("pitr-a", &["--job-image", IMAGE, "--resync-secs", "2"])?;
    let outcome = Box::pin(pitr_end_to_end(&fixture, &operator, &s3)).await;
    operator.tail_log_on_failure(outcome)
}

async fn pitr_end_to_end(fixture: &Fixture, operator: &Operator, s3: &SeaweedS3) -> TestResult {
    fixture.wait_active("iad", Duration::from_secs(30)).await?;
    add_backup_spec(fixture, s3).await?;

    // pointInTime with no archive: a build failure that says why, nothing run.
    let first = rfc3339_now();
    patch_restore_in_place(fixture, &first, s3).await?;
    let failed = fixture
        .wait_group("restoreInPlace Failed", Duration::from_secs(30), |g| {
            g.pointer("/status/restoreInPlace/confirmTokenUsed") == Some(&json!(first))
                && g.pointer("/status/restoreInPlace/phase") == Some(&json!("Failed"))
        })
        .await?;
    let message = failed["status"]["restoreInPlace"]["message"].to_string();
    assert!(message.contains("spec.backup.pitr.enabled"), "{message}");
    // The Event follows the status write the wait above saw.
    let reasons = fixture
        .event_reasons_including(GROUP, &["RestoreBuildFailed"])
        .await?;
    assert!(
        reasons.iter().any(|r| r == "RestoreBuildFailed"),
        "{reasons:?}"
    );

    set_pitr(fixture, true).await?;
    the_archiver_archives_and_the_status_shows_it(fixture).await?;
    a_point_in_time_restore_runs_on_the_mysql_image(fixture, s3).await?;
    a_verification_replays_on_the_mysql_image(fixture).await?;
    a_replaying_restore_records_what_it_replayed(fixture, s3).await?;

    // Off again: the archiver goes, and the status says archiving is off.
    set_pitr(fixture, false).await?;
    let deployments: Api<Deployment> =
        Api::namespaced(fixture.client().clone(), fixture.namespace());
    wait_for(
        "the archiver deleted",
        Duration::from_secs(30),
        async || Ok(deployments.get_opt(ARCHIVER).await?.is_none().then_some(())),
    )
    .await?;
    fixture
        .wait_group("status.pitr.enabled false", Duration::from_secs(30), |g| {
            g.pointer("/status/pitr/enabled") == Some(&json!(false))
        })
        .await?;
    a_replaying_verification_without_the_archive_cannot_be_built(fixture).await?;
    operator
        .sent_only_granted_and_used(&PITR_ONLY_REQUESTS, "PITR")
        .await?;
    Ok(())
}

async fn add_backup_spec(fixture: &Fixture, s3: &SeaweedS3) -> TestResult {
    let secrets: Api<Secret> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "orders-s3"},
                "stringData": {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
            }))?,
        )
        .await?;
    let backup = json!({"profiles": [{
        "name": "offsite",
        "storage": {"type": "S3", "s3": {
            "bucket": "backups", "prefix": "orders", "region": "us-east-1",
            "endpointURL": s3.endpoint(), "credentialsSecret": "orders-s3"}}
    }]});
    fixture.patch_spec(json!({"backup": backup})).await
}

async fn set_pitr(fixture: &Fixture, enabled: bool) -> TestResult {
    let pitr = json!({"enabled": enabled, "profileName": "offsite", "archivePollInterval": "5s"});
    fixture.patch_spec(json!({"backup": {"pitr": pitr}})).await
}

/// `restoreInPlace` of a backup in the PITR profile's repository, to a plain UTC time.
async fn patch_restore_in_place(fixture: &Fixture, confirm: &str, s3: &SeaweedS3) -> TestResult {
    let source = json!({"s3": {"bucket": "backups", "prefix": "orders/backups/base-1",
        "region": "us-east-1", "endpointURL": s3.endpoint(), "credentialsSecret": "orders-s3"}});
    let restore = json!({"confirm": confirm, "source": source,
        "pointInTime": {"stopDatetime": "2026-12-01 10:30:00"}});
    fixture.patch_spec(json!({"restoreInPlace": restore})).await
}

/// Runs the archiver's (localised) command for one pass instead of for ever; the logs it
/// archived.
pub(crate) fn archive_once(mut local: Vec<String>) -> TestResult<Vec<String>> {
    local.push("--once".to_owned());
    let output = Command::new(BIN)
        .args(&local)
        .env("RUST_LOG", "warn")
        .output()?;
    assert!(
        output.status.success(),
        "the archiver's command failed: {local:?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// The archiver Deployment's pod spec, once the operator has applied it.
pub(crate) async fn archiver_pod(fixture: &Fixture) -> TestResult<PodSpec> {
    let deployments: Api<Deployment> =
        Api::namespaced(fixture.client().clone(), fixture.namespace());
    let archiver = wait_for(
        "the archiver Deployment",
        Duration::from_secs(30),
        async || Ok(deployments.get_opt(ARCHIVER).await?),
    )
    .await?;
    Ok(archiver
        .spec
        .and_then(|s| s.template.spec)
        .ok_or("no pod spec")?)
}

fn rfc3339_now() -> String {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    format!("{}Z", &now[..19])
}

fn strings(values: Option<&Vec<String>>) -> Vec<String> {
    values.cloned().unwrap_or_default()
}

fn after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).map(String::as_str)
}

/// The working container runs the copied binary on the MySQL image, after the init
/// container copied it from the operator's; its arguments.
fn two_image_args(what: &str, pod: &PodSpec) -> Vec<String> {
    let container = &pod.containers[0];
    let copy = pod
        .init_containers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|c| c.name == COPY_CONTAINER)
        .unwrap_or_else(|| panic!("{what}: no {COPY_CONTAINER} init container"));
    assert_eq!(copy.image.as_deref(), Some(IMAGE), "{what}");
    assert_eq!(
        strings(copy.args.as_ref()),
        ["copy-self", "--to", COPIED_BINARY],
        "{what}"
    );
    assert_eq!(container.image.as_deref(), Some(MYSQL_IMAGE), "{what}");
    assert_eq!(
        strings(container.command.as_ref()),
        [COPIED_BINARY],
        "{what}"
    );
    strings(container.args.as_ref())
}

/// The archiver Deployment follows the writer Service into the PITR profile; its command,
/// run here for one pass against the real primary, archives a closed binary log, and the
/// operator shows the archive in `status.pitr`.
async fn the_archiver_archives_and_the_status_shows_it(fixture: &Fixture) -> TestResult {
    let pod = archiver_pod(fixture).await?;
    let args = two_image_args("archiver", &pod);
    let service = format!("mysql-{GROUP}-primary.{}.svc:3306", fixture.namespace());
    assert_eq!(after(&args, "--source"), Some(service.as_str()), "{args:?}");
    assert_eq!(
        after(&args, "--to"),
        Some("s3://backups/orders"),
        "{args:?}"
    );
    assert_eq!(after(&args, "--interval"), Some("5"), "{args:?}");

    let iad = fixture.instance("iad")?;
    iad.sql("CREATE DATABASE IF NOT EXISTS pitr; CREATE TABLE pitr.t (id INT PRIMARY KEY); INSERT INTO pitr.t VALUES (1)")?;
    let work = fixture.work().join("archiver");
    let (creds, aws) = (work.join("mysql-creds"), work.join("aws-creds"));
    std::fs::create_dir_all(&creds)?;
    std::fs::create_dir_all(&aws)?;
    std::fs::write(creds.join("username"), "bloodraven")?;
    std::fs::write(creds.join("password"), "operator-secret-1")?;
    std::fs::write(aws.join("AWS_ACCESS_KEY_ID"), ACCESS_KEY)?;
    std::fs::write(aws.join("AWS_SECRET_ACCESS_KEY"), SECRET_KEY)?;
    // The pod's paths and the writer Service name are the cluster's: swap in the test's.
    let (mysqlbinlog, mysql) = (dep_tool("mysqlbinlog"), dep_tool("mysql"));
    let local: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace(&service, &iad.address())
                .replace("/run/bloodraven/mysql-creds", &creds.display().to_string())
                .replace("/run/bloodraven/aws-creds", &aws.display().to_string())
                .replace("/usr/bin/mysqlbinlog", &mysqlbinlog.display().to_string())
                .replace("/usr/bin/mysql", &mysql.display().to_string())
        })
        .collect();
    // The archiver closes the current log every pass and prunes what every backup holds.
    assert!(local.iter().any(|a| a == "--rotate"), "{local:?}");
    assert!(local.iter().any(|a| a == "--prune"), "{local:?}");
    let logs = archive_once(local)?;
    assert!(!logs.is_empty(), "nothing archived");

    let group = fixture
        .wait_group(
            "status.pitr with the archive",
            Duration::from_secs(60),
            |g| {
                g.pointer("/status/pitr/archivedFileCount")
                    .and_then(Value::as_i64)
                    .is_some_and(|n| n >= i64::try_from(logs.len()).unwrap_or(i64::MAX))
            },
        )
        .await?;
    let pitr = &group["status"]["pitr"];
    assert_eq!(pitr["enabled"], true, "{pitr}");
    assert_eq!(pitr["profileName"], "offsite", "{pitr}");
    assert!(
        pitr["archivedBytes"].as_i64().is_some_and(|b| b > 0),
        "{pitr}"
    );
    for field in [
        "oldestArchivedTime",
        "newestArchivedTime",
        "lastArchivedTime",
    ] {
        assert!(pitr[field].is_string(), "{field}: {pitr}");
    }
    Ok(())
}

/// With the archive on, the same `pointInTime` restore makes a Job that replays to the
/// normalised time on the MySQL image, and the run records the time it replays to.
async fn a_point_in_time_restore_runs_on_the_mysql_image(
    fixture: &Fixture,
    s3: &SeaweedS3,
) -> TestResult {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let token = rfc3339_now();
    patch_restore_in_place(fixture, &token, s3).await?;
    let restoring = fixture
        .wait_group("restoreInPlace Restoring", Duration::from_secs(60), |g| {
            g.pointer("/status/restoreInPlace/confirmTokenUsed") == Some(&json!(token))
                && g.pointer("/status/restoreInPlace/phase") == Some(&json!("Restoring"))
        })
        .await?;
    let run = &restoring["status"]["restoreInPlace"];
    assert_eq!(run["pitrStopDatetime"], "2026-12-01T10:30:00Z", "{run}");
    let jobs: Api<Job> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let job = jobs
        .get(run["jobName"].as_str().ok_or("no jobName")?)
        .await?;
    let pod = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .ok_or("no pod spec")?;
    let args = two_image_args("restore", pod);
    assert_eq!(
        after(&args, "--until-time"),
        Some("2026-12-01T10:30:00Z"),
        "{args:?}"
    );
    assert_eq!(
        after(&args, "--from"),
        Some("s3://backups/orders"),
        "{args:?}"
    );
    // The Job fails (there is no base backup here): the run ends Failed, the loop resumes.
    end_job(fixture, &job, false).await?;
    fixture
        .wait_group("restoreInPlace Failed", Duration::from_secs(30), |g| {
            g.pointer("/status/restoreInPlace/phase") == Some(&json!("Failed"))
        })
        .await?;
    Ok(())
}

/// A verification with `pointInTime.mode: latest` makes a Job whose verify container
/// replays on the MySQL image, after the copy and before the throwaway server.
async fn a_verification_replays_on_the_mysql_image(fixture: &Fixture) -> TestResult {
    let backups: Api<MysqlBackup> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    backups
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlBackup",
                "metadata": {"name": "orders-base"},
                "spec": {"failoverGroupRef": {"name": GROUP}, "profileName": "offsite"}
            }))?,
        )
        .await?;
    // Once the operator has seen it (it starts a backup Job, which never runs here), it is
    // recorded as taken, by hand: the verification only needs a Succeeded backup to pick.
    wait_for(
        "the operator to take up the backup",
        Duration::from_secs(30),
        async || {
            let seen = serde_json::to_value(backups.get("orders-base").await?)?;
            Ok(seen.pointer("/status/phase").is_some().then_some(()))
        },
    )
    .await?;
    backups
        .patch_status(
            "orders-base",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Succeeded",
                "completionTime": rfc3339_now(), "sizeBytes": 1024}})),
        )
        .await?;
    // The watch carries the new phase to the operator well within this.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let api: Api<MysqlBackupVerification> =
        Api::namespaced(fixture.client().clone(), fixture.namespace());
    let job = verification_job(
        fixture,
        "orders-verify-pitr",
        json!({"profileName": "offsite",
                     "backupRef": {"name": "orders-base"},
                     "pointInTime": {"mode": "latest"}}),
    )
    .await?;
    let pod = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .ok_or("no pod spec")?;
    let init = pod.init_containers.as_deref().unwrap_or_default();
    let names: Vec<&str> = init.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [COPY_CONTAINER, "datadir", "mysqld"]);
    let args = two_image_args("verification", pod);
    assert!(args.contains(&"--until-latest".to_owned()), "{args:?}");
    end_job(fixture, &job, false).await?;
    wait_for(
        "the verification Failed",
        Duration::from_secs(30),
        async || {
            let v = serde_json::to_value(api.get("orders-verify-pitr").await?)?;
            Ok((v["status"]["phase"] == "Failed").then_some(()))
        },
    )
    .await?;
    Ok(())
}

/// With PITR off, a verification that asks for a replay cannot make a Job: it fails with
/// the reference's `VerificationBuildFailed`, naming the missing setting.
async fn a_replaying_verification_without_the_archive_cannot_be_built(
    fixture: &Fixture,
) -> TestResult {
    let api: Api<MysqlBackupVerification> =
        Api::namespaced(fixture.client().clone(), fixture.namespace());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlBackupVerification",
            "metadata": {"name": "orders-verify-no-archive"},
            "spec": {"failoverGroupRef": {"name": GROUP}, "profileName": "offsite",
                     "backupRef": {"name": "orders-base"},
                     "pointInTime": {"mode": "timestamp", "timestamp": "2026-12-01 10:30:00"}}
        }))?,
    )
    .await?;
    let status = wait_for(
        "the verification Failed",
        Duration::from_secs(30),
        async || {
            let v = serde_json::to_value(api.get("orders-verify-no-archive").await?)?;
            Ok((v["status"]["phase"] == "Failed").then(|| v["status"].clone()))
        },
    )
    .await?;
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("spec.backup.pitr.enabled")),
        "{status}"
    );
    let reasons = fixture
        .event_reasons_including("orders-verify-no-archive", &["VerificationBuildFailed"])
        .await?;
    assert!(
        reasons.iter().any(|r| r == "VerificationBuildFailed"),
        "{reasons:?}"
    );
    let jobs: Api<Job> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    assert!(
        jobs.get_opt("verify-orders-verify-no-archive")
            .await?
            .is_none()
    );
    Ok(())
}

/// A point-in-time restore whose Job succeeds: what it replayed, from the record the Job
/// writes to the repository (written here by hand, as the Job's command would), lands in
/// `status.restoreInPlace`.
async fn a_replaying_restore_records_what_it_replayed(
    fixture: &Fixture,
    s3: &SeaweedS3,
) -> TestResult {
    use bloodraven::adapters::storage::ObjectRepository;
    use bloodraven::ports::artifacts::BlobStore as _;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let token = rfc3339_now();
    patch_restore_in_place(fixture, &token, s3).await?;
    let restoring = fixture
        .wait_group("restoreInPlace Restoring", Duration::from_secs(60), |g| {
            g.pointer("/status/restoreInPlace/confirmTokenUsed") == Some(&json!(token))
                && g.pointer("/status/restoreInPlace/phase") == Some(&json!("Restoring"))
        })
        .await?;
    let job_name = restoring["status"]["restoreInPlace"]["jobName"]
        .as_str()
        .ok_or("no jobName")?
        .to_owned();
    let jobs: Api<Job> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let job = jobs.get(&job_name).await?;
    let args = strings(
        job.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .ok_or("no pod spec")?
            .containers[0]
            .args
            .as_ref(),
    );
    let name = format!("{}.{job_name}", fixture.namespace());
    assert_eq!(after(&args, "--record-as"), Some(name.as_str()), "{args:?}");
    let store = ObjectRepository::open("s3://backups/orders", &s3.settings())?;
    let record = json!({"format": 1, "name": name, "backupId": "base-1",
        "finishedAt": rfc3339_now(), "gtidExecuted": "",
        "replayedBinlogs": ["binlog.000003", "binlog.000004"]});
    store
        .put(
            &format!("restores/{name}.json"),
            serde_json::to_vec(&record)?,
        )
        .await?;
    end_job(fixture, &job, true).await?;
    let resumed = fixture
        .wait_group(
            "the replayed logs in the status",
            Duration::from_secs(30),
            |g| g.pointer("/status/restoreInPlace/pitrReplayedBinlogCount") == Some(&json!(2)),
        )
        .await?;
    let run = &resumed["status"]["restoreInPlace"];
    assert_eq!(run["pitrReplayedBinlogFile"], "binlog.000004", "{run}");
    assert_eq!(run["pitrStopDatetime"], "2026-12-01T10:30:00Z", "{run}");
    Ok(())
}
