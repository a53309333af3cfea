//! A backup profile on a volume (`storage.type: PVC`), which only Jobs mount: the operator
//! learns a backup's manifest from the termination message the Job's pod leaves, against
//! the real API server (built-in kinds mode), a real MySQL 9.7 pair and the real engine.
//!
//! What cannot be real here, and what stands in for it: nothing runs pods. The test plays
//! the Job controller and the kubelet: it runs the Job's command as a local process, with
//! the volume in a local directory and `/dev/termination-log` in a local file, creates the
//! Pod the Job controller would (its label and controller reference), and writes the
//! container's terminated state with that file's contents into the Pod's status, as the
//! kubelet does. The API server stores and serves the Pods; the operator lists them.
//!
//! Run by `scripts/kube-apiserver-test.sh PATH/TO/crd-apiserver.sh`; CI runs it.

use std::path::Path;
use std::time::Duration;

use std::process::Command;

use bloodraven::api::{MysqlBackup, MysqlBackupVerification};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::failover_common::TestResult;
use crate::kube_real_backup::{
    backup_status, create_backup, end_job, run_job_locally, scratch_args, verification_job,
    wait_for, wait_gone, wait_job, wait_phase,
};
use crate::kube_real_operator::{Fixture, Operator, Timing};
use crate::support::mysql::MysqlCluster;

const BIN: &str = env!("CARGO_BIN_EXE_bloodraven");
const IMAGE: &str = "ghcr.io/example/bloodraven@sha256:0123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_backup_volume_a_backup_on_a_volume_gets_its_status_from_the_pods_termination_message()
-> TestResult {
    let fixture = Fixture::start_with(Timing::Fast).await?;
    let operator: Operator = fixture.operator_with("backup-volume", &["--job-image", IMAGE])?;
    let outcome = Box::pin(on_a_volume(&fixture)).await;
    operator.tail_log_on_failure(outcome)
}

async fn on_a_volume(fixture: &Fixture) -> TestResult {
    fixture.wait_active("iad", Duration::from_secs(30)).await?;
    profiles_on_volumes(fixture).await?;
    fixture.instance("iad")?.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY); \
         INSERT INTO shop.orders VALUES (1), (2)",
    )?;

    // The Job writes the backup to the volume and its manifest to the termination message.
    create_backup(fixture, "orders-local-1", json!({"profileName": "local"})).await?;
    let job = wait_job(fixture, "orders-local-1").await?;
    let args = engine_args(&job)?;
    let at = args.iter().position(|a| a == "--termination-log");
    assert_eq!(
        at.and_then(|i| args.get(i + 1)).map(String::as_str),
        Some("/dev/termination-log"),
        "{args:?}"
    );
    assert!(
        args.iter().any(|a| a == "file:///backups/orders"),
        "{args:?}"
    );
    let work = fixture.work().join("volume");
    let manifest = run_job_locally(&job, &work, "bloodraven", "operator-secret-1")?;
    let message = std::fs::read_to_string(work.join("termination-log"))?;
    let left: Value = serde_json::from_str(&message)?;
    assert_eq!(left["id"], manifest["id"], "{message}");
    assert!(message.len() <= 4096, "{} bytes", message.len());
    assert!(
        work.join("backups/orders/backups")
            .join(manifest["id"].as_str().ok_or("no id")?)
            .join("manifest.json")
            .is_file(),
        "the backup is on the volume"
    );

    // A pod that only carries the Job's label does not speak for it.
    let mut forged = left.clone();
    forged["gtidExecuted"] = json!("00000000-0000-0000-0000-000000000000:1-99");
    pod_of(fixture, &job, "forged", false, &forged.to_string()).await?;
    pod_of(fixture, &job, "real", true, &message).await?;
    end_job(fixture, &job, true).await?;

    let done = wait_phase(fixture, "orders-local-1", "Succeeded").await?;
    assert_eq!(done["gtidExecuted"], manifest["gtidExecuted"], "{done}");
    assert_eq!(done["sizeBytes"], manifest["storedBytes"], "{done}");
    assert_eq!(done["completionTime"], manifest["finishedAt"], "{done}");
    assert_eq!(done["storageType"], "PVC", "{done}");
    let id = manifest["id"].as_str().ok_or("no id")?;
    assert_eq!(
        done["location"],
        format!("file:///backups/orders/backups/{id}/")
    );

    a_verification_on_the_volume_is_judged_by_its_pods_record(fixture, &work).await?;

    // A Job whose pod left nothing (gone, or the manifest too long): the backup still
    // succeeds, and the status says where to find it.
    create_backup(fixture, "orders-local-2", json!({"profileName": "local"})).await?;
    let second = wait_job(fixture, "orders-local-2").await?;
    let kept = run_job_locally(&second, &work, "bloodraven", "operator-secret-1")?;
    end_job(fixture, &second, true).await?;
    let plain = wait_phase(fixture, "orders-local-2", "Succeeded").await?;
    assert!(plain["gtidExecuted"].is_null(), "{plain}");
    let says = plain["message"].as_str().unwrap_or_default();
    assert!(says.contains("only Jobs mount"), "{plain}");
    assert_eq!(
        backup_status(fixture, "orders-local-1").await?["sizeBytes"],
        done["sizeBytes"]
    );

    let manifest_of = |id: &Value| -> TestResult<std::path::PathBuf> {
        let id = id.as_str().ok_or("no id")?;
        Ok(work
            .join("backups/orders/backups")
            .join(id)
            .join("manifest.json"))
    };
    assert!(
        manifest_of(&kept["id"])?.is_file(),
        "both backups are on the volume"
    );
    deleting_runs_a_cleanup_job(fixture, id, &work).await?;
    a_backup_deleted_mid_run_is_cleaned_up_after_its_job(fixture).await?;
    assert!(
        !manifest_of(&manifest["id"])?.exists(),
        "the deleted backup is gone"
    );
    assert!(
        manifest_of(&kept["id"])?.is_file(),
        "the other backup stays"
    );
    Ok(())
}

