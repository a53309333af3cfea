//! The controllers while this replica holds the Lease: watch the groups, reconcile each
//! one's child objects, and keep one failover loop per group.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt as _};
use tokio::sync::{broadcast, watch};

use super::OperatorContext;
use super::backups::{BackupEvent, BackupObjects};
use super::group::GroupRuntime;
use super::restores::{self, Restores};
use crate::adapters::kube::WatchScope;
use crate::adapters::kube::objects::GroupChanged;
use crate::adapters::kube::secrets::Ensured;
use crate::api::{MysqlBackup, MysqlBackupVerification, MysqlFailoverGroup};
use crate::control::reconcile::reconcile_children;

type GroupKey = (String, String);

/// How long a new leader waits for its child-object caches before reconciling.
const CACHE_SYNC_WAIT: Duration = Duration::from_secs(60);
type Events<K> =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Event<K>, watcher::Error>> + Send>>;

fn key_of(group: &MysqlFailoverGroup) -> GroupKey {
    (group.namespace().unwrap_or_default(), group.name_any())
}

/// Runs the controllers until `leading` turns false (or its sender goes away). Every loop
/// is stopped before this returns, so a deposed leader acts on nothing afterwards.
pub(super) async fn lead(
    ctx: Arc<OperatorContext>,
    mut leading: watch::Receiver<bool>,
    mut halt: watch::Receiver<bool>,
) {
    tracing::info!("leading: starting the controllers");
    wait_for_caches(&ctx).await;
    let mut watches = futures_util::stream::select_all(streams::<MysqlFailoverGroup>(&ctx));
    let mut backup_watches = futures_util::stream::select(
        futures_util::stream::select_all(streams::<MysqlBackup>(&ctx)).map(BackupEvent::Backup),
        futures_util::stream::select_all(streams::<MysqlBackupVerification>(&ctx))
            .map(BackupEvent::Verification),
    );
    let mut backups = BackupObjects::default();
    let mut restores = Restores::default();
    // Groups whose backups (not their children or failover loop) need a pass: a backup
    // changed, which costs no Secret read and no render.
    let mut dirty_backups: BTreeSet<GroupKey> = BTreeSet::new();
    let mut deployments = ctx.objects.changes();
    let mut deployments_open = true;
    let mut known: BTreeMap<GroupKey, Arc<MysqlFailoverGroup>> = BTreeMap::new();
    let mut runtimes: BTreeMap<GroupKey, GroupRuntime> = BTreeMap::new();
    let mut resync = tokio::time::interval(ctx.resync);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty: BTreeSet<GroupKey> = BTreeSet::new();
    loop {
        tokio::select! {
            changed = leading.changed() => {
                if changed.is_err() || !*leading.borrow() {
                    break;
                }
            }
            _ = halt.wait_for(|h| *h) => break,
            event = watches.next() => match event {
                Some(Ok(Event::Apply(group) | Event::InitApply(group))) => {
                    let key = key_of(&group);
                    known.insert(key.clone(), Arc::new(group));
                    dirty.insert(key);
                }
                Some(Ok(Event::Delete(group))) => {
                    let key = key_of(&group);
                    known.remove(&key);
                    forget(&ctx, &key, runtimes.remove(&key)).await;
                }
                Some(Ok(Event::Init | Event::InitDone)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "MysqlFailoverGroup watch failed; it retries");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                None => break,
            },
            event = backup_watches.next() => {
                if let Some(key) = backups.observe(event).await
                    && known.contains_key(&key)
                {
                    dirty_backups.insert(key);
                }
            }
            _ = resync.tick() => resync_all(&ctx, &known, &mut dirty, &mut backups).await,
            () = wake_at(backups.next_wake()) => {
                let due = backups.take_due(crate::shells::backup::now());
                dirty_backups.extend(due.into_iter().filter(|k| known.contains_key(k)));
            }
            // A site Deployment changed (a rollout finished, a pod became ready): the
            // ordered update may move on now rather than at the next resync.
            changed = deployments.recv(), if deployments_open => match changed {
                Ok(GroupChanged { namespace, group }) => {
                    let key = (namespace, group);
                    if known.contains_key(&key) {
                        dirty.insert(key);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => dirty.extend(known.keys().cloned()),
                Err(broadcast::error::RecvError::Closed) => deployments_open = false,
            },
        }
        // Reconcile what changed, each bounded, before reading the next event; a burst of
        // events for one group is handled once.
        while let Some(key) = dirty.pop_first() {
            if !*leading.borrow() || *halt.borrow() {
                break;
            }
            let Some(group) = known.get(&key).cloned() else {
                continue;
            };
            let runtime = runtimes.remove(&key);
            if let Some(runtime) = reconcile(&ctx, &group, runtime).await {
                runtimes.insert(key.clone(), runtime);
            }
            dirty_backups.insert(key);
        }
        while let Some(key) = dirty_backups.pop_first() {
            if !*leading.borrow() || *halt.borrow() {
                break;
            }
            if let Some(group) = known.get(&key) {
                let runtime = runtimes.get(&key);
                reconcile_jobs(&ctx, group, runtime, &mut backups, &mut restores).await;
            }
        }
    }
    tracing::info!(
        loops = runtimes.len(),
        "no longer leading: stopping every failover loop"
    );
    for (_, runtime) in runtimes {
        runtime.stop().await;
    }
}

/// Every group gets a pass, and deleted backups of groups that are gone are let go.
async fn resync_all(
    ctx: &OperatorContext,
    known: &BTreeMap<GroupKey, Arc<MysqlFailoverGroup>>,
    dirty: &mut BTreeSet<GroupKey>,
    backups: &mut BackupObjects,
) {
    dirty.extend(known.keys().cloned());
    let groups = known.keys().cloned().collect();
    backups.release_orphans(ctx, &groups).await;
}

/// A deleted group: its loop stops and its metrics go.
async fn forget(ctx: &OperatorContext, key: &GroupKey, runtime: Option<GroupRuntime>) {
    if let Some(runtime) = runtime {
        tracing::info!(namespace = %key.0, group = %key.1, "group deleted: stopping its failover loop");
        runtime.stop().await;
    }
    ctx.metrics.forget_group(&key.0, &key.1);
}

/// Sleeps until `at` (forever without one): a retry that falls due with no event to bring it.
async fn wake_at(at: Option<crate::failover::Timestamp>) {
    match at {
        Some(at) => {
            let now = crate::shells::backup::now();
            tokio::time::sleep(at.since(now)).await;
        }
        None => std::future::pending().await,
    }
}

/// The group's Job-driven work: its backups and verifications, then its restores.
async fn reconcile_jobs(
    ctx: &OperatorContext,
    group: &MysqlFailoverGroup,
    runtime: Option<&GroupRuntime>,
    backups: &mut BackupObjects,
    restores: &mut Restores,
) {
    let failover = runtime.and_then(GroupRuntime::failover_status);
    backups.reconcile_group(ctx, group, failover.as_ref()).await;
    let namespace = group.namespace().unwrap_or_default();
    let lookup = |name: &str| backups.backup(&namespace, name);
    restores.reconcile_group(ctx, group, runtime, &lookup).await;
}

/// Compare against filled caches: an empty cache would make the first reconcile of every
/// group re-apply all its objects after each restart or leader change.
async fn wait_for_caches(ctx: &OperatorContext) {
    if tokio::time::timeout(CACHE_SYNC_WAIT, ctx.objects.wait_synced())
        .await
        .is_err()
    {
        tracing::warn!(after = ?CACHE_SYNC_WAIT, "child-object caches not filled yet; reconciling anyway (unchanged objects may be re-applied once)");
    }
}

async fn reconcile(
    ctx: &OperatorContext,
    group: &Arc<MysqlFailoverGroup>,
    runtime: Option<GroupRuntime>,
) -> Option<GroupRuntime> {
    let (namespace, name) = key_of(group);
    let span = tracing::info_span!("reconcile", namespace = %namespace, group = %name);
    let work = async {
        let failover = runtime.as_ref().and_then(GroupRuntime::failover_status);
        let rollout = match tokio::time::timeout(
            ctx.reconcile_timeout,
            reconcile_children(group, &ctx.render, failover.as_ref(), ctx.objects.as_ref()),
        )
        .await
        {
            Ok(Ok(report)) => Some(report.rollout),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot reconcile the child objects");
                None
            }
            Err(_) => {
                tracing::warn!(after = ?ctx.reconcile_timeout, "reconciling the child objects timed out");
                None
            }
        };
        match super::sidecar_token::ensure(&ctx.client, group, ctx.sidecar_ca_file.as_deref()).await
        {
            Ok(Some(Ensured::Created)) => {
                tracing::info!("created the sidecar token Secret");
            }
            Ok(Some(Ensured::Updated)) => {
                tracing::info!("published the operator's current CA to the sidecars");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot ensure the sidecar token Secret"),
        }
        if restores::frozen(ctx, group) {
            // A restore is loading into the primary: no failover decision may act on it
            // until the Job has ended (see `restore_run`).
            if let Some(runtime) = runtime {
                tracing::info!("a restore is running: the failover loop stops until it ends");
                runtime.stop().await;
            }
            return None;
        }
        let (runtime, outcome) = GroupRuntime::sync(ctx, runtime, group).await;
        if let Err(e) = outcome {
            tracing::warn!(error = %e, reason = e.reason(), "the group's failover loop cannot run as specified");
        }
        if let (Some(runtime), Some(plan)) = (&runtime, rollout) {
            runtime.follow_rollout(group, &plan).await;
        }
        runtime
    };
    tracing::Instrument::instrument(work, span).await
}

/// One watch of `K` per namespace in scope, or one cluster-wide.
fn streams<K>(ctx: &OperatorContext) -> Vec<Events<K>>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
    K::DynamicType: Default,
{
    let apis: Vec<Api<K>> = match &ctx.scope {
        WatchScope::AllNamespaces => vec![Api::all(ctx.client.clone())],
        WatchScope::Namespaces(namespaces) => namespaces
            .iter()
            .map(|ns| Api::namespaced(ctx.client.clone(), ns))
            .collect(),
    };
    apis.into_iter()
        .map(|api| watcher::watcher(api, watcher::Config::default()).boxed())
        .collect()
}
