//! Reconciling a group's child objects against a real API server (the standalone
//! apiextensions-apiserver in built-in kinds mode: etcd resourceVersions, server-side apply
//! with managedFields, watches), through [`KubeObjects`] and the real kube client.
//!
//! Run by `scripts/kube-apiserver-test.sh PATH/TO/crd-apiserver.sh`, which starts the server,
//! installs the CRDs and sets `KUBECONFIG`. Without that server the test fails, naming the
//! script: it never passes on nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bloodraven::adapters::kube::objects::{FIELD_MANAGER, MANAGED_KINDS, ManagedKind};
use bloodraven::adapters::kube::{KubeObjects, WatchScope};
use bloodraven::api::MysqlFailoverGroup;
use bloodraven::control::reconcile_children;
use bloodraven::ports::objects::{ObjectKey, ObjectStore};
use bloodraven::render::diff::covers;
use bloodraven::render::{RenderOptions, dns, render};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::support::kube::{client, create_namespace, golden_group, unique};

/// A fresh namespace, and the golden three-site group created in it through the API (so it
/// has a uid and the CRD's defaults).
async fn create_group(client: &kube::Client) -> MysqlFailoverGroup {
    let namespace = unique("children");
    create_namespace(client, &namespace).await;
    let group = golden_group("three-site-dr-tls.input.yaml", &namespace);
    Api::<MysqlFailoverGroup>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &group)
        .await
        .expect("the API server accepts the group")
}

/// Every rendered child of `group`, as the API server has it now (managedFields included).
async fn server_copies(
    client: &kube::Client,
    group: &MysqlFailoverGroup,
) -> BTreeMap<ObjectKey, Value> {
    let mut out = BTreeMap::new();
    for value in render(group, &RenderOptions::default())
        .unwrap()
        .to_values()
        .unwrap()
    {
        let key = ObjectKey::of(&value).unwrap();
        let kind = ManagedKind::of(&key.api_version, &key.kind).unwrap();
        let api = Api::<DynamicObject>::namespaced_with(
            client.clone(),
            &key.namespace,
            &kind.api_resource(),
        );
        let object = api
            .get(&key.name)
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        out.insert(key, serde_json::to_value(object).unwrap());
    }
    out
}

fn resource_versions(objects: &BTreeMap<ObjectKey, Value>) -> BTreeMap<String, String> {
    objects
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                v["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    after
        .iter()
        .filter(|(k, rv)| before.get(*k) != Some(*rv))
        .map(|(k, _)| k.clone())
        .collect()
}

async fn start_objects(client: &kube::Client, namespace: &str) -> KubeObjects {
    let objects = KubeObjects::start(
        client.clone(),
        WatchScope::Namespaces(vec![namespace.to_owned()]),
    )
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(30), objects.wait_synced())
        .await
        .expect("every managed kind is listed within 30 s");
    objects
}

fn assert_owned_and_applied(key: &ObjectKey, object: &Value, uid: &str) {
    let owners = object["metadata"]["ownerReferences"].as_array().unwrap();
    assert!(
        owners
            .iter()
            .any(|o| o["uid"] == uid && o["kind"] == "MysqlFailoverGroup"),
        "{key}: {owners:?}"
    );
    let managers = object["metadata"]["managedFields"].as_array().unwrap();
    assert!(
        managers
            .iter()
            .any(|m| m["manager"] == FIELD_MANAGER && m["operation"] == "Apply"),
        "{key}: {managers:?}"
    );
}