/// Deleting a MysqlBackup on a volume: a cleanup Job deletes its backup there, and the
/// finalizer holds the object until the Job succeeded. A failed Job says how to go on and
/// runs again once deleted.
async fn deleting_runs_a_cleanup_job(fixture: &Fixture, id: &str, work: &Path) -> TestResult {
    let backups: Api<MysqlBackup> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let jobs: Api<Job> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    backups
        .delete("orders-local-1", &DeleteParams::default())
        .await?;
    let name = format!("cleanup-{id}");
    let first = wait_for("the cleanup Job", Duration::from_secs(30), async || {
        Ok(jobs.get_opt(&name).await?)
    })
    .await?;
    let args = first
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers[0].args.clone())
        .unwrap_or_default();
    assert_eq!(
        args,
        [
            "backup",
            "delete",
            "--from",
            "file:///backups/orders",
            "--id",
            id
        ],
        "no credentials, no passphrase"
    );

    // The Job fails: the object stays, and its status and an Event say what to do.
    end_job(fixture, &first, false).await?;
    let said = wait_for(
        "the failure in the status",
        Duration::from_secs(30),
        async || {
            let status = backup_status(fixture, "orders-local-1").await?;
            let message = status["message"].as_str().unwrap_or_default().to_owned();
            Ok(message
                .contains("delete the Job to run it again")
                .then_some(message))
        },
    )
    .await?;
    assert!(said.contains(&name), "{said}");
    let reasons = fixture
        .event_reasons_including(
            "orders-local-1",
            &["ArtifactCleanupStarted", "ArtifactCleanupFailed"],
        )
        .await?;
    assert!(
        reasons.iter().any(|r| r == "ArtifactCleanupFailed"),
        "{reasons:?}"
    );

    // Deleting the failed Job runs the cleanup again; this time it runs and succeeds.
    jobs.delete(&name, &DeleteParams::default()).await?;
    let first_uid = first.metadata.uid.clone();
    let second = wait_for(
        "the cleanup Job again",
        Duration::from_secs(30),
        async || {
            Ok(jobs
                .get_opt(&name)
                .await?
                .filter(|j| j.metadata.uid != first_uid))
        },
    )
    .await?;
    let deleted = run_job_locally(&second, work, "unused", "unused")?;
    assert_eq!(deleted["deleted"], id, "{deleted}");
    assert!(
        backups.get_opt("orders-local-1").await?.is_some(),
        "the finalizer holds the object until the Job succeeded"
    );
    end_job(fixture, &second, true).await?;
    wait_gone(&backups, "orders-local-1", Duration::from_secs(30)).await?;
    let reasons = fixture
        .event_reasons_including("orders-local-1", &["ArtifactCleanupSucceeded"])
        .await?;
    assert!(
        reasons.iter().any(|r| r == "ArtifactCleanupSucceeded"),
        "{reasons:?}"
    );
    Ok(())
}

