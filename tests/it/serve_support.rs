//! Shared set-up for the `serve_*` tests: the fixture catalog, a fake cluster, test objects,
//! and a real server on 127.0.0.1:0 with certificates from `generate_certs`, reached over
//! TLS by reqwest trusting only the generated CA.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Once};
use std::time::Duration;

use bloodraven::adapters::kube::ClusterCache;
use bloodraven::policy::rules::{Catalog, LintConfig, Linter};
use bloodraven::shells::certs::{GeneratedCerts, generate_certs};
use bloodraven::shells::serve::{ClusterLookups, ServeError, ServeOptions, bind};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const OPERATOR_SA: &str = "system:serviceaccount:bloodraven-system:bloodraven";

/// The pinned test catalog (`tests/fixtures/serve-rules`, see its README).
pub const RULE_FILES: &[(&str, &str)] = &[
    (
        "credentials.yaml",
        include_str!("../fixtures/serve-rules/credentials.yaml"),
    ),
    (
        "failover-cooldown.yaml",
        include_str!("../fixtures/serve-rules/failover-cooldown.yaml"),
    ),
    (
        "fs-group.yaml",
        include_str!("../fixtures/serve-rules/fs-group.yaml"),
    ),
    (
        "image-digest.yaml",
        include_str!("../fixtures/serve-rules/image-digest.yaml"),
    ),
    (
        "pull-policy.yaml",
        include_str!("../fixtures/serve-rules/pull-policy.yaml"),
    ),
    (
        "storage-class.yaml",
        include_str!("../fixtures/serve-rules/storage-class.yaml"),
    ),
    ("tls.yaml", include_str!("../fixtures/serve-rules/tls.yaml")),
];

pub fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::from_files(RULE_FILES).expect("fixture rules load"))
}

pub fn linter() -> Linter {
    Linter::new(catalog(), LintConfig::default())
}

pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// `(Secret name, username)` of the five credential Secrets `good_group` names.
pub const CREDENTIAL_SECRETS: [(&str, &str); 5] = [
    ("op", "operator"),
    ("app", "app"),
    ("ro", "reader"),
    ("mon", "monitor"),
    ("bak", "backup"),
];

/// A cluster with five distinct credential Secrets in `db` and two `StorageClasses`: `retained`
/// (safe) and `local-path` (node-local, deletes volumes).
pub fn fake_cluster() -> Arc<ClusterCache> {
    let cache = ClusterCache::new();
    for (name, user) in CREDENTIAL_SECRETS {
        cache.apply(&json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": "db"},
            "stringData": {"username": user, "password": format!("{user}-secret")}}));
    }
    cache.apply(&json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "retained"}, "provisioner": "ebs.csi.aws.com",
        "reclaimPolicy": "Retain", "allowVolumeExpansion": true, "volumeBindingMode": "WaitForFirstConsumer"}));
    cache.apply(
        &json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "local-path"}, "provisioner": "rancher.io/local-path",
        "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}),
    );
    cache.mark_synced("Secret");
    cache.mark_synced("StorageClass");
    Arc::new(cache)
}

/// A `MysqlFailoverGroup` with no finding at all under the fixture catalog and fake cluster.
pub fn good_group() -> Value {
    yaml(
        r"
apiVersion: shipstream.io/v1alpha1
kind: MysqlFailoverGroup
metadata: {name: orders, namespace: db}
spec:
  image: mysql@sha256:1111111111111111111111111111111111111111111111111111111111111111
  imagePullPolicy: IfNotPresent
  failoverCooldown: 10m
  tls:
    issuerRef: {name: db-ca, kind: Issuer}
  credentials:
    operatorSecret: op
    appSecret: app
    readOnlySecret: ro
    monitorSecret: mon
    backupSecret: bak
  dns: {hostname: orders.db.example.com}
  sites:
  - {name: east, role: primary-candidate, storage: {storageClassName: retained, size: 100Gi}}
  - {name: west, role: primary-candidate, storage: {storageClassName: retained, size: 100Gi}}
",
    )
}

/// Two denying findings (no TLS; a node-local `StorageClass`), one required-but-warn finding
/// (a missing Secret) and recommended findings with fixes.
pub fn bad_group() -> Value {
    yaml(
        r"
apiVersion: shipstream.io/v1alpha1
kind: MysqlFailoverGroup
metadata: {name: orders, namespace: db}
spec:
  image: mysql:9.7
  credentials:
    operatorSecret: op
    appSecret: missing-app
  podSecurityContext: {fsGroup: 999}
  dns: {hostname: orders.db.example.com}
  sites:
  - {name: east, role: primary-candidate, storage: {storageClassName: local-path}}
  - {name: west, role: primary-candidate, storage: {storageClassName: retained}}
",
    )
}

pub fn yaml(text: &str) -> Value {
    let mut stream = bloodraven::policy::manifest::parse_stream(None, text);
    assert!(stream.errors.is_empty(), "{:?}", stream.errors);
    stream.documents.remove(0).value
}

