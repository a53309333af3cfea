//! The cluster cache filled by the real kube client's list-then-watch against a fake API
//! server over TLS: what admission's cross-object rules see, scoped watches, live events,
//! relists after expiry, and kinds the cluster does not serve.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bloodraven::adapters::kube::{ClusterCache, ClusterWatch, WatchScope};
use bloodraven::policy::rules::{Lookup, ObjectContext};
use bloodraven::shells::serve::ClusterLookups;
use bloodraven::telemetry::cluster_cache::CacheMetrics;
use serde_json::{Value, json};

use crate::serve_support::{
    CREDENTIAL_SECRETS, ReviewBuilder, TestServer, bad_group, generate, good_group,
    install_crypto_provider, rule_ids,
};
use crate::support::fake_apiserver::FakeApiServer;

const PLURALS: [&str; 5] = [
    "secrets",
    "storageclasses",
    "networkpolicies",
    "prometheusrules",
    "poddisruptionbudgets",
];

/// Polls `condition` every 50 ms for up to 20 s.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A Secret as the API server returns it: base64 `data`, no `kind` on list items.
fn secret(namespace: &str, name: &str, user: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {"username": b64(user), "password": b64(&format!("{user}-password"))}})
}

fn storage_class(name: &str, provisioner: &str, reclaim: &str, binding: &str) -> Value {
    json!({"metadata": {"name": name}, "provisioner": provisioner, "reclaimPolicy": reclaim,
        "allowVolumeExpansion": true, "volumeBindingMode": binding})
}

/// The objects `good_group` needs, in namespace `db`, plus a node-local class.
fn seed(api: &FakeApiServer) {
    for (name, user) in CREDENTIAL_SECRETS {
        api.put("secrets", secret("db", name, user));
    }
    api.put(
        "storageclasses",
        storage_class(
            "retained",
            "ebs.csi.aws.com",
            "Retain",
            "WaitForFirstConsumer",
        ),
    );
    api.put(
        "storageclasses",
        storage_class("local-path", "rancher.io/local-path", "Delete", "Immediate"),
    );
}

