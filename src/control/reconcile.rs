//! Keeping a group's child objects (ConfigMap, PVCs, Deployments, Services, budget) as
//! rendered, through the [`ObjectStore`] port.
//!
//! Server-side apply is idempotent, but a request per object per resync would load the API
//! server in proportion to the fleet even when nothing changed. So an object is applied
//! only when the live copy (from the adapter's watch cache: no request) does not already
//! [`covers`] it; an idle resync sends nothing.
//!
//! Site Deployments are the exception to "apply what differs": applying one restarts its
//! site, so drifted ones go through the ordered-update planner ([`rollout::plan`]), which
//! holds some back and may ask for a switchover first.

use std::collections::HashMap;

use tracing::Instrument as _;

use serde_json::Value;

use crate::api::MysqlFailoverGroup;
use crate::error::{Categorized, Category};
use crate::failover::GroupStatus;
use crate::ports::objects::{ObjectError, ObjectKey, ObjectStore};
use crate::render::diff::covers;
use crate::render::names::LABEL_SITE;
use crate::render::rollout::{
    self, DeploymentState, RolloutInput, RolloutPlan, SiteView, UpdatePhase,
};
use crate::render::{RenderError, RenderOptions, render};

/// What one reconcile did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// The objects applied, in apply order.
    pub applied: Vec<ObjectKey>,
    /// Objects whose live copy already matched: nothing sent.
    pub unchanged: usize,
    /// Drifted Deployments the ordered update holds back for now.
    pub held: Vec<ObjectKey>,
    /// The ordered update's decision: the phase to record, a switchover to ask for.
    pub rollout: RolloutPlan,
}

