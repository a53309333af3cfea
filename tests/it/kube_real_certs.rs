//! `bloodraven serve --self-managed-certs` against a real API server (built-in kinds mode,
//! started by `scripts/kube-apiserver-test.sh`): the binary makes its CA and serving
//! certificate in a Secret, publishes the CA bundle to every entry of both webhook
//! configurations, and rotates the serving certificate and the CA (lifetimes of seconds
//! here) while the API server sends it admission requests without a single failure.
//!
//! Two replicas share the Secret, each behind a Service of its own (clusterIP 127.0.0.1,
//! which that server resolves `clientConfig.service` through): the validating webhooks call
//! the first, the mutating webhook the second, so every admission goes through both. Each
//! is also probed directly by a client that trusts only the bundle published at that
//! moment. The webhooks only match the test's own namespace (by label), so the other tests
//! on the same server never reach them.
//!
//! The API server keeps its webhook connections alive, so a replica that switched too early
//! might not fail an admission before the bundle caught up; the probes open a new TLS
//! connection every time and trust only the bundle published at that moment, so they catch
//! it (a build that installs the Secret's pair before publishing fails them).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bloodraven::api::MysqlFailoverGroup;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::support::kube::{client, unique};
use crate::support::mysql::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_bloodraven");
const LABEL: &str = "bloodraven.test/certs";
/// One Service per replica: the validating webhooks call the first, the mutating one the
/// second, so admission through the API server reaches both.
const SERVICES: [&str; 2] = ["hook-a", "hook-b"];

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A `bloodraven serve` process, killed on drop.
struct Replica {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    fn start(work: &Path, name: &str, namespace: &str, port: u16) -> TestResult<Self> {
        let log = work.join(format!("{name}.log"));
        let child = Command::new(BIN)
            .args(["serve", "--controllers", "off", "--cluster-lookups", "off"])
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--cert-dir")
            .arg(work.join(format!("certs-{name}")))
            .args(["--reload-interval-secs", "1", "--self-managed-certs"])
            .args([
                "--cert-secret",
                "webhook-tls",
                "--cert-namespace",
                namespace,
            ])
            .args(["--cert-dns", &format!("{}.{namespace}.svc", SERVICES[0])])
            .args(["--cert-dns", &format!("{}.{namespace}.svc", SERVICES[1])])
            .args([
                "--validating-webhook",
                namespace,
                "--mutating-webhook",
                namespace,
            ])
            // Lifetimes of seconds: the serving certificate is renewed with 8 s left, the
            // CA rotated 48 s after it was made; the old CA is kept 6 s after the new
            // bundle is out.
            .args(["--cert-validity", "24s", "--ca-validity", "72s"])
            .args(["--cert-settle", "2s", "--cert-retire-after", "6s"])
            .args(["--cert-check-interval", "500ms"])
            // A new bundle reaches the webhook configurations a second after the Secret
            // holds it: a replica that served the new CA's certificate before it is
            // published (and settled) would fail admissions here.
            .args(["--cert-publish-delay", "1s"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        Ok(Self { child, log })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The namespace (labelled for the webhooks), a Service per replica and both
/// configurations, with no `caBundle` yet.
async fn set_up(client: &kube::Client, namespace: &str, ports: [u16; 2]) -> TestResult {
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": namespace, "labels": {LABEL: namespace}}
    }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    for (name, port) in SERVICES.iter().zip(ports) {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"type": "ClusterIP", "clusterIP": "127.0.0.1", "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
        }))?;
        Api::<Service>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &service)
            .await?;
    }
    let entry = |replica: usize,
                 name: &str,
                 path: &str,
                 operations: &[&str],
                 resources: &[&str]| {
        let (service, port) = (SERVICES[replica], ports[replica]);
        json!({
            "name": name,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            // Fail closed, both: any failed call is a failed admission the test sees.
            "failurePolicy": "Fail",
            "timeoutSeconds": 5,
            "clientConfig": {"service": {"namespace": namespace, "name": service, "path": path, "port": port}},
            "namespaceSelector": {"matchLabels": {LABEL: namespace}},
            "rules": [{"apiGroups": ["shipstream.io"], "apiVersions": ["*"], "operations": operations,
                       "resources": resources, "scope": "Namespaced"}],
        })
    };
    let validating: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": namespace},
        "webhooks": [
            entry(0, "validate.shipstream.io", "/validate", &["CREATE", "UPDATE"], &["mysqlfailovergroups"]),
            entry(0, "status-guard.shipstream.io", "/validate", &["UPDATE"], &["mysqlfailovergroups/status"]),
        ]
    }))?;
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &validating)
        .await?;
    let mutating: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": namespace},
        "webhooks": [entry(1, "mutate.shipstream.io", "/mutate", &["CREATE", "UPDATE"], &["mysqlfailovergroups"])]
    }))?;
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &mutating)
        .await?;
    Ok(())
}

