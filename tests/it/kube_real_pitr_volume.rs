//! Point-in-time recovery archived to a backup volume (`storage.type: PVC`), which only the
//! archiver mounts: the operator fills `status.pitr` from the summary the archiver's pod
//! serves (`binlog archive --status-listen`), against the real API server, a real MySQL
//! pair and the real engine.
//!
//! What cannot be real here, and what stands in for it: nothing runs pods. The test plays
//! the kubelet: it runs the archiver Deployment's rendered command as a local process (the
//! volume in a local directory, the status endpoint on a free loopback port instead of
//! 8085), creates the Pod the Deployment would (its labels, the `archive-status` container
//! port with that port) and writes its status (Running, pod IP 127.0.0.1) as the kubelet
//! does. The operator lists the Pod and asks the endpoint over real HTTP.
//!
//! Run by `scripts/kube-apiserver-test.sh PATH/TO/crd-apiserver.sh`; CI runs it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bloodraven::adapters::sidecar::HttpSidecar;
use bloodraven::failover::Timestamp;
use bloodraven::render::pitr::{
    ARCHIVER_CONTAINER, ARCHIVER_STATUS_PORT, ARCHIVER_STATUS_PORT_NAME, archiver_labels,
};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::failover_common::TestResult;
use crate::kube_real_backup::{local_paths, wait_for, wait_gone};
use crate::kube_real_operator::{Fixture, Operator, Timing};
use crate::kube_real_pitr::archiver_pod;
use crate::support::tools::dep_tool;

const BIN: &str = env!("CARGO_BIN_EXE_bloodraven");
const GROUP: &str = "orders";
const IMAGE: &str = "ghcr.io/example/bloodraven@sha256:0123";
const POD: &str = "mysql-orders-binlog-archiver-7d9f-abcde";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_pitr_volume_status_comes_from_the_archiver_pods_summary() -> TestResult {
    let fixture = Fixture::start_with(Timing::Fast).await?;
    // A short resync: status.pitr is refreshed on the backup pass.
    let operator =
        fixture.operator_with("pitr-volume", &["--job-image", IMAGE, "--resync-secs", "2"])?;
    let outcome = Box::pin(on_a_volume(&fixture, &operator)).await;
    operator.tail_log_on_failure(outcome)
}

/// The archiver process, killed when the test ends however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn on_a_volume(fixture: &Fixture, operator: &Operator) -> TestResult {
    fixture.wait_active("iad", Duration::from_secs(30)).await?;
    fixture
        .patch_spec(json!({"backup": {
            "profiles": [{"name": "local",
                          "storage": {"type": "PVC", "pvc": {"claimName": "orders-backups",
                                                             "subPath": "orders"}}}],
            "pitr": {"enabled": true, "profileName": "local", "archivePollInterval": "5s"}
        }}))
        .await?;
    let args = rendered_to_serve_its_summary(fixture).await?;

    // No archiver pod yet: the status says so.
    let waiting = fixture
        .wait_group("status.pitr without a pod", Duration::from_secs(30), |g| {
            message_of(g).contains("the archiver pod is not running")
        })
        .await?;
    assert_eq!(waiting["status"]["pitr"]["enabled"], true);
    assert_eq!(waiting["status"]["pitr"]["profileName"], "local");

    let iad = fixture.instance("iad")?;
    iad.sql("CREATE DATABASE IF NOT EXISTS pitr; CREATE TABLE pitr.t (id INT PRIMARY KEY); INSERT INTO pitr.t VALUES (1)")?;
    let port = crate::support::mysql::free_port()?;
    let work = fixture.work().join("pitr-volume");
    let _archiver = Running(run_locally(fixture, &args, &work, port)?);
    let summary = summary_at(port).await?;

    let pods: Api<Pod> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    running_pod(&pods, port).await?;

    let count = summary["count"].as_i64().ok_or("no count")?;
    let shown = fixture
        .wait_group(
            "status.pitr from the archiver",
            Duration::from_secs(60),
            |g| {
                g.pointer("/status/pitr/archivedFileCount")
                    .and_then(Value::as_i64)
                    .is_some_and(|n| n >= count)
            },
        )
        .await?;
    let pitr = &shown["status"]["pitr"];
    // The archiver may have passed again meanwhile (nothing new to archive): its answer now
    // is what the status must show.
    let now = summary_at(port).await?;
    assert_eq!(pitr["archivedFileCount"], now["count"], "{pitr} vs {now}");
    assert_eq!(pitr["archivedBytes"], now["bytes"], "{pitr} vs {now}");
    assert!(now["bytes"].as_i64().is_some_and(|b| b > 0), "{now}");
    let time = |key: &str| -> TestResult<Value> {
        let seconds = now[key]
            .as_u64()
            .ok_or_else(|| format!("no {key}: {now}"))?;
        Ok(json!(Timestamp::from_millis(seconds * 1000).rfc3339()))
    };
    assert_eq!(pitr["oldestArchivedTime"], time("oldestEvent")?, "{pitr}");
    assert_eq!(pitr["newestArchivedTime"], time("newestEvent")?, "{pitr}");
    assert!(pitr["lastArchivedTime"].is_string(), "{pitr}");
    assert_eq!(
        pitr["message"],
        format!("{} binary logs archived", now["count"]),
        "{pitr}"
    );

    // The pod goes: the status says why it cannot tell, and keeps the counts it had.
    pods.delete(POD, &DeleteParams::default().grace_period(0))
        .await?;
    wait_gone(&pods, POD, Duration::from_secs(30)).await?;
    let gone = fixture
        .wait_group(
            "status.pitr without the pod",
            Duration::from_secs(30),
            |g| message_of(g).contains("the archiver pod is not running"),
        )
        .await?;
    let kept = &gone["status"]["pitr"];
    for field in [
        "archivedFileCount",
        "archivedBytes",
        "oldestArchivedTime",
        "newestArchivedTime",
    ] {
        assert_eq!(kept[field], pitr[field], "{field}: {kept}");
    }
    operator
        .sent_only_granted_and_used(&[("", "pods", "list")], "the archiver's pod")
        .await?;
    Ok(())
}