/// `kubectl edit`-like: a merge patch by another field manager sets the iad Deployment's
/// replicas (a field we apply) to 3.
async fn edit_replicas_elsewhere(
    client: &kube::Client,
    namespace: &str,
) -> (Api<DynamicObject>, ObjectKey) {
    let deployments = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        namespace,
        &MANAGED_KINDS
            .iter()
            .find(|k| k.kind == "Deployment")
            .unwrap()
            .api_resource(),
    );
    deployments
        .patch(
            "mysql-billing-iad",
            &PatchParams {
                field_manager: Some("kubectl-edit".to_owned()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    let key = ObjectKey {
        api_version: "apps/v1".to_owned(),
        kind: "Deployment".to_owned(),
        namespace: namespace.to_owned(),
        name: "mysql-billing-iad".to_owned(),
    };
    (deployments, key)
}

/// The DNSEndpoint (applied by the failover loop, not by `reconcile_children`) goes through
/// the same port: accepted as rendered, owned by the group, then seen as current.
async fn apply_dns_endpoint(
    client: &kube::Client,
    objects: &KubeObjects,
    group: &MysqlFailoverGroup,
) {
    let endpoint = serde_json::to_value(dns::dns_endpoint(group, "iad").unwrap()).unwrap();
    let writes = objects.writes();
    objects.apply(&endpoint).await.unwrap();
    assert_eq!(objects.writes() - writes, 1);
    let key = ObjectKey::of(&endpoint).unwrap();
    let kind = ManagedKind::of(&key.api_version, &key.kind).unwrap();
    let stored =
        Api::<DynamicObject>::namespaced_with(client.clone(), &key.namespace, &kind.api_resource())
            .get(&key.name)
            .await
            .unwrap();
    let uid = group.metadata.uid.as_deref().unwrap();
    assert_owned_and_applied(&key, &serde_json::to_value(stored).unwrap(), uid);
    assert!(covers(&objects.live(&key).unwrap(), &endpoint));
}

#[tokio::test]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_children_are_applied_once_and_repaired_after_a_foreign_edit() {
    let client = client().await;
    let mut group = create_group(&client).await;
    let namespace = group.metadata.namespace.clone().unwrap();
    let uid = group
        .metadata
        .uid
        .clone()
        .expect("the server gave the group a uid");
    let options = RenderOptions::default();
    let objects = start_objects(&client, &namespace).await;
    assert_eq!(
        objects.cached(),
        0,
        "a fresh namespace has no managed objects"
    );

    // First reconcile: everything is created, owned by the group, applied by us.
    let first = reconcile_children(&group, &options, None, &objects)
        .await
        .unwrap();
    // ConfigMap, 3 PVCs, 3 Deployments, 3×2 site Services + primary + replicas, PDB.
    assert_eq!(first.applied.len(), 16, "{:?}", first.applied);
    assert_eq!(first.unchanged, 0);
    assert_eq!(objects.writes(), 16);
    let created = server_copies(&client, &group).await;
    assert_eq!(created.len(), 16);
    for (key, object) in &created {
        assert_owned_and_applied(key, object, &uid);
    }
    let versions = resource_versions(&created);

    // Second reconcile, at once (the watch may not have caught up yet): no write.
    let writes = objects.writes();
    let second = reconcile_children(&group, &options, None, &objects)
        .await
        .unwrap();
    assert_eq!(second.applied, [], "an immediate resync writes nothing");
    assert_eq!(objects.writes() - writes, 0);
    // And once the watch has delivered the stored objects: still nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let third = reconcile_children(&group, &options, None, &objects)
        .await
        .unwrap();
    assert_eq!(third.applied, [], "the stored objects cover what we render");
    assert_eq!(third.unchanged, 16);
    assert_eq!(objects.writes() - writes, 0);
    assert_eq!(
        resource_versions(&server_copies(&client, &group).await),
        versions,
        "no object was written"
    );
    assert_eq!(objects.cached(), 16, "only the managed objects are cached");
    // A fresh process (no overlay of its own applies): what the watches list covers too.
    let restarted = start_objects(&client, &namespace).await;
    let after_restart = reconcile_children(&group, &options, None, &restarted)
        .await
        .unwrap();
    assert_eq!(after_restart.applied, [], "a restart writes nothing");
    assert_eq!(restarted.writes(), 0);
    drop(restarted);

    // A per-site override: that site's Deployment (its config checksum) and the ConfigMap.
    group.spec.sites[1]
        .mysql_conf
        .insert("max_connections".to_owned(), "2000".to_owned());
    let report = reconcile_children(&group, &options, None, &objects)
        .await
        .unwrap();
    let applied: Vec<String> = report.applied.iter().map(ToString::to_string).collect();
    let expected = [
        format!("ConfigMap {namespace}/mysql-billing-config"),
        format!("Deployment {namespace}/mysql-billing-pdx"),
    ];
    assert_eq!(applied, expected);
    let after_override = resource_versions(&server_copies(&client, &group).await);
    assert_eq!(changed(&versions, &after_override), expected);

    // Another field manager changes a field we own; the next reconcile takes it back.
    let (deployments, key) = edit_replicas_elsewhere(&client, &namespace).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while objects.live(&key).unwrap()["spec"]["replicas"] != 3 {
        assert!(Instant::now() < deadline, "the watch never saw the edit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let repair = reconcile_children(&group, &options, None, &objects)
        .await
        .unwrap();
    assert_eq!(repair.applied, [key]);
    let repaired = deployments.get("mysql-billing-iad").await.unwrap();
    assert_eq!(repaired.data["spec"]["replicas"], 1);
    let idle = reconcile_children(&group, &options, None, &objects)
        .await
        .unwrap();
    assert_eq!(idle.applied, [], "repaired once, then idle");

    apply_dns_endpoint(&client, &objects, &group).await;

    drop(objects);
    let _ = Api::<Namespace>::all(client)
        .delete(&namespace, &kube::api::DeleteParams::default())
        .await;
}
