//! The operator's backup controllers end to end: `bloodraven serve --controllers on`
//! against the real API server (built-in kinds mode: Jobs, CronJobs, Secrets, Events and
//! the MysqlBackup CRD in etcd), a real MySQL 9.7 pair and a real S3 server (SeaweedFS).
//!
//! What cannot be real here, and what stands in for it: nothing runs pods (no kubelet, no
//! Job controller). So the test plays the Job controller's part: it reads the Job the
//! operator created, runs that Job's container command as a local process (the real
//! `bloodraven backup create`, against the real replica and the real S3 server; only the
//! mounted-Secret paths are swapped for files the test writes from the same Secrets), and
//! then records the Job's ending in the Job's status, as the Job controller would. The
//! operator reads everything else (the manifest, the GTID set, the size) from the
//! repository the command wrote.
//!
//! Run by `scripts/kube-apiserver-test.sh PATH/TO/crd-apiserver.sh`; CI runs it.

use std::process::Command;
use std::time::{Duration, Instant};

use bloodraven::api::MysqlBackup;
use bloodraven::render::tools::{MYSQL, MYSQLBINLOG};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::failover_common::TestResult;
use crate::kube_real_operator::{BACKUP_ONLY_REQUESTS, Fixture, Operator, Timing};
use crate::support::s3::{ACCESS_KEY, SECRET_KEY, SeaweedS3};
use crate::support::tools::dep_tool;

const BIN: &str = env!("CARGO_BIN_EXE_bloodraven");
const GROUP: &str = "orders";
const IMAGE: &str = "ghcr.io/example/bloodraven@sha256:0123";

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
    let backup = json!({
        "maxLagSecondsForSource": 300,
        "profiles": [{
            "name": "offsite",
            "storage": {"type": "S3", "s3": {
                "bucket": "backups", "prefix": "orders", "region": "us-east-1",
                "endpointURL": s3.endpoint(), "credentialsSecret": "orders-s3"}},
            "dump": {"threads": 2}
        }],
        "schedules": [{"name": "nightly", "profileName": "offsite", "schedule": "30 2 * * *",
                       "timeZone": "Europe/Berlin"}]
    });
    fixture.patch_spec(json!({"backup": backup})).await?;
    Ok(())
}

pub(crate) async fn wait_for<T>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> TestResult<Option<T>>,
) -> TestResult<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = probe().await? {
            return Ok(found);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {within:?} waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn create_backup(fixture: &Fixture, name: &str, extra: Value) -> TestResult {
    let api: Api<MysqlBackup> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let mut spec = json!({"failoverGroupRef": {"name": GROUP}, "profileName": "offsite",
                          "triggeredBy": "manual"});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlBackup",
            "metadata": {"name": name}, "spec": spec
        }))?,
    )
    .await?;
    Ok(())
}

pub(crate) async fn backup_status(fixture: &Fixture, name: &str) -> TestResult<Value> {
    let api: Api<MysqlBackup> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    Ok(serde_json::to_value(api.get(name).await?)?
        .get("status")
        .cloned()
        .unwrap_or(Value::Null))
}

pub(crate) async fn wait_phase(fixture: &Fixture, name: &str, phase: &str) -> TestResult<Value> {
    wait_for(
        &format!("{name} {phase}"),
        Duration::from_secs(60),
        async || {
            let status = backup_status(fixture, name).await?;
            Ok((status["phase"] == phase).then_some(status))
        },
    )
    .await
}

/// The backup Job of MysqlBackup `name` (the operator labels it with the backup's id).
pub(crate) async fn wait_job(fixture: &Fixture, name: &str) -> TestResult<Job> {
    let api: Api<Job> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    wait_for(
        &format!("the Job of {name}"),
        Duration::from_secs(60),
        async || {
            let jobs = api.list(&ListParams::default()).await?.items;
            Ok(jobs.into_iter().find(|j| {
                j.metadata
                    .owner_references
                    .as_ref()
                    .is_some_and(|o| o.iter().any(|o| o.kind == "MysqlBackup" && o.name == name))
            }))
        },
    )
    .await
}

/// Plays the Job controller: runs the Job's container with the Secrets' contents in local
/// files instead of mounts, the backup volume (`/backups`) in `work/backups` and the
/// termination message in `work/termination-log`, then returns its stdout (the manifest).
pub(crate) fn run_job_locally(
    job: &Job,
    work: &std::path::Path,
    user: &str,
    password: &str,
) -> TestResult<Value> {
    let pod = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .ok_or("no pod spec")?;
    let container = &pod.containers[0];
    let creds = work.join("mysql-creds");
    let aws = work.join("aws-creds");
    std::fs::create_dir_all(&creds)?;
    std::fs::create_dir_all(&aws)?;
    std::fs::write(creds.join("username"), user)?;
    std::fs::write(creds.join("password"), password)?;
    std::fs::write(aws.join("AWS_ACCESS_KEY_ID"), ACCESS_KEY)?;
    std::fs::write(aws.join("AWS_SECRET_ACCESS_KEY"), SECRET_KEY)?;
    // A replaying restore runs on the MySQL image, with its `mysqlbinlog` and `mysql`.
    let (mysqlbinlog, mysql) = (dep_tool("mysqlbinlog"), dep_tool("mysql"));
    let swap = |arg: &String| {
        local_paths(work, arg)
            .replace("/run/bloodraven/mysql-creds", &creds.display().to_string())
            .replace("/run/bloodraven/aws-creds", &aws.display().to_string())
            .replace(MYSQLBINLOG, &mysqlbinlog.display().to_string())
            .replace(MYSQL, &mysql.display().to_string())
    };
    let args: Vec<String> = container
        .args
        .as_ref()
        .ok_or("no args")?
        .iter()
        .map(swap)
        .collect();
    let output = Command::new(BIN)
        .args(&args)
        .env("RUST_LOG", "warn")
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "the Job's command failed: {args:?}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// A Job argument with the pod's own paths (the backup volume, the termination message)
/// moved under `work`, so a local run never writes outside the test's directory.
pub(crate) fn local_paths(work: &std::path::Path, arg: &str) -> String {
    if arg == "/dev/termination-log" {
        return work.join("termination-log").display().to_string();
    }
    match arg.strip_prefix("file:///backups") {
        Some(rest) => format!("file://{}{rest}", work.join("backups").display()),
        None => arg.to_owned(),
    }
}

/// Creates `MysqlBackupVerification` `name` of the fixture's group with `spec` (beside
/// its `failoverGroupRef`), and answers the Job the operator makes for it.
pub(crate) async fn verification_job(
    fixture: &Fixture,
    name: &str,
    spec: Value,
) -> TestResult<Job> {
    let api: Api<bloodraven::api::MysqlBackupVerification> =
        Api::namespaced(fixture.client().clone(), fixture.namespace());
    let mut full = json!({"failoverGroupRef": {"name": GROUP}});
    if let (Some(full), Some(spec)) = (full.as_object_mut(), spec.as_object()) {
        full.extend(spec.clone());
    }
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlBackupVerification",
            "metadata": {"name": name}, "spec": full
        }))?,
    )
    .await?;
    let jobs: Api<Job> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    wait_for(
        &format!("the Job of {name}"),
        Duration::from_secs(30),
        async || Ok(jobs.get_opt(&format!("verify-{name}")).await?),
    )
    .await
}

