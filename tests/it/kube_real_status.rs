//! The failover state in the group's status and the cluster reactions, against a real API
//! server (the standalone apiextensions-apiserver in built-in kinds mode: etcd
//! resourceVersions and 409s on the `/status` subresource, merge patches, server-side
//! apply), through the real kube client.
//!
//! That server runs no controllers and no kubelet: nothing creates Pods for Deployments and
//! nothing registers Nodes, so the tests create the Pods and Nodes by hand (labelled as the
//! rendered Deployment's pods and the sites' `taintNodeSelector`s would be) and feed
//! decisions built from engine types straight into the observer.
//!
//! Run by `scripts/kube-apiserver-test.sh PATH/TO/crd-apiserver.sh`, which starts the
//! server, installs the CRDs and sets `KUBECONFIG`. Without that server the tests fail,
//! naming the script: they never pass on nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bloodraven::adapters::kube::reactions::ClusterReactions;
use bloodraven::adapters::kube::status::KubeStatusStore;
use bloodraven::api::MysqlFailoverGroup;
use bloodraven::failover::gtid::GtidSet;
use bloodraven::failover::{
    Condition, ConditionType, Decision, EngineState, Event, EventReason, FailoverKind,
    FailoverRecord, GroupPolicy, GroupStatus, PollInput, RecoveryLabel, SiteRole, SiteState,
    SiteStatus, SiteTransition, Timestamp,
};
use bloodraven::ports::objects::{ObjectError, ObjectKey, ObjectStore};
use bloodraven::ports::observer::{DecisionObserver, DecisionReport};
use bloodraven::ports::state::{StateStore, StoreError};
use bloodraven::render::names;
use futures_util::future::BoxFuture;
use k8s_openapi::api::core::v1::{Event as KubeEvent, Node, Pod};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

use crate::support::kube::{client, create_namespace, golden_group, unique};

/// A fresh namespace and the two-site golden group created in it, with `taintNodeSelector`s
/// unique to the namespace (Nodes are cluster-wide).
async fn create_group(client: &kube::Client) -> MysqlFailoverGroup {
    let namespace = unique("status");
    create_namespace(client, &namespace).await;
    let mut group = golden_group("two-site.input.yaml", &namespace);
    for site in &mut group.spec.sites {
        site.taint_node_selector =
            BTreeMap::from([(NODE_LABEL.to_owned(), format!("{namespace}-{}", site.name))]);
    }
    Api::<MysqlFailoverGroup>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &group)
        .await
        .expect("the API server accepts the group")
}

const NODE_LABEL: &str = "test.shipstream.io/site";

fn store(client: &kube::Client, group: &MysqlFailoverGroup, writer: &str) -> KubeStatusStore {
    KubeStatusStore::new(
        client.clone(),
        group.metadata.namespace.as_deref().unwrap(),
        group.metadata.name.clone().unwrap(),
        writer,
    )
}

fn engine_state(active: &str, next_action_id: u64) -> EngineState {
    let mut state = EngineState::new();
    state.active_site = Some(active.to_owned());
    state.next_action_id = next_action_id;
    state
}

async fn stored(client: &kube::Client, group: &MysqlFailoverGroup) -> MysqlFailoverGroup {
    Api::<MysqlFailoverGroup>::namespaced(
        client.clone(),
        group.metadata.namespace.as_deref().unwrap(),
    )
    .get(group.metadata.name.as_deref().unwrap())
    .await
    .unwrap()
}

