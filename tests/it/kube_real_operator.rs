//! The operator end to end: `bloodraven serve --controllers on`, the real binary, against a
//! real API server (the standalone apiextensions-apiserver in built-in kinds mode, storing
//! MysqlFailoverGroups, Secrets, Pods, Nodes, Events, Leases and DNSEndpoints in etcd) and a
//! real MySQL 9.7 pair on loopback.
//!
//! What cannot be real here, and what stands in for it:
//! - Nothing runs pods (no kubelet, no Deployment controller), so the sites are mysqld
//!   processes started by the test harness, and the operator reaches them through a
//!   `--site-endpoints` map instead of the internal Services. The test creates the Pod and
//!   Node objects by hand so the operator's labels and taints have something to land on.
//! - There is no external-dns: the DNSEndpoint object is checked, not a DNS answer.
//!
//! Run by `scripts/kube-apiserver-test.sh PATH/TO/crd-apiserver.sh` (which starts the
//! server, installs the CRDs and sets `KUBECONFIG`); CI runs it. Without that server the
//! tests fail, naming the script.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bloodraven::api::MysqlFailoverGroup;
use bloodraven::api::annotations::PLANNED_FAILOVER;
use bloodraven::render::names;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod, Secret};
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::failover_common::{TestResult, start_pair, write_until};
use crate::support::kube::{client, create_namespace, unique};
use crate::support::mysql::{MysqlCluster, MysqlInstance, REPL_PASSWORD, REPL_USER, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_bloodraven");
const GROUP: &str = "orders";
const OPERATOR_USER: &str = "bloodraven";
const OPERATOR_PASSWORD: &str = "operator-secret-1";
const LEASE_SECONDS: u64 = 4;

/// One `bloodraven serve` process; killed (SIGKILL) on drop.
pub(crate) struct Operator {
    child: Child,
    identity: String,
    log: PathBuf,
    port: u16,
    ca: PathBuf,
}

impl Operator {
    fn start(work: &Path, namespace: &str, identity: &str) -> TestResult<Self> {
        Self::start_with(work, namespace, identity, &[])
    }

    /// [`Self::start`] with more `serve` flags.
    pub(crate) fn start_with(
        work: &Path,
        namespace: &str,
        identity: &str,
        extra: &[&str],
    ) -> TestResult<Self> {
        // One serving certificate for every replica, as they share one Secret in a
        // cluster: the CA they publish to the sidecars is then the same.
        let certs = work.join("certs");
        if !certs.join("tls.crt").exists() {
            let generated = Command::new(BIN)
                .args(["certs", "generate", "--dns", "localhost", "--out"])
                .arg(&certs)
                .output()?;
            if !generated.status.success() {
                return Err(format!("certs generate: {generated:?}").into());
            }
        }
        let log = work.join(format!("{identity}.log"));
        let port = free_port()?;
        let child = Command::new(BIN)
            .args(["serve", "--controllers", "on", "--cluster-lookups", "off"])
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--cert-dir")
            .arg(&certs)
            .args([
                "--watch-namespace",
                namespace,
                "--lease-namespace",
                namespace,
            ])
            .args(["--lease-duration-secs", &LEASE_SECONDS.to_string()])
            .arg("--site-endpoints")
            .arg(work.join("endpoints.yaml"))
            .args(extra)
            .env("POD_NAME", identity)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        Ok(Self {
            child,
            identity: identity.to_owned(),
            log,
            port,
            ca: certs.join("ca.crt"),
        })
    }

    /// Prints the last lines of its log when `outcome` failed (the end of a long log is
    /// where a failed scenario's cause is), and passes `outcome` on.
    pub(crate) fn tail_log_on_failure(&self, outcome: TestResult) -> TestResult {
        if outcome.is_err() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("operator log (last lines):");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        outcome
    }

    /// RBAC, from what it really sent: every request is granted in `webhook/rbac.yaml`,
    /// and each of `only` (grants that exist for one `purpose`) was sent.
    pub(crate) async fn sent_only_granted_and_used(
        &self,
        only: &[(&str, &str, &str)],
        purpose: &str,
    ) -> TestResult {
        let used = self.kube_requests().await?;
        let granted = granted_to_operator()?;
        let missing: Vec<_> = used.difference(&granted).collect();
        assert!(missing.is_empty(), "not granted: {missing:?}");
        for (group, resource, verb) in only {
            assert!(
                used.contains(&(
                    (*group).to_owned(),
                    (*resource).to_owned(),
                    (*verb).to_owned()
                )),
                "{group}/{resource} {verb} granted for {purpose} but never sent: {used:?}"
            );
        }
        Ok(())
    }

    /// The CA bundle its serving certificate chains to (`ca.crt` in its `--cert-dir`).
    pub(crate) fn ca_file(&self) -> &Path {
        &self.ca
    }

    /// The operator's `/metrics` (Prometheus text).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) async fn metrics(&self) -> TestResult<String> {
        crate::serve_support::install_crypto_provider();
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&self.ca)?)?;
        let client = reqwest::Client::builder()
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(client
            .get(format!("https://localhost:{}/metrics", self.port))
            .send()
            .await?
            .text()
            .await?)
    }

    /// `bloodraven_kube_requests_total` from the operator's `/metrics`: every (API group,
    /// resource, verb) it sent.
    pub(crate) async fn kube_requests(&self) -> TestResult<HashSet<(String, String, String)>> {
        let text = self.metrics().await?;
        let label = |line: &str, name: &str| -> Option<String> {
            let start = line.find(&format!("{name}=\""))? + name.len() + 2;
            let end = start + line[start..].find('"')?;
            Some(line[start..end].to_owned())
        };
        Ok(text
            .lines()
            .filter(|l| l.starts_with("bloodraven_kube_requests_total{"))
            .filter_map(|l| Some((label(l, "group")?, label(l, "resource")?, label(l, "verb")?)))
            .collect())
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The group's failover timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timing {
    /// `pollInterval` 250ms, `failureThreshold` 2, `failoverCooldown` 1s: short tests.
    Fast,
    /// Everything left to the CRD defaults (2 s polls), as a user would: benchmarks.
    Defaults,
}

