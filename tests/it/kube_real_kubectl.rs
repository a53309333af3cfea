//! `kubectl bloodraven` (the binary run as `kubectl-bloodraven`, and as `bloodraven
//! kubectl`) against a real API server: the standalone apiextensions-apiserver with the
//! CRDs installed, started by `scripts/kube-apiserver-test.sh`, which sets `KUBECONFIG`.
//!
//! No operator runs here: the tests play it, writing the status of groups, backups and
//! verifications through the `/status` subresource as the operator would, and read the
//! annotations and objects the plugin writes.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bloodraven::api::annotations::{PLANNED_FAILOVER, RECLONE_SITE};
use bloodraven::api::{MysqlBackup, MysqlBackupVerification, MysqlFailoverGroup};
use k8s_openapi::api::core::v1::Event as KubeEvent;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::support::kube::{client, create_namespace, golden_group, unique};

const BIN: &str = env!("CARGO_BIN_EXE_bloodraven");

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// A directory with `kubectl-bloodraven`, a symlink to the binary, as krew installs it.
fn plugin(dir: &Path) -> TestResult<PathBuf> {
    let link = dir.join("kubectl-bloodraven");
    if !link.exists() {
        std::os::unix::fs::symlink(BIN, &link)?;
    }
    Ok(link)
}

fn kubeconfig() -> String {
    std::env::var("KUBECONFIG")
        .expect("KUBECONFIG is not set: run this test through scripts/kube-apiserver-test.sh")
}

/// A fresh namespace with the two-site golden group `orders` (sites iad, pdx).
async fn group(
    client: &kube::Client,
    prefix: &str,
) -> TestResult<(Api<MysqlFailoverGroup>, String)> {
    let namespace = unique(prefix);
    create_namespace(client, &namespace).await;
    let api = Api::<MysqlFailoverGroup>::namespaced(client.clone(), &namespace);
    api.create(
        &PostParams::default(),
        &golden_group("two-site.input.yaml", &namespace),
    )
    .await?;
    Ok((api, namespace))
}