#[tokio::test]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_status_saves_and_loads_the_engine_state() {
    let client = client().await;
    let group = create_group(&client).await;
    let a = store(&client, &group, "replica-a");
    assert_eq!(a.load().await.unwrap(), None, "a new group has no state");
    a.save(&engine_state("iad", 1)).await.unwrap();
    a.save(&engine_state("iad", 2)).await.unwrap();

    let fresh = store(&client, &group, "replica-b");
    assert_eq!(fresh.load().await.unwrap(), Some(engine_state("iad", 2)));
    let record = stored(&client, &group)
        .await
        .status
        .unwrap()
        .failover_state
        .unwrap();
    assert_eq!((record.revision, record.writer.as_str()), (2, "replica-a"));

    // Garbage in the stored state is reported with where it is.
    let api = Api::<MysqlFailoverGroup>::namespaced(
        client.clone(),
        group.metadata.namespace.as_deref().unwrap(),
    );
    api.patch_status(
        group.metadata.name.as_deref().unwrap(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"failoverState": {"state": {"sites": 7}}}})),
    )
    .await
    .unwrap();
    match store(&client, &group, "replica-c").load().await {
        Err(StoreError::Corrupt { location, .. }) => {
            assert!(
                location.contains(&format!(
                    "{}/{} status.failoverState.state (revision 2",
                    group.metadata.namespace.as_deref().unwrap(),
                    group.metadata.name.as_deref().unwrap()
                )),
                "{location}"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_status_a_deposed_leader_is_refused_and_the_new_leaders_state_stays() {
    let client = client().await;
    let group = create_group(&client).await;
    let old = store(&client, &group, "replica-old");
    old.load().await.unwrap();
    old.save(&engine_state("iad", 1)).await.unwrap();

    // A new leader takes over: it reads the stored state and saves its own.
    let new = store(&client, &group, "replica-new");
    assert_eq!(new.load().await.unwrap(), Some(engine_state("iad", 1)));
    new.save(&engine_state("pdx", 5)).await.unwrap();

    // The old leader, still holding its stale read, tries to save.
    match old.save(&engine_state("iad", 2)).await {
        Err(e @ StoreError::Superseded { .. }) => {
            assert!(e.to_string().contains("replica-new"), "{e}");
            assert_eq!(
                bloodraven::error::Categorized::category(&e),
                bloodraven::error::Category::Refused
            );
        }
        other => panic!("the deposed leader's save must be refused, got {other:?}"),
    }
    assert!(old.is_superseded());
    let status_write = old
        .publish(&healthy("iad", Timestamp(0)), Some(1), now())
        .await;
    assert!(
        matches!(status_write, Err(StoreError::Superseded { .. })),
        "{status_write:?}"
    );
    assert_eq!(
        store(&client, &group, "reader").load().await.unwrap(),
        Some(engine_state("pdx", 5))
    );
    // The new leader goes on saving.
    new.save(&engine_state("pdx", 6)).await.unwrap();
}

#[tokio::test]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_status_a_spec_edit_between_saves_does_not_fail_the_next_save() {
    let client = client().await;
    let group = create_group(&client).await;
    let a = store(&client, &group, "replica-a");
    a.load().await.unwrap();
    a.save(&engine_state("iad", 1)).await.unwrap();

    let api = Api::<MysqlFailoverGroup>::namespaced(
        client.clone(),
        group.metadata.namespace.as_deref().unwrap(),
    );
    let name = group.metadata.name.as_deref().unwrap();
    let before = stored(&client, &group).await.metadata.resource_version;
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"dns": {"ttl": 120}}, "metadata": {"labels": {"team": "payments"}}}),
        ),
    )
    .await
    .unwrap();
    assert_ne!(
        stored(&client, &group).await.metadata.resource_version,
        before
    );

    a.save(&engine_state("iad", 2)).await.unwrap();
    a.publish(&healthy("iad", now()), Some(2), now())
        .await
        .unwrap();
    let after = stored(&client, &group).await;
    assert_eq!(after.spec.dns.ttl, 120, "the user's edit is kept");
    let status = after.status.unwrap();
    assert_eq!(status.failover_state.unwrap().revision, 2);
    assert_eq!(status.active_site.as_deref(), Some("iad"));
    assert_eq!(
        store(&client, &group, "reader").load().await.unwrap(),
        Some(engine_state("iad", 2))
    );
}