/// A verification of the backup on the volume: its Job restores it into a scratch server
/// (run here for real) and leaves its record in the termination message, the only place
/// the operator can read the sanity check's result from.
async fn a_verification_on_the_volume_is_judged_by_its_pods_record(
    fixture: &Fixture,
    work: &Path,
) -> TestResult {
    let api: Api<MysqlBackupVerification> =
        Api::namespaced(fixture.client().clone(), fixture.namespace());
    let job = verification_job(
        fixture,
        "orders-verify-local",
        json!({"profileName": "local",
                     "sanityCheck": {"query": "SELECT COUNT(*) FROM shop.orders",
                                     "expect": {"minRows": 2}}}),
    )
    .await?;
    let scratch = MysqlCluster::start(1)?;
    let server = scratch.get(0)?;
    server.sql(
        "SET SESSION sql_log_bin = 0; \
         CREATE USER 'verify'@'127.0.0.1' IDENTIFIED BY ''; \
         GRANT ALL ON *.* TO 'verify'@'127.0.0.1' WITH GRANT OPTION",
    )?;
    let args = scratch_args(&job, &format!("127.0.0.1:{}", server.port()), work)?;
    assert!(args.iter().any(|a| a == "--termination-log"), "{args:?}");
    let output = Command::new(BIN)
        .args(&args)
        .env("BLOODRAVEN_MYSQL_USER", "verify")
        .output()?;
    assert!(output.status.success(), "{args:?}: {output:?}");
    let message = std::fs::read_to_string(work.join("termination-log"))?;
    pod_of(fixture, &job, "real", true, &message).await?;
    end_job(fixture, &job, true).await?;
    let done = wait_for(
        "the verification Succeeded",
        Duration::from_secs(30),
        async || {
            let v = serde_json::to_value(api.get("orders-verify-local").await?)?;
            Ok((v["status"]["phase"] == "Succeeded").then(|| v["status"].clone()))
        },
    )
    .await?;
    assert_eq!(done["conditions"][0]["status"], "True", "{done}");
    assert_eq!(done["sanityCheck"]["ran"], true, "{done}");
    assert_eq!(done["sanityCheck"]["resultRow"], "2", "{done}");
    Ok(())
}

/// A backup deleted while its Job still writes: no cleanup runs until the Job has ended,
/// since what it deleted meanwhile the Job could write after, leaving a complete-looking
/// backup with holes.
async fn a_backup_deleted_mid_run_is_cleaned_up_after_its_job(fixture: &Fixture) -> TestResult {
    let backups: Api<MysqlBackup> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let jobs: Api<Job> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    create_backup(fixture, "orders-local-3", json!({"profileName": "local"})).await?;
    let running = wait_job(fixture, "orders-local-3").await?;
    backups
        .delete("orders-local-3", &DeleteParams::default())
        .await?;
    let cleanup_of_3 = async || -> TestResult<Option<Job>> {
        Ok(jobs
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .find(|j| {
                j.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("cleanup-orders-local-3-"))
            }))
    };
    // Passes go by (a resync every few seconds in this fixture) with the backup Job active.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        cleanup_of_3().await?.is_none(),
        "no cleanup while the backup Job runs"
    );
    assert!(backups.get_opt("orders-local-3").await?.is_some());
    end_job(fixture, &running, false).await?;
    let cleanup = wait_for(
        "the cleanup Job after the backup Job",
        Duration::from_secs(30),
        cleanup_of_3,
    )
    .await?;
    end_job(fixture, &cleanup, true).await?;
    wait_gone(&backups, "orders-local-3", Duration::from_secs(30)).await
}