/// Writes `status` as the operator does (the `/status` subresource).
async fn set_status(api: &Api<MysqlFailoverGroup>, status: Value) -> TestResult {
    api.patch_status(
        "orders",
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await?;
    Ok(())
}

fn steady_status() -> Value {
    json!({
        "activeSite": "iad",
        "lastFailover": "2026-01-01T00:00:00Z",
        "lastFailoverTarget": "iad",
        "sites": [
            {"name": "iad", "state": "writable"},
            {"name": "pdx", "state": "read-only", "replicating": true, "secondsBehindSource": 2,
             "divergentGtid": "3e11fa47-71ca-11e1-9e33-c80aa9429562:7", "divergentTransactionCount": 1},
        ],
        "conditions": [{"type": "Ready", "status": "True", "reason": "AllSitesHealthy",
                        "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn annotation(api: &Api<MysqlFailoverGroup>, key: &str) -> TestResult<Option<String>> {
    Ok(api
        .get("orders")
        .await?
        .metadata
        .annotations
        .unwrap_or_default()
        .get(key)
        .cloned())
}

async fn wait_for_annotation(api: &Api<MysqlFailoverGroup>, key: &str) -> TestResult<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = annotation(api, key).await? {
            return Ok(value);
        }
        if Instant::now() > deadline {
            return Err(format!("no {key} annotation within 20s").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a finished process to its output off the async threads.
async fn output(mut command: Command) -> TestResult<Output> {
    Ok(tokio::task::spawn_blocking(move || command.output()).await??)
}

#[tokio::test]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_kubectl_status_shows_sites_roles_lag_divergence_and_the_last_failover()
-> TestResult {
    let client = client().await;
    let (api, namespace) = group(&client, "kstatus").await?;
    set_status(&api, steady_status()).await?;
    let dir = tempfile::tempdir()?;

    // As kubectl runs the plugin: by its name, with -n and --kubeconfig.
    let mut table = Command::new(plugin(dir.path())?);
    table.args(["status", "-n", &namespace, "--kubeconfig", &kubeconfig()]);
    let out = output(table).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for header in [
        "GROUP",
        "SITE",
        "ROLE",
        "PRIMARY",
        "STATE",
        "LAG",
        "DIVERGENT",
        "LAST FAILOVER",
    ] {
        assert!(lines[0].contains(header), "{table}");
    }
    let iad: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &iad[..5],
        ["orders", "iad", "primary-candidate", "*", "writable"],
        "{table}"
    );
    assert!(lines[1].contains("ago (to iad)"), "{table}");
    let pdx: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        &pdx[..7],
        [
            "orders",
            "pdx",
            "primary-candidate",
            "read-only",
            "yes",
            "2s",
            "1"
        ],
        "{table}"
    );

    // And as `bloodraven kubectl`, one group as JSON and as YAML, namespace from the flag.
    let mut json_cmd = Command::new(BIN);
    json_cmd.args([
        "kubectl", "-n", &namespace, "status", "orders", "-o", "json",
    ]);
    let out = output(json_cmd).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(summary["name"], "orders");
    assert_eq!(summary["primary"], "iad");
    assert_eq!(summary["ready"], "True");
    assert_eq!(summary["lastFailover"]["time"], "2026-01-01T00:00:00Z");
    assert_eq!(summary["sites"][1]["lagSeconds"], 2);
    assert_eq!(summary["sites"][1]["divergentTransactions"], 1);
    assert_eq!(
        summary["sites"][1]["divergentGtid"],
        "3e11fa47-71ca-11e1-9e33-c80aa9429562:7"
    );

    let mut yaml_cmd = Command::new(BIN);
    yaml_cmd.args([
        "kubectl",
        "status",
        "orders",
        "-o",
        "yaml",
        "--namespace",
        &namespace,
    ]);
    let out = output(yaml_cmd).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml: Value = serde_saphyr::from_str(&text(&out.stdout))?;
    assert_eq!(yaml, summary);

    // An unknown group is a usage error (exit 2) that names it.
    let mut missing = Command::new(BIN);
    missing.args(["kubectl", "-n", &namespace, "status", "billing"]);
    let out = output(missing).await?;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("billing"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_kubectl_failover_annotates_then_succeeds_when_the_status_follows() -> TestResult
{
    let client = client().await;
    let (api, namespace) = group(&client, "kfail").await?;
    set_status(&api, steady_status()).await?;
    let dir = tempfile::tempdir()?;

    let mut command = Command::new(plugin(dir.path())?);
    command
        .args([
            "failover",
            "orders",
            "--to",
            "pdx",
            "--timeout",
            "60s",
            "-n",
            &namespace,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    // The plugin's progress lines, as they come.
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let waited = tokio::task::spawn_blocking(move || child.wait_with_output());

    // Play the operator: take the request, remove the annotation, report the phases.
    assert_eq!(wait_for_annotation(&api, PLANNED_FAILOVER).await?, "pdx");
    api.patch(
        "orders",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"annotations": {PLANNED_FAILOVER: null}}})),
    )
    .await?;
    set_status(
        &api,
        json!({"plannedFailover": {"phase": "Draining", "target": "pdx", "sourcePrimary": "iad",
                                   "startTime": "2026-01-02T00:00:00Z"}}),
    )
    .await?;
    // The plugin reports the phase before the switchover completes.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|l: &String| l.contains("phase Draining")) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = tokio::task::block_in_place(|| lines.recv_timeout(left))
            .map_err(|_| format!("no 'phase Draining' line within 20s: {seen:?}"))?;
        seen.push(line);
    }
    set_status(
        &api,
        json!({"activeSite": "pdx", "lastFailoverTarget": "pdx",
               "plannedFailover": {"phase": "Succeeded", "durationSeconds": 3, "transactionsLost": 0}}),
    )
    .await?;

    let out = waited.await??;
    let _ = reader.join();
    seen.extend(lines.try_iter());
    assert!(out.status.success(), "stderr: {seen:?}");
    assert!(
        text(&out.stdout).contains("pdx is the primary in 3s, 0 transactions lost"),
        "{}",
        text(&out.stdout)
    );

    // Asking again for the current primary is a no-op that succeeds without annotating.
    let mut again = Command::new(BIN);
    again.args([
        "kubectl", "-n", &namespace, "failover", "orders", "--to", "pdx",
    ]);
    let out = output(again).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("already the primary"));
    assert_eq!(annotation(&api, PLANNED_FAILOVER).await?, None);
    Ok(())
}

#[tokio::test]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_kubectl_failover_times_out_or_fails_with_a_clear_error() -> TestResult {
    let client = client().await;
    let (api, namespace) = group(&client, "ktimeout").await?;
    // An earlier failed attempt is in the status: it is not this request's outcome.
    let mut status = steady_status();
    status["plannedFailover"] = json!({"phase": "Failed", "target": "pdx",
        "startTime": "2026-01-01T00:00:00Z", "message": "an old failure"});
    set_status(&api, status).await?;

    // Nobody answers: a timeout, exit 1, the annotation left for the operator.
    let mut command = Command::new(BIN);
    command.args([
        "kubectl",
        "-n",
        &namespace,
        "failover",
        "orders",
        "--to",
        "pdx",
        "--timeout",
        "2s",
    ]);
    let started = Instant::now();
    let out = output(command).await?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(15));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no outcome within 2s"), "{stderr}");
    assert!(!stderr.contains("an old failure"), "{stderr}");
    assert_eq!(
        annotation(&api, PLANNED_FAILOVER).await?.as_deref(),
        Some("pdx")
    );

    // The operator reports a failure of this request: exit 1 with its message.
    let mut command = Command::new(BIN);
    command
        .args([
            "kubectl",
            "-n",
            &namespace,
            "failover",
            "orders",
            "--to",
            "pdx",
            "--timeout",
            "60s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn()?;
    let waited = tokio::task::spawn_blocking(move || child.wait_with_output());
    tokio::time::sleep(Duration::from_secs(1)).await;
    set_status(
        &api,
        json!({"plannedFailover": {"phase": "Failed", "target": "pdx", "reason": "LagTooHigh",
            "startTime": "2026-01-03T00:00:00Z", "message": "pdx is 40s behind (maxLagWait 30s)"}}),
    )
    .await?;
    let out = waited.await??;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("failover to pdx failed: phase Failed (LagTooHigh): pdx is 40s behind"),
        "{stderr}"
    );

    // A site that cannot be promoted is refused before anything is written.
    let mut command = Command::new(BIN);
    command.args([
        "kubectl", "-n", &namespace, "failover", "orders", "--to", "sfo",
    ]);
    let out = output(command).await?;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("has no site sfo"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_kubectl_failover_refused_by_the_operator_fails_at_once() -> TestResult {
    let client = client().await;
    let (api, namespace) = group(&client, "krefused").await?;
    set_status(&api, steady_status()).await?;
    // The operator refuses the request (an Event, the status untouched): exit 1 with its
    // message, long before the timeout.
    let mut command = Command::new(BIN);
    command
        .args([
            "kubectl",
            "-n",
            &namespace,
            "failover",
            "orders",
            "--to",
            "pdx",
            "--timeout",
            "60s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let child = command.spawn()?;
    let waited = tokio::task::spawn_blocking(move || child.wait_with_output());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let now = k8s_openapi::jiff::Timestamp::now();
    let event: KubeEvent = serde_json::from_value(json!({
        "metadata": {"name": unique("orders"), "namespace": namespace},
        "involvedObject": {"apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlFailoverGroup",
                           "name": "orders", "namespace": namespace},
        "reason": "PlannedFailoverRejected", "type": "Warning",
        "message": "site pdx: ConcurrentOperation: a planned failover to pdx is already in progress",
        "eventTime": now.to_string(), "lastTimestamp": now.round(k8s_openapi::jiff::Unit::Second)?.to_string(),
        "reportingComponent": "bloodraven", "reportingInstance": "test",
        "action": "Failover", "source": {"component": "bloodraven"},
    }))?;
    Api::<KubeEvent>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &event)
        .await?;
    let out = waited.await??;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(30));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the operator refused the request: site pdx: ConcurrentOperation"),
        "{stderr}"
    );

    assert_eq!(
        annotation(&api, PLANNED_FAILOVER).await?.as_deref(),
        Some("pdx")
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_kubectl_reclone_is_refused_without_confirm_and_annotates_with_it() -> TestResult
{
    let client = client().await;
    let (api, namespace) = group(&client, "kreclone").await?;
    set_status(&api, steady_status()).await?;
    let dir = tempfile::tempdir()?;

    let mut refused = Command::new(plugin(dir.path())?);
    refused.args(["-n", &namespace, "reclone", "orders", "pdx"]);
    let out = output(refused).await?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--confirm"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(annotation(&api, RECLONE_SITE).await?, None);

    let mut primary = Command::new(plugin(dir.path())?);
    primary.args(["-n", &namespace, "reclone", "orders", "iad", "--confirm"]);
    let out = output(primary).await?;
    assert_eq!(out.status.code(), Some(2), "the primary is never recloned");
    assert_eq!(annotation(&api, RECLONE_SITE).await?, None);

    let mut confirmed = Command::new(plugin(dir.path())?);
    confirmed.args(["-n", &namespace, "reclone", "orders", "pdx", "--confirm"]);
    let out = output(confirmed).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The value the operator's parser accepts without a recorded divergence prefix.
    let value = annotation(&api, RECLONE_SITE)
        .await?
        .ok_or("no annotation")?;
    assert_eq!(value, "pdx:confirm=orders");
    let request = bloodraven::api::annotations::reclone(&value)?;
    assert_eq!(request.confirmed("orders", None), Ok(()));
    Ok(())
}

// --- backup, verify-backup, backups

/// A fresh namespace with `orders` (sites iad, pdx) backed up with two profiles.
async fn backed_up_group(
    client: &kube::Client,
    prefix: &str,
) -> TestResult<(Api<MysqlBackup>, String)> {
    let namespace = unique(prefix);
    create_namespace(client, &namespace).await;
    let mut group = golden_group("two-site.input.yaml", &namespace);
    group.spec.backup = Some(serde_json::from_value(json!({
        "profiles": [
            {"name": "nightly", "storage": {"type": "S3", "s3": {"bucket": "backups", "prefix": "orders",
                                                                 "credentialsSecret": "s3-creds"}}},
            {"name": "hourly", "storage": {"type": "PVC", "pvc": {"size": "10Gi"}}},
        ],
    }))?);
    Api::<MysqlFailoverGroup>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &group)
        .await?;
    Ok((Api::namespaced(client.clone(), &namespace), namespace))
}

/// What the plugin writes as `triggeredBy`: the user of the kubeconfig's current context.
fn expected_trigger() -> TestResult<String> {
    let file = kube::config::Kubeconfig::read_from(kubeconfig())?;
    let current = file.current_context.clone().ok_or("no current context")?;
    let user = file
        .contexts
        .iter()
        .find(|c| c.name == current)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.user.clone());
    Ok(format!("kubectl/{}", user.as_deref().unwrap_or("manual")))
}

/// Whether `name` is `<prefix><14 digits>` (the UTC time the plugin stamps).
fn stamped(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|t| t.len() == 14 && t.bytes().all(|b| b.is_ascii_digit()))
}

/// Every object of `api` in its namespace.
async fn all<K>(api: &Api<K>) -> TestResult<Vec<K>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    Ok(api.list(&ListParams::default()).await?.items)
}

/// Waits for an object of `api` that `wanted` accepts (the plugin names it).
async fn wait_for_object<K>(api: &Api<K>, wanted: impl Fn(&K) -> bool) -> TestResult<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = all(api).await?.into_iter().find(&wanted) {
            return Ok(found);
        }
        if Instant::now() > deadline {
            return Err("the plugin created no such object within 20s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn named<K: kube::Resource>(prefix: &str) -> impl Fn(&K) -> bool {
    let prefix = prefix.to_owned();
    move |o: &K| {
        o.meta()
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with(&prefix))
    }
}

/// Writes a run's status as the operator's reconciler would (the `/status` subresource).
async fn set_run_status<K>(api: &Api<K>, name: &str, status: Value) -> TestResult
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await?;
    Ok(())
}