/// Waits until `name` is gone from `api`: deleted by a controller, or let go by its
/// finalizer.
pub(crate) async fn wait_gone<K>(api: &Api<K>, name: &str, within: Duration) -> TestResult
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait_for(&format!("{name} gone"), within, async || {
        Ok(api.get_opt(name).await?.is_none().then_some(()))
    })
    .await
}

/// Records the Job's ending in its status, as the Job controller does.
pub(crate) async fn end_job(fixture: &Fixture, job: &Job, succeeded: bool) -> TestResult {
    let api: Api<Job> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let now = format!("{}Z", &now[..19]);
    let condition = |kind: &str, reason: &str| {
        json!({"type": kind, "status": "True", "reason": reason,
               "message": format!("{reason} (set by the test)"),
               "lastProbeTime": now, "lastTransitionTime": now})
    };
    let status = if succeeded {
        json!({"startTime": now, "completionTime": now, "succeeded": 1, "active": 0, "ready": 0,
               "conditions": [condition("SuccessCriteriaMet", "CompletionsReached"),
                              condition("Complete", "CompletionsReached")]})
    } else {
        json!({"startTime": now, "failed": 3, "active": 0, "ready": 0,
               "conditions": [condition("FailureTarget", "BackoffLimitExceeded"),
                              condition("Failed", "BackoffLimitExceeded")]})
    };
    api.patch_status(
        job.metadata.name.as_deref().ok_or("no name")?,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await?;
    Ok(())
}

fn metric_line<'a>(text: &'a str, name: &str, labels: &[&str]) -> Option<&'a str> {
    text.lines().find(|l| {
        l.starts_with(&format!("{name}{{")) && labels.iter().all(|label| l.contains(label))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_backup_a_mysqlbackup_becomes_a_job_and_its_manifest_becomes_the_status()
-> TestResult {
    let s3 = SeaweedS3::start();
    s3.create_bucket("backups");
    let fixture = Fixture::start_with(Timing::Fast).await?;
    let operator: Operator = fixture.operator_with("backup-a", &["--job-image", IMAGE])?;
    let outcome = Box::pin(backups_end_to_end(&fixture, &operator, &s3)).await;
    operator.tail_log_on_failure(outcome)
}

async fn backups_end_to_end(fixture: &Fixture, operator: &Operator, s3: &SeaweedS3) -> TestResult {
    fixture.wait_active("iad", Duration::from_secs(30)).await?;
    add_backup_spec(fixture, s3).await?;

    // The schedule is a CronJob that creates a MysqlBackup per run.
    let crons: Api<CronJob> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let cron = wait_for("the nightly CronJob", Duration::from_secs(30), async || {
        Ok(crons.get_opt("mysql-orders-backup-nightly").await?)
    })
    .await?;
    let cron_spec = cron.spec.ok_or("no CronJob spec")?;
    assert_eq!(cron_spec.schedule, "30 2 * * *");
    assert_eq!(cron_spec.time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(cron_spec.concurrency_policy.as_deref(), Some("Forbid"));
    the_schedule_command_creates_a_backup(fixture, &cron_spec).await?;

    // Data to back up, on the primary; the replica is the preferred source.
    fixture.instance("iad")?.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(40)); \
         INSERT INTO shop.orders VALUES (1, 'first'), (2, 'second'), (3, 'third')",
    )?;
    create_backup(fixture, "orders-manual-1", json!({})).await?;
    let job = wait_job(fixture, "orders-manual-1").await?;
    let running = wait_phase(fixture, "orders-manual-1", "Running").await?;
    assert_eq!(
        running["sourceSite"], "pdx",
        "a healthy replica is preferred: {running}"
    );
    assert_eq!(running["activeSiteAtStart"], "iad");
    assert_eq!(running["storageType"], "S3");
    let annotations = job.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("shipstream.io/source-site")
            .map(String::as_str),
        Some("pdx")
    );
    let container = &job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .ok_or("pod")?
        .containers[0];
    assert_eq!(container.image.as_deref(), Some(IMAGE));

    // The Job's own command, for real, against the replica and the S3 server.
    let work = fixture.work().join("job-1");
    let manifest = run_job_locally(&job, &work, "bloodraven", "operator-secret-1")?;
    assert!(
        manifest["gtidExecuted"]
            .as_str()
            .is_some_and(|g| !g.is_empty()),
        "{manifest}"
    );
    let verified = Command::new(BIN)
        .args(["backup", "verify", "--from", "s3://backups/orders", "--id"])
        .arg(manifest["id"].as_str().ok_or("no id")?)
        .args(["--s3-endpoint", &s3.endpoint()])
        .envs(s3.env())
        .output()?;
    assert!(verified.status.success(), "{verified:?}");
    end_job(fixture, &job, true).await?;

    let done = wait_phase(fixture, "orders-manual-1", "Succeeded").await?;
    assert_eq!(done["gtidExecuted"], manifest["gtidExecuted"], "{done}");
    assert_eq!(done["sizeBytes"], manifest["storedBytes"], "{done}");
    assert!(done["sizeBytes"].as_u64().unwrap_or(0) > 0, "{done}");
    let location = done["location"].as_str().unwrap_or("");
    let id = manifest["id"].as_str().ok_or("no id")?;
    assert_eq!(location, format!("s3://backups/orders/backups/{id}/"));
    assert_eq!(done["completionTime"], manifest["finishedAt"]);
    let reasons = fixture
        .event_reasons_including("orders-manual-1", &["BackupStarted", "BackupSucceeded"])
        .await?;
    for reason in ["BackupStarted", "BackupSucceeded"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }

    a_verification_restores_the_newest_backup(fixture).await?;
    failures_are_reported(fixture).await?;

    metrics_are_per_group_and_profile(fixture, operator, &manifest).await?;
    a_failed_scheduled_backup_is_retried_until_its_attempts_run_out(fixture).await?;

    a_removed_schedule_takes_its_cron_job(fixture, &crons).await?;

    a_restore_in_place_returns_the_group_to_the_backup(fixture, operator, id).await?;
    a_restore_of_one_schema_in_place_reaches_the_replica_by_replication(fixture, operator, id)
        .await?;
    init_from_backup_refuses_a_primary_that_holds_data(fixture).await?;

    retention_and_cleanup_follow_the_objects(fixture, s3).await?;

    // RBAC: every request is granted, and the backup-only grants are all used.
    operator
        .sent_only_granted_and_used(&BACKUP_ONLY_REQUESTS, "backups")
        .await?;
    Ok(())
}

