//! The objects port over the Kubernetes API: [`KubeObjects`] answers [`ObjectStore::live`]
//! from watch caches and [`ObjectStore::apply`] with server-side apply.
//!
//! One list-then-watch per managed kind ([`MANAGED_KINDS`]) and per watched namespace,
//! filtered on `app.kubernetes.io/managed-by=bloodraven`, so memory grows with the objects
//! the operator owns, not with the cluster; `managedFields` and the last-applied annotation
//! are dropped from what is kept. Reads never make a request, so an idle resync of the
//! whole fleet costs the API server nothing.

mod kinds;
mod store;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tracing::Instrument as _;

pub use kinds::{MANAGED_KINDS, ManagedKind, POD};
pub use store::OVERLAY_TTL;

use super::WatchScope;
use crate::ports::objects::{ObjectError, ObjectKey, ObjectStore};
use crate::render::names::{LABEL_GROUP, LABEL_MANAGED_BY};
use store::LiveObjects;

/// The field manager of every apply, so the API server attributes our fields to us and a
/// forced apply takes back exactly those.
pub const FIELD_MANAGER: &str = "bloodraven";

/// How many Deployment changes may wait for the controllers; beyond it the receiver is
/// told it lagged and re-reconciles everything.
const CHANGES_CAPACITY: usize = 1024;

/// A group whose site Deployment or backup Job changed on the server (its status,
/// typically): the ordered update waits on Deployment status and a backup on its Job's, so
/// the group is worth a reconcile now rather than at the next resync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChanged {
    pub namespace: String,
    pub group: String,
}

/// The default bound on one apply request.
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// Watch caches of the managed kinds, and server-side apply. Dropping it stops the watches.
pub struct KubeObjects {
    client: kube::Client,
    scope: WatchScope,
    live: Arc<LiveObjects>,
    /// How many (kind, namespace) watches have completed their first list.
    synced: watch::Receiver<usize>,
    watches: usize,
    tasks: Vec<AbortHandle>,
    writes: AtomicU64,
    applies: Family<KindLabels, Counter>,
    timeout: Duration,
    changes: tokio::sync::broadcast::Sender<GroupChanged>,
}