/// Runs the plugin in the background, its output collected when it exits.
fn spawn(mut command: Command) -> TestResult<tokio::task::JoinHandle<std::io::Result<Output>>> {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    Ok(tokio::task::spawn_blocking(move || {
        child.wait_with_output()
    }))
}

/// `bloodraven kubectl -n NAMESPACE ARGS...`.
fn kubectl(namespace: &str, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(["kubectl", "-n", namespace]).args(args);
    command
}

/// The command is refused before anything is written: exit 2, naming what is wrong.
async fn assert_refused(namespace: &str, args: &[&str], says: &str) -> TestResult {
    let out = output(kubectl(namespace, args)).await?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(says), "{args:?}: {says} in {stderr}");
    Ok(())
}

#[tokio::test]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_kubectl_backup_creates_a_mysqlbackup_of_the_groups_profile() -> TestResult {
    let client = client().await;
    let (backups, namespace) = backed_up_group(&client, "kbackup").await?;
    let dir = tempfile::tempdir()?;

    // As kubectl runs it, with --kubeconfig: the table report, no waiting.
    let mut command = Command::new(plugin(dir.path())?);
    command.args([
        "backup",
        "orders",
        "--profile",
        "nightly",
        "--source-site",
        "pdx",
        "-n",
        &namespace,
        "--kubeconfig",
        &kubeconfig(),
    ]);
    let out = output(command).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let created = all(&backups).await?;
    assert_eq!(created.len(), 1);
    let name = created[0].metadata.name.clone().ok_or("a name")?;
    assert!(stamped(&name, "orders-nightly-"), "{name}");
    assert_eq!(
        serde_json::to_value(&created[0].spec)?,
        json!({"failoverGroupRef": {"name": "orders"}, "profileName": "nightly",
               "sourceSiteOverride": "pdx", "triggeredBy": expected_trigger()?})
    );
    assert!(
        text(&out.stdout).starts_with(&format!(
            "MysqlBackup {namespace}/{name}: requested (group orders, profile nightly)"
        )),
        "{}",
        text(&out.stdout)
    );

    // As a schedule's CronJob runs it (`bloodraven kubectl`, --triggered-by), -o json: the
    // report as an object; no source override.
    let out = output(kubectl(
        &namespace,
        &[
            "backup",
            "orders",
            "--profile",
            "hourly",
            "--triggered-by",
            "schedule/hourly",
            "-o",
            "json",
        ],
    ))
    .await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["group"], "orders");
    assert_eq!(report["profile"], "hourly");
    let hourly = backups
        .get(report["name"].as_str().ok_or("a name")?)
        .await?;
    assert_eq!(hourly.spec.source_site_override, None);
    assert_eq!(hourly.spec.triggered_by.as_deref(), Some("schedule/hourly"));

    assert_refused(
        &namespace,
        &["backup", "orders", "--profile", "weekly"],
        "group orders has no backup profile weekly (profiles: nightly, hourly)",
    )
    .await?;
    assert_refused(
        &namespace,
        &["backup", "billing", "--profile", "nightly"],
        &format!("MysqlFailoverGroup {namespace}/billing not found"),
    )
    .await?;
    assert_refused(
        &namespace,
        &[
            "backup",
            "orders",
            "--profile",
            "nightly",
            "--source-site",
            "sfo",
        ],
        "group orders has no site sfo (sites: iad, pdx)",
    )
    .await?;
    assert_eq!(all(&backups).await?.len(), 2);

    backups_lists_the_groups_backups(&namespace, &name).await
}