/// The archiver Deployment, on a volume, serves its summary on the named port; its
/// container's arguments.
async fn rendered_to_serve_its_summary(fixture: &Fixture) -> TestResult<Vec<String>> {
    let container = archiver_pod(fixture)
        .await?
        .containers
        .into_iter()
        .find(|c| c.name == ARCHIVER_CONTAINER)
        .ok_or("no archiver container")?;
    let args = container.args.clone().unwrap_or_default();
    let listen = format!("0.0.0.0:{ARCHIVER_STATUS_PORT}");
    assert!(
        args.windows(2)
            .any(|w| w[0] == "--status-listen" && w[1] == listen),
        "{args:?}"
    );
    assert!(
        args.iter().any(|a| a == "file:///backups/orders"),
        "{args:?}"
    );
    let ports = serde_json::to_value(&container.ports)?;
    assert_eq!(
        ports,
        json!([{"name": ARCHIVER_STATUS_PORT_NAME, "containerPort": ARCHIVER_STATUS_PORT,
                "protocol": "TCP"}])
    );
    Ok(args)
}

/// The kubelet's part: the archiver's pod, Running on 127.0.0.1 with the port the local
/// archiver serves on.
async fn running_pod(pods: &Api<Pod>, port: u16) -> TestResult {
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": POD, "labels": archiver_labels(GROUP)},
            "spec": {"containers": [{"name": ARCHIVER_CONTAINER, "image": IMAGE,
                "ports": [{"name": ARCHIVER_STATUS_PORT_NAME, "containerPort": port}]}]}
        }))?,
    )
    .await?;
    pods.patch_status(
        POD,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running", "podIP": "127.0.0.1",
                                        "podIPs": [{"ip": "127.0.0.1"}]}})),
    )
    .await?;
    Ok(())
}

fn message_of(group: &Value) -> &str {
    group
        .pointer("/status/pitr/message")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The archiver's rendered arguments with the pod's world swapped for the test's: the
/// writer Service for iad's address, the mounted credentials (written under `work`), the
/// MySQL image's tools for the local ones, and the volume for `work`.
pub(crate) fn local_archiver_args(
    fixture: &Fixture,
    args: &[String],
    work: &std::path::Path,
) -> TestResult<Vec<String>> {
    let iad = fixture.instance("iad")?;
    let service = format!("mysql-{GROUP}-primary.{}.svc:3306", fixture.namespace());
    let creds = work.join("mysql-creds");
    std::fs::create_dir_all(&creds)?;
    std::fs::write(creds.join("username"), "bloodraven")?;
    std::fs::write(creds.join("password"), "operator-secret-1")?;
    let (mysqlbinlog, mysql) = (dep_tool("mysqlbinlog"), dep_tool("mysql"));
    let local: Vec<String> = args
        .iter()
        .map(|a| {
            local_paths(work, a)
                .replace(&service, &iad.address())
                .replace("/run/bloodraven/mysql-creds", &creds.display().to_string())
                .replace("/usr/bin/mysqlbinlog", &mysqlbinlog.display().to_string())
                .replace("/usr/bin/mysql", &mysql.display().to_string())
        })
        .collect();
    // The archive on the "volume" is in the test's directory.
    assert!(
        local
            .iter()
            .any(|a| a.starts_with("file://") && a.contains(&*work.display().to_string())),
        "{local:?}"
    );
    Ok(local)
}

/// Starts the Deployment's command as a local process, listening on `port`.
fn run_locally(
    fixture: &Fixture,
    args: &[String],
    work: &std::path::Path,
    port: u16,
) -> TestResult<Child> {
    let listen = format!("0.0.0.0:{ARCHIVER_STATUS_PORT}");
    let local: Vec<String> = local_archiver_args(fixture, args, work)?
        .into_iter()
        .map(|a| a.replace(&listen, &format!("127.0.0.1:{port}")))
        .collect();
    Ok(Command::new(BIN)
        .args(&local)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?)
}

/// The archiver's own answer once it has archived a log (the INSERT's, closed by
/// `--rotate`).
async fn summary_at(port: u16) -> TestResult<Value> {
    let http = HttpSidecar::client(Duration::from_secs(2), None)?;
    let url = format!("http://127.0.0.1:{port}/summary");
    wait_for(
        "the archiver's summary",
        Duration::from_secs(60),
        async || {
            let Ok(response) = http.get(&url).send().await else {
                return Ok(None);
            };
            if response.status() != 200 {
                return Ok(None);
            }
            let summary: Value = serde_json::from_slice(&response.bytes().await?)?;
            Ok(summary["count"]
                .as_u64()
                .is_some_and(|n| n > 0)
                .then_some(summary))
        },
    )
    .await
}