impl KubeObjects {
    /// Starts the watches on the current tokio runtime. Until [`Self::wait_synced`]
    /// returns, [`ObjectStore::live`] may miss objects that exist, and a reconcile would
    /// apply them again (harmless, but a write per object).
    // async although nothing is awaited: it spawns onto the current runtime, which only an
    // async caller is sure to be inside (a plain call outside one would panic).
    #[allow(clippy::unused_async)]
    pub async fn start(client: kube::Client, scope: WatchScope) -> Result<Self, ObjectError> {
        let namespaces: Vec<Option<String>> = match &scope {
            WatchScope::AllNamespaces => vec![None],
            WatchScope::Namespaces(list)
                if list.is_empty() || list.iter().any(String::is_empty) =>
            {
                return Err(ObjectError::Invalid(
                    "a namespaced watch scope needs at least one non-empty namespace".to_owned(),
                ));
            }
            WatchScope::Namespaces(list) => list.iter().cloned().map(Some).collect(),
        };
        let live = Arc::new(LiveObjects::default());
        let (synced_tx, synced) = watch::channel(0usize);
        let synced_tx = Arc::new(synced_tx);
        let applies = Family::<KindLabels, Counter>::default();
        let (changes, _) = tokio::sync::broadcast::channel(CHANGES_CAPACITY);
        let mut tasks = Vec::new();
        for kind in &MANAGED_KINDS {
            // Every kind is exported from the start: "no applies" is a 0, not a gap.
            drop(applies.get_or_create(&KindLabels { kind: kind.kind }));
        }
        for kind in MANAGED_KINDS.iter().chain([&POD]) {
            for namespace in &namespaces {
                let ar = kind.api_resource();
                let api = match namespace {
                    Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar),
                    None => Api::<DynamicObject>::all_with(client.clone(), &ar),
                };
                let span = tracing::info_span!(
                    "objects_watch",
                    kind = kind.kind,
                    namespace = namespace.as_deref()
                );
                let task = tokio::spawn(
                    watch_kind(
                        api,
                        *kind,
                        namespace.clone(),
                        Arc::clone(&live),
                        Arc::clone(&synced_tx),
                        changes.clone(),
                    )
                    .instrument(span),
                );
                tasks.push(task.abort_handle());
            }
        }
        Ok(Self {
            client,
            scope,
            live,
            synced,
            watches: tasks.len(),
            tasks,
            writes: AtomicU64::new(0),
            applies,
            timeout: APPLY_TIMEOUT,
            changes,
        })
    }

    /// Bounds each apply request by `timeout` instead of [`APPLY_TIMEOUT`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Returns once every watch has completed its first list (a kind the API server does
    /// not serve at all, such as DNSEndpoint without external-dns, counts as listed and
    /// empty). Never returns while a kind cannot be listed for another reason (RBAC denied,
    /// server unreachable): callers bound it with a timeout and decide whether to reconcile
    /// on a partial view.
    pub async fn wait_synced(&self) {
        let watches = self.watches;
        let mut synced = self.synced.clone();
        // The sender lives as long as the watch tasks; if they are gone there is nothing
        // left to wait for.
        let _ = synced.wait_for(|n| *n >= watches).await;
    }

    /// Whether every watch has completed its first list.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow() >= self.watches
    }

    /// Apply requests sent since start (successful or not): "0 writes per idle resync" is
    /// asserted on this.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Groups whose site Deployments change on the server from now on (not those this
    /// process applied: the event of an apply is filtered out as unchanged only later, so
    /// a subscriber may see its own writes; a reconcile then finds nothing to do).
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<GroupChanged> {
        self.changes.subscribe()
    }

    /// Objects held in memory.
    pub fn cached(&self) -> usize {
        self.live.len()
    }

    /// Registers `kube_apply` (exported as `bloodraven_kube_apply_total{kind}` under the
    /// server's prefix): apply requests by kind, a label bounded by [`MANAGED_KINDS`].
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "kube_apply",
            "Server-side apply requests sent for the operator's child objects, by kind",
            self.applies.clone(),
        );
    }

    fn watched(&self, namespace: &str) -> bool {
        match &self.scope {
            WatchScope::AllNamespaces => true,
            WatchScope::Namespaces(list) => list.iter().any(|ns| ns == namespace),
        }
    }

    async fn send(&self, key: ObjectKey, desired: &Value) -> Result<(), ObjectError> {
        let kind = ManagedKind::of(&key.api_version, &key.kind).ok_or_else(|| {
            ObjectError::Invalid(format!(
                "{key}: {} {} is not a kind bloodraven manages",
                key.api_version, key.kind
            ))
        })?;
        if key.namespace.is_empty() || !self.watched(&key.namespace) {
            // Outside the watches the object would never be seen, so every reconcile would
            // write it again.
            return Err(ObjectError::Invalid(format!(
                "{key}: namespace {:?} is not watched",
                key.namespace
            )));
        }
        let api = Api::<DynamicObject>::namespaced_with(
            self.client.clone(),
            &key.namespace,
            &kind.api_resource(),
        );
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.applies
            .get_or_create(&KindLabels { kind: kind.kind })
            .inc();
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let patch = Patch::Apply(desired);
        let request = api.patch(&key.name, &params, &patch);
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(object)) => {
                self.live
                    .applied(key, &stored_form(object, kind), Instant::now());
                Ok(())
            }
            Ok(Err(error)) => Err(object_error(key, &error)),
            Err(_) => Err(ObjectError::Unavailable {
                message: format!("no answer to the apply within {:?}", self.timeout),
                key,
            }),
        }
    }
}

impl Drop for KubeObjects {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl ObjectStore for KubeObjects {
    fn live(&self, key: &ObjectKey) -> Option<Value> {
        self.live.get(key, Instant::now())
    }