// --- reactions -------------------------------------------------------------------------

fn now() -> Timestamp {
    Timestamp(
        u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap(),
    )
}

fn site(name: &str, state: SiteState, seen: Timestamp) -> SiteStatus {
    let replica = state == SiteState::ReadOnly;
    SiteStatus {
        name: name.to_owned(),
        role: SiteRole::PrimaryCandidate,
        state,
        last_seen: (state != SiteState::Unreachable).then_some(seen),
        read_only: Some(state != SiteState::Writable),
        gtid_executed: Some(GtidSet::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10").unwrap()),
        replicating: replica,
        seconds_behind_source: replica.then_some(0),
        source_host: None,
        divergent_gtid: None,
        divergent_transaction_count: 0,
        recovery_state: RecoveryLabel::None,
        source_convergence: None,
    }
}

fn conditions(ready: bool, reason: &str, active: &str) -> Vec<Condition> {
    let c = |kind, on: bool, reason: &str| Condition {
        kind,
        status: if on { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message: format!("active site: {active}"),
    };
    vec![
        c(ConditionType::Ready, ready, reason),
        c(ConditionType::Degraded, !ready, reason),
        c(ConditionType::RecoveryPending, false, "None"),
    ]
}

fn healthy(active: &str, seen: Timestamp) -> GroupStatus {
    let other = if active == "iad" { "pdx" } else { "iad" };
    let mut sites = vec![
        site(active, SiteState::Writable, seen),
        site(other, SiteState::ReadOnly, seen),
    ];
    sites.sort_by(|a, b| a.name.cmp(&b.name));
    GroupStatus {
        active_site: Some(active.to_owned()),
        sites,
        last_failover: None,
        planned_failover: None,
        conditions: conditions(true, "Healthy", active),
    }
}

fn decide(observer: &dyn DecisionObserver, status: GroupStatus, events: Vec<Event>) {
    let policy = GroupPolicy::default();
    let previous = EngineState::new();
    let input = PollInput::default();
    let decision = Decision {
        state: EngineState::new(),
        actions: Vec::new(),
        status,
        events,
        repoll_after: None,
    };
    observer.decided(&DecisionReport {
        policy: &policy,
        previous: &previous,
        input: &input,
        decision: &decision,
    });
}

/// Applies through kube-rs server-side apply directly (the real `ObjectStore` adapter is
/// written elsewhere): field manager `bloodraven`, forced.
struct SsaObjects {
    client: kube::Client,
    applied: std::sync::Mutex<u32>,
}

impl ObjectStore for SsaObjects {
    fn live(&self, _key: &ObjectKey) -> Option<Value> {
        None
    }

    fn apply<'a>(&'a self, desired: &'a Value) -> BoxFuture<'a, Result<(), ObjectError>> {
        Box::pin(async move {
            let key =
                ObjectKey::of(desired).ok_or_else(|| ObjectError::Invalid("no key".into()))?;
            let (group, version) = key.api_version.split_once('/').unwrap();
            let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &key.kind));
            let api = Api::<DynamicObject>::namespaced_with(
                self.client.clone(),
                &key.namespace,
                &resource,
            );
            api.patch(
                &key.name,
                &PatchParams::apply("bloodraven").force(),
                &Patch::Apply(desired),
            )
            .await
            .map_err(|e| ObjectError::Refused {
                key: key.clone(),
                message: e.to_string(),
            })?;
            *self.applied.lock().unwrap() += 1;
            Ok(())
        })
    }
}

async fn create_pod(client: &kube::Client, group: &MysqlFailoverGroup, site: &str) {
    let namespace = group.metadata.namespace.as_deref().unwrap();
    let name = names::site(group.metadata.name.as_deref().unwrap(), site);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {
            "name": format!("{name}-0"),
            "labels": names::site_labels(group.metadata.name.as_deref().unwrap(), site),
        },
        "spec": {"containers": [{"name": "mysql", "image": "mysql:9.7.4"}]},
    }))
    .unwrap();
    Api::<Pod>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
}

