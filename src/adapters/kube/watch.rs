//! Keeping the [`ClusterCache`] current from the Kubernetes API: one list-then-watch per
//! looked-up kind (and per namespace when the server is told to watch only some).
//!
//! Each watch restarts with backoff after any failure (API server gone, RBAC denied, a kind
//! whose CRD is not installed). Until its first complete list the cache answers "unknown"
//! for that kind, so an unreachable API can make cross-object rules silent but can never
//! make them deny.

use std::sync::Arc;

use futures_util::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::ClusterCache;
use super::cache::Listing;
use crate::telemetry::cluster_cache::CacheMetrics;

/// A kind some cross-object rule looks up, and where the API serves it.
#[derive(Debug, Clone, Copy)]
pub struct LookupResource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

/// Every kind in [`crate::policy::rules::builtin::LOOKUP_KINDS`], with its API coordinates
/// (a test keeps the two lists equal).
pub const LOOKUP_RESOURCES: [LookupResource; 5] = [
    LookupResource {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        namespaced: true,
    },
    LookupResource {
        group: "storage.k8s.io",
        version: "v1",
        kind: "StorageClass",
        plural: "storageclasses",
        namespaced: false,
    },
    LookupResource {
        group: "networking.k8s.io",
        version: "v1",
        kind: "NetworkPolicy",
        plural: "networkpolicies",
        namespaced: true,
    },
    LookupResource {
        group: "monitoring.coreos.com",
        version: "v1",
        kind: "PrometheusRule",
        plural: "prometheusrules",
        namespaced: true,
    },
    LookupResource {
        group: "policy",
        version: "v1",
        kind: "PodDisruptionBudget",
        plural: "poddisruptionbudgets",
        namespaced: true,
    },
];

impl LookupResource {
    fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }
}

/// Which namespaces namespaced kinds are watched in. Cluster-scoped kinds are always
/// watched cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchScope {
    AllNamespaces,
    /// Only these (needs only namespaced RBAC, and keeps fewer Secrets in memory).
    Namespaces(Vec<String>),
}

/// The running watches; dropping it stops them.
#[derive(Debug)]
pub struct ClusterWatch {
    tasks: JoinSet<()>,
}

impl ClusterWatch {
    /// Starts one watch per looked-up kind and namespace on the current tokio runtime.
    pub fn start(
        client: &kube::Client,
        cache: &Arc<ClusterCache>,
        scope: &WatchScope,
        metrics: &CacheMetrics,
    ) -> Self {
        let mut tasks = JoinSet::new();
        for resource in &LOOKUP_RESOURCES {
            let ar = resource.api_resource();
            let namespaces: Vec<Option<String>> = match scope {
                WatchScope::Namespaces(list) if resource.namespaced => {
                    list.iter().cloned().map(Some).collect()
                }
                _ => vec![None],
            };
            for namespace in namespaces {
                let api = match &namespace {
                    Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar),
                    None => Api::<DynamicObject>::all_with(client.clone(), &ar),
                };
                let span = tracing::info_span!(
                    "cluster_watch",
                    kind = resource.kind,
                    namespace = namespace.as_deref()
                );
                tasks.spawn(
                    watch_kind(
                        api,
                        *resource,
                        namespace,
                        Arc::clone(cache),
                        metrics.clone(),
                    )
                    .instrument(span),
                );
            }
        }
        Self { tasks }
    }

    /// Stops every watch and waits for them to end.
    pub async fn stop(mut self) {
        self.tasks.shutdown().await;
    }
}

/// Lists and watches one kind in one scope for as long as the task lives.
async fn watch_kind(
    api: Api<DynamicObject>,
    resource: LookupResource,
    namespace: Option<String>,
    cache: Arc<ClusterCache>,
    metrics: CacheMetrics,
) {
    let kind = resource.kind;
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    // Objects of a (re)list, applied in one step at InitDone so lookups never see half a list.
    let mut listing = Listing::default();
    let mut failing = false;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listing = Listing::default(),
            Ok(Event::InitApply(object)) => listing.push(&as_value(object, &resource)),
            Ok(Event::InitDone) => {
                cache.replace(kind, namespace.as_deref(), std::mem::take(&mut listing));
                metrics.set_synced(kind, true);
                tracing::info!(objects = cache.count(kind), "cluster cache synced");
            }
            Ok(Event::Apply(object)) => cache.apply(&as_value(object, &resource)),
            Ok(Event::Delete(object)) => cache.delete(&as_value(object, &resource)),
            Err(error) => {
                metrics.watch_error(kind);
                // Log the first failure of a run of failures; the metric counts all of them.
                if !failing {
                    tracing::warn!(error = %error,
                        "watch failed; lookups of this kind stay unknown until a list succeeds (retrying with backoff)");
                }
                failing = true;
                continue;
            }
        }
        failing = false;
        metrics.set_objects(kind, cache.count(kind));
    }
}

/// The object as rules see it: list items come without `kind` and `apiVersion`.
fn as_value(object: DynamicObject, resource: &LookupResource) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        let api_version = if resource.group.is_empty() {
            resource.version.to_owned()
        } else {
            format!("{}/{}", resource.group, resource.version)
        };
        map.insert("apiVersion".to_owned(), Value::String(api_version));
        map.insert("kind".to_owned(), Value::String(resource.kind.to_owned()));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_looked_up_kind_is_watched() {
        let mut watched: Vec<&str> = LOOKUP_RESOURCES.iter().map(|r| r.kind).collect();
        let mut looked_up = crate::policy::rules::builtin::LOOKUP_KINDS.to_vec();
        watched.sort_unstable();
        looked_up.sort_unstable();
        assert_eq!(watched, looked_up);
    }
}
