//! The reactions task's writes: status, Events, pod labels, node taints, DNS.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event as KubeEvent, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tracing::Instrument as _;

use super::ReactionsConfig;
use super::events::{Repeats, kube_event};
use super::queue::{Batch, Snapshot};
use crate::adapters::kube::status::KubeStatusStore;
use crate::api::MysqlFailoverGroup;
use crate::api::failover_group::SiteRole;
use crate::failover::{Event, SiteState, Timestamp};
use crate::ports::objects::{ObjectKey, ObjectStore};
use crate::ports::state::StoreError;
use crate::render::dns::dns_endpoint;
use crate::render::names::{LABEL_GROUP, LABEL_HEALTHY, LABEL_ROLE, site_selector};
use crate::render::platform::{PodLabels, TaintChange, node_taints, pod_labels, taint_change};
use crate::telemetry::failover::FailoverMetrics;

/// The task's side: clients and what it remembers between decisions.
pub(super) struct Worker {
    client: kube::Client,
    status: Arc<KubeStatusStore>,
    objects: Arc<dyn ObjectStore>,
    config: ReactionsConfig,
    metrics: Option<Arc<FailoverMetrics>>,
    /// Per site, the state whose taint consequence is known to be on its nodes. Starts
    /// empty (read as `unknown`), so a new leader re-asserts every site's taint once.
    tainted_for: HashMap<String, SiteState>,
    /// Per site, the labels every pod of the site was last seen or patched with, and when.
    labelled: HashMap<String, (PodLabels, Timestamp)>,
    /// The DNSEndpoint as last applied.
    dns_applied: Option<Value>,
    /// The last DNS render error, logged once rather than on every decision.
    dns_error: Option<String>,
    repeats: Repeats,
    seq: u64,
}

impl Worker {
    pub fn new(
        client: kube::Client,
        status: Arc<KubeStatusStore>,
        objects: Arc<dyn ObjectStore>,
        config: ReactionsConfig,
        metrics: Option<Arc<FailoverMetrics>>,
    ) -> Self {
        Self {
            client,
            status,
            objects,
            config,
            metrics,
            tainted_for: HashMap::new(),
            labelled: HashMap::new(),
            dns_applied: None,
            dns_error: None,
            repeats: Repeats::default(),
            seq: 0,
        }
    }

    /// Applies one batch; returns the events that could not be created, to try again.
    pub async fn handle(&mut self, batch: Batch) -> Vec<Event> {
        let group = &batch.group;
        let (Some(name), Some(namespace)) = (
            group.metadata.name.as_deref(),
            group.metadata.namespace.as_deref(),
        ) else {
            tracing::error!(
                "cluster reactions: the group has no name or namespace; nothing applied"
            );
            return Vec::new();
        };
        let span = tracing::info_span!("cluster_reactions", group = name, namespace);
        self.react(&batch, name, namespace).instrument(span).await
    }

    async fn react(&mut self, batch: &Batch, name: &str, namespace: &str) -> Vec<Event> {
        let group = &batch.group;
        if self.status.is_superseded() {
            tracing::info!(
                group = name,
                namespace,
                "another writer took over; not reacting"
            );
            return Vec::new();
        }
        self.publish(group, &batch.snapshot).await;
        if self.status.is_superseded() {
            return Vec::new();
        }
        let failed = self
            .emit(group, namespace, &batch.events, batch.snapshot.at)
            .await;
        self.label_pods(name, namespace, &batch.snapshot).await;
        self.taint_nodes(group, name, &batch.snapshot).await;
        self.apply_dns(group, name, &batch.snapshot).await;
        failed
    }