async fn create_node(
    client: &kube::Client,
    group: &MysqlFailoverGroup,
    site: &str,
    n: u32,
) -> String {
    let namespace = group.metadata.namespace.as_deref().unwrap();
    let name = format!("{namespace}-{site}-{n}");
    // A taint of someone else's, which must survive ours coming and going.
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {NODE_LABEL: format!("{namespace}-{site}")}},
        "spec": {"taints": [{"key": "example.com/maintenance", "value": "soon", "effect": "PreferNoSchedule"}]},
    }))
    .unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
    name
}

async fn pod_labels(
    client: &kube::Client,
    group: &MysqlFailoverGroup,
    site: &str,
) -> (String, String) {
    let name = format!(
        "{}-0",
        names::site(group.metadata.name.as_deref().unwrap(), site)
    );
    let pod = Api::<Pod>::namespaced(client.clone(), group.metadata.namespace.as_deref().unwrap())
        .get(&name)
        .await
        .unwrap();
    let labels = pod.metadata.labels.unwrap_or_default();
    (
        labels.get(names::LABEL_ROLE).cloned().unwrap_or_default(),
        labels
            .get(names::LABEL_HEALTHY)
            .cloned()
            .unwrap_or_default(),
    )
}

async fn taint_keys(client: &kube::Client, node: &str) -> Vec<String> {
    Api::<Node>::all(client.clone())
        .get(node)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.taints)
        .unwrap_or_default()
        .into_iter()
        .map(|t| format!("{}={}:{}", t.key, t.value.unwrap_or_default(), t.effect))
        .collect()
}

async fn event_reasons(client: &kube::Client, group: &MysqlFailoverGroup) -> Vec<String> {
    let mut reasons: Vec<String> =
        Api::<KubeEvent>::namespaced(client.clone(), group.metadata.namespace.as_deref().unwrap())
            .list(&kube::api::ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.involved_object.name == group.metadata.name)
            .filter_map(|e| e.reason)
            .collect();
    reasons.sort();
    reasons
}

async fn dns_targets(client: &kube::Client, group: &MysqlFailoverGroup) -> Option<Value> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "externaldns.k8s.io",
        "v1alpha1",
        "DNSEndpoint",
    ));
    Api::<DynamicObject>::namespaced_with(
        client.clone(),
        group.metadata.namespace.as_deref().unwrap(),
        &resource,
    )
    .get_opt(&names::dns_endpoint(
        group.metadata.name.as_deref().unwrap(),
    ))
    .await
    .unwrap()
    .map(|o| o.data["spec"]["endpoints"][0]["targets"].clone())
}

async fn settle(reactions: &ClusterReactions) {
    tokio::time::timeout(Duration::from_secs(30), reactions.settled())
        .await
        .expect("the reactions task settles within 30 s");
}

fn condition<'a>(
    status: &'a bloodraven::api::failover_group_status::MysqlFailoverGroupStatus,
    kind: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    status.conditions.iter().find(|c| c.type_ == kind).unwrap()
}