/// A namespace holding one group whose two sites are a real MySQL pair, plus the Pods and
/// Nodes a cluster would have.
pub(crate) struct Fixture {
    client: Client,
    namespace: String,
    cluster: MysqlCluster,
    work: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> TestResult<Self> {
        Self::start_with(Timing::Fast).await
    }

    pub(crate) async fn start_with(timing: Timing) -> TestResult<Self> {
        let client = client().await;
        let cluster = start_pair().await?;
        // Created on the primary and replicated, as an account created by hand before the
        // operator takes over would be.
        cluster.get(0)?.sql(&format!(
            "CREATE USER '{OPERATOR_USER}'@'%' IDENTIFIED BY '{OPERATOR_PASSWORD}'; \
             GRANT ALL ON *.* TO '{OPERATOR_USER}'@'%' WITH GRANT OPTION"
        ))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while cluster.get(1)?.sql(&format!(
            "SELECT COUNT(*) FROM mysql.user WHERE user = '{OPERATOR_USER}'"
        ))? != "1"
        {
            if Instant::now() > deadline {
                return Err("the operator account never reached the replica".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let namespace = unique("e2e");
        create_namespace(&client, &namespace).await;
        let work = tempfile::tempdir()?;
        let endpoints: BTreeMap<String, String> = [("iad", 0), ("pdx", 1)]
            .into_iter()
            .map(|(site, i)| {
                Ok((
                    format!("{namespace}/{GROUP}/{site}"),
                    cluster.get(i)?.address(),
                ))
            })
            .collect::<TestResult<_>>()?;
        std::fs::write(
            work.path().join("endpoints.yaml"),
            serde_json::to_string(&endpoints)?,
        )?;
        let fixture = Self {
            client,
            namespace,
            cluster,
            work,
        };
        Box::pin(fixture.create_objects(timing)).await?;
        Ok(fixture)
    }

    async fn create_objects(&self, timing: Timing) -> TestResult {
        let ns = &self.namespace;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"name": "orders-operator"},
                    "stringData": {
                        "username": OPERATOR_USER, "password": OPERATOR_PASSWORD,
                        "MYSQL_REPLICATION_USER": REPL_USER, "MYSQL_REPLICATION_PASSWORD": REPL_PASSWORD
                    }
                }))?,
            )
            .await?;
        let nodes: Api<Node> = Api::all(self.client.clone());
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        for site in ["iad", "pdx"] {
            let node = format!("{ns}-{site}");
            nodes
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({
                        "metadata": {"name": node, "labels": {"e2e-site": format!("{ns}-{site}")}}
                    }))?,
                )
                .await?;
            let mut labels = names::site_labels(GROUP, site);
            labels.insert("pod-template-hash".to_owned(), "abc".to_owned());
            pods.create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"name": format!("mysql-{GROUP}-{site}-abc"), "labels": labels},
                    "spec": {"nodeName": node, "containers": [{"name": "mysql", "image": "mysql:9.7.0"}]}
                }))?,
            )
            .await?;
        }
        let mut group = json!({
            "apiVersion": "shipstream.io/v1alpha1",
            "kind": "MysqlFailoverGroup",
            "metadata": {"name": GROUP},
            "spec": {
                "image": "mysql:9.7.0",
                "sites": [
                    {"name": "iad", "lbIP": "10.0.0.1", "taintNodeSelector": {"e2e-site": format!("{ns}-iad")}},
                    {"name": "pdx", "lbIP": "10.0.0.2", "taintNodeSelector": {"e2e-site": format!("{ns}-pdx")}}
                ],
                "credentials": {"operatorSecret": "orders-operator"},
                "dns": {"hostname": "orders.db.example.com", "ttl": 30}
            }
        });
        if timing == Timing::Fast {
            group["spec"]["pollInterval"] = json!("250ms");
            group["spec"]["failureThreshold"] = json!(2);
            group["spec"]["failoverCooldown"] = json!("1s");
        }
        let groups: Api<MysqlFailoverGroup> = Api::namespaced(self.client.clone(), ns);
        groups
            .create(&PostParams::default(), &serde_json::from_value(group)?)
            .await?;
        Ok(())
    }

    pub(crate) fn operator(&self, identity: &str) -> TestResult<Operator> {
        Operator::start(self.work.path(), &self.namespace, identity)
    }

    /// [`Self::operator`] with more `serve` flags.
    pub(crate) fn operator_with(&self, identity: &str, extra: &[&str]) -> TestResult<Operator> {
        Operator::start_with(self.work.path(), &self.namespace, identity, extra)
    }

    pub(crate) fn namespace(&self) -> &str {
        &self.namespace
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn work(&self) -> &Path {
        self.work.path()
    }

    pub(crate) fn instance(&self, site: &str) -> TestResult<&MysqlInstance> {
        Ok(self.cluster.get(usize::from(site == "pdx"))?)
    }

    pub(crate) async fn group(&self) -> TestResult<Value> {
        let groups: Api<MysqlFailoverGroup> = Api::namespaced(self.client.clone(), &self.namespace);
        Ok(serde_json::to_value(groups.get(GROUP).await?)?)
    }

    /// Polls the group until `pred` holds on it, for at most `within`.
    pub(crate) async fn wait_group(
        &self,
        what: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> TestResult<Value> {
        let deadline = Instant::now() + within;
        loop {
            let group = self.group().await?;
            if pred(&group) {
                return Ok(group);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "timed out after {within:?} waiting for {what}; status: {:#}",
                    group.pointer("/status").cloned().unwrap_or_default()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn wait_active(&self, site: &str, within: Duration) -> TestResult<Value> {
        self.wait_group(&format!("activeSite {site}, Ready"), within, |g| {
            active_site(g) == Some(site) && condition(g, "Ready") == Some("True")
        })
        .await
    }

    pub(crate) async fn pod_labels(&self, site: &str) -> TestResult<BTreeMap<String, String>> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let pod = pods.get(&format!("mysql-{GROUP}-{site}-abc")).await?;
        Ok(pod.metadata.labels.unwrap_or_default())
    }

    async fn tainted(&self, site: &str) -> TestResult<bool> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let node = nodes.get(&format!("{}-{site}", self.namespace)).await?;
        let key = format!("shipstream.io/db-readonly-{GROUP}");
        Ok(node
            .spec
            .and_then(|s| s.taints)
            .unwrap_or_default()
            .iter()
            .any(|t| t.key == key && t.effect == "NoExecute"))
    }

    async fn dns_targets(&self) -> TestResult<Vec<String>> {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
            "externaldns.k8s.io",
            "v1alpha1",
            "DNSEndpoint",
        ));
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.namespace, &resource);
        let Some(object) = api.get_opt(&names::dns_endpoint(GROUP)).await? else {
            return Ok(Vec::new());
        };
        Ok(object
            .data
            .pointer("/spec/endpoints/0/targets")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn event_reasons(&self) -> TestResult<Vec<String>> {
        self.event_reasons_of(GROUP).await
    }

    /// The reasons of the Events about the object named `name`.
    pub(crate) async fn event_reasons_of(&self, name: &str) -> TestResult<Vec<String>> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        Ok(events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .filter_map(|e| e.reason)
            .collect())
    }

    /// The reasons of the Events about `name` once all of `wanted` are among them, or as
    /// they are after 10 s (for the caller's assertion to show). The operator posts an
    /// Event after the status write a test usually waits for, so a single read races it.
    pub(crate) async fn event_reasons_including(
        &self,
        name: &str,
        wanted: &[&str],
    ) -> TestResult<Vec<String>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let reasons = self.event_reasons_of(name).await?;
            if wanted.iter().all(|w| reasons.iter().any(|r| r == w))
                || tokio::time::Instant::now() >= deadline
            {
                return Ok(reasons);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn lease_holder(&self) -> TestResult<Option<String>> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        Ok(leases
            .get_opt("bloodraven-operator")
            .await?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity))
    }

    /// Merges `spec` into the group's spec.
    pub(crate) async fn patch_spec(&self, spec: Value) -> TestResult {
        let groups: Api<MysqlFailoverGroup> = Api::namespaced(self.client.clone(), &self.namespace);
        groups
            .patch(
                GROUP,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn annotate(&self, key: &str, value: &str) -> TestResult {
        let groups: Api<MysqlFailoverGroup> = Api::namespaced(self.client.clone(), &self.namespace);
        groups
            .patch(
                GROUP,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {key: value}}})),
            )
            .await?;
        Ok(())
    }
}