async fn metrics_are_per_group_and_profile(
    fixture: &Fixture,
    operator: &Operator,
    manifest: &Value,
) -> TestResult {
    // Metrics, per group and profile.
    let text = operator.metrics().await?;
    let ns = format!("namespace=\"{}\"", fixture.namespace());
    let scope = [
        ns.as_str(),
        "group=\"orders\"",
        "kind=\"backup\"",
        "profile=\"offsite\"",
    ];
    let last = metric_line(
        &text,
        "bloodraven_backup_last_success_timestamp_seconds",
        &scope,
    )
    .ok_or_else(|| format!("no last-success gauge in\n{text}"))?;
    let finished = bloodraven::failover::Timestamp::parse_rfc3339(
        manifest["finishedAt"].as_str().ok_or("finishedAt")?,
    )
    .ok_or("finishedAt parses")?;
    assert!(
        last.ends_with(&format!(" {}", finished.as_millis() / 1000)),
        "{last}"
    );
    let count = |outcome: &str| {
        let outcome = format!("outcome=\"{outcome}\"");
        let mut labels = scope.to_vec();
        labels.push(&outcome);
        metric_line(&text, "bloodraven_backup_runs_total", &labels)
            .map(|l| l.rsplit(' ').next().unwrap_or("").to_owned())
    };
    assert_eq!(count("succeeded").as_deref(), Some("1"), "{text}");
    assert_eq!(count("job_failed").as_deref(), Some("2"), "{text}");
    assert_eq!(count("invalid_source").as_deref(), Some("1"), "{text}");
    // A profile the group does not have never becomes a label value.
    assert!(!text.contains("profile=\"nope\""), "{text}");
    let unknown = metric_line(
        &text,
        "bloodraven_backup_runs_total",
        &[
            ns.as_str(),
            "profile=\"unknown\"",
            "outcome=\"invalid_source\"",
        ],
    );
    if !unknown.is_some_and(|l| l.ends_with(" 1")) {
        return Err(format!("no runs_total{{profile=\"unknown\"}} 1 in\n{text}").into());
    }

    Ok(())
}

/// A failed Job, a Job that claims success with nothing in the repository, and sources
/// that must never be used: each backup fails, saying why.
async fn failures_are_reported(fixture: &Fixture) -> TestResult {
    // A Job that fails: the backup fails, saying why, and is counted.
    create_backup(fixture, "orders-manual-2", json!({})).await?;
    let job2 = wait_job(fixture, "orders-manual-2").await?;
    wait_phase(fixture, "orders-manual-2", "Running").await?;
    end_job(fixture, &job2, false).await?;
    let failed = wait_phase(fixture, "orders-manual-2", "Failed").await?;
    assert!(
        failed["message"]
            .as_str()
            .unwrap_or("")
            .contains("BackoffLimitExceeded"),
        "{failed}"
    );
    assert!(
        fixture
            .event_reasons_including("orders-manual-2", &["BackupFailed"])
            .await?
            .iter()
            .any(|r| r == "BackupFailed")
    );

    // A Job that says it succeeded without a manifest behind it is not a backup.
    create_backup(fixture, "orders-manual-3", json!({})).await?;
    let job3 = wait_job(fixture, "orders-manual-3").await?;
    end_job(fixture, &job3, true).await?;
    let hollow = wait_phase(fixture, "orders-manual-3", "Failed").await?;
    assert!(
        hollow["message"]
            .as_str()
            .unwrap_or("")
            .contains("no complete backup"),
        "{hollow}"
    );

    // Sources that must never be used fail at once, naming the problem.
    create_backup(
        fixture,
        "orders-bad-site",
        json!({"sourceSiteOverride": "nowhere"}),
    )
    .await?;
    let bad = wait_phase(fixture, "orders-bad-site", "Failed").await?;
    assert!(
        bad["message"].as_str().unwrap_or("").contains("nowhere"),
        "{bad}"
    );
    create_backup(
        fixture,
        "orders-bad-profile",
        json!({"profileName": "nope"}),
    )
    .await?;
    let bad = wait_phase(fixture, "orders-bad-profile", "Failed").await?;
    assert!(
        bad["message"].as_str().unwrap_or("").contains("nope"),
        "{bad}"
    );

    Ok(())
}

async fn a_removed_schedule_takes_its_cron_job(
    fixture: &Fixture,
    crons: &Api<CronJob>,
) -> TestResult {
    // A schedule removed from the spec takes its CronJob with it.
    fixture
        .patch_spec(json!({"backup": {"schedules": []}}))
        .await?;
    wait_gone(
        crons,
        "mysql-orders-backup-nightly",
        Duration::from_secs(30),
    )
    .await?;

    Ok(())
}