fn warnings(response: &Value) -> Vec<String> {
    response["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn metric(text: &str, name: &str, kind: &str) -> Option<f64> {
    let prefix = format!("{name}{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_reads_secrets_and_storage_classes_through_the_watch() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = generate(dir.path(), None);
    let api = FakeApiServer::start(&certs, &PLURALS).await;
    api.uninstall("prometheusrules");
    seed(&api);
    let client = api.client(&certs);
    let server = TestServer::start_with(|o| {
        o.cluster = ClusterLookups::Watch {
            client,
            scope: WatchScope::AllNamespaces,
        };
    })
    .await;

    eventually("Secrets and StorageClasses to sync", || async {
        let (_, text) = server.get_text("/metrics").await;
        metric(&text, "bloodraven_cluster_cache_synced", "Secret") == Some(1.0)
            && metric(&text, "bloodraven_cluster_cache_synced", "StorageClass") == Some(1.0)
    })
    .await;

    let response = server
        .review("/validate", &ReviewBuilder::create(good_group()))
        .await;
    assert_eq!(response["allowed"], true, "{response}");
    assert!(warnings(&response).is_empty(), "{response}");

    // The node-local class read from the API denies; the missing Secret warns.
    let response = server
        .review("/validate", &ReviewBuilder::create(bad_group()))
        .await;
    assert_eq!(response["allowed"], false, "{response}");
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(
        rule_ids(message).contains(&"BR-TEST-SC-001".to_owned()),
        "{message}"
    );
    assert!(message.contains("local-path"), "{message}");
    let missing_secret_warned = |response: &Value| {
        warnings(response)
            .iter()
            .any(|w| w.starts_with("BR-TEST-CRED-001") && w.contains("missing-app"))
    };
    assert!(missing_secret_warned(&response), "{response}");

    // A live ADDED event: the Secret now exists, and the warning goes away.
    api.put("secrets", secret("db", "missing-app", "app2"));
    eventually("the new Secret to reach admission", || async {
        let response = server
            .review("/validate", &ReviewBuilder::create(bad_group()))
            .await;
        !missing_secret_warned(&response)
    })
    .await;

    // A live MODIFIED event: the safe class turns node-local and the good group is denied.
    api.put(
        "storageclasses",
        storage_class("retained", "rancher.io/local-path", "Delete", "Immediate"),
    );
    eventually("the changed StorageClass to reach admission", || async {
        let response = server
            .review("/validate", &ReviewBuilder::create(good_group()))
            .await;
        response["allowed"] == false
            && rule_ids(response["status"]["message"].as_str().unwrap_or_default())
                .contains(&"BR-TEST-SC-001".to_owned())
    })
    .await;

    // A kind the cluster does not serve stays unsynced, and the failures are counted.
    let (_, text) = server.get_text("/metrics").await;
    assert_eq!(
        metric(&text, "bloodraven_cluster_cache_synced", "PrometheusRule"),
        Some(0.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            "bloodraven_cluster_watch_errors_total",
            "PrometheusRule"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "bloodraven_cluster_cache_objects", "Secret"),
        Some(6.0),
        "{text}"
    );
    server.stop().await;
}

/// Without cluster lookups every kind is exported as not synced, so an alert on
/// `bloodraven_cluster_cache_synced == 0` sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_lookups_every_kind_is_exported_as_not_synced() {
    let server = TestServer::start_with(|o| o.cluster = ClusterLookups::None).await;
    let (_, text) = server.get_text("/metrics").await;
    for kind in bloodraven::policy::rules::builtin::LOOKUP_KINDS {
        assert_eq!(
            metric(&text, "bloodraven_cluster_cache_synced", kind),
            Some(0.0),
            "{kind}: {text}"
        );
        assert_eq!(
            metric(&text, "bloodraven_cluster_watch_errors_total", kind),
            Some(0.0),
            "{kind}: {text}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_watch_follows_events_relists_after_expiry_and_never_guesses() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = generate(dir.path(), None);
    let api = FakeApiServer::start(&certs, &PLURALS).await;
    api.forbid("networkpolicies");
    seed(&api);
    api.put("secrets", secret("other", "elsewhere", "x"));
    let cache = Arc::new(ClusterCache::new());
    let metrics = CacheMetrics::default();
    let watch = ClusterWatch::start(
        &api.client(&certs),
        &cache,
        &WatchScope::Namespaces(vec!["db".to_owned()]),
        &metrics,
    );

    eventually("the db Secrets to sync", || async {
        matches!(cache.get("Secret", "db", "op"), Lookup::Found(_))
    })
    .await;
    let Lookup::Found(op) = cache.get("Secret", "db", "op") else {
        unreachable!()
    };
    assert_eq!(op["kind"], "Secret", "list items get their kind back");
    assert_eq!(op["data"]["username"], b64("operator"));
    assert_eq!(
        op["data"]["password"], "",
        "passwords never reach the cache"
    );
    // Outside the watched namespace the cache does not know, and says so.
    assert_eq!(cache.get("Secret", "other", "elsewhere"), Lookup::Unknown);
    assert_eq!(cache.list("Secret", "*"), Lookup::Unknown);
    // Cluster-scoped kinds are watched cluster-wide.
    eventually("StorageClasses to sync", || async {
        cache.covers("StorageClass", "")
    })
    .await;
    let paths = api.requests();
    assert!(
        paths.iter().any(|p| p == "/api/v1/namespaces/db/secrets"),
        "{paths:?}"
    );
    assert!(!paths.iter().any(|p| p == "/api/v1/secrets"), "{paths:?}");
    assert!(
        paths
            .iter()
            .any(|p| p == "/apis/storage.k8s.io/v1/storageclasses"),
        "{paths:?}"
    );

    // Live events.
    api.delete("secrets", "db", "op");
    eventually("the deletion to arrive", || async {
        cache.get("Secret", "db", "op") == Lookup::Missing
    })
    .await;
    api.put("secrets", secret("db", "late", "late"));
    eventually("the addition to arrive", || async {
        matches!(cache.get("Secret", "db", "late"), Lookup::Found(_))
    })
    .await;
    // Events of other namespaces are not applied.
    api.put("secrets", secret("other", "more", "y"));

    // A deletion the watch never saw: the reconnect gets 410 Gone, and the relist drops it.
    api.delete_while_disconnected("secrets", "db", "app");
    eventually("the relist to drop the Secret", || async {
        cache.get("Secret", "db", "app") == Lookup::Missing
    })
    .await;
    assert!(matches!(cache.get("Secret", "db", "ro"), Lookup::Found(_)));
    assert_eq!(cache.count("Secret"), 4, "ro, mon, bak and late");

    // A kind the server may not read stays unknown: rules stay silent instead of denying.
    assert_eq!(cache.get("NetworkPolicy", "db", "any"), Lookup::Unknown);
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    assert!(
        metric(&text, "cluster_watch_errors_total", "NetworkPolicy").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "cluster_cache_synced", "Secret"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "cluster_cache_objects", "Secret"),
        Some(4.0),
        "{text}"
    );
    watch.stop().await;
}

/// Every object of a looked-up kind in `docs/examples/production-ready.yaml`, with the
/// plural the API serves it under.
fn example_cluster_objects() -> (Value, Vec<(&'static str, Value)>) {
    let text = std::fs::read_to_string(format!(
        "{}/docs/examples/production-ready.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("example");
    let stream = bloodraven::policy::manifest::parse_stream(None, &text);
    assert!(stream.errors.is_empty(), "{:?}", stream.errors);
    let mut group = Value::Null;
    let mut objects = Vec::new();
    for doc in stream.documents {
        let kind = doc.value["kind"].as_str().unwrap_or_default().to_owned();
        if kind == "MysqlFailoverGroup" {
            group = doc.value;
        } else if let Some(r) = bloodraven::adapters::kube::LOOKUP_RESOURCES
            .iter()
            .find(|r| r.kind == kind)
        {
            objects.push((r.plural, doc.value));
        }
    }
    (group, objects)
}

/// `bloodraven serve` as deployed: the real binary finds the API server through its
/// kubeconfig (default `--cluster-lookups auto`), and admission follows the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_watches_the_cluster_its_kubeconfig_names() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = generate(dir.path(), None);
    let api = FakeApiServer::start(&certs, &PLURALS).await;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
             clusters: [{{name: fake, cluster: {{server: '{}', certificate-authority: '{}'}}}}]\n\
             users: [{{name: nobody, user: {{}}}}]\n\
             contexts: [{{name: fake, context: {{cluster: fake, user: nobody}}}}]\n",
            api.url(),
            certs.ca_cert.display()
        ),
    )
    .expect("kubeconfig");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_bloodraven"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--cert-dir",
        ])
        .arg(dir.path())
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("serve starts");
    let client = crate::serve_support::client_for(&certs, true);
    let url = |path: &str| format!("https://127.0.0.1:{port}{path}");
    let synced = || async {
        let Ok(response) = client.get(url("/metrics")).send().await else {
            return false;
        };
        let text = response.text().await.unwrap_or_default();
        metric(&text, "bloodraven_cluster_cache_synced", "Secret") == Some(1.0)
    };
    eventually("the binary to serve and sync Secrets", synced).await;

    let (group, objects) = example_cluster_objects();
    let review = ReviewBuilder::create(group).build();
    let cred_warnings = || async {
        let body: Value = client
            .post(url("/validate"))
            .json(&review)
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("json");
        assert_eq!(body["response"]["allowed"], true, "{body}");
        warnings(&body["response"])
            .into_iter()
            .filter(|w| w.starts_with("BR-CRED-004"))
            .count()
    };
    assert!(
        cred_warnings().await >= 1,
        "the credential Secrets do not exist yet"
    );
    for (plural, object) in objects {
        api.put(plural, object);
    }
    eventually("the Secrets to reach admission", || async {
        cred_warnings().await == 0
    })
    .await;
    child.start_kill().expect("kill");
    let _ = child.wait().await;
}

/// `--cluster-lookups kube` without credentials is a startup error that says why.
#[test]
fn requiring_the_cluster_without_credentials_fails_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _certs = generate(dir.path(), None);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bloodraven"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--cluster-lookups",
            "kube",
            "--cert-dir",
        ])
        .arg(dir.path())
        .env("KUBECONFIG", dir.path().join("no-such-kubeconfig"))
        .env("HOME", dir.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .output()
        .expect("binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--cluster-lookups kube") && stderr.contains("credentials"),
        "{stderr}"
    );
}