pub(crate) fn active_site(group: &Value) -> Option<&str> {
    group.pointer("/status/activeSite").and_then(Value::as_str)
}

fn condition<'a>(group: &'a Value, kind: &str) -> Option<&'a str> {
    group
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))?
        .get("status")?
        .as_str()
}

/// Lines of `log` that report a promote action that ran (by the loop's action span).
fn promotions(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("action=\"promote\"") || l.contains("action=promote"))
        .filter(|l| l.contains("ok=true"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_operator_fails_over_a_killed_primary_and_the_cluster_follows() -> TestResult {
    let fixture = Box::pin(Fixture::start()).await?;
    let operator = fixture.operator("operator-a")?;
    fixture
        .wait_active("iad", Duration::from_secs(60))
        .await
        .map_err(|e| format!("{e}\noperator log:\n{}", operator.log_text()))?;
    // The adopted primary's side of the cluster.
    let deadline = Instant::now() + Duration::from_secs(20);
    while fixture.dns_targets().await? != ["10.0.0.1"]
        || fixture.pod_labels("iad").await?.get("shipstream.io/role") != Some(&"primary".to_owned())
    {
        if Instant::now() > deadline {
            return Err(format!(
                "no DNS/labels for iad: {:?} {:?}\n{}",
                fixture.dns_targets().await?,
                fixture.pod_labels("iad").await?,
                operator.log_text()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let killed = Instant::now();
    fixture.instance("iad")?.kill9()?;
    fixture
        .wait_group("pdx promoted", Duration::from_secs(30), |g| {
            active_site(g) == Some("pdx")
        })
        .await
        .map_err(|e| format!("{e}\noperator log:\n{}", operator.log_text()))?;
    let rto = killed.elapsed();
    eprintln!("operator RTO (kill -9 to activeSite pdx in status): {rto:?}");
    assert_eq!(
        fixture
            .instance("pdx")?
            .sql("SELECT @@GLOBAL.super_read_only")?,
        "0",
        "the promoted site is writable"
    );

    // Labels, DNS, taints and Events follow.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pdx = fixture.pod_labels("pdx").await?;
        let dns = fixture.dns_targets().await?;
        let reasons = fixture.event_reasons().await?;
        let done = pdx.get("shipstream.io/role").map(String::as_str) == Some("primary")
            && dns == ["10.0.0.2"]
            && fixture.tainted("iad").await?
            && !fixture.tainted("pdx").await?
            && reasons.iter().any(|r| r == "FailoverExecuted");
        if done {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the cluster did not follow: pdx labels {pdx:?}, dns {dns:?}, events {reasons:?}\n{}",
                operator.log_text()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let group = fixture.group().await?;
    assert_eq!(
        group
            .pointer("/status/lastFailoverTarget")
            .and_then(Value::as_str),
        Some("pdx")
    );
    assert_eq!(promotions(&operator.log_text()), 1, "exactly one promotion");

    the_failover_is_counted(&fixture, &operator).await?;
    refused_annotation_is_reported_and_removed(&fixture, &operator).await?;
    rbac_matches_the_requests_sent(&operator).await
}

/// The group's failover and reaction metrics carry its namespace and name.
async fn the_failover_is_counted(fixture: &Fixture, operator: &Operator) -> TestResult {
    let metrics = operator.metrics().await?;
    let labels = [
        format!("namespace=\"{}\"", fixture.namespace),
        format!("group=\"{GROUP}\""),
        "target_site=\"pdx\"".to_owned(),
    ];
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("bloodraven_failovers_total{")
                && labels.iter().all(|label| l.contains(label.as_str()))
                && l.ends_with(" 1")),
        "no bloodraven_failovers_total with {labels:?} = 1 in:\n{}",
        metrics
            .lines()
            .filter(|l| l.contains("failovers"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The cluster reactions are counted under the same labels.
    for (family, site, extra) in [
        ("bloodraven_dns_flips_total{", "pdx", None),
        (
            "bloodraven_taint_operations_total{",
            "iad",
            Some("action=\"add\""),
        ),
    ] {
        let site_label = format!("site=\"{site}\"");
        assert!(
            metrics.lines().any(|l| l.starts_with(family)
                && l.contains(&labels[0])
                && l.contains(&labels[1])
                && l.contains(&site_label)
                && extra.is_none_or(|e| l.contains(e))
                && !l.ends_with(" 0")),
            "no {family}{site_label}{extra:?}}} > 0 in:\n{}",
            metrics
                .lines()
                .filter(|l| l.contains("dns_flips") || l.contains("taint_operations"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    Ok(())
}

/// A request annotation the operator refuses (a divergence prefix too short to be a
/// proof) gets an Event and is removed.
async fn refused_annotation_is_reported_and_removed(
    fixture: &Fixture,
    operator: &Operator,
) -> TestResult {
    fixture
        .annotate(bloodraven::api::annotations::RECLONE_SITE, "iad:3e11")
        .await?;
    fixture
        .wait_group(
            "the refused annotation removed",
            Duration::from_secs(20),
            |g| {
                g.pointer("/metadata/annotations")
                    .and_then(|a| a.get(bloodraven::api::annotations::RECLONE_SITE))
                    .is_none()
            },
        )
        .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fixture
        .event_reasons()
        .await?
        .iter()
        .any(|r| r == "RecloneRejected")
    {
        if Instant::now() > deadline {
            return Err(format!("no RecloneRejected Event\n{}", operator.log_text()).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    Ok(())
}

/// What only the backup controllers send (a failover run never does); the backup test
/// checks that it sends each of them.
pub(crate) const BACKUP_ONLY_REQUESTS: [(&str, &str, &str); 9] = [
    ("batch", "jobs", "patch"),
    ("batch", "cronjobs", "patch"),
    ("batch", "cronjobs", "delete"),
    ("shipstream.io", "mysqlbackups/status", "patch"),
    ("shipstream.io", "mysqlbackupverifications/status", "patch"),
    // The restore controller's status writes (`status.restoreInPlace`).
    ("shipstream.io", "mysqlfailovergroups/status", "patch"),
    // The next attempt of a failed scheduled backup.
    ("shipstream.io", "mysqlbackups", "create"),
    // The artifact finalizer, and retention.
    ("shipstream.io", "mysqlbackups", "patch"),
    ("shipstream.io", "mysqlbackups", "delete"),
];

/// What only a group that opted in to the sidecar makes the operator send (its token
/// Secret's creation, and the patch of its `ca.crt` when the operator's CA changes); the
/// sidecar endpoint test checks that it sends each of them.
pub(crate) const SIDECAR_ONLY_REQUESTS: [(&str, &str, &str); 2] =
    [("", "secrets", "create"), ("", "secrets", "patch")];

/// What only a group with `spec.backup.pitr` turned off again makes the operator send (its
/// archiver's deletion); the PITR test checks that it sends each of them.
pub(crate) const PITR_ONLY_REQUESTS: [(&str, &str, &str); 1] = [("apps", "deployments", "delete")];

/// The install manifest's operator role grants exactly what the operator called, apart
/// from [`BACKUP_ONLY_REQUESTS`], [`SIDECAR_ONLY_REQUESTS`] and [`PITR_ONLY_REQUESTS`].
async fn rbac_matches_the_requests_sent(operator: &Operator) -> TestResult {
    let used = operator.kube_requests().await?;
    let granted = granted_to_operator()?;
    let missing: Vec<_> = used.difference(&granted).collect();
    let unused: Vec<_> = granted
        .difference(&used)
        .filter(|(g, r, v)| {
            let request = (g.as_str(), r.as_str(), v.as_str());
            !BACKUP_ONLY_REQUESTS.contains(&request)
                && !SIDECAR_ONLY_REQUESTS.contains(&request)
                && !PITR_ONLY_REQUESTS.contains(&request)
        })
        .collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "webhook/rbac.yaml bloodraven-operator differs from the requests sent: \
         not granted {missing:?}, granted but unused {unused:?}"
    );
    Ok(())
}

/// (API group, resource, verb) granted by the `bloodraven-operator` ClusterRole.
pub(crate) fn granted_to_operator() -> TestResult<HashSet<(String, String, String)>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/webhook/rbac.yaml"))?;
    let stream = bloodraven::policy::manifest::parse_stream(Some("rbac.yaml"), &text);
    let role = stream
        .documents
        .into_iter()
        .map(|d| d.value)
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "bloodraven-operator")
        .ok_or("no bloodraven-operator ClusterRole in webhook/rbac.yaml")?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut granted = HashSet::new();
    for rule in role["rules"].as_array().ok_or("no rules")? {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    granted.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    Ok(granted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_operator_planned_failover_by_annotation_loses_no_acknowledged_write()
-> TestResult {
    let fixture = Box::pin(Fixture::start()).await?;
    let operator = fixture.operator("operator-a")?;
    fixture
        .wait_active("iad", Duration::from_secs(60))
        .await
        .map_err(|e| format!("{e}\noperator log:\n{}", operator.log_text()))?;
    let (iad, pdx) = (fixture.instance("iad")?, fixture.instance("pdx")?);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_until(
        [("iad", iad.port()), ("pdx", pdx.port())],
        Arc::clone(&stop),
    ));
    tokio::time::sleep(Duration::from_millis(700)).await;
    fixture.annotate(PLANNED_FAILOVER, "pdx").await?;
    let group = fixture
        .wait_group("planned failover finished", Duration::from_secs(60), |g| {
            matches!(
                g.pointer("/status/plannedFailover/phase")
                    .and_then(Value::as_str),
                Some("Succeeded" | "Failed")
            )
        })
        .await
        .map_err(|e| format!("{e}\noperator log:\n{}", operator.log_text()))?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<u64> = writer.await?.iter().map(|a| a.id).collect();
    assert_eq!(
        group
            .pointer("/status/plannedFailover/phase")
            .and_then(Value::as_str),
        Some("Succeeded"),
        "{:#}",
        group.pointer("/status").cloned().unwrap_or_default()
    );
    assert_eq!(active_site(&group), Some("pdx"));
    assert!(
        group
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(PLANNED_FAILOVER))
            .is_none(),
        "the handled annotation is removed"
    );
    let present: HashSet<u64> = pdx
        .sql("SELECT id FROM app.t")?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|id| !present.contains(id))
        .collect();
    eprintln!(
        "planned failover by annotation: {} acknowledged writes, {} lost",
        acked.len(),
        lost.len()
    );
    assert!(acked.len() > 20, "the writer ran: {}", acked.len());
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_operator_only_the_lease_holder_acts_and_a_standby_takes_over() -> TestResult {
    let fixture = Box::pin(Fixture::start()).await?;
    let mut a = fixture.operator("operator-a")?;
    fixture.wait_active("iad", Duration::from_secs(60)).await?;
    let b = fixture.operator("operator-b")?;
    // Give the standby time to try for the Lease (its retry period is a fraction of a
    // second) and to start anything it wrongly would.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let holder = fixture.lease_holder().await?.ok_or("no Lease holder")?;
    assert_eq!(holder, a.identity, "the first replica keeps the Lease");
    let (leader, standby) = (&mut a, &b);
    assert!(
        leader.log_text().contains("failover loop started"),
        "the leader runs the loop"
    );
    assert!(
        !standby.log_text().contains("failover loop started"),
        "the standby runs no loop:\n{}",
        standby.log_text()
    );

    leader.kill9();
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(LEASE_SECONDS * 3);
    while fixture.lease_holder().await?.as_deref() != Some(standby.identity.as_str()) {
        if Instant::now() > deadline {
            return Err("the standby never took the Lease".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let takeover = killed.elapsed();
    eprintln!("takeover after the leader's kill -9: {takeover:?} (lease {LEASE_SECONDS} s)");
    assert!(
        takeover <= Duration::from_secs(LEASE_SECONDS + 1),
        "took {takeover:?}"
    );
    // The new leader acts: it fails over a killed primary.
    fixture.instance("iad")?.kill9()?;
    fixture
        .wait_group(
            "pdx promoted by the new leader",
            Duration::from_secs(30),
            |g| active_site(g) == Some("pdx"),
        )
        .await
        .map_err(|e| format!("{e}\nstandby log:\n{}", standby.log_text()))?;
    assert!(standby.log_text().contains("failover loop started"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_operator_restarted_mid_failover_resumes_and_promotes_once() -> TestResult {
    let fixture = Box::pin(Fixture::start()).await?;
    let mut first = fixture.operator("operator-a")?;
    fixture.wait_active("iad", Duration::from_secs(60)).await?;
    fixture.instance("iad")?.kill9()?;
    // Kill the operator as soon as its status shows it has seen the primary fail (the
    // failover is under way or about to be), before the outcome is recorded.
    fixture
        .wait_group("iad seen failing", Duration::from_secs(20), |g| {
            g.pointer("/status/sites")
                .and_then(Value::as_array)
                .is_some_and(|sites| {
                    sites.iter().any(|s| {
                        s.get("name").and_then(Value::as_str) == Some("iad")
                            && s.get("state").and_then(Value::as_str) != Some("writable")
                    })
                })
                || active_site(g) == Some("pdx")
        })
        .await?;
    first.kill9();
    let first_log = first.log_text();
    let second = fixture.operator("operator-b")?;
    // iad stays dead, so the group is Degraded (not Ready): wait for the promotion itself.
    let group = fixture
        .wait_group("pdx promoted", Duration::from_secs(60), |g| {
            active_site(g) == Some("pdx")
        })
        .await
        .map_err(|e| format!("{e}\nfirst:\n{first_log}\nsecond:\n{}", second.log_text()))?;
    assert_eq!(
        fixture
            .instance("pdx")?
            .sql("SELECT @@GLOBAL.super_read_only")?,
        "0",
        "the promoted site is writable"
    );
    // One change of the active site after adopting iad, whoever executed it: the first
    // process may have promoted before it died (then the second finds the promotion in
    // doubt and confirms it by probing instead of promoting again).
    let both_logs = format!("{first_log}{}", second.log_text());
    assert_eq!(
        group
            .pointer("/status/topologyGeneration")
            .and_then(Value::as_i64),
        Some(2),
        "{:#}\n{both_logs}",
        group.pointer("/status").cloned().unwrap_or_default()
    );
    assert!(promotions(&both_logs) <= 1, "promoted twice:\n{both_logs}");
    let executed = fixture
        .event_reasons()
        .await?
        .iter()
        .filter(|r| *r == "FailoverExecuted")
        .count();
    assert!(executed <= 1, "{executed} FailoverExecuted Events");
    assert!(
        second.log_text().contains("failover loop started"),
        "the restarted operator resumed the group"
    );
    Ok(())
}

/// The image a site's Deployment runs now.
async fn deployment_image(fixture: &Fixture, site: &str) -> TestResult<Option<String>> {
    let api: Api<Deployment> = Api::namespaced(fixture.client.clone(), &fixture.namespace);
    Ok(api
        .get_opt(&names::site(GROUP, site))
        .await?
        .and_then(|d| d.spec?.template.spec?.containers.first()?.image.clone()))
}

/// Plays the Deployment controller (there is none here): reports the site's current
/// template rolled out with a ready pod.
async fn mark_rolled_out(fixture: &Fixture, site: &str) -> TestResult {
    let api: Api<Deployment> = Api::namespaced(fixture.client.clone(), &fixture.namespace);
    let name = names::site(GROUP, site);
    let generation = api.get(&name).await?.metadata.generation.unwrap_or(1);
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "observedGeneration": generation, "replicas": 1, "updatedReplicas": 1,
            "readyReplicas": 1, "availableReplicas": 1,
        }})),
    )
    .await?;
    Ok(())
}

/// Waits until the site's Deployment runs `image`.
async fn wait_image(fixture: &Fixture, site: &str, image: &str, within: Duration) -> TestResult {
    let deadline = Instant::now() + within;
    while deployment_image(fixture, site).await?.as_deref() != Some(image) {
        if Instant::now() > deadline {
            return Err(
                format!("{site}'s Deployment does not run {image} after {within:?}").into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn update_phase(group: &Value) -> Option<&str> {
    group.pointer("/status/updatePhase").and_then(Value::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_operator_ordered_update_rolls_the_follower_then_hands_off_then_the_old_primary()
-> TestResult {
    const OLD: &str = "mysql:9.7.0";
    const NEW: &str = "mysql:9.7.1";
    let fixture = Box::pin(Fixture::start()).await?;
    // The default resync (60 s) is longer than this test: each step must be driven by the
    // Deployment and group changes themselves.
    let operator = fixture.operator("operator-a")?;
    let fail =
        |e: Box<dyn std::error::Error + Send + Sync>| -> Box<dyn std::error::Error + Send + Sync> {
            format!("{e}\noperator log:\n{}", operator.log_text()).into()
        };
    fixture
        .wait_active("iad", Duration::from_secs(60))
        .await
        .map_err(fail)?;
    for site in ["iad", "pdx"] {
        wait_image(&fixture, site, OLD, Duration::from_secs(20))
            .await
            .map_err(fail)?;
        mark_rolled_out(&fixture, site).await?;
    }

    let groups: Api<MysqlFailoverGroup> =
        Api::namespaced(fixture.client.clone(), &fixture.namespace);
    groups
        .patch(
            GROUP,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"image": NEW}})),
        )
        .await?;

    // 1. The follower first, the primary held back.
    let group = fixture
        .wait_group("pdx updated", Duration::from_secs(30), |g| {
            matches!(update_phase(g), Some("UpdateReplica" | "WaitReplica"))
        })
        .await
        .map_err(fail)?;
    assert_eq!(active_site(&group), Some("iad"));
    wait_image(&fixture, "pdx", NEW, Duration::from_secs(20))
        .await
        .map_err(fail)?;
    // Until pdx reports back, the primary is neither restarted nor handed over.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        deployment_image(&fixture, "iad").await?.as_deref(),
        Some(OLD)
    );
    let group = fixture.group().await?;
    assert_eq!(
        active_site(&group),
        Some("iad"),
        "no handoff to a site still rolling"
    );
    assert_eq!(update_phase(&group), Some("WaitReplica"));

    // 2. pdx is back and replicating: the primary moves to it, and only then is iad
    //    updated.
    mark_rolled_out(&fixture, "pdx").await?;
    fixture
        .wait_group("handed off to pdx", Duration::from_secs(60), |g| {
            active_site(g) == Some("pdx")
        })
        .await
        .map_err(fail)?;
    wait_image(&fixture, "iad", NEW, Duration::from_secs(30))
        .await
        .map_err(fail)?;
    // The phase is recorded right after the apply it describes.
    let group = fixture
        .wait_group("the old primary's phase", Duration::from_secs(10), |g| {
            matches!(update_phase(g), Some("UpdateOldPrimary" | "WaitOldPrimary"))
        })
        .await
        .map_err(fail)?;
    assert_eq!(active_site(&group), Some("pdx"));
    assert_eq!(
        fixture
            .instance("pdx")?
            .sql("SELECT @@GLOBAL.super_read_only")?,
        "0",
        "the new primary is writable"
    );

    // 3. iad back: the update is complete, with one promotion in all.
    mark_rolled_out(&fixture, "iad").await?;
    fixture
        .wait_group("update complete", Duration::from_secs(60), |g| {
            update_phase(g) == Some("Complete")
        })
        .await
        .map_err(fail)?;
    assert_eq!(promotions(&operator.log_text()), 1, "exactly one promotion");
    Ok(())
}