/// An `AdmissionReview` request as the API server sends it.
#[derive(Debug, Clone)]
pub struct ReviewBuilder {
    pub uid: String,
    pub operation: &'static str,
    pub object: Option<Value>,
    pub old_object: Option<Value>,
    pub username: String,
    pub sub_resource: Option<&'static str>,
    pub dry_run: bool,
}

impl ReviewBuilder {
    pub fn create(object: Value) -> Self {
        Self {
            uid: "705ab4f5-6393-11e8-b7cc-42010a800002".to_owned(),
            operation: "CREATE",
            object: Some(object),
            old_object: None,
            username: "alice".to_owned(),
            sub_resource: None,
            dry_run: false,
        }
    }

    pub fn update(old: Value, new: Value) -> Self {
        Self {
            operation: "UPDATE",
            old_object: Some(old),
            ..Self::create(new)
        }
    }

    pub fn uid(mut self, uid: &str) -> Self {
        uid.clone_into(&mut self.uid);
        self
    }

    pub fn user(mut self, username: &str) -> Self {
        username.clone_into(&mut self.username);
        self
    }

    pub fn status(mut self) -> Self {
        self.sub_resource = Some("status");
        self
    }

    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    pub fn build(&self) -> Value {
        let mut request = json!({
            "uid": self.uid,
            "kind": {"group": "shipstream.io", "version": "v1alpha1", "kind": "MysqlFailoverGroup"},
            "resource": {"group": "shipstream.io", "version": "v1alpha1", "resource": "mysqlfailovergroups"},
            "requestKind": {"group": "shipstream.io", "version": "v1alpha1", "kind": "MysqlFailoverGroup"},
            "requestResource": {"group": "shipstream.io", "version": "v1alpha1", "resource": "mysqlfailovergroups"},
            "name": "orders",
            "namespace": "db",
            "operation": self.operation,
            "userInfo": {"username": self.username, "groups": ["system:authenticated"]},
            "object": self.object,
            "oldObject": self.old_object,
            "dryRun": self.dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        });
        if let Some(sub) = self.sub_resource {
            request["subResource"] = json!(sub);
            request["requestSubResource"] = json!(sub);
        }
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
    }
}

/// Options for the fixture catalog and fake cluster, serving `cert_dir` on 127.0.0.1:0.
pub fn options(cert_dir: &std::path::Path) -> ServeOptions {
    ServeOptions {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        cert_dir: cert_dir.to_owned(),
        catalog: Some(catalog()),
        cluster: ClusterLookups::Context(fake_cluster()),
        reload_interval: Duration::from_millis(100),
        ..ServeOptions::default()
    }
}

pub fn generate(
    dir: &std::path::Path,
    ca: Option<(&std::path::Path, &std::path::Path)>,
) -> GeneratedCerts {
    generate_certs(
        dir,
        &[
            "localhost".to_owned(),
            "bloodraven-webhook.bloodraven-system.svc".to_owned(),
        ],
        &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
        ca,
    )
    .expect("certificates are generated")
}

/// A running server and an HTTPS client that trusts only its CA.
pub struct TestServer {
    pub addr: SocketAddr,
    pub certs: TempDir,
    pub generated: GeneratedCerts,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut ServeOptions)) -> Self {
        install_crypto_provider();
        let certs = tempfile::tempdir().expect("tempdir");
        let generated = generate(certs.path(), None);
        let mut opts = options(certs.path());
        configure(&mut opts);
        let server = bind(opts).await.expect("server binds");
        let addr = server.local_addr().expect("bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        let client = client_for(&generated, true);
        Self {
            addr,
            certs,
            generated,
            client,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    /// POSTs JSON; returns the status and the body as JSON (or as a string value).
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).expect("json"))
            .send()
            .await
            .expect("request is answered");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    /// The `response` of a `/validate` or `/mutate` call that must succeed at HTTP level.
    pub async fn review(&self, path: &str, review: &ReviewBuilder) -> Value {
        let (status, body) = self.post(path, &review.build()).await;
        assert_eq!(status, 200, "{path} answered {status}: {body}");
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(body["kind"], "AdmissionReview");
        assert_eq!(body["response"]["uid"], review.uid, "uid is echoed");
        assert!(
            body["response"]["allowed"].is_boolean(),
            "allowed is always present: {body}"
        );
        body["response"].clone()
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("answered");
        let status = response.status().as_u16();
        (status, response.text().await.expect("text"))
    }

    /// Stops the server and checks that it shut down cleanly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("server stops within 15 s")
                .expect("server task did not panic");
            assert!(result.is_ok(), "server ended with {result:?}");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An HTTPS client trusting only the generated CA; `keep_alive = false` opens a new TLS
/// connection per request (to observe certificate rotation).
pub fn client_for(generated: &GeneratedCerts, keep_alive: bool) -> reqwest::Client {
    let ca = std::fs::read(&generated.ca_cert).expect("ca.crt");
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("CA parses")])
        .tls_info(true)
        .http1_only()
        .timeout(Duration::from_secs(10));
    if !keep_alive {
        builder = builder.pool_max_idle_per_host(0);
    }
    builder.build().expect("client builds")
}

/// Rule IDs named in a denial message.
pub fn rule_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("BR-"))
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}