/// Plays the CronJob controller once: runs the schedule pod's command (the real plugin
/// command, against the real API server as the test's kubeconfig user) and checks that the
/// MysqlBackup it creates is picked up by the operator.
async fn the_schedule_command_creates_a_backup(
    fixture: &Fixture,
    cron: &k8s_openapi::api::batch::v1::CronJobSpec,
) -> TestResult {
    let pod = cron
        .job_template
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .ok_or("no pod in the CronJob")?;
    let args = pod.containers[0].args.clone().ok_or("no args")?;
    let output = Command::new(BIN).args(&args).output()?;
    assert!(output.status.success(), "{args:?}: {output:?}");
    let api: Api<MysqlBackup> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let scheduled = wait_for(
        "the scheduled MysqlBackup",
        Duration::from_secs(20),
        async || {
            Ok(api
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .find(|b| b.spec.triggered_by.as_deref() == Some("schedule/nightly")))
        },
    )
    .await?;
    assert_eq!(scheduled.spec.profile_name, "offsite");
    let name = scheduled.metadata.name.clone().ok_or("no name")?;
    wait_job(fixture, &name).await?;
    Ok(())
}

/// A MysqlBackupVerification of the profile: the operator picks the newest succeeded backup
/// and creates a Job whose pod runs a throwaway mysqld beside `bloodraven backup verify`.
/// The test plays the Job: a fresh harness server stands in for the pod's mysqld (same
/// binary, an empty data directory, the account the `datadir` container creates), and the
/// `verify` container's own command restores into it and runs the sanity query.
#[allow(clippy::too_many_lines)] // one scenario, step by step
async fn a_verification_restores_the_newest_backup(fixture: &Fixture) -> TestResult {
    use bloodraven::api::MysqlBackupVerification;
    let api: Api<MysqlBackupVerification> =
        Api::namespaced(fixture.client().clone(), fixture.namespace());
    let job = verification_job(
        fixture,
        "orders-verify-1",
        json!({"profileName": "offsite",
                     "sanityCheck": {"query": "SELECT COUNT(*) FROM shop.orders WHERE id = 2",
                                     "expect": {"minRows": 1, "maxDurationSeconds": 30}}}),
    )
    .await?;
    let status = wait_for("Restoring", Duration::from_secs(30), async || {
        let v = serde_json::to_value(api.get("orders-verify-1").await?)?;
        Ok((v["status"]["phase"] == "Restoring").then(|| v["status"].clone()))
    })
    .await?;
    assert_eq!(status["backupRef"]["name"], "orders-manual-1", "{status}");
    let pod = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .ok_or("no pod")?;
    let init = pod.init_containers.as_ref().ok_or("no init containers")?;
    assert_eq!(init[1].name, "mysqld");
    assert_eq!(
        init[1].restart_policy.as_deref(),
        Some("Always"),
        "a native sidecar"
    );

    let scratch = crate::support::mysql::MysqlCluster::start(1)?;
    let server = scratch.get(0)?;
    // Unlogged, like the pod's `--initialize` step: the scratch server's GTID history stays
    // empty, as a restore requires.
    server.sql(
        "SET SESSION sql_log_bin = 0; \
         CREATE USER 'verify'@'127.0.0.1' IDENTIFIED BY ''; \
         GRANT ALL ON *.* TO 'verify'@'127.0.0.1' WITH GRANT OPTION",
    )?;
    let work = fixture.work().join("verify-1");
    let aws = work.join("aws-creds");
    std::fs::create_dir_all(&aws)?;
    std::fs::write(aws.join("AWS_ACCESS_KEY_ID"), ACCESS_KEY)?;
    std::fs::write(aws.join("AWS_SECRET_ACCESS_KEY"), SECRET_KEY)?;
    let target = format!("127.0.0.1:{}", server.port());
    let args = scratch_args(&job, &target, &aws)?;
    let output = Command::new(BIN)
        .args(&args)
        .env("BLOODRAVEN_MYSQL_USER", "verify")
        .output()?;
    assert!(output.status.success(), "{args:?}: {output:?}");
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    assert_eq!(flag("--sanity-min-value").as_deref(), Some("1"), "{args:?}");
    assert_eq!(
        flag("--sanity-timeout-seconds").as_deref(),
        Some("30"),
        "{args:?}"
    );
    assert!(
        flag("--record-as").is_some_and(|n| n.starts_with("orders-verify-1.")),
        "{args:?}"
    );
    let report: Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(report["sanityCheck"]["resultRow"], "1", "{report}");
    assert_eq!(
        server.sql("SELECT note FROM shop.orders WHERE id = 2")?,
        "second"
    );
    end_job(fixture, &job, true).await?;
    let done = wait_for("Succeeded", Duration::from_secs(30), async || {
        let v = serde_json::to_value(api.get("orders-verify-1").await?)?;
        Ok((v["status"]["phase"] == "Succeeded").then(|| v["status"].clone()))
    })
    .await?;
    assert_eq!(done["conditions"][0]["type"], "Verified", "{done}");
    assert_eq!(done["conditions"][0]["status"], "True", "{done}");
    // Only the record the Job wrote to the repository could have told the operator this.
    assert_eq!(done["sanityCheck"]["ran"], true, "{done}");
    assert_eq!(done["sanityCheck"]["resultRow"], "1", "{done}");
    assert!(done["sanityCheck"]["durationMs"].is_i64(), "{done}");
    assert!(done["sanityCheck"].get("error").is_none(), "{done}");
    let reasons = fixture
        .event_reasons_including("orders-verify-1", &["VerificationSucceeded"])
        .await?;
    assert!(
        reasons.iter().any(|r| r == "VerificationSucceeded"),
        "{reasons:?}"
    );

    a_missed_minimum_fails_the_verification(fixture, server, &target, &aws).await
}

/// The verification Job's `verify` arguments, pointed at the scratch server and local
/// credential files.
pub(crate) fn scratch_args(
    job: &Job,
    target: &str,
    aws: &std::path::Path,
) -> TestResult<Vec<String>> {
    let pod = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .ok_or("no pod")?;
    Ok(pod.containers[0]
        .args
        .clone()
        .ok_or("no args")?
        .into_iter()
        .map(|a| {
            local_paths(aws, &a)
                .replace("127.0.0.1:3306", target)
                .replace("/run/bloodraven/aws-creds", &aws.display().to_string())
        })
        .collect())
}