#[tokio::test]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
#[allow(clippy::too_many_lines)] // one scenario, step by step
async fn kube_real_status_reactions_follow_a_failover() {
    let started = Instant::now();
    let client = client().await;
    let group = create_group(&client).await;
    for site in ["iad", "pdx"] {
        create_pod(&client, &group, site).await;
    }
    let iad_node = create_node(&client, &group, "iad", 1).await;
    let pdx_node = create_node(&client, &group, "pdx", 1).await;
    let ours = format!(
        "shipstream.io/db-readonly-{}=true:NoExecute",
        group.metadata.name.as_deref().unwrap()
    );
    let theirs = "example.com/maintenance=soon:PreferNoSchedule".to_owned();

    let status = Arc::new(store(&client, &group, "replica-a"));
    status.load().await.unwrap();
    let objects = Arc::new(SsaObjects {
        client: client.clone(),
        applied: std::sync::Mutex::new(0),
    });
    let reactions = ClusterReactions::spawn(
        client.clone(),
        Arc::new(group.clone()),
        Arc::clone(&status),
        objects.clone(),
    );

    // 1. iad is the confirmed primary.
    decide(
        &reactions,
        healthy("iad", now()),
        vec![Event::new(
            EventReason::PrimaryAdopted,
            Some("iad"),
            "adopted iad",
        )],
    );
    settle(&reactions).await;
    assert_eq!(
        pod_labels(&client, &group, "iad").await,
        ("primary".into(), "yes".into())
    );
    assert_eq!(
        pod_labels(&client, &group, "pdx").await,
        ("replica".into(), "yes".into())
    );
    assert_eq!(taint_keys(&client, &iad_node).await, [theirs.as_str()]);
    assert_eq!(
        taint_keys(&client, &pdx_node).await,
        [theirs.as_str(), ours.as_str()]
    );
    assert_eq!(
        dns_targets(&client, &group).await,
        Some(json!(["10.20.0.10"]))
    );
    assert_eq!(event_reasons(&client, &group).await, ["PrimaryAdopted"]);
    let first = stored(&client, &group).await;
    let first_status = first.status.clone().unwrap();
    assert_eq!(first_status.active_site.as_deref(), Some("iad"));
    assert_eq!(first_status.topology_generation, Some(1));
    assert_eq!(first_status.observed_generation, group.metadata.generation);
    assert_eq!(condition(&first_status, "Ready").status, "True");
    assert_eq!(first_status.sites.len(), 2);
    assert_eq!(first_status.sites[1].state.as_deref(), Some("read-only"));

    // 2. The same again, a second later: nothing is written (no status write, no Event,
    //    no label or taint patch, no DNS apply), so Ready keeps its transition time.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    decide(&reactions, healthy("iad", now()), Vec::new());
    settle(&reactions).await;
    let idle = stored(&client, &group).await;
    assert_eq!(
        idle.metadata.resource_version, first.metadata.resource_version,
        "an idle group is not rewritten"
    );
    assert_eq!(*objects.applied.lock().unwrap(), 1, "DNS is applied once");

    // 3a. iad is lost and pdx is the new active site, but not yet confirmed writable:
    //     DNS stays where it is.
    let t2 = now();
    let mut promoting = healthy("pdx", t2);
    promoting.sites[0] = site("iad", SiteState::Unreachable, t2);
    promoting.sites[1] = site("pdx", SiteState::ReadOnly, t2);
    promoting.conditions = conditions(false, "Degraded", "pdx");
    decide(&reactions, promoting, Vec::new());
    settle(&reactions).await;
    assert_eq!(
        dns_targets(&client, &group).await,
        Some(json!(["10.20.0.10"])),
        "DNS waits for the new primary to be confirmed writable"
    );
    assert_eq!(
        taint_keys(&client, &iad_node).await,
        [theirs.as_str(), ours.as_str()]
    );

    // 3. pdx is confirmed writable.
    let t3 = now();
    let mut failed_over = healthy("pdx", t3);
    failed_over.sites[0] = site("iad", SiteState::Unreachable, t3);
    failed_over.conditions = conditions(false, "Degraded", "pdx");
    failed_over.last_failover = Some(FailoverRecord {
        at: t3,
        target: "pdx".to_owned(),
        promotion_gtid: Some(GtidSet::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10").unwrap()),
        kind: FailoverKind::Emergency,
        previous: Some("iad".to_owned()),
    });
    decide(
        &reactions,
        failed_over.clone(),
        vec![
            Event::new(EventReason::FailoverExecuted, Some("pdx"), "promoted pdx"),
            Event::new(
                EventReason::DataLossDetected,
                Some("iad"),
                "1 transaction only on iad",
            ),
        ],
    );
    settle(&reactions).await;
    assert_eq!(
        pod_labels(&client, &group, "pdx").await,
        ("primary".into(), "yes".into())
    );
    assert_eq!(
        pod_labels(&client, &group, "iad").await,
        ("replica".into(), "no".into())
    );
    assert_eq!(
        taint_keys(&client, &iad_node).await,
        [theirs.as_str(), ours.as_str()]
    );
    assert_eq!(taint_keys(&client, &pdx_node).await, [theirs.as_str()]);
    assert_eq!(
        dns_targets(&client, &group).await,
        Some(json!(["10.30.0.10"]))
    );
    assert_eq!(
        event_reasons(&client, &group).await,
        ["DataLossDetected", "FailoverExecuted", "PrimaryAdopted"]
    );
    let after = stored(&client, &group).await.status.unwrap();
    assert_eq!(after.active_site.as_deref(), Some("pdx"));
    assert_eq!(after.topology_generation, Some(2));
    assert_eq!(after.last_failover_target.as_deref(), Some("pdx"));
    assert_eq!(after.sites[0].state.as_deref(), Some("unreachable"));
    assert_eq!(condition(&after, "Ready").status, "False");
    assert_eq!(condition(&after, "Degraded").reason, "Degraded");
    assert_ne!(
        condition(&after, "Ready").last_transition_time,
        condition(&first_status, "Ready").last_transition_time
    );
    assert_eq!(
        condition(&after, "RecoveryPending").last_transition_time,
        condition(&first_status, "RecoveryPending").last_transition_time,
        "an unchanged condition keeps its transition time"
    );
    assert!(
        after.failover_state.is_none(),
        "reactions never write the engine state"
    );

    // 4. iad comes back read-only: SiteRecovered, and read-only after unreachable keeps the
    //    taint where it is.
    let mut recovered = healthy("pdx", now());
    recovered.conditions = conditions(true, "Healthy", "pdx");
    let mut back = Event::new(
        EventReason::SiteStateChanged,
        Some("iad"),
        "iad is read-only",
    );
    back.transition = Some(SiteTransition {
        from: SiteState::Unreachable,
        to: SiteState::ReadOnly,
    });
    recovered.last_failover = failed_over.last_failover.clone();
    decide(&reactions, recovered, vec![back]);
    settle(&reactions).await;
    assert_eq!(
        pod_labels(&client, &group, "iad").await,
        ("replica".into(), "yes".into())
    );
    assert_eq!(
        taint_keys(&client, &iad_node).await,
        [theirs.as_str(), ours.as_str()]
    );
    assert!(
        event_reasons(&client, &group)
            .await
            .contains(&"SiteRecovered".to_owned())
    );
    let healed = stored(&client, &group).await.status.unwrap();
    assert_eq!(condition(&healed, "Ready").status, "True");
    assert_eq!(healed.topology_generation, Some(2));
    eprintln!("reactions test took {:?}", started.elapsed());
}

#[tokio::test]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_status_a_deposed_leaders_reactions_touch_nothing() {
    let client = client().await;
    let group = create_group(&client).await;
    create_pod(&client, &group, "iad").await;
    let old = Arc::new(store(&client, &group, "replica-old"));
    old.load().await.unwrap();
    let new = store(&client, &group, "replica-new");
    new.load().await.unwrap();
    new.save(&engine_state("pdx", 1)).await.unwrap();
    assert!(matches!(
        old.save(&engine_state("iad", 1)).await,
        Err(StoreError::Superseded { .. })
    ));
    let objects = Arc::new(SsaObjects {
        client: client.clone(),
        applied: std::sync::Mutex::new(0),
    });
    let reactions = ClusterReactions::spawn(
        client.clone(),
        Arc::new(group.clone()),
        old,
        objects.clone(),
    );
    decide(
        &reactions,
        healthy("iad", now()),
        vec![Event::new(
            EventReason::PrimaryAdopted,
            Some("iad"),
            "adopted iad",
        )],
    );
    settle(&reactions).await;
    assert_eq!(
        pod_labels(&client, &group, "iad").await,
        (String::new(), String::new())
    );
    assert!(event_reasons(&client, &group).await.is_empty());
    assert_eq!(*objects.applied.lock().unwrap(), 0);
    assert_eq!(dns_targets(&client, &group).await, None);
}

