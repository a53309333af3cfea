//! [`ClusterReactions`]: the decision observer that makes the cluster follow the failover
//! core's decisions (bloodraven-behaviour §7).
//!
//! The loop calls [`DecisionObserver::decided`] on its own task, so `decided` only queues:
//! the newest decision's status replaces any not yet handled (a coalescing queue of one),
//! and its engine events are appended to a bounded list (oldest dropped, and counted in a
//! log line, past [`ReactionsConfig::max_pending_events`]). A task of its own then, for the
//! newest decision:
//!
//! 1. writes the status projection through [`KubeStatusStore::publish`] (the group's one
//!    status writer, so it never races the state save);
//! 2. creates core/v1 Events on the MysqlFailoverGroup (reasons: [`event_reason`]);
//! 3. labels each site's pod `shipstream.io/role` and `shipstream.io/healthy`
//!    ([`crate::render::platform::pod_labels`]), with a merge patch, only when different
//!    (and the pods are only listed when the labels should change, after a failure, or
//!    every [`ReactionsConfig::label_resync`]);
//! 4. adds or removes the group's `shipstream.io/db-readonly-<group>` taint on the nodes
//!    of each site's `taintNodeSelector`, on the transitions of
//!    [`crate::render::platform::taint_change`];
//! 5. applies the DNSEndpoint through the [`ObjectStore`] once the active site is
//!    confirmed writable (debounced `writable`), and only when it differs from what was
//!    last applied or from the live object.
//!
//! Every request is bounded by [`ReactionsConfig::write_timeout`]. A failure is logged with
//! structured fields and retried on the next decision (a taint transition is remembered as
//! applied only once every node took it; failed Events are queued again). Nothing here
//! panics. Once the store reports that another writer took over
//! ([`KubeStatusStore::is_superseded`]) the task does nothing at all: a deposed leader
//! must not move labels, taints or DNS.
//!
//! The shell hands in the group as it changes ([`ClusterReactions::set_group`]): site
//! selectors, `lbIP`s and the DNS settings are read from the latest spec on every decision.

mod cluster;
mod events;
mod queue;

pub(crate) use cluster::selector_string;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, watch};

use self::queue::{Pending, Snapshot};
use super::status::KubeStatusStore;
use crate::api::MysqlFailoverGroup;
use crate::failover::Timestamp;
use crate::ports::objects::ObjectStore;
use crate::ports::observer::{DecisionObserver, DecisionReport};
use crate::telemetry::failover::FailoverMetrics;

pub use events::{EventNote, event_reason, object_event};

/// Bounds of the reactions task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactionsConfig {
    /// Outer bound on every API request.
    pub write_timeout: Duration,
    /// Engine events waiting for the task beyond this are dropped, oldest first.
    pub max_pending_events: usize,
    /// An identical Event (reason, site, message) is not created again within this window,
    /// so an anomaly reported on every poll does not flood the namespace.
    pub event_repeat_window: Duration,
    /// Pod labels are checked (one LIST per site) when they should change, after a failure,
    /// and otherwise this often, so an idle group costs few requests and a rescheduled pod
    /// is labelled within this.
    pub label_resync: Duration,
}

impl Default for ReactionsConfig {
    fn default() -> Self {
        Self {
            write_timeout: Duration::from_secs(10),
            max_pending_events: 128,
            event_repeat_window: Duration::from_secs(300),
            label_resync: Duration::from_secs(30),
        }
    }
}

/// What `decided` and the task share.
struct Shared {
    pending: Mutex<Pending>,
    wake: Notify,
    /// The number of the last decision the task finished with.
    done: watch::Sender<u64>,
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A poisoned lock only means a panic elsewhere mid-push; the queue is still usable.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The decision observer that applies §7's platform reactions; see the module docs.
pub struct ClusterReactions {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl ClusterReactions {
    /// Spawns the reactions task for `group` with [`ReactionsConfig::default`], on the
    /// current Tokio runtime. Dropping the returned value stops the task.
    pub fn spawn(
        client: kube::Client,
        group: Arc<MysqlFailoverGroup>,
        status: Arc<KubeStatusStore>,
        objects: Arc<dyn ObjectStore>,
    ) -> Self {
        Self::spawn_with(
            client,
            group,
            status,
            objects,
            ReactionsConfig::default(),
            None,
        )
    }

    /// Spawns the reactions task with explicit bounds, counting taints and DNS flips in
    /// `metrics` (the group's failover metrics) when given.
    pub fn spawn_with(
        client: kube::Client,
        group: Arc<MysqlFailoverGroup>,
        status: Arc<KubeStatusStore>,
        objects: Arc<dyn ObjectStore>,
        config: ReactionsConfig,
        metrics: Option<Arc<FailoverMetrics>>,
    ) -> Self {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::new(group, config.max_pending_events)),
            wake: Notify::new(),
            done: watch::Sender::new(0),
        });
        let worker = cluster::Worker::new(client, status, objects, config, metrics);
        let task = tokio::spawn(run(Arc::clone(&shared), worker));
        Self { shared, task }
    }

    /// The group changed (spec, labels, generation): later decisions use it.
    pub fn set_group(&self, group: Arc<MysqlFailoverGroup>) {
        self.shared.pending().group = group;
    }

    /// Events the shell raises itself (a request annotation it refused before the loop saw
    /// it); published with the next decision, so within one poll interval.
    pub fn report(&self, events: &[crate::failover::Event]) {
        self.shared.pending().add_events(events);
    }

    /// Waits until the task has handled every decision handed to it so far (tests, and a
    /// shell that wants the last reactions out before it stops).
    pub async fn settled(&self) {
        let target = self.shared.pending().submitted;
        let mut done = self.shared.done.subscribe();
        // Err only when the task is gone, and then nothing more will settle.
        let _ = done.wait_for(|d| *d >= target).await;
    }
}

impl Drop for ClusterReactions {
    fn drop(&mut self) {
        // Every write is idempotent and retried by the next leader's first decision, so
        // stopping mid-way loses nothing.
        self.task.abort();
    }
}

impl DecisionObserver for ClusterReactions {
    fn decided(&self, report: &DecisionReport<'_>) {
        let snapshot = Snapshot {
            status: report.decision.status.clone(),
            max_lag_seconds: report.policy.max_lag_seconds,
            at: now(),
        };
        let dropped = self
            .shared
            .pending()
            .push(snapshot, &report.decision.events);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "cluster reactions are behind; dropped the oldest pending Kubernetes Events"
            );
        }
        self.shared.wake.notify_one();
    }
}

async fn run(shared: Arc<Shared>, mut worker: cluster::Worker) {
    loop {
        shared.wake.notified().await;
        let Some(batch) = shared.pending().take() else {
            continue;
        };
        let number = batch.number;
        let failed = worker.handle(batch).await;
        if !failed.is_empty() {
            shared.pending().requeue(failed);
        }
        shared.done.send_replace(number);
    }
}

fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_millis(millis)
}
