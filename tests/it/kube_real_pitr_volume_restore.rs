//! A point-in-time restore from a backup volume (`storage.type: PVC`), which only Jobs
//! mount: the operator learns what the restore replayed from the record its Job's pod
//! leaves in its termination message, against the real API server (built-in kinds mode),
//! a real MySQL 9.7 pair, MySQL's real tools and the real engine.
//!
//! What cannot be real here, and what stands in for it: nothing runs pods. The test plays
//! the Job controller and the kubelet as `kube_real_backup_volume` does: it runs the
//! backup Job's, the archiver's (one pass) and the restore Job's rendered commands as
//! local processes, with the volume in one local directory and `/dev/termination-log` in
//! a local file, creates each Job's Pod (its label and controller reference) and writes
//! the container's terminated state with that file's contents into the Pod's status.
//!
//! Run by `scripts/kube-apiserver-test.sh PATH/TO/crd-apiserver.sh`; CI runs it.

use std::path::Path;
use std::time::Duration;

use bloodraven::render::pitr::ARCHIVER_CONTAINER;
use serde_json::{Value, json};

use crate::failover_common::TestResult;
use crate::kube_real_backup::{
    create_backup, end_job, run_job, run_job_locally, wait_job, wait_phase,
};
use crate::kube_real_backup_volume::pod_of;
use crate::kube_real_operator::{Fixture, Operator, Timing};
use crate::kube_real_pitr::{archive_once, archiver_pod};
use crate::kube_real_pitr_volume::local_archiver_args;

const IMAGE: &str = "ghcr.io/example/bloodraven@sha256:0123";
const BACKUP: &str = "orders-pitr-base";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_pitr_volume_restore_what_a_restore_replayed_comes_from_its_pods_termination_message()
-> TestResult {
    let fixture = Fixture::start_with(Timing::Fast).await?;
    let operator: Operator = fixture.operator_with(
        "pitr-volume-restore",
        &["--job-image", IMAGE, "--resync-secs", "2"],
    )?;
    let outcome = Box::pin(restore_on_a_volume(&fixture)).await;
    operator.tail_log_on_failure(outcome)
}

async fn restore_on_a_volume(fixture: &Fixture) -> TestResult {
    fixture.wait_active("iad", Duration::from_secs(30)).await?;
    // One PVC profile for both the backups and the binary-log archive.
    fixture
        .patch_spec(json!({"backup": {
            "maxLagSecondsForSource": 300,
            "profiles": [{"name": "local",
                          "storage": {"type": "PVC", "pvc": {"claimName": "orders-backups",
                                                             "subPath": "orders"}}}],
            "pitr": {"enabled": true, "profileName": "local", "archivePollInterval": "5s"}
        }}))
        .await?;
    let iad = fixture.instance("iad")?;
    iad.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY); \
         INSERT INTO shop.orders VALUES (1), (2)",
    )?;
    let work = fixture.work().join("volume");
    backup_on_the_volume(fixture, &work).await?;

    // Written after the backup: 3 and 4 before the target time, 5 and 6 after it.
    iad.sql("INSERT INTO shop.orders VALUES (3); INSERT INTO shop.orders VALUES (4)")?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let target = rfc3339_now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    iad.sql("INSERT INTO shop.orders VALUES (5); INSERT INTO shop.orders VALUES (6)")?;
    assert_eq!(orders(fixture)?, "1,2,3,4,5,6");
    let archived = archive_one_pass(fixture, &work).await?;
    assert!(!archived.is_empty(), "nothing archived");

    let token = rfc3339_now();
    let restore = json!({"confirm": token, "source": {"mysqlBackupRef": {"name": BACKUP}},
                         "pointInTime": {"stopDatetime": target}});
    fixture
        .patch_spec(json!({"restoreInPlace": restore}))
        .await?;
    let restoring = fixture
        .wait_group("restoreInPlace Restoring", Duration::from_secs(60), |g| {
            g.pointer("/status/restoreInPlace/confirmTokenUsed") == Some(&json!(token))
                && g.pointer("/status/restoreInPlace/phase") == Some(&json!("Restoring"))
        })
        .await?;
    let run = &restoring["status"]["restoreInPlace"];
    assert_eq!(run["pitrStopDatetime"], target.as_str(), "{run}");
    let record = restore_on_the_volume(fixture, run, &work).await?;
    let replayed = record["replayedBinlogs"]
        .as_array()
        .filter(|logs| !logs.is_empty())
        .ok_or_else(|| format!("no replayed binary logs: {record}"))?;
    // The restored primary holds exactly what was written up to the target.
    assert_eq!(orders(fixture)?, "1,2,3,4");

    // The fields come with the run's Resuming, in the same write: past Loading they are
    // what the operator took from the record, or never will be.
    let resumed = fixture
        .wait_group("the run past Loading", Duration::from_secs(60), |g| {
            matches!(
                g.pointer("/status/restoreInPlace/phase")
                    .and_then(Value::as_str),
                Some("Resuming" | "Succeeded" | "Failed")
            )
        })
        .await?;
    let run = &resumed["status"]["restoreInPlace"];
    assert_eq!(
        run["pitrReplayedBinlogCount"],
        json!(replayed.len()),
        "{run}"
    );
    assert_eq!(
        run["pitrReplayedBinlogFile"],
        replayed[replayed.len() - 1],
        "{run}"
    );
    assert_eq!(run["pitrStopDatetime"], target.as_str(), "{run}");
    Ok(())
}