// --- the failover loop over the status store --------------------------------------------

/// A MySQL server that answers probes and accepts every operation: writable (the primary)
/// or a healthy replica of port 3306.
struct FakeSite {
    address: String,
    primary: bool,
}

const UUID: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

impl bloodraven::ports::mysql::MysqlSite for FakeSite {
    fn address(&self) -> &str {
        &self.address
    }

    async fn probe(
        &self,
    ) -> Result<bloodraven::failover::SiteProbe, bloodraven::ports::mysql::DbError> {
        Ok(bloodraven::failover::SiteProbe {
            server_uuid: UUID.to_owned(),
            read_only: !self.primary,
            super_read_only: !self.primary,
            gtid_executed: GtidSet::parse(&format!("{UUID}:1-5")).unwrap(),
            gtid_purged: GtidSet::default(),
            replica: (!self.primary).then(|| bloodraven::failover::ReplicaStatus {
                source_host: "127.0.0.1".to_owned(),
                source_port: 3306,
                io_running: true,
                sql_running: true,
                seconds_behind_source: Some(0),
                retrieved_gtid_set: GtidSet::default(),
            }),
        })
    }

    async fn fence(&self) -> Result<(), bloodraven::ports::mysql::DbError> {
        Ok(())
    }

    async fn kill_app_connections(
        &self,
        _opened_by: Option<u64>,
    ) -> Result<bloodraven::failover::SessionSweep, bloodraven::ports::mysql::DbError> {
        Ok(bloodraven::failover::SessionSweep::default())
    }