/// The `caBundle` of every entry of both configurations.
async fn bundles(client: &kube::Client, name: &str) -> TestResult<Vec<Vec<u8>>> {
    let v = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get(name)
        .await?;
    let m = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(name)
        .await?;
    let mut out: Vec<Vec<u8>> = v
        .webhooks
        .unwrap_or_default()
        .into_iter()
        .map(|w| w.client_config.ca_bundle.map(|b| b.0).unwrap_or_default())
        .collect();
    out.extend(
        m.webhooks
            .unwrap_or_default()
            .into_iter()
            .map(|w| w.client_config.ca_bundle.map(|b| b.0).unwrap_or_default()),
    );
    Ok(out)
}

fn fingerprint(bytes: &[u8]) -> String {
    let mut hex = bloodraven::digest::sha256_hex(bytes);
    hex.truncate(16);
    hex
}

/// The certificate a replica serves to a client that trusts only `bundle` and checks the
/// Service's DNS name, as the API server does.
async fn served(bundle: &[u8], namespace: &str, port: u16) -> Result<Vec<u8>, String> {
    let host = format!("{}.{namespace}.svc", SERVICES[0]);
    let mut builder = reqwest::Client::builder()
        .tls_info(true)
        .http1_only()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .resolve(&host, SocketAddr::from(([127, 0, 0, 1], port)));
    let certs = reqwest::Certificate::from_pem_bundle(bundle).map_err(|e| e.to_string())?;
    builder = builder.tls_certs_only(certs);
    let client = builder.build().map_err(|e| e.to_string())?;
    let response = client
        .get(format!("https://{host}:{port}/healthz"))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate().map(<[u8]>::to_vec))
        .ok_or_else(|| "no peer certificate".to_owned())
}