    fn select(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> Option<Vec<Value>> {
        self.live.select(api_version, kind, namespace, labels)
    }

    fn apply<'a>(&'a self, desired: &'a Value) -> BoxFuture<'a, Result<(), ObjectError>> {
        Box::pin(async move {
            let key = ObjectKey::of(desired).ok_or_else(|| {
                ObjectError::Invalid("an object without apiVersion, kind or name".to_owned())
            })?;
            self.send(key, desired).await
        })
    }
}

/// Client errors (validation, admission, RBAC) are the server's answer and will not change
/// by retrying; timeouts, throttling, server errors and transport failures may.
fn object_error(key: ObjectKey, error: &kube::Error) -> ObjectError {
    match error {
        kube::Error::Api(status)
            if (400..500).contains(&status.code) && ![408, 429].contains(&status.code) =>
        {
            ObjectError::Refused {
                key,
                message: format!("{} ({})", status.message, status.code),
            }
        }
        other => ObjectError::Unavailable {
            key,
            message: other.to_string(),
        },
    }
}

/// Lists and watches one kind in one scope for as long as the task lives.
async fn watch_kind(
    api: Api<DynamicObject>,
    kind: ManagedKind,
    namespace: Option<String>,
    live: Arc<LiveObjects>,
    synced: Arc<watch::Sender<usize>>,
    changes: tokio::sync::broadcast::Sender<GroupChanged>,
) {
    let config = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}=bloodraven"));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    let mut listing = Vec::new();
    let mut first_list = true;
    let mut failing = false;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listing.clear(),
            Ok(Event::InitApply(object)) => {
                let value = stored_form(object, &kind);
                if let Some(key) = ObjectKey::of(&value) {
                    listing.push((key, value));
                }
            }
            Ok(Event::InitDone) => {
                live.relisted(
                    kind.kind,
                    namespace.as_deref(),
                    std::mem::take(&mut listing),
                );
                if first_list {
                    first_list = false;
                    synced.send_modify(|n| *n += 1);
                    tracing::debug!("managed objects listed");
                }
            }
            Ok(Event::Apply(object)) => {
                notify_group(&kind, &object, &changes);
                let value = stored_form(object, &kind);
                if let Some(key) = ObjectKey::of(&value) {
                    live.seen(key, &value);
                }
            }
            Ok(Event::Delete(object)) => {
                notify_group(&kind, &object, &changes);
                if let Some(key) = ObjectKey::of(&stored_form(object, &kind)) {
                    live.gone(&key);
                }
            }
            Err(error) => {
                if first_list && not_served(&error) {
                    // No such kind here (external-dns's CRD not installed): no objects of
                    // it exist, which is what an empty cache says. The list is retried, so
                    // the kind is picked up once it is installed.
                    first_list = false;
                    synced.send_modify(|n| *n += 1);
                    tracing::warn!("the API server does not serve this kind; treating it as empty");
                }
                if !failing {
                    tracing::warn!(error = %error,
                        "watch of managed objects failed; retrying with backoff");
                }
                failing = true;
                continue;
            }
        }
        failing = false;
    }
}

/// Wakes the group of a changed or deleted Deployment or Job: a site Deployment rolled (the
/// ordered update waits on it), a Job ended (its run's status waits on it), or either was
/// deleted (it is put back, or a failed cleanup Job runs again, without waiting for the
/// resync).
fn notify_group(
    kind: &ManagedKind,
    object: &DynamicObject,
    changes: &tokio::sync::broadcast::Sender<GroupChanged>,
) {
    if !matches!(kind.kind, "Deployment" | "Job") {
        return;
    }
    let group = object
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_GROUP));
    if let (Some(namespace), Some(group)) = (&object.metadata.namespace, group) {
        // No receiver (not leading) is fine: nothing to wake.
        let _ = changes.send(GroupChanged {
            namespace: namespace.clone(),
            group: group.clone(),
        });
    }
}

/// The list failed because the API server has no such resource (404), as opposed to being
/// unreachable or refusing us.
fn not_served(error: &watcher::Error) -> bool {
    matches!(error, watcher::Error::InitialListFailed(kube::Error::Api(status)) if status.code == 404)
}