    async fn drain_relay_log(
        &self,
        _budget: Duration,
    ) -> Result<bloodraven::ports::mysql::DrainOutcome, bloodraven::ports::mysql::DbError> {
        Ok(bloodraven::ports::mysql::DrainOutcome::Drained)
    }

    async fn promote(&self) -> Result<GtidSet, bloodraven::ports::mysql::DbError> {
        Ok(GtidSet::parse(&format!("{UUID}:1-5")).unwrap())
    }

    async fn unfence(&self) -> Result<(), bloodraven::ports::mysql::DbError> {
        Ok(())
    }

    async fn replicate_from(
        &self,
        _source: &bloodraven::ports::mysql::SourceEndpoint,
        _reset: bool,
    ) -> Result<(), bloodraven::ports::mysql::DbError> {
        Ok(())
    }

    async fn wait_for_gtid(
        &self,
        _set: &GtidSet,
        _timeout: Duration,
    ) -> Result<bool, bloodraven::ports::mysql::DbError> {
        Ok(true)
    }

    async fn clone_from(
        &self,
        _donor: &bloodraven::ports::mysql::SourceEndpoint,
    ) -> Result<(), bloodraven::ports::mysql::DbError> {
        Ok(())
    }
}

async fn failover_loop(
    store: Arc<KubeStatusStore>,
    observers: Vec<Arc<dyn DecisionObserver>>,
) -> bloodraven::control::FailoverLoop<FakeSite> {
    use bloodraven::control::{FailoverLoop, LoopConfig, LoopParts, SiteHandle};
    use bloodraven::failover::SitePolicy;
    let mut policy = GroupPolicy::default();
    let mut sites = Vec::new();
    for (name, port) in [("iad", 3306), ("pdx", 3307)] {
        let address = format!("127.0.0.1:{port}");
        policy.sites.push(SitePolicy {
            name: name.to_owned(),
            role: SiteRole::PrimaryCandidate,
            address: address.clone(),
        });
        sites.push(SiteHandle {
            name: name.to_owned(),
            site: Arc::new(FakeSite {
                address: address.clone(),
                primary: name == "iad",
            }),
            endpoint: bloodraven::ports::mysql::SourceEndpoint::parse(&address).unwrap(),
            sidecar: None,
        });
    }
    let (failover_loop, _handle) = FailoverLoop::new(LoopParts {
        sites,
        policy,
        config: LoopConfig::default(),
        store,
        hook: Arc::new(bloodraven::ports::hook::NoHook),
        observers,
    })
    .await
    .unwrap();
    failover_loop
}