/// A minimum the data misses: the Job fails, and the record it left says why.
async fn a_missed_minimum_fails_the_verification(
    fixture: &Fixture,
    server: &crate::support::mysql::MysqlInstance,
    target: &str,
    aws: &std::path::Path,
) -> TestResult {
    use bloodraven::api::MysqlBackupVerification;
    let api: Api<MysqlBackupVerification> =
        Api::namespaced(fixture.client().clone(), fixture.namespace());
    let job = verification_job(
        fixture,
        "orders-verify-2",
        json!({"profileName": "offsite",
                     "sanityCheck": {"query": "SELECT COUNT(*) FROM shop.orders WHERE id = 2",
                                     "expect": {"minRows": 5}}}),
    )
    .await?;
    // The scratch server emptied as a fresh pod's would be.
    server.sql(
        "SET SESSION sql_log_bin = 0; DROP DATABASE IF EXISTS app; DROP DATABASE IF EXISTS shop; \
         RESET BINARY LOGS AND GTIDS",
    )?;
    let args = scratch_args(&job, target, aws)?;
    let output = Command::new(BIN)
        .args(&args)
        .env("BLOODRAVEN_MYSQL_USER", "verify")
        .output()?;
    assert!(!output.status.success(), "{args:?}: {output:?}");
    end_job(fixture, &job, false).await?;
    let failed = wait_for("Failed", Duration::from_secs(30), async || {
        let v = serde_json::to_value(api.get("orders-verify-2").await?)?;
        Ok((v["status"]["phase"] == "Failed").then(|| v["status"].clone()))
    })
    .await?;
    assert_eq!(failed["conditions"][0]["status"], "False", "{failed}");
    assert_eq!(
        failed["conditions"][0]["reason"], "SanityCheckFailed",
        "{failed}"
    );
    assert_eq!(failed["sanityCheck"]["resultRow"], "1", "{failed}");
    assert!(
        failed["sanityCheck"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("less than the minimum 5")),
        "{failed}"
    );
    assert!(
        failed["message"]
            .as_str()
            .is_some_and(|m| m.contains("minimum 5")),
        "{failed}"
    );
    Ok(())
}

/// The Job of a restore run (`status.*.jobName`), and its container's args.
pub(crate) async fn run_job(fixture: &Fixture, run: &Value) -> TestResult<(Job, Vec<String>)> {
    let jobs: Api<Job> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let name = run["jobName"].as_str().ok_or("no jobName")?;
    // The run's status (the spent token, the Job's name) is written before the Job is
    // created, so a reader can see the name a moment before the Job exists.
    let job = wait_for(
        &format!("Job {name}"),
        Duration::from_secs(30),
        async || Ok(jobs.get_opt(name).await?),
    )
    .await?;
    let args = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers[0].args.clone())
        .unwrap_or_default();
    Ok((job, args))
}

async fn patch_restore_in_place(fixture: &Fixture, confirm: &str, backup: &str) -> TestResult {
    let spec = json!({"confirm": confirm, "source": {"mysqlBackupRef": {"name": backup}}});
    fixture.patch_spec(json!({"restoreInPlace": spec})).await?;
    Ok(())
}

fn rfc3339_now() -> String {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    format!("{}Z", &now[..19])
}

/// `spec.restoreInPlace` with a fresh `confirm` token: the token is spent, the failover
/// loop stops, the Job (run here for real, against the real primary) drops what was written
/// since the backup and loads it; then the loop resumes, the replica is recloned from the
/// restored primary, and a replayed or bad token runs nothing destructive.
async fn a_restore_in_place_returns_the_group_to_the_backup(
    fixture: &Fixture,
    operator: &Operator,
    backup_id: &str,
) -> TestResult {
    let iad = fixture.instance("iad")?;
    iad.sql(
        "INSERT INTO shop.orders VALUES (4, 'after the backup'); CREATE DATABASE scratch; \
         CREATE TABLE scratch.t (id INT PRIMARY KEY); INSERT INTO scratch.t VALUES (1)",
    )?;
    let token = rfc3339_now();
    patch_restore_in_place(fixture, &token, "orders-manual-1").await?;
    let restoring = fixture
        .wait_group("restoreInPlace Restoring", Duration::from_secs(60), |g| {
            g.pointer("/status/restoreInPlace/phase") == Some(&json!("Restoring"))
        })
        .await?;
    let run = &restoring["status"]["restoreInPlace"];
    assert_eq!(run["confirmTokenUsed"], token.as_str(), "{run}");
    assert_eq!(run["targetSite"], "iad", "{run}");
    assert_eq!(run["scope"], "full", "{run}");
    assert!(
        operator.log_text().contains("the failover loop stops"),
        "the loop is stopped while the Job runs"
    );
    let jobs: Api<Job> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let job_name = run["jobName"].as_str().ok_or("no jobName")?;
    let job = jobs.get(job_name).await?;
    let work = fixture.work().join("restore-1");
    // The Job logs in with the operator's account.
    let restored = run_job_locally(&job, &work, "bloodraven", "operator-secret-1")?;
    assert_eq!(restored["id"], backup_id, "{restored}");
    let dropped = restored["droppedSchemas"]
        .as_array()
        .ok_or("droppedSchemas")?;
    for schema in ["scratch", "shop"] {
        assert!(dropped.contains(&json!(schema)), "{restored}");
    }
    end_job(fixture, &job, true).await?;

    let done = fixture
        .wait_group("restoreInPlace Succeeded", Duration::from_secs(90), |g| {
            g.pointer("/status/restoreInPlace/phase") == Some(&json!("Succeeded"))
        })
        .await?;
    let run = &done["status"]["restoreInPlace"];
    assert_eq!(run["reclonedSites"], json!(["pdx"]), "{run}");
    assert_eq!(
        iad.sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM shop.orders")?
            .trim(),
        "1,2,3"
    );
    assert_eq!(
        iad.sql("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'scratch'")?
            .trim(),
        "0"
    );
    let reasons = fixture
        .event_reasons_including(GROUP, &["RestoreStarted", "RestoreSucceeded"])
        .await?;
    for reason in ["RestoreStarted", "RestoreSucceeded"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }
    // The replica is cloned from the restored primary: it drops what it replicated since.
    let pdx = fixture.instance("pdx")?;
    wait_for(
        "pdx recloned from the restored primary",
        Duration::from_secs(180),
        async || {
            let ids = pdx
                .sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM shop.orders")
                .unwrap_or_default();
            let scratch = pdx
            .sql("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'scratch'")
            .unwrap_or_default();
            Ok((ids.trim() == "1,2,3" && scratch.trim() == "0").then_some(()))
        },
    )
    .await?;
    let text = operator.metrics().await?;
    let succeeded = metric_line(
        &text,
        "bloodraven_backup_runs_total",
        &[
            "kind=\"restore\"",
            "profile=\"offsite\"",
            "outcome=\"succeeded\"",
        ],
    );
    assert!(succeeded.is_some_and(|l| l.ends_with(" 1")), "{text}");

    replayed_and_bad_tokens_run_nothing(fixture, &token).await
}