/// A backup of the primary on the volume, its status from its pod's termination message.
async fn backup_on_the_volume(fixture: &Fixture, work: &Path) -> TestResult {
    create_backup(fixture, BACKUP, json!({"profileName": "local"})).await?;
    let job = wait_job(fixture, BACKUP).await?;
    let manifest = run_job_locally(&job, work, "bloodraven", "operator-secret-1")?;
    let message = std::fs::read_to_string(work.join("termination-log"))?;
    pod_of(fixture, &job, "real", true, &message).await?;
    end_job(fixture, &job, true).await?;
    let done = wait_phase(fixture, BACKUP, "Succeeded").await?;
    assert_eq!(done["gtidExecuted"], manifest["gtidExecuted"], "{done}");
    Ok(())
}

/// The archiver Deployment's command, run here for one pass against the real primary into
/// the same local volume: the writer Service, the mounted credentials and tools, and the
/// volume swapped for the test's. Returns the logs it archived.
async fn archive_one_pass(fixture: &Fixture, work: &Path) -> TestResult<Vec<String>> {
    let args = archiver_pod(fixture)
        .await?
        .containers
        .into_iter()
        .find(|c| c.name == ARCHIVER_CONTAINER)
        .and_then(|c| c.args)
        .ok_or("no archiver container")?;
    assert!(
        args.iter().any(|a| a == "file:///backups/orders"),
        "{args:?}"
    );
    // One pass, so no summary to serve (the two flags conflict).
    let mut served = Vec::new();
    let mut rest = args.into_iter();
    while let Some(arg) = rest.next() {
        if arg == "--status-listen" {
            rest.next();
        } else {
            served.push(arg);
        }
    }
    archive_once(local_archiver_args(fixture, &served, work)?)
}

/// The restore Job of `run`, run here against the real primary from the local volume; its
/// record, read from the termination message it left, goes into its Pod's status. Returns
/// that record.
async fn restore_on_the_volume(fixture: &Fixture, run: &Value, work: &Path) -> TestResult<Value> {
    let (job, args) = run_job(fixture, run).await?;
    assert!(
        args.iter().any(|a| a == "file:///backups/orders"),
        "{args:?}"
    );
    assert_eq!(
        args.iter()
            .position(|a| a == "--termination-log")
            .and_then(|i| args.get(i + 1))
            .map(String::as_str),
        Some("/dev/termination-log"),
        "{args:?}"
    );
    // The backup's record must not stand in for the restore's.
    let log = work.join("termination-log");
    std::fs::remove_file(&log)?;
    let restored = run_job_locally(&job, work, "bloodraven", "operator-secret-1")?;
    let message = std::fs::read_to_string(&log)?;
    assert!(message.len() <= 4096, "{} bytes", message.len());
    let record: Value = serde_json::from_str(&message)?;
    let job_name = job.metadata.name.as_deref().ok_or("no Job name")?;
    assert_eq!(
        record["name"],
        format!("{}.{job_name}", fixture.namespace()),
        "{record}"
    );
    assert!(restored.is_object(), "{restored}");
    pod_of(fixture, &job, "real", true, &message).await?;
    end_job(fixture, &job, true).await?;
    Ok(record)
}

fn orders(fixture: &Fixture) -> TestResult<String> {
    let rows = fixture
        .instance("iad")?
        .sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM shop.orders")?;
    Ok(rows.trim().to_owned())
}

fn rfc3339_now() -> String {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    format!("{}Z", &now[..19])
}