/// The object as [`ObjectStore::live`] returns it: with `apiVersion` and `kind` (list items
/// come without them), without `managedFields` and the last-applied annotation (large, and
/// never compared). A Pod keeps only its name, namespace, labels and resourceVersion: the
/// labels are all the operator reads of it, and a pod spec is the largest object here.
fn stored_form(object: DynamicObject, kind: &ManagedKind) -> Value {
    if kind == &POD {
        let meta = &object.metadata;
        return serde_json::json!({
            "apiVersion": kind.api_version(),
            "kind": kind.kind,
            "metadata": {
                "name": meta.name,
                "namespace": meta.namespace,
                "labels": meta.labels,
                "resourceVersion": meta.resource_version,
            },
        });
    }
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".to_owned(), Value::String(kind.api_version()));
        map.insert("kind".to_owned(), Value::String(kind.kind.to_owned()));
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
            if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    fn key() -> ObjectKey {
        ObjectKey {
            api_version: "v1".to_owned(),
            kind: "ConfigMap".to_owned(),
            namespace: "db".to_owned(),
            name: "c".to_owned(),
        }
    }

    #[test]
    fn client_errors_are_refusals_the_rest_may_pass() {
        let api = |code: u16| {
            object_error(
                key(),
                &kube::Error::Api(Box::new(Status::failure("no", "Reason").with_code(code))),
            )
        };
        assert!(matches!(api(422), ObjectError::Refused { .. }));
        assert!(matches!(api(403), ObjectError::Refused { .. }));
        assert!(matches!(api(429), ObjectError::Unavailable { .. }));
        assert!(matches!(api(500), ObjectError::Unavailable { .. }));
    }

    /// A client of a port nothing listens on: requests fail at once, without a server.
    fn unreachable() -> kube::Client {
        kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap()
    }

    #[tokio::test]
    async fn what_cannot_be_sent_is_invalid_and_costs_no_write() {
        assert!(matches!(
            KubeObjects::start(unreachable(), WatchScope::Namespaces(vec![])).await,
            Err(ObjectError::Invalid(_))
        ));
        let objects = KubeObjects::start(unreachable(), WatchScope::Namespaces(vec!["db".into()]))
            .await
            .unwrap();
        let meta = serde_json::json!({"name": "x", "namespace": "db"});
        for object in [
            serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta}),
            serde_json::json!({"apiVersion": "apps/v1beta1", "kind": "Deployment", "metadata": meta}),
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "x", "namespace": "elsewhere"}}),
            serde_json::json!({"kind": "ConfigMap", "metadata": meta}),
        ] {
            let error = objects.apply(&object).await.unwrap_err();
            assert!(
                matches!(error, ObjectError::Invalid(_)),
                "{object}: {error}"
            );
        }
        assert_eq!(objects.writes(), 0);
        assert!(!objects.is_synced());
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_within_the_timeout() {
        let objects = KubeObjects::start(unreachable(), WatchScope::AllNamespaces)
            .await
            .unwrap()
            .with_timeout(Duration::from_secs(2));
        let config_map = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "namespace": "db"}});
        let error = objects.apply(&config_map).await.unwrap_err();
        assert!(matches!(error, ObjectError::Unavailable { .. }), "{error}");
        assert_eq!(objects.writes(), 1, "an attempt is a write");
        assert!(objects.live(&key()).is_none());
        let mut registry = Registry::with_prefix("bloodraven");
        objects.register_metrics(&mut registry);
        let text = crate::telemetry::exposition::prometheus_text(&registry);
        assert!(
            text.contains("bloodraven_kube_apply_total{kind=\"ConfigMap\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("bloodraven_kube_apply_total{kind=\"DNSEndpoint\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn only_a_missing_resource_counts_as_not_served() {
        let api =
            |code: u16| kube::Error::Api(Box::new(Status::failure("no", "R").with_code(code)));
        assert!(not_served(&watcher::Error::InitialListFailed(api(404))));
        assert!(!not_served(&watcher::Error::InitialListFailed(api(403))));
        assert!(!not_served(&watcher::Error::WatchFailed(api(404))));
    }

    #[test]
    fn stored_objects_keep_their_kind_and_lose_bookkeeping() {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "c", "namespace": "db",
                "managedFields": [{"manager": "bloodraven"}],
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "data": {"a": "b"}
        }))
        .unwrap();
        let value = stored_form(object, &MANAGED_KINDS[0]);
        assert_eq!(ObjectKey::of(&value), Some(key()));
        assert_eq!(value.pointer("/metadata/managedFields"), None);
        assert_eq!(value["data"]["a"], "b");
    }
}