/// The production-ready example group, placed in `namespace`: admitted by the webhooks.
fn good_group(namespace: &str) -> TestResult<MysqlFailoverGroup> {
    let path = format!(
        "{}/docs/examples/production-ready.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path)?;
    let first = text.split("\n---").next().unwrap_or_default();
    let mut group: MysqlFailoverGroup = serde_saphyr::from_str(first)?;
    group.metadata.namespace = Some(namespace.to_owned());
    Ok(group)
}

/// Dry-run creates of `group` until `stop`, counting the admitted; returns the failures.
async fn send_admissions(
    groups: Api<MysqlFailoverGroup>,
    group: MysqlFailoverGroup,
    stop: Arc<AtomicBool>,
    admitted: Arc<AtomicU64>,
) -> Vec<String> {
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let mut failures = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match groups.create(&dry_run, &group).await {
            Ok(_) => {
                admitted.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => failures.push(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    failures
}

/// What the watcher saw.
struct Observed {
    /// Fingerprints of the bundles published, in order.
    seen_bundles: Vec<String>,
    /// How many CAs each of them held.
    bundle_sizes: Vec<usize>,
    /// The Secret's signing CAs.
    cas: BTreeSet<String>,
    /// What each replica served.
    leaves: [BTreeSet<String>; 2],
    /// Connections a client trusting the published bundle could not make.
    probe_failures: Vec<String>,
}

/// Watches the bundle, the Secret's CA and what each replica serves, until the CA has
/// been rotated and the old one retired (the bundle went from one CA to two and back to
/// one).
async fn observe_until_rotated(
    client: &kube::Client,
    namespace: &str,
    ports: [u16; 2],
) -> TestResult<Observed> {
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    let mut seen = Observed {
        seen_bundles: Vec::new(),
        bundle_sizes: Vec::new(),
        cas: BTreeSet::new(),
        leaves: [BTreeSet::new(), BTreeSet::new()],
        probe_failures: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let started = Instant::now();
    loop {
        let published = bundles(client, namespace).await?;
        let current = fingerprint(&published[0]);
        if seen.seen_bundles.last() != Some(&current) {
            seen.seen_bundles.push(current);
            seen.bundle_sizes.push(
                String::from_utf8_lossy(&published[0])
                    .matches("BEGIN CERTIFICATE")
                    .count(),
            );
        }
        let secret = secrets.get("webhook-tls").await?;
        if let Some(ca) = secret.data.as_ref().and_then(|d| d.get("ca.crt")) {
            seen.cas.insert(fingerprint(&ca.0));
        }
        for (port, leaves) in ports.iter().zip(seen.leaves.iter_mut()) {
            match served(&published[0], namespace, *port).await {
                Ok(leaf) => {
                    leaves.insert(fingerprint(&leaf));
                }
                Err(e) => seen
                    .probe_failures
                    .push(format!("{:?} port {port}: {e}", started.elapsed())),
            }
        }
        if seen.bundle_sizes.windows(2).any(|w| w == [2, 1]) && seen.cas.len() >= 2 {
            return Ok(seen);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no CA rotation and retirement within 120 s: bundle sizes {:?}, CAs {}",
                seen.bundle_sizes,
                seen.cas.len()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Each replica's `--cert-dir` holds the published bundle as `ca.crt`: what the operator
/// publishes to the sidecars is what the webhooks trust.
async fn cert_dirs_hold_the_bundle(work: &Path, bundle: &[u8]) -> TestResult {
    for name in ["a", "b"] {
        let ca = work.join(format!("certs-{name}")).join("ca.crt");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read(&ca).ok().as_deref() != Some(bundle) {
            if Instant::now() > deadline {
                return Err(format!("replica {name}'s ca.crt is not the published bundle").into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_certs_self_managed_rotation_fails_no_admission() -> TestResult {
    let client = client().await;
    let namespace = unique("certs");
    let (port_a, port_b) = (free_port()?, free_port()?);
    set_up(&client, &namespace, [port_a, port_b]).await?;
    let work = tempfile::tempdir()?;
    let a = Replica::start(work.path(), "a", &namespace, port_a)?;
    let b = Replica::start(work.path(), "b", &namespace, port_b)?;
    let logs = |why: &str| {
        format!(
            "{why}\n--- replica a:\n{}\n--- replica b:\n{}",
            a.log(),
            b.log()
        )
    };

    // Both replicas come up serving a certificate the published bundle trusts.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let published = bundles(&client, &namespace).await?;
        let all_set = published.iter().all(|b| !b.is_empty()) && published.len() == 3;
        if all_set
            && served(&published[0], &namespace, port_a).await.is_ok()
            && served(&published[0], &namespace, port_b).await.is_ok()
        {
            break;
        }
        if Instant::now() > deadline {
            return Err(logs("the replicas did not come up within 60 s").into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let groups = Api::<MysqlFailoverGroup>::namespaced(client.clone(), &namespace);
    let group = good_group(&namespace)?;
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    groups
        .create(&dry_run, &group)
        .await
        .map_err(|e| logs(&format!("the good group is not admitted: {e}")))?;

    // Admission through the API server, continuously, across the rotations.
    let stop = Arc::new(AtomicBool::new(false));
    let admitted = Arc::new(AtomicU64::new(0));
    let sender = tokio::spawn(send_admissions(
        groups.clone(),
        group.clone(),
        Arc::clone(&stop),
        Arc::clone(&admitted),
    ));
    let seen = match observe_until_rotated(&client, &namespace, [port_a, port_b]).await {
        Ok(seen) => seen,
        Err(e) => {
            stop.store(true, Ordering::Relaxed);
            return Err(logs(&e.to_string()).into());
        }
    };
    let Observed {
        seen_bundles,
        bundle_sizes,
        cas,
        leaves: [leaves_a, leaves_b],
        probe_failures,
    } = seen;
    // One more serving renewal's worth of traffic after the retirement.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let failures = sender.await?;
    let admitted = admitted.load(Ordering::Relaxed);

    assert!(
        failures.is_empty(),
        "{}",
        logs(&format!(
            "{} failed admissions: {failures:#?}",
            failures.len()
        ))
    );
    assert!(admitted >= 100, "only {admitted} admissions were sent");
    assert!(
        probe_failures.is_empty(),
        "{}",
        logs(&format!("{probe_failures:#?}"))
    );
    // [ca1] -> [ca2, ca1] -> [ca2]: published before serving, the old CA dropped later.
    assert!(seen_bundles.len() >= 3, "bundles {bundle_sizes:?}");
    assert!(cas.len() >= 2);
    // Both replicas served several certificates: the renewals and the new CA's.
    assert!(leaves_a.len() >= 3, "replica a served {leaves_a:?}");
    assert!(leaves_b.len() >= 3, "replica b served {leaves_b:?}");
    // Every entry of both configurations carries the same bundle at the end.
    let published = bundles(&client, &namespace).await?;
    assert!(published.windows(2).all(|w| w[0] == w[1]));
    cert_dirs_hold_the_bundle(work.path(), &published[0])
        .await
        .map_err(|e| logs(&e.to_string()))?;
    eprintln!(
        "{admitted} admissions, 0 failed; bundles {bundle_sizes:?}; {} CAs; leaves a {} b {}",
        cas.len(),
        leaves_a.len(),
        leaves_b.len()
    );
    Ok(())
}