/// Two PVC profiles: `local` on a claim of the user's, `scratch` on one the operator
/// provisions.
async fn profiles_on_volumes(fixture: &Fixture) -> TestResult {
    fixture
        .patch_spec(json!({"backup": {
            "maxLagSecondsForSource": 300,
            "profiles": [
                {"name": "local",
                 "storage": {"type": "PVC", "pvc": {"claimName": "orders-backups",
                                                    "subPath": "orders"}}},
                {"name": "scratch",
                 "storage": {"type": "PVC", "pvc": {"storageClassName": "standard",
                                                    "size": "5Gi"}}}
            ]
        }}))
        .await?;
    // A profile without a claim gets one, which the group does not own (deleting the
    // group leaves the backups); its appearing also says the operator has the new spec.
    let claims: Api<PersistentVolumeClaim> =
        Api::namespaced(fixture.client().clone(), fixture.namespace());
    let claim = wait_for(
        "the provisioned backup claim",
        Duration::from_secs(30),
        async || Ok(claims.get_opt("mysql-orders-backup-scratch").await?),
    )
    .await?;
    assert!(claim.metadata.owner_references.is_none(), "{claim:?}");
    let spec = claim.spec.ok_or("no claim spec")?;
    assert_eq!(spec.storage_class_name.as_deref(), Some("standard"));
    let requests = spec.resources.and_then(|r| r.requests).unwrap_or_default();
    assert_eq!(requests.get("storage").map(|q| q.0.as_str()), Some("5Gi"));
    assert!(
        claims.get_opt("orders-backups").await?.is_none(),
        "a named claim is the user's: never provisioned"
    );
    Ok(())
}

fn engine_args(job: &Job) -> TestResult<Vec<String>> {
    let pod = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .ok_or("no pod spec")?;
    let container = &pod.containers[0];
    assert_eq!(container.name, "backup");
    assert_eq!(
        container.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    assert_eq!(
        container.termination_message_policy.as_deref(),
        Some("File")
    );
    Ok(container.args.clone().unwrap_or_default())
}

/// Creates a pod of `job` as the Job controller would (its label; its controller
/// reference when `controlled`), and records its engine container's (the first one's) end
/// with `message`, as the kubelet would.
pub(crate) async fn pod_of(
    fixture: &Fixture,
    job: &Job,
    suffix: &str,
    controlled: bool,
    message: &str,
) -> TestResult {
    let api: Api<Pod> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let job_name = job.metadata.name.as_deref().ok_or("no Job name")?;
    let container = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers[0].name.clone())
        .ok_or("no pod spec")?;
    let name = format!("{job_name}-{suffix}");
    let owner = json!({"apiVersion": "batch/v1", "kind": "Job", "name": job_name,
                       "uid": job.metadata.uid, "controller": controlled});
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": name,
                         "labels": {"batch.kubernetes.io/job-name": job_name},
                         "ownerReferences": [owner]},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": container, "image": IMAGE}]}
        }))?,
    )
    .await?;
    let now = format!(
        "{}Z",
        &k8s_openapi::jiff::Timestamp::now().to_string()[..19]
    );
    let status = json!({"status": {"phase": "Succeeded", "containerStatuses": [{
        "name": container, "image": IMAGE, "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed", "message": message,
                                 "startedAt": now, "finishedAt": now}}}]}});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
        .await?;
    Ok(())
}