    async fn bounded<T, E: Display>(
        &self,
        request: impl Future<Output = Result<T, E>>,
    ) -> Result<T, String> {
        match tokio::time::timeout(self.config.write_timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.config.write_timeout)),
        }
    }

    async fn publish(&self, group: &MysqlFailoverGroup, snapshot: &Snapshot) {
        let written = self
            .status
            .publish(&snapshot.status, group.metadata.generation, snapshot.at)
            .await;
        match written {
            Ok(true) => tracing::debug!("status projection written"),
            Ok(false) => {}
            Err(e @ StoreError::Superseded { .. }) => {
                tracing::warn!(error = %e, "status projection refused: another writer took over");
            }
            Err(e) => {
                tracing::warn!(error = %e, "status projection not written; retried on the next decision");
            }
        }
    }

    async fn emit(
        &mut self,
        group: &MysqlFailoverGroup,
        namespace: &str,
        events: &[Event],
        at: Timestamp,
    ) -> Vec<Event> {
        let api: Api<KubeEvent> = Api::namespaced(self.client.clone(), namespace);
        let mut failed = Vec::new();
        for event in events {
            if !self
                .repeats
                .admit(event, at, self.config.event_repeat_window)
            {
                continue;
            }
            self.seq += 1;
            let object = kube_event(group, event, self.status.writer(), at, self.seq);
            let params = PostParams::default();
            if let Err(error) = self.bounded(api.create(&params, &object)).await {
                tracing::warn!(
                    reason = object.reason.as_deref().unwrap_or(""),
                    site = event.site.as_deref().unwrap_or(""),
                    error,
                    "Kubernetes Event not created; retried on the next decision"
                );
                self.repeats.forget(event);
                failed.push(event.clone());
            }
        }
        failed
    }

    async fn label_pods(&mut self, group: &str, namespace: &str, snapshot: &Snapshot) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let status = &snapshot.status;
        for site in &status.sites {
            let labels = pod_labels(
                site,
                status.active_site.as_deref(),
                status.planned_failover.as_ref(),
                snapshot.max_lag_seconds,
            );
            // The same labels were put on every pod recently: no LIST on every poll. The
            // resync still labels a pod that was rescheduled meanwhile.
            if self.labelled.get(&site.name).is_some_and(|(done, at)| {
                *done == labels && !snapshot.at.has_elapsed(*at, self.config.label_resync)
            }) {
                continue;
            }
            let mut all = true;
            let (role, healthy) = (labels.role.as_str(), labels.healthy_str());
            let Some(pods) = self.site_pods(&api, group, namespace, &site.name).await else {
                self.labelled.remove(&site.name);
                continue;
            };
            for (pod_name, current) in &pods {
                let pod_name = pod_name.as_str();
                let label = |key: &str| current.get(key).map(String::as_str);
                if label(LABEL_ROLE) == Some(role) && label(LABEL_HEALTHY) == Some(healthy) {
                    continue;
                }
                let patch =
                    json!({"metadata": {"labels": {LABEL_ROLE: role, LABEL_HEALTHY: healthy}}});
                let params = PatchParams::default();
                match self
                    .bounded(api.patch(pod_name, &params, &Patch::Merge(&patch)))
                    .await
                {
                    Ok(_) => {
                        tracing::info!(site = %site.name, pod = pod_name, role, healthy, "pod labels updated");
                    }
                    Err(error) => {
                        all = false;
                        tracing::warn!(site = %site.name, pod = pod_name, error, "pod labels not updated; retried on the next decision");
                    }
                }
            }
            if all {
                self.labelled
                    .insert(site.name.clone(), (labels, snapshot.at));
            } else {
                self.labelled.remove(&site.name);
            }
        }
    }

    /// The site's MySQL pods (name and labels): from the objects cache when it holds Pods,
    /// else one LIST. `None` when neither answers (retried on the next decision).
    async fn site_pods(
        &self,
        api: &Api<Pod>,
        group: &str,
        namespace: &str,
        site: &str,
    ) -> Option<Vec<(String, BTreeMap<String, String>)>> {
        let selector = pod_labels_selector(group, site);
        if let Some(cached) = self.objects.select("v1", "Pod", namespace, &selector) {
            return Some(
                cached
                    .iter()
                    .filter_map(|pod| {
                        let name = pod.pointer("/metadata/name")?.as_str()?.to_owned();
                        let labels = pod
                            .pointer("/metadata/labels")
                            .and_then(Value::as_object)
                            .map(|l| {
                                l.iter()
                                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                                    .collect()
                            })
                            .unwrap_or_default();
                        Some((name, labels))
                    })
                    .collect(),
            );
        }
        let params = ListParams::default().labels(&selector_string(selector.iter()));
        match self.bounded(api.list(&params)).await {
            Ok(list) => Some(
                list.items
                    .into_iter()
                    .filter_map(|pod| {
                        Some((pod.metadata.name?, pod.metadata.labels.unwrap_or_default()))
                    })
                    .collect(),
            ),
            Err(error) => {
                tracing::warn!(
                    site,
                    error,
                    "cannot list the site's pods; labels retried on the next decision"
                );
                None
            }
        }
    }

    async fn taint_nodes(&mut self, group: &MysqlFailoverGroup, name: &str, snapshot: &Snapshot) {
        for spec_site in &group.spec.sites {
            if spec_site.role == SiteRole::ReadOnly || spec_site.taint_node_selector.is_empty() {
                // Readers never taint; an empty selector would select every node.
                continue;
            }
            let Some(site) = snapshot.status.site(&spec_site.name) else {
                continue;
            };
            let from = self
                .tainted_for
                .get(&spec_site.name)
                .copied()
                .unwrap_or(SiteState::Unknown);
            let change = taint_change(spec_site.role, from, site.state);
            let done = match change {
                TaintChange::Keep => true,
                TaintChange::Add | TaintChange::Remove => {
                    let selector = selector_string(spec_site.taint_node_selector.iter());
                    self.set_taint(name, &spec_site.name, &selector, change == TaintChange::Add)
                        .await
                }
            };
            if done {
                self.tainted_for.insert(spec_site.name.clone(), site.state);
            }
        }
    }

    /// Puts the group's taint on (or off) every node `selector` selects; true when every
    /// node is as wanted.
    async fn set_taint(&self, group: &str, site: &str, selector: &str, present: bool) -> bool {
        let api: Api<Node> = Api::all(self.client.clone());
        let params = ListParams::default().labels(selector);
        let nodes = match self.bounded(api.list(&params)).await {
            Ok(list) => list.items,
            Err(error) => {
                tracing::warn!(
                    site,
                    selector,
                    error,
                    "cannot list the site's nodes; taint retried on the next decision"
                );
                return false;
            }
        };
        let action = if present { "add" } else { "remove" };
        let mut all = true;
        for node in nodes {
            let Some(node_name) = node.metadata.name.as_deref() else {
                continue;
            };
            let current = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            let Some(taints) = node_taints(&current, group, present) else {
                continue;
            };
            // The resourceVersion makes this a compare-and-swap of the whole taint list, so
            // a taint someone else added meanwhile is not lost.
            let patch = json!({
                "metadata": {"resourceVersion": node.metadata.resource_version},
                "spec": {"taints": if taints.is_empty() { Value::Null } else { json!(taints) }},
            });
            let params = PatchParams::default();
            match self
                .bounded(api.patch(node_name, &params, &Patch::Merge(&patch)))
                .await
            {
                Ok(_) => {
                    tracing::info!(site, node = node_name, action, "node taint updated");
                    if let Some(metrics) = &self.metrics {
                        metrics.taint_operation(site, present);
                    }
                }
                Err(error) => {
                    all = false;
                    tracing::warn!(
                        site,
                        node = node_name,
                        action,
                        error,
                        "node taint not updated; retried on the next decision"
                    );
                }
            }
        }
        all
    }

    async fn apply_dns(&mut self, group: &MysqlFailoverGroup, name: &str, snapshot: &Snapshot) {
        let status = &snapshot.status;
        let Some(active) = status.active_site.as_deref() else {
            return;
        };
        // The DNS flip waits for the debounced `writable`: never point clients at a site
        // that cannot take writes yet.
        if !status
            .site(active)
            .is_some_and(|s| s.state == SiteState::Writable)
        {
            return;
        }
        let desired = match dns_endpoint(group, active)
            .map_err(|e| e.to_string())
            .and_then(|d| serde_json::to_value(d).map_err(|e| e.to_string()))
        {
            Ok(desired) => desired,
            Err(error) => {
                if self.dns_error.as_deref() != Some(error.as_str()) {
                    tracing::warn!(
                        group = name,
                        site = active,
                        error,
                        "DNS reconcile failed: cannot render the DNSEndpoint"
                    );
                    self.dns_error = Some(error);
                }
                return;
            }
        };
        self.dns_error = None;
        let live_differs = ObjectKey::of(&desired)
            .and_then(|key| self.objects.live(&key))
            .is_some_and(|live| live.get("spec") != desired.get("spec"));
        if self.dns_applied.as_ref() == Some(&desired) && !live_differs {
            return;
        }
        match self.bounded(self.objects.apply(&desired)).await {
            Ok(()) => {
                tracing::info!(group = name, site = active, "DNS reconciled to active site");
                let flipped = self
                    .dns_applied
                    .as_ref()
                    .is_some_and(|previous| previous.get("spec") != desired.get("spec"));
                if let (true, Some(metrics)) = (flipped, &self.metrics) {
                    metrics.dns_flip(active);
                }
                self.dns_applied = Some(desired);
            }
            Err(error) => {
                tracing::warn!(
                    group = name,
                    site = active,
                    error,
                    "DNS reconcile failed; retried on the next decision"
                );
            }
        }
    }
}

/// The MySQL pods of one site: `shipstream.io/failover-group=<group>`,
/// `shipstream.io/site=<site>`, and the name and instance labels that keep other pods of
/// the group (Dragonfly) out.
fn pod_labels_selector(group: &str, site: &str) -> BTreeMap<String, String> {
    let mut labels = site_selector(group, site);
    labels.insert(LABEL_GROUP.to_owned(), group.to_owned());
    labels
}

/// A label selector (`k=v,k2=v2`) for a LIST.
pub(crate) fn selector_string<'a>(
    labels: impl Iterator<Item = (&'a String, &'a String)>,
) -> String {
    labels
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_selector_names_group_site_and_mysql() {
        assert_eq!(
            selector_string(pod_labels_selector("orders", "iad").iter()),
            "app.kubernetes.io/instance=orders,app.kubernetes.io/name=mysql,\
             shipstream.io/failover-group=orders,shipstream.io/site=iad"
        );
    }
}