/// The real loop, persisting to the status: it adopts the primary, an idle group then
/// costs no API writes at all, and a restarted operator resumes from the status.
#[tokio::test]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_status_the_failover_loop_persists_to_the_status_and_resumes() {
    let client = client().await;
    let group = create_group(&client).await;
    for site in ["iad", "pdx"] {
        create_pod(&client, &group, site).await;
    }
    let status = Arc::new(store(&client, &group, "replica-a"));
    let objects = Arc::new(SsaObjects {
        client: client.clone(),
        applied: std::sync::Mutex::new(0),
    });
    let reactions = Arc::new(ClusterReactions::spawn(
        client.clone(),
        Arc::new(group.clone()),
        Arc::clone(&status),
        objects,
    ));
    let mut running = failover_loop(
        Arc::clone(&status),
        vec![Arc::clone(&reactions) as Arc<dyn DecisionObserver>],
    )
    .await;
    for _ in 0..10 {
        running.poll_once().await;
        if running.state().active_site.is_some() {
            break;
        }
    }
    assert_eq!(running.state().active_site.as_deref(), Some("iad"));
    // A few more polls for readiness (two healthy replication probes), then settle.
    for _ in 0..3 {
        running.poll_once().await;
    }
    settle(&reactions).await;
    let busy = stored(&client, &group).await;
    let busy_status = busy.status.clone().unwrap();
    let record = busy_status.failover_state.clone().unwrap();
    assert_eq!(record.writer, "replica-a");
    assert!(record.revision >= 1);
    assert_eq!(busy_status.active_site.as_deref(), Some("iad"));
    assert_eq!(condition(&busy_status, "Ready").status, "True");
    assert_eq!(
        pod_labels(&client, &group, "iad").await,
        ("primary".into(), "yes".into())
    );
    assert_eq!(
        pod_labels(&client, &group, "pdx").await,
        ("replica".into(), "yes".into())
    );

    // Idle: every poll changes only observations (lastSeen, streaks), so nothing is
    // written.
    for _ in 0..5 {
        running.poll_once().await;
    }
    settle(&reactions).await;
    assert_eq!(
        stored(&client, &group).await.metadata.resource_version,
        busy.metadata.resource_version,
        "an idle group causes no status writes"
    );

    // A restarted operator resumes from the status, and its first save fences the old one.
    let restarted_store = Arc::new(store(&client, &group, "replica-b"));
    let restarted = failover_loop(Arc::clone(&restarted_store), Vec::new()).await;
    assert_eq!(restarted.state().active_site.as_deref(), Some("iad"));
    let site_states =
        |l: &bloodraven::control::FailoverLoop<FakeSite>| -> Vec<(String, SiteState)> {
            l.state()
                .sites
                .iter()
                .map(|(name, track)| (name.clone(), track.state))
                .collect()
        };
    assert_eq!(site_states(&restarted), site_states(&running));
    let mut moved = restarted.state().clone();
    moved.next_action_id += 1;
    restarted_store.save(&moved).await.unwrap();
    let mut stale = running.state().clone();
    stale.next_action_id += 7;
    assert!(matches!(
        status.save(&stale).await,
        Err(StoreError::Superseded { .. })
    ));
}
