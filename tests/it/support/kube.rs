//! The real API server the `kube_real_*` tests and the operator benchmarks run against,
//! started by `scripts/kube-apiserver-test.sh`: a client for it, unique names, and the
//! golden groups created in a namespace of their own.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::json;

use bloodraven::api::MysqlFailoverGroup;

/// A client from `KUBECONFIG`; fails naming the script that starts the server.
pub async fn client() -> kube::Client {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "KUBECONFIG is not set: run this test through scripts/kube-apiserver-test.sh"
    );
    kube::Client::try_default()
        .await
        .expect("a kube client from KUBECONFIG (scripts/kube-apiserver-test.sh starts the server)")
}

/// A name no other test process uses: nextest runs each test in a process of its own,
/// often in the same millisecond.
pub fn unique(prefix: &str) -> String {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() % 100_000_000),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Creates the namespace `name`.
pub async fn create_namespace(client: &kube::Client, name: &str) {
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("a Namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("the API server creates the namespace");
}

/// The golden render input `tests/golden/render/<file>`, placed in `namespace`, not yet
/// created (the API server gives it a uid).
pub fn golden_group(file: &str, namespace: &str) -> MysqlFailoverGroup {
    let path = format!("{}/tests/golden/render/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("the golden input");
    let mut group: MysqlFailoverGroup = serde_saphyr::from_str(&text).expect("a group");
    group.metadata.namespace = Some(namespace.to_owned());
    group.metadata.uid = None;
    group
}