async fn replayed_and_bad_tokens_run_nothing(fixture: &Fixture, token: &str) -> TestResult {
    let iad = fixture.instance("iad")?;
    // An older token: nothing runs.
    patch_restore_in_place(fixture, "2020-01-01T00:00:00Z", "orders-manual-1").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = fixture.group().await?;
    assert_eq!(still["status"]["restoreInPlace"]["phase"], "Succeeded");
    assert_eq!(still["status"]["restoreInPlace"]["confirmTokenUsed"], token);

    // A newer token naming no backup: refused before anything is touched, token spent.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let bad = rfc3339_now();
    patch_restore_in_place(fixture, &bad, "no-such-backup").await?;
    let failed = fixture
        .wait_group("restoreInPlace Failed", Duration::from_secs(30), |g| {
            g.pointer("/status/restoreInPlace/phase") == Some(&json!("Failed"))
        })
        .await?;
    let run = &failed["status"]["restoreInPlace"];
    assert_eq!(run["confirmTokenUsed"], bad.as_str(), "{run}");
    assert!(
        run["message"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-backup")),
        "{run}"
    );
    let reasons = fixture
        .event_reasons_including(GROUP, &["RestoreBuildFailed"])
        .await?;
    assert!(
        reasons.iter().any(|r| r == "RestoreBuildFailed"),
        "{reasons:?}"
    );
    assert_eq!(
        iad.sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM shop.orders")?
            .trim(),
        "1,2,3"
    );
    Ok(())
}

/// The messages of the Events about the group with reason `reason`, once one contains
/// `including` (or as they are after 10 s, for the caller's assertion to show).
async fn event_messages(
    fixture: &Fixture,
    reason: &str,
    including: &str,
) -> TestResult<Vec<String>> {
    use k8s_openapi::api::core::v1::Event;
    let events: Api<Event> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let messages: Vec<String> = events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|e| {
                e.involved_object.name.as_deref() == Some(GROUP)
                    && e.reason.as_deref() == Some(reason)
            })
            .filter_map(|e| e.message)
            .collect();
        if messages.iter().any(|m| m.contains(including)) || Instant::now() > deadline {
            return Ok(messages);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Rows of `shop.orders` and of the `ledger` schema written after the backup, on `site`.
fn shop_and_ledger(fixture: &Fixture, site: &str) -> TestResult<(String, String)> {
    let server = fixture.instance(site)?;
    let shop = server.sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM shop.orders")?;
    let ledger = server.sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM ledger.entries")?;
    Ok((shop.trim().to_owned(), ledger.trim().to_owned()))
}

/// `spec.restoreInPlace` of one schema (`loadOptions.includeSchemas: [shop]`): the group
/// keeps serving (no fence, the failover loop keeps running), the Job drops and loads only
/// `shop`, binlogged under the primary's own GTIDs, so the replica gets the restored rows
/// by replication and nobody is recloned; a schema written since the backup is left alone.
/// Then an in-place selection of two schemas fails to build, touching nothing.
#[allow(clippy::too_many_lines)] // one scenario, step by step
async fn a_restore_of_one_schema_in_place_reaches_the_replica_by_replication(
    fixture: &Fixture,
    operator: &Operator,
    backup_id: &str,
) -> TestResult {
    let iad = fixture.instance("iad")?;
    iad.sql(
        "INSERT INTO shop.orders VALUES (5, 'after the backup'); CREATE DATABASE ledger; \
         CREATE TABLE ledger.entries (id INT PRIMARY KEY); INSERT INTO ledger.entries VALUES (1), (2)",
    )?;
    // On the replica by replication first, so that what it shows after the restore came
    // the same way.
    wait_for(
        "pdx replicating the writes",
        Duration::from_secs(60),
        async || {
            let rows = shop_and_ledger(fixture, "pdx").ok();
            Ok(rows
                .filter(|r| r.0 == "1,2,3,5" && r.1 == "1,2")
                .map(|_| ()))
        },
    )
    .await?;
    let role_before = fixture
        .pod_labels("iad")
        .await?
        .get("shipstream.io/role")
        .cloned();
    let log_from = operator.log_text().len();
    // A token newer than the last one, which was taken to the second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let token = rfc3339_now();
    let spec = json!({"confirm": token, "source": {"mysqlBackupRef": {"name": "orders-manual-1"}},
                      "loadOptions": {"includeSchemas": ["shop"]}});
    fixture.patch_spec(json!({"restoreInPlace": spec})).await?;
    let restoring = fixture
        .wait_group(
            "the one-schema run Restoring",
            Duration::from_secs(60),
            |g| {
                let run = &g["status"]["restoreInPlace"];
                run["confirmTokenUsed"] == token.as_str() && run["phase"] == "Restoring"
            },
        )
        .await?;
    let run = &restoring["status"]["restoreInPlace"];
    assert_eq!(run["scope"], "schema:shop", "{run}");
    assert_eq!(run["targetSite"], "iad", "{run}");
    // The group keeps serving: the primary's pods keep their role.
    let role = fixture
        .pod_labels("iad")
        .await?
        .get("shipstream.io/role")
        .cloned();
    assert_eq!(role, role_before, "iad's pod relabelled");
    assert_ne!(role.as_deref(), Some("fenced"));
    let (job, args) = run_job(fixture, run).await?;
    assert!(
        args.windows(3)
            .any(|w| w == ["--include-schema", "shop", "--replace-schemas"]),
        "{args:?}"
    );
    assert!(!args.iter().any(|a| a == "--reset-gtids"), "{args:?}");

    let restored = run_job_locally(
        &job,
        &fixture.work().join("restore-shop"),
        "bloodraven",
        "operator-secret-1",
    )?;
    assert_eq!(restored["id"], backup_id, "{restored}");
    assert_eq!(restored["schemas"], json!(["shop"]), "{restored}");
    assert_eq!(restored["droppedSchemas"], json!(["shop"]), "{restored}");
    assert_eq!(
        shop_and_ledger(fixture, "iad")?,
        ("1,2,3".to_owned(), "1,2".to_owned()),
        "shop is the backup's again and ledger is untouched"
    );
    end_job(fixture, &job, true).await?;
    let done = fixture
        .wait_group(
            "the one-schema run Succeeded",
            Duration::from_secs(60),
            |g| g.pointer("/status/restoreInPlace/phase") == Some(&json!("Succeeded")),
        )
        .await?;
    let run = &done["status"]["restoreInPlace"];
    assert!(
        run.get("reclonedSites").is_none_or(|r| r == &json!([])),
        "nobody is recloned: {run}"
    );
    assert_eq!(done["status"]["activeSite"], "iad");
    // The drop and the load replicate: pdx has the backup's shop and keeps ledger.
    wait_for(
        "pdx following by replication",
        Duration::from_secs(60),
        async || {
            let rows = shop_and_ledger(fixture, "pdx").ok();
            Ok(rows.filter(|r| r.0 == "1,2,3" && r.1 == "1,2").map(|_| ()))
        },
    )
    .await?;
    let log = operator.log_text();
    assert!(
        !log[log_from.min(log.len())..].contains("the failover loop stops"),
        "a one-schema run never stops the failover loop"
    );
    let succeeded = event_messages(fixture, "RestoreSucceeded", "schema shop").await?;
    assert!(
        succeeded
            .iter()
            .any(|m| m.contains("restored schema shop into iad")),
        "{succeeded:?}"
    );

    // Two schemas in place: refused before anything is touched, the token spent.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let two = rfc3339_now();
    let spec = json!({"confirm": two, "source": {"mysqlBackupRef": {"name": "orders-manual-1"}},
                      "loadOptions": {"includeSchemas": ["shop", "ledger"]}});
    fixture.patch_spec(json!({"restoreInPlace": spec})).await?;
    let failed = fixture
        .wait_group("the two-schema run Failed", Duration::from_secs(30), |g| {
            let run = &g["status"]["restoreInPlace"];
            run["confirmTokenUsed"] == two.as_str() && run["phase"] == "Failed"
        })
        .await?;
    let message = failed["status"]["restoreInPlace"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("names 2 schemas"), "{message}");
    let refused = event_messages(fixture, "RestoreBuildFailed", "names 2 schemas").await?;
    assert!(
        refused.iter().any(|m| m.contains("names 2 schemas")),
        "{refused:?}"
    );
    let name = bloodraven::render::restore::job_name(
        GROUP,
        bloodraven::backup::restore_run::RestoreKind::InPlace,
        &two,
    );
    let jobs: Api<Job> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    assert!(
        jobs.get_opt(&name).await?.is_none(),
        "no Job for a refused run"
    );
    assert_eq!(
        shop_and_ledger(fixture, "iad")?,
        ("1,2,3".to_owned(), "1,2".to_owned()),
        "nothing touched"
    );
    Ok(())
}

/// `spec.initFromBackup` on a group whose primary already holds the backup's schemas: the
/// Job (run for real) refuses before writing anything, and the one-shot restore ends
/// Failed with the Job's reason, never to run again.
async fn init_from_backup_refuses_a_primary_that_holds_data(fixture: &Fixture) -> TestResult {
    fixture
        .patch_spec(json!({"initFromBackup": {
                "source": {"mysqlBackupRef": {"name": "orders-manual-1"}}}}))
        .await?;
    let running = fixture
        .wait_group("restore Running", Duration::from_secs(60), |g| {
            g.pointer("/status/restore/phase") == Some(&json!("Running"))
        })
        .await?;
    let run = &running["status"]["restore"];
    assert_eq!(run["targetSite"], "iad", "{run}");
    let (job, args) = run_job(fixture, run).await?;
    assert!(args.iter().any(|a| a == "--reset-gtids"), "{args:?}");
    let work = fixture.work().join("init-1");
    let refused = run_job_locally(&job, &work, "bloodraven", "operator-secret-1");
    let why = refused
        .err()
        .ok_or("a primary with data was restored into")?
        .to_string();
    assert!(why.contains("shop"), "the refusal names the schema: {why}");
    assert_eq!(
        fixture
            .instance("iad")?
            .sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM shop.orders")?
            .trim(),
        "1,2,3",
        "nothing written"
    );
    end_job(fixture, &job, false).await?;
    let failed = fixture
        .wait_group("restore Failed", Duration::from_secs(60), |g| {
            g.pointer("/status/restore/phase") == Some(&json!("Failed"))
        })
        .await?;
    let message = failed["status"]["restore"]["message"]
        .as_str()
        .unwrap_or("");
    assert!(message.contains("BackoffLimitExceeded"), "{message}");
    let reasons = fixture
        .event_reasons_including(GROUP, &["RestoreFailed"])
        .await?;
    assert!(reasons.iter().any(|r| r == "RestoreFailed"), "{reasons:?}");
    // One-shot: it stays Failed, and no second Job appears.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        fixture.group().await?["status"]["restore"]["phase"],
        "Failed"
    );
    Ok(())
}

/// `spec.backup.retry`: a failed scheduled backup stays Failed and, after its backoff, a
/// new MysqlBackup takes the next attempt; the last attempt's failure is final, and an
/// ad-hoc backup is never retried.
async fn a_failed_scheduled_backup_is_retried_until_its_attempts_run_out(
    fixture: &Fixture,
) -> TestResult {
    let groups: Api<bloodraven::api::MysqlFailoverGroup> =
        Api::namespaced(fixture.client().clone(), fixture.namespace());
    let retry = json!({"maxAttempts": 2, "initialBackoffSeconds": 1, "maxBackoffSeconds": 5});
    fixture
        .patch_spec(json!({"backup": {"retry": retry}}))
        .await?;
    create_backup(
        fixture,
        "orders-nightly-1",
        json!({"triggeredBy": "schedule/nightly"}),
    )
    .await?;
    let job = wait_job(fixture, "orders-nightly-1").await?;
    end_job(fixture, &job, false).await?;
    wait_phase(fixture, "orders-nightly-1", "Failed").await?;

    // After the backoff, with no event to bring it: attempt 2, its own MysqlBackup.
    let api: Api<MysqlBackup> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let second = wait_for("attempt 2", Duration::from_secs(30), async || {
        Ok(api.get_opt("orders-nightly-1-retry-2").await?)
    })
    .await?;
    assert_eq!(
        second.spec.triggered_by.as_deref(),
        Some("retry/nightly/attempt-2")
    );
    assert_eq!(second.spec.profile_name, "offsite");
    // The successor is created first, then the failed attempt is marked with it.
    let first = wait_for("RetryCreated", Duration::from_secs(10), async || {
        let status = backup_status(fixture, "orders-nightly-1").await?;
        Ok(status["conditions"]
            .to_string()
            .contains("RetryCreated")
            .then_some(status))
    })
    .await?;
    assert_eq!(
        first["phase"], "Failed",
        "the failed attempt stays Failed: {first}"
    );
    let reasons = fixture
        .event_reasons_including("orders-nightly-1", &["BackupRetryScheduled"])
        .await?;
    assert!(
        reasons.iter().any(|r| r == "BackupRetryScheduled"),
        "{reasons:?}"
    );

    let job = wait_job(fixture, "orders-nightly-1-retry-2").await?;
    let running = wait_phase(fixture, "orders-nightly-1-retry-2", "Running").await?;
    assert_eq!(running["attempt"], 2, "{running}");
    end_job(fixture, &job, false).await?;
    wait_phase(fixture, "orders-nightly-1-retry-2", "Failed").await?;
    // The last attempt: nothing follows, even well after its backoff.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(api.get_opt("orders-nightly-1-retry-3").await?.is_none());
    // orders-manual-2 failed too, ad hoc: never retried.
    assert!(api.get_opt("orders-manual-2-retry-2").await?.is_none());

    // status.backupSchedules follows: the newest run is the last attempt, Failed, with no
    // retry pending.
    let schedule = wait_for(
        "status.backupSchedules",
        Duration::from_secs(20),
        async || {
            let group = groups.get(GROUP).await?;
            let status = serde_json::to_value(group.status.unwrap_or_default())?;
            Ok(status["backupSchedules"]
                .as_array()
                .and_then(|all| all.iter().find(|s| s["name"] == "nightly"))
                .filter(|s| {
                    s["lastBackupName"] == "orders-nightly-1-retry-2"
                        && s["lastBackupPhase"] == "Failed"
                })
                .cloned())
        },
    )
    .await?;
    assert_eq!(
        schedule["cronJobName"], "mysql-orders-backup-nightly",
        "{schedule}"
    );
    assert_eq!(schedule["lastRetryAttempt"], 2, "{schedule}");
    assert!(
        schedule.get("nextRetryTime").is_none(),
        "attempts used up: {schedule}"
    );
    assert!(schedule["lastScheduleTime"].is_string(), "{schedule}");
    Ok(())
}

/// Retention deletes the MysqlBackups a profile no longer keeps (never the newest
/// successful one), and a deleted MysqlBackup's finalizer removes its backup from S3
/// before the object goes.
async fn retention_and_cleanup_follow_the_objects(fixture: &Fixture, s3: &SeaweedS3) -> TestResult {
    let api: Api<MysqlBackup> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let kept = api.get("orders-manual-1").await?;
    assert!(
        kept.metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .iter()
            .any(|f| f == "shipstream.io/backup-artifacts"),
        "the finalizer is on before the Job: {:?}",
        kept.metadata.finalizers
    );
    let groups: Api<bloodraven::api::MysqlFailoverGroup> =
        Api::namespaced(fixture.client().clone(), fixture.namespace());
    let group = groups.get(GROUP).await?;
    let mut profiles = serde_json::to_value(&group.spec.backup.as_ref().ok_or("backup")?.profiles)?;
    profiles[0]["retentionPolicy"] = json!({"count": 1, "minKeep": 1, "maxFailedKeep": 0});
    fixture
        .patch_spec(json!({"backup": {"profiles": profiles}}))
        .await?;
    wait_for(
        "failed backups pruned",
        Duration::from_secs(60),
        async || {
            let left: Vec<String> = api
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .filter(|b| b.spec.profile_name == "offsite")
                .filter(|b| b.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
                .filter_map(|b| b.metadata.name.clone())
                .collect();
            Ok(left.is_empty().then_some(()))
        },
    )
    .await?;
    assert!(
        api.get_opt("orders-manual-1").await?.is_some(),
        "the newest success is kept"
    );
    deleting_a_backup_deletes_its_artifacts(fixture, s3, &kept).await
}

async fn deleting_a_backup_deletes_its_artifacts(
    fixture: &Fixture,
    s3: &SeaweedS3,
    kept: &MysqlBackup,
) -> TestResult {
    let api: Api<MysqlBackup> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    // Deleting the object deletes its backup from the repository first.
    let id = kept
        .status
        .as_ref()
        .and_then(|s| s.location.clone())
        .ok_or("location")?;
    let id = id
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .ok_or("id")?
        .to_owned();
    let listed = |url: &str| -> TestResult<String> {
        let out = Command::new(BIN)
            .args([
                "backup",
                "list",
                "--from",
                url,
                "--format",
                "json",
                "--s3-endpoint",
                &s3.endpoint(),
            ])
            .envs(s3.env())
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    assert!(
        listed("s3://backups/orders")?.contains(&id),
        "listed before"
    );
    api.delete("orders-manual-1", &kube::api::DeleteParams::default())
        .await?;
    wait_gone(&api, "orders-manual-1", Duration::from_secs(60)).await?;
    let after = listed("s3://backups/orders")?;
    if after.contains(&id) {
        return Err(format!("the artifacts of {id} are still listed: {after}").into());
    }
    let reasons = fixture
        .event_reasons_including("orders-manual-1", &["ArtifactCleanupSucceeded"])
        .await?;
    assert!(
        reasons.iter().any(|r| r == "ArtifactCleanupSucceeded"),
        "{reasons:?}"
    );
    Ok(())
}