/// Why a reconcile stopped. Objects applied before the failure stay applied; the next
/// reconcile picks up from the live state.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("cannot render the group's objects: {0}")]
    Render(#[from] RenderError),
    /// The renderer produced something that is not a JSON object with a key (a bug).
    #[error("a rendered object cannot be sent: {0}")]
    Rendered(String),
    #[error(transparent)]
    Apply(#[from] ObjectError),
}

impl Categorized for ReconcileError {
    fn category(&self) -> Category {
        match self {
            Self::Render(e) => e.category(),
            Self::Rendered(_) => Category::Internal,
            Self::Apply(e) => e.category(),
        }
    }
}

/// Renders `group` and applies every child object whose live copy differs, in
/// [`crate::render::DesiredObjects::to_values`] order, except drifted Deployments the
/// ordered update holds back. `failover` is the group's failover loop's latest status
/// (`None` before it has one: then no running site is restarted).
///
/// Stops at the first failed apply: later objects depend on earlier ones (a Deployment
/// mounts the ConfigMap and the PVC), so applying them past a failure could roll pods onto
/// a configuration that is not there.
pub async fn reconcile_children(
    group: &MysqlFailoverGroup,
    options: &RenderOptions,
    failover: Option<&GroupStatus>,
    objects: &dyn ObjectStore,
) -> Result<ReconcileReport, ReconcileError> {
    let span = tracing::info_span!(
        "reconcile_children",
        group = group.metadata.name.as_deref().unwrap_or_default(),
        namespace = group.metadata.namespace.as_deref().unwrap_or_default(),
    );
    async move {
        let desired = render(group, options)?
            .to_values()
            .map_err(|e| ReconcileError::Rendered(e.to_string()))?;
        let (rollout, deployments) =
            plan_rollout(group, &desired, failover, objects).map_err(ReconcileError::Rendered)?;
        let mut report = ReconcileReport {
            rollout,
            ..ReconcileReport::default()
        };
        for value in &desired {
            let key = key_of(value).map_err(ReconcileError::Rendered)?;
            // A site Deployment was compared once already, by the planner.
            let current = match deployments.get(&key) {
                Some(Deployment { held: true, .. }) => {
                    report.held.push(key);
                    continue;
                }
                Some(d) => d.state == DeploymentState::Current,
                None => objects.live(&key).is_some_and(|live| covers(&live, value)),
            };
            if current {
                report.unchanged += 1;
                continue;
            }
            objects.apply(value).await?;
            tracing::debug!(object = %key, "applied");
            report.applied.push(key);
        }
        if !report.applied.is_empty() {
            tracing::info!(
                applied = report.applied.len(),
                unchanged = report.unchanged,
                "child objects applied"
            );
        }
        if let Some(why) = &report.rollout.waiting {
            tracing::info!(held = report.held.len(), why = %why, "ordered update waiting");
        }
        Ok(report)
    }
    .instrument(span)
    .await
}

/// The key of a rendered object; the message names what a renderer bug left out.
fn key_of(value: &Value) -> Result<ObjectKey, String> {
    ObjectKey::of(value).ok_or_else(|| "an object without apiVersion, kind or name".to_owned())
}

/// What the planner made of one site Deployment.
struct Deployment {
    state: DeploymentState,
    /// Drifted, and not released by the plan: not applied this time.
    held: bool,
}

/// The ordered update's plan, and each site Deployment's state by key. An error is a
/// rendered Deployment without a site label or key (a renderer bug).
fn plan_rollout(
    group: &MysqlFailoverGroup,
    desired: &[Value],
    failover: Option<&GroupStatus>,
    objects: &dyn ObjectStore,
) -> Result<(RolloutPlan, HashMap<ObjectKey, Deployment>), String> {
    let mut sites = Vec::with_capacity(group.spec.sites.len());
    let mut keys = Vec::with_capacity(group.spec.sites.len());
    for value in desired.iter().filter(|v| v["kind"] == "Deployment") {
        let key = key_of(value)?;
        let site = value
            .pointer(&format!(
                "/metadata/labels/{}",
                LABEL_SITE.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .and_then(|name| group.spec.sites.iter().find(|s| s.name == name))
            .ok_or_else(|| format!("{key} names no site of the group"))?;
        let live = objects.live(&key);
        let state = match &live {
            None => DeploymentState::Absent,
            Some(live) if covers(live, value) => DeploymentState::Current,
            Some(_) => DeploymentState::Drifted,
        };
        sites.push(SiteView {
            name: site.name.clone(),
            deployment: state,
            ready: live.as_ref().is_some_and(rollout::deployment_ready),
            replicating: rollout::replicating(failover, &site.name),
            candidate: site.role.is_candidate(),
        });
        keys.push((key, state));
    }
    let previous = group
        .status
        .as_ref()
        .and_then(|s| s.update_phase.as_deref())
        .and_then(UpdatePhase::parse);
    let plan = rollout::plan(&RolloutInput {
        strategy: group.spec.update_strategy,
        sites: &sites,
        active: failover.and_then(|s| s.active_site.as_deref()),
        switchover_running: failover
            .and_then(|s| s.planned_failover.as_ref())
            .is_some_and(|p| p.phase.is_running()),
        previous,
    });
    let deployments = sites
        .iter()
        .zip(keys)
        .map(|(site, (key, state))| {
            let held = state == DeploymentState::Drifted && !plan.release.contains(&site.name);
            (key, Deployment { state, held })
        })
        .collect();
    Ok((plan, deployments))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Mutex;

    use futures_util::future::BoxFuture;
    use serde_json::{Value, json};

    use super::*;

    /// A fake of the port for the pure decision (what to apply, what to skip): it stores
    /// what is applied, with a little server bookkeeping added, and counts writes. The real
    /// API server (its defaulting, SSA ownership, watch delays) is tested in
    /// `tests/it/kube_real_children.rs`.
    #[derive(Default)]
    struct FakeObjects {
        objects: Mutex<HashMap<ObjectKey, Value>>,
        writes: Mutex<Vec<ObjectKey>>,
        refuse: Option<&'static str>,
    }

    impl ObjectStore for FakeObjects {
        fn live(&self, key: &ObjectKey) -> Option<Value> {
            self.objects.lock().unwrap().get(key).cloned()
        }

        fn apply<'a>(&'a self, desired: &'a Value) -> BoxFuture<'a, Result<(), ObjectError>> {
            Box::pin(async move {
                let key = ObjectKey::of(desired)
                    .ok_or_else(|| ObjectError::Invalid("no key".to_owned()))?;
                if self.refuse == Some(key.kind.as_str()) {
                    return Err(ObjectError::Refused {
                        key,
                        message: "denied".to_owned(),
                    });
                }
                let mut stored = desired.clone();
                stored["metadata"]["resourceVersion"] = json!("1");
                stored["status"] = json!({});
                self.writes.lock().unwrap().push(key.clone());
                self.objects.lock().unwrap().insert(key, stored);
                Ok(())
            })
        }
    }

    /// The render tests' two-site group, with `iad_conf` as iad's my.cnf overrides.
    fn group(iad_conf: &[(&str, &str)]) -> MysqlFailoverGroup {
        let mut group = crate::render::tests::group();
        group.spec.sites[0].mysql_conf = iad_conf
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>();
        group
    }

    fn names(keys: &[ObjectKey]) -> Vec<String> {
        keys.iter().map(ToString::to_string).collect()
    }

    #[tokio::test]
    async fn the_first_reconcile_applies_everything_the_second_nothing() {
        let store = FakeObjects::default();
        let options = RenderOptions::default();
        let first = reconcile_children(&group(&[]), &options, None, &store)
            .await
            .unwrap();
        // ConfigMap, 2 PVCs, 2 Deployments, 2×2 site Services + primary + replicas, PDB.
        assert_eq!(first.applied.len(), 12, "{:?}", names(&first.applied));
        assert_eq!(first.unchanged, 0);
        assert_eq!(
            first.applied[0].kind, "ConfigMap",
            "configuration goes first"
        );

        let second = reconcile_children(&group(&[]), &options, None, &store)
            .await
            .unwrap();
        assert_eq!(second.applied, []);
        assert_eq!(second.unchanged, 12);
        assert_eq!(store.writes.lock().unwrap().len(), 12);
    }

    #[tokio::test]
    async fn a_site_override_rewrites_that_site_and_the_config_map_only() {
        let store = FakeObjects::default();
        let options = RenderOptions::default();
        reconcile_children(&group(&[]), &options, None, &store)
            .await
            .unwrap();
        let changed = group(&[("max_connections", "500")]);
        let report = reconcile_children(&changed, &options, None, &store)
            .await
            .unwrap();
        assert_eq!(
            names(&report.applied),
            [
                "ConfigMap db/mysql-orders-config",
                "Deployment db/mysql-orders-iad"
            ]
        );
        assert_eq!(report.unchanged, 10);
    }

    #[tokio::test]
    async fn a_refused_apply_stops_the_reconcile_with_its_category() {
        let store = FakeObjects {
            refuse: Some("Deployment"),
            ..FakeObjects::default()
        };
        let err = reconcile_children(&group(&[]), &RenderOptions::default(), None, &store)
            .await
            .unwrap_err();
        assert_eq!(err.category(), Category::Refused, "{err}");
        // ConfigMap and PVCs went first; nothing after the refused Deployment.
        assert_eq!(store.writes.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn an_unrenderable_group_is_invalid_input() {
        let mut bad = group(&[]);
        bad.metadata.uid = None;
        let err = reconcile_children(
            &bad,
            &RenderOptions::default(),
            None,
            &FakeObjects::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.category(), Category::InvalidInput);
    }
}