/// The list: the group's backups, newest first; one profile with --profile.
async fn backups_lists_the_groups_backups(namespace: &str, nightly: &str) -> TestResult {
    let out = output(kubectl(namespace, &["backups", "orders"])).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for header in [
        "NAME",
        "PROFILE",
        "PHASE",
        "STARTED",
        "COMPLETED",
        "SIZE",
        "SOURCE",
        "GTID SET",
    ] {
        assert!(lines[0].contains(header), "{table}");
    }
    let out = output(kubectl(
        namespace,
        &["backups", "orders", "--profile", "nightly", "-o", "yaml"],
    ))
    .await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: Value = serde_saphyr::from_str(&text(&out.stdout))?;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["items"][0]["name"], nightly);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_kubectl_backup_wait_reports_the_outcome_and_fails_with_the_backup() -> TestResult
{
    let client = client().await;
    let (backups, namespace) = backed_up_group(&client, "kbwait").await?;
    backup_waits_until_succeeded(&backups, &namespace).await?;
    backup_waits_until_failed(&backups, &namespace).await?;

    // Nobody answers: exit 1 after the timeout; the backup stays for the operator. (A
    // second apart from the first nightly backup, whose name has the same second.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let started = Instant::now();
    let out = output(kubectl(
        &namespace,
        &[
            "backup",
            "orders",
            "--profile",
            "nightly",
            "--wait",
            "--timeout",
            "2s",
        ],
    ))
    .await?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        text(&out.stderr).contains("no outcome within 2s"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(all(&backups).await?.len(), 3);
    Ok(())
}

/// Succeeded: exit 0 and the report names location, size, GTID set and message.
async fn backup_waits_until_succeeded(backups: &Api<MysqlBackup>, namespace: &str) -> TestResult {
    let waited = spawn(kubectl(
        namespace,
        &[
            "backup",
            "orders",
            "--profile",
            "nightly",
            "--wait",
            "--timeout",
            "60s",
        ],
    ))?;
    let backup = wait_for_object(backups, named("orders-nightly-")).await?;
    let name = backup.metadata.name.clone().ok_or("a name")?;
    set_run_status(
        backups,
        &name,
        json!({"phase": "Running", "sourceSite": "pdx", "startTime": "2026-12-02T19:00:00Z"}),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    set_run_status(
        backups,
        &name,
        json!({"phase": "Succeeded", "completionTime": "2026-12-02T19:05:00Z",
               "location": format!("s3://backups/orders/{name}/"), "storageType": "S3",
               "size": "1.2 GiB", "sizeBytes": 1_288_490_188_i64,
               "gtidExecuted": "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-100",
               "message": "dump complete"}),
    )
    .await?;
    let out = waited.await??;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    for says in [
        format!("MysqlBackup {namespace}/{name}: Succeeded (group orders, profile nightly)"),
        format!("location:      s3://backups/orders/{name}/"),
        "size:          1.2 GiB (1288490188 bytes)".to_owned(),
        "gtid executed: 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-100".to_owned(),
        "source site:   pdx".to_owned(),
        "message:       dump complete".to_owned(),
    ] {
        assert!(report.contains(&says), "{says} in {report}");
    }
    assert!(
        text(&out.stderr).contains("phase Running (source pdx)"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

/// Failed: exit 1 with the operator's message; -o json still reports the object.
async fn backup_waits_until_failed(backups: &Api<MysqlBackup>, namespace: &str) -> TestResult {
    let waited = spawn(kubectl(
        namespace,
        &[
            "backup",
            "orders",
            "--profile",
            "hourly",
            "--wait",
            "--timeout",
            "60s",
            "-o",
            "json",
        ],
    ))?;
    let backup = wait_for_object(backups, named("orders-hourly-")).await?;
    let failed = backup.metadata.name.clone().ok_or("a name")?;
    set_run_status(
        backups,
        &failed,
        json!({"phase": "Failed", "message": "no healthy source for 30m"}),
    )
    .await?;
    let out = waited.await??;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!(
            "MysqlBackup {namespace}/{failed} failed: no healthy source for 30m"
        )),
        "{}",
        text(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["phase"], "Failed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_kubectl_verify_backup_creates_a_verification_of_the_groups_backup() -> TestResult
{
    let client = client().await;
    let (backups, namespace) = backed_up_group(&client, "kverify").await?;
    let verifications = Api::<MysqlBackupVerification>::namespaced(client.clone(), &namespace);
    // Backups as the operator leaves them: one of ours that succeeded, one still running,
    // and another group's.
    for (name, group, phase) in [
        ("orders-nightly-1", "orders", "Succeeded"),
        ("orders-nightly-2", "orders", "Running"),
        ("billing-nightly-1", "billing", "Succeeded"),
    ] {
        let backup: MysqlBackup = serde_json::from_value(json!({
            "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlBackup",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"failoverGroupRef": {"name": group}, "profileName": "nightly"},
        }))?;
        backups.create(&PostParams::default(), &backup).await?;
        set_run_status(&backups, name, json!({"phase": phase})).await?;
    }
    let dir = tempfile::tempdir()?;

    // No --backup: backupRef stays unset, the operator picks the latest Succeeded one.
    let mut command = Command::new(plugin(dir.path())?);
    command.args([
        "verify-backup",
        "orders",
        "--profile",
        "nightly",
        "-n",
        &namespace,
    ]);
    let out = output(command).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let created = all(&verifications).await?;
    assert_eq!(created.len(), 1);
    let latest = &created[0];
    let name = latest.metadata.name.as_deref().unwrap_or_default();
    assert!(stamped(name, "orders-nightly-verify-"), "{name}");
    let spec = serde_json::to_value(&latest.spec)?;
    assert_eq!(spec["failoverGroupRef"]["name"], "orders");
    assert_eq!(spec["profileName"], "nightly");
    assert_eq!(spec["triggeredBy"], expected_trigger()?.as_str());
    assert!(spec.get("backupRef").is_none(), "{spec}");
    assert!(spec.get("sanityCheck").is_none(), "{spec}");

    // A named backup that is not ours, not finished or not there, or an unknown profile:
    // exit 2, nothing created.
    for (backup, says) in [
        (
            "billing-nightly-1",
            "MysqlBackup billing-nightly-1 belongs to group billing, not orders".to_owned(),
        ),
        (
            "orders-nightly-2",
            "MysqlBackup orders-nightly-2 is Running; only a Succeeded backup can be verified"
                .to_owned(),
        ),
        ("nope", format!("MysqlBackup {namespace}/nope not found")),
    ] {
        let args = [
            "verify-backup",
            "orders",
            "--profile",
            "nightly",
            "--backup",
            backup,
        ];
        assert_refused(&namespace, &args, &says).await?;
    }
    assert_refused(
        &namespace,
        &["verify-backup", "orders", "--profile", "weekly"],
        "no backup profile weekly",
    )
    .await?;
    assert_eq!(all(&verifications).await?.len(), 1);

    // A second apart from the first, whose name has the same second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    verification_of_a_named_backup_waits_until_succeeded(&verifications, &namespace).await
}

/// A named backup with a sanity check, waited for: the report names the result.
async fn verification_of_a_named_backup_waits_until_succeeded(
    verifications: &Api<MysqlBackupVerification>,
    namespace: &str,
) -> TestResult {
    let waited = spawn(kubectl(
        namespace,
        &[
            "verify-backup",
            "orders",
            "--profile",
            "nightly",
            "--backup",
            "orders-nightly-1",
            "--sanity-query",
            "SELECT COUNT(*) FROM shop.orders",
            "--min-rows",
            "1",
            "--wait",
            "--timeout",
            "60s",
        ],
    ))?;
    let named = wait_for_object(verifications, |v: &MysqlBackupVerification| {
        v.spec.backup_ref.is_some()
    })
    .await?;
    let name = named.metadata.name.clone().ok_or("a name")?;
    let spec = serde_json::to_value(&named.spec)?;
    assert_eq!(spec["backupRef"]["name"], "orders-nightly-1");
    assert_eq!(
        spec["sanityCheck"]["query"],
        "SELECT COUNT(*) FROM shop.orders"
    );
    assert_eq!(spec["sanityCheck"]["expect"]["minRows"], 1);
    set_run_status(
        verifications,
        &name,
        json!({"phase": "Restoring", "backupRef": {"name": "orders-nightly-1"}}),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    set_run_status(
        verifications,
        &name,
        json!({"phase": "Succeeded", "durationSeconds": 42,
               "backupRef": {"name": "orders-nightly-1", "location": "s3://backups/orders/orders-nightly-1/"},
               "sanityCheck": {"ran": true, "resultRow": "1200"}}),
    )
    .await?;
    let out = waited.await??;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    for says in [
        format!(
            "MysqlBackupVerification {namespace}/{name}: Succeeded (group orders, profile nightly)"
        ),
        "backup:        orders-nightly-1".to_owned(),
        "duration:      42s".to_owned(),
        "sanity result: 1200".to_owned(),
    ] {
        assert!(report.contains(&says), "{says} in {report}");
    }
    assert!(
        text(&out.stderr).contains("phase Restoring (backup orders-nightly-1)"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

// --- restore

/// `restore` arms `spec.restoreInPlace` with a fresh token naming a Succeeded backup, only
/// with --confirm, never over a running restore, and with --wait follows the group's
/// status to the outcome of its own token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_kubectl_restore_arms_restore_in_place_and_follows_its_token() -> TestResult {
    let client = client().await;
    let (backups, namespace) = backed_up_group(&client, "krestore").await?;
    let groups: Api<MysqlFailoverGroup> = Api::namespaced(client.clone(), &namespace);
    backups
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlBackup",
                "metadata": {"name": "nightly-1"},
                "spec": {"failoverGroupRef": {"name": "orders"}, "profileName": "nightly"}
            }))?,
        )
        .await?;
    let spec_of = async || -> TestResult<Value> {
        Ok(serde_json::to_value(groups.get("orders").await?)?["spec"]["restoreInPlace"].clone())
    };

    let out = output(kubectl(
        &namespace,
        &["restore", "orders", "--backup", "nightly-1"],
    ))
    .await?;
    assert_eq!(out.status.code(), Some(1), "refused without --confirm");
    assert!(
        text(&out.stderr).contains("--confirm"),
        "{}",
        text(&out.stderr)
    );
    assert_refused(
        &namespace,
        &["restore", "orders", "--backup", "nightly-1", "--confirm"],
        "only a Succeeded backup can be restored",
    )
    .await?;
    assert_refused(
        &namespace,
        &["restore", "orders", "--backup", "nope", "--confirm"],
        "not found",
    )
    .await?;
    assert!(
        spec_of().await?.is_null(),
        "nothing armed by a refused command"
    );

    set_run_status(&backups, "nightly-1", json!({"phase": "Succeeded"})).await?;
    set_status(&groups, json!({"restoreInPlace": {"phase": "Restoring", "confirmTokenUsed": "2026-01-01T00:00:00Z"}})).await?;
    assert_refused(
        &namespace,
        &["restore", "orders", "--backup", "nightly-1", "--confirm"],
        "is Restoring",
    )
    .await?;
    set_status(&groups, json!({"restoreInPlace": {"phase": "Succeeded"}})).await?;
    restore_is_armed_and_followed(&groups, &namespace).await
}

async fn restore_is_armed_and_followed(
    groups: &Api<MysqlFailoverGroup>,
    namespace: &str,
) -> TestResult {
    let spec_of = async || -> TestResult<Value> {
        Ok(serde_json::to_value(groups.get("orders").await?)?["spec"]["restoreInPlace"].clone())
    };
    // Armed, and followed: the test plays the operator on the token the plugin wrote.
    let waiting = spawn(kubectl(
        namespace,
        &[
            "restore",
            "orders",
            "--backup",
            "nightly-1",
            "--confirm",
            "--wait",
            "--timeout",
            "60s",
            "-o",
            "json",
        ],
    ))?;
    let spec = wait_for(async || {
        let spec = spec_of().await?;
        Ok((!spec.is_null()).then_some(spec))
    })
    .await?;
    assert_eq!(
        spec["source"],
        json!({"mysqlBackupRef": {"name": "nightly-1"}})
    );
    let token = spec["confirm"].as_str().ok_or("no confirm")?.to_owned();
    assert!(
        bloodraven::backup::restore_run::token_is_newer(&token, Some("2026-01-01T00:00:00Z")),
        "{token}"
    );
    set_status(
        groups,
        json!({"restoreInPlace": {"confirmTokenUsed": token, "phase": "Restoring",
        "targetSite": "iad"}}),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    set_status(
        groups,
        json!({"restoreInPlace": {"phase": "Succeeded", "reclonedSites": ["pdx"],
        "message": "restored into iad"}}),
    )
    .await?;
    let out = waiting.await??;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["phase"], "Succeeded", "{report}");
    assert_eq!(report["confirm"], token.as_str());
    assert_eq!(report["reclonedSites"], json!(["pdx"]));
    assert!(
        text(&out.stderr).contains("Restoring (into iad)"),
        "{}",
        text(&out.stderr)
    );

    // One schema: the same request with loadOptions.includeSchemas, and a newer token.
    let out = output(kubectl(
        namespace,
        &[
            "restore",
            "orders",
            "--backup",
            "nightly-1",
            "--schema",
            "shop",
            "--confirm",
        ],
    ))
    .await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let spec = spec_of().await?;
    // The API server adds the CRD's defaults to the rest of loadOptions.
    assert_eq!(
        spec["loadOptions"]["includeSchemas"],
        json!(["shop"]),
        "{spec}"
    );
    assert!(
        bloodraven::backup::restore_run::token_is_newer(
            spec["confirm"].as_str().ok_or("no confirm")?,
            Some(&token)
        ),
        "{spec}"
    );
    Ok(())
}

async fn wait_for<T>(mut probe: impl AsyncFnMut() -> TestResult<Option<T>>) -> TestResult<T> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = probe().await? {
            return Ok(found);
        }
        if Instant::now() > deadline {
            return Err("timed out after 20s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
