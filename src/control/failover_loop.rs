//! [`FailoverLoop`]: observe → decide → persist → act, forever.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::execute::{self, ActionDeadlines};
use super::requests::{self, ControlHandle, Envelope};
use crate::error::{Categorized, Category};
use crate::failover::sequence::{ActionSequence, Gate, Skipped};
use crate::failover::{
    ActionKind, ActionOutcome, Decision, EngineState, GroupPolicy, GroupStatus, OutcomeResult,
    PollInput, SidecarReport, SiteObservation, SiteState, Timestamp, decide,
};
use crate::ports::hook::{FailoverHook, HookInfo};
use crate::ports::mysql::{MysqlSite, SourceEndpoint};
use crate::ports::observer::{DecisionObserver, DecisionReport};
use crate::ports::sidecar::SidecarStatus;
use crate::ports::state::{StateStore, StoreError};

/// Timing of the loop. The engine's thresholds live in [`GroupPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopConfig {
    /// The normal time between polls (`pollInterval`).
    pub poll_interval: Duration,
    /// Outer bound on one site's probe, on top of the adapter's own timeouts.
    pub probe_deadline: Duration,
    /// Outer bound on one mutating action (unless the action carries a tighter one).
    pub op_deadline: Duration,
    /// Outer bound on a reclone.
    pub clone_deadline: Duration,
    /// Between polls, check the active primary this often and poll at once when it stops
    /// answering, so a crash is noticed in a fraction of `poll_interval`. `None`: off.
    pub liveness_interval: Option<Duration>,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            probe_deadline: Duration::from_millis(1500),
            op_deadline: Duration::from_secs(15),
            clone_deadline: Duration::from_secs(3600),
            liveness_interval: Some(Duration::from_millis(250)),
        }
    }
}

/// One site the loop drives.
pub struct SiteHandle<S> {
    pub name: String,
    pub site: Arc<S>,
    /// Where peers replicate from (and clone from) this site.
    pub endpoint: SourceEndpoint,
    /// The site's sidecar, asked for its view whenever a probe of the site fails.
    pub sidecar: Option<Arc<dyn SidecarStatus>>,
}

/// Everything a loop is built from.
pub struct LoopParts<S> {
    pub sites: Vec<SiteHandle<S>>,
    pub policy: GroupPolicy,
    pub config: LoopConfig,
    pub store: Arc<dyn StateStore>,
    pub hook: Arc<dyn FailoverHook>,
    /// Told about every decision, in this order (logs, metrics, Events, status).
    pub observers: Vec<Arc<dyn DecisionObserver>>,
}

/// The loop cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error("site {0} is in the policy but has no connection")]
    MissingSite(String),
    #[error("site {0} has a connection but is not in the policy")]
    UnknownSite(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Categorized for LoopError {
    fn category(&self) -> Category {
        match self {
            Self::MissingSite(_) | Self::UnknownSite(_) => Category::Config,
            Self::Store(e) => e.category(),
        }
    }
}

/// Asks a site's sidecar for its view, bounded by `deadline`; any failure is "no answer".
async fn second_opinion(
    site: &str,
    sidecar: &dyn SidecarStatus,
    deadline: Duration,
) -> Option<SidecarReport> {
    match tokio::time::timeout(deadline, sidecar.status()).await {
        Ok(Ok(Some(report))) => {
            // Debug, like the failed probe itself: during an outage this runs every poll,
            // and what matters (the held-back failover) is raised once as an alert.
            tracing::debug!(
                site,
                read_only = report.read_only,
                super_read_only = report.super_read_only,
                age_ms = u64::try_from(report.age.as_millis()).unwrap_or(u64::MAX),
                "probe failed; the site's sidecar answered"
            );
            Some(report)
        }
        Ok(Ok(None)) => {
            tracing::debug!(
                site,
                "probe failed; the sidecar cannot see its MySQL either"
            );
            None
        }
        Ok(Err(e)) => {
            tracing::debug!(site, error = %e, "probe failed; no answer from the sidecar");
            None
        }
        Err(_) => {
            tracing::debug!(site, "probe failed; the sidecar timed out");
            None
        }
    }
}

/// Drives one failover group through the [`MysqlSite`] port.
pub struct FailoverLoop<S> {
    sites: Vec<SiteHandle<S>>,
    policy: GroupPolicy,
    config: LoopConfig,
    store: Arc<dyn StateStore>,
    hook: Arc<dyn FailoverHook>,
    observers: Vec<Arc<dyn DecisionObserver>>,
    state: EngineState,
    /// `state` is not known to be in the store (the last save failed), so the next poll
    /// saves even if nothing changed.
    unsaved: bool,
    /// Outcomes of the last decision's actions, for the next poll.
    outcomes: Vec<ActionOutcome>,
    requests: mpsc::Receiver<Envelope>,
    /// Keeps the request channel open even when every handle is dropped.
    _requests_tx: mpsc::Sender<Envelope>,
    queued: Vec<Envelope>,
    status: watch::Sender<Option<GroupStatus>>,
}

impl<S: MysqlSite + 'static> FailoverLoop<S> {
    /// Builds the loop, resuming from the stored state if there is one.
    pub async fn new(parts: LoopParts<S>) -> Result<(Self, ControlHandle), LoopError> {
        for policy_site in &parts.policy.sites {
            if !parts.sites.iter().any(|s| s.name == policy_site.name) {
                return Err(LoopError::MissingSite(policy_site.name.clone()));
            }
        }
        if let Some(stray) = parts
            .sites
            .iter()
            .find(|s| parts.policy.site(&s.name).is_none())
        {
            return Err(LoopError::UnknownSite(stray.name.clone()));
        }
        let stored = parts.store.load().await?;
        let unsaved = stored.is_none();
        let state = stored.unwrap_or_default();
        if !state.in_flight.is_empty() {
            tracing::warn!(
                actions = state.in_flight.len(),
                "resuming with actions whose outcome is unknown; the engine treats them as ambiguous"
            );
        }
        let (requests_tx, requests) = mpsc::channel(16);
        let (status, status_rx) = watch::channel(None);
        let handle = ControlHandle {
            requests: requests_tx.clone(),
            status: status_rx,
        };
        Ok((
            Self {
                sites: parts.sites,
                policy: parts.policy,
                config: parts.config,
                store: parts.store,
                hook: parts.hook,
                observers: parts.observers,
                state,
                unsaved,
                outcomes: Vec::new(),
                requests,
                _requests_tx: requests_tx,
                queued: Vec::new(),
                status,
            },
            handle,
        ))
    }

    /// The engine state after the last poll.
    pub fn state(&self) -> &EngineState {
        &self.state
    }

    /// Polls until `shutdown` completes. A poll in progress finishes its actions first, so
    /// no mutation is abandoned half-way.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wait = self.poll_once().await;
            if self.wait(wait, &mut shutdown).await {
                tracing::info!("failover loop stopped");
                return;
            }
        }
    }

    /// Waits `wait`, or less: a request arrived, or the active primary stopped answering.
    /// Returns true on shutdown.
    async fn wait(
        &mut self,
        wait: Duration,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        if self.primary_suspect() {
            // The primary's last probe failed: probe again at once. Each probe's own
            // timeout paces these polls, and the engine still needs `failure_threshold`
            // consecutive failures, so a blip cannot trigger a failover; a hang is just
            // confirmed in about threshold × probe timeout instead of threshold × interval.
            return false;
        }
        let deadline = Instant::now() + wait;
        loop {
            let liveness = self
                .config
                .liveness_interval
                .map(|i| Instant::now() + i)
                .filter(|t| *t < deadline);
            let until = liveness.unwrap_or(deadline);
            tokio::select! {
                () = shutdown.as_mut() => return true,
                envelope = self.requests.recv() => {
                    if let Some(envelope) = envelope {
                        self.queued.push(envelope);
                    }
                    return false;
                }
                () = tokio::time::sleep_until(until) => {
                    if liveness.is_none() || !self.primary_alive().await {
                        return false;
                    }
                }
            }
        }
    }

    /// The active primary failed its last probe but is not yet confirmed unreachable.
    fn primary_suspect(&self) -> bool {
        self.state
            .active_site
            .as_deref()
            .and_then(|a| self.state.site(a))
            .is_some_and(|t| t.failure_streak > 0 && t.state != SiteState::Unreachable)
    }

    /// A quick probe of the active primary between polls: false when it did not answer
    /// or is no longer writable.
    async fn primary_alive(&self) -> bool {
        let Some(active) = self.state.active_site.as_deref() else {
            return true;
        };
        let Some(handle) = self.sites.iter().find(|s| s.name == active) else {
            return true;
        };
        match tokio::time::timeout(self.config.probe_deadline, handle.site.probe()).await {
            Ok(Ok(probe)) => !probe.read_only,
            Ok(Err(e)) => {
                tracing::info!(site = active, error = %e, "primary liveness check failed; polling now");
                false
            }
            Err(_) => {
                tracing::info!(
                    site = active,
                    "primary liveness check timed out; polling now"
                );
                false
            }
        }
    }

    /// One observe → decide → persist → act cycle. Returns how long to wait before the next.
    pub async fn poll_once(&mut self) -> Duration {
        while let Ok(envelope) = self.requests.try_recv() {
            self.queued.push(envelope);
        }
        let envelopes = std::mem::take(&mut self.queued);
        let (observations, sidecars) = self.probe_all().await;
        let input = PollInput {
            observations,
            outcomes: std::mem::take(&mut self.outcomes),
            requests: envelopes.iter().map(|e| e.request.clone()).collect(),
            sidecars,
        };
        let decision = decide(&self.state, &self.policy, &input, now());
        let saved = if self.unsaved || decision.state != self.state {
            match self.store.save(&decision.state).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(error = %e, "cannot persist the engine state; not acting this poll");
                    false
                }
            }
        } else {
            true
        };
        self.unsaved = !saved;
        let report = DecisionReport {
            policy: &self.policy,
            previous: &self.state,
            input: &input,
            decision: &decision,
        };
        for observer in &self.observers {
            observer.decided(&report);
        }
        self.state = decision.state.clone();
        // Published before the replies, so a requester reads the status that answered it.
        self.status.send_replace(Some(decision.status.clone()));
        for envelope in envelopes {
            let reply = requests::verdict(&envelope.request, &decision.events, &decision.status);
            let _ = envelope.reply.send(reply);
        }
        self.outcomes = if saved {
            self.execute(&decision).await
        } else {
            not_run(&decision)
        };
        decision.repoll_after.unwrap_or(self.config.poll_interval)
    }

    /// Probes every site in parallel; a site whose probe fails also has its sidecar asked
    /// (within the same deadline again), so a failing site costs at most two deadlines.
    async fn probe_all(&self) -> (Vec<SiteObservation>, Vec<SidecarReport>) {
        let mut probes = JoinSet::new();
        for (index, handle) in self.sites.iter().enumerate() {
            let site = Arc::clone(&handle.site);
            let sidecar = handle.sidecar.clone();
            let name = handle.name.clone();
            let deadline = self.config.probe_deadline;
            probes.spawn(async move {
                let started = Instant::now();
                let result = match tokio::time::timeout(deadline, site.probe()).await {
                    Ok(Ok(probe)) => Ok(probe),
                    Ok(Err(e)) => {
                        tracing::debug!(site = %name, error = %e, "probe failed");
                        Err(e.as_probe_failure())
                    }
                    Err(_) => {
                        tracing::debug!(site = %name, "probe timed out");
                        Err(crate::failover::ProbeFailure::Timeout)
                    }
                };
                let elapsed = started.elapsed();
                let report = match (&result, sidecar) {
                    (Err(_), Some(sidecar)) => {
                        second_opinion(&name, sidecar.as_ref(), deadline).await
                    }
                    _ => None,
                };
                (
                    index,
                    SiteObservation {
                        site: name,
                        result,
                        elapsed,
                    },
                    report,
                )
            });
        }
        let mut observations: Vec<(usize, SiteObservation, Option<SidecarReport>)> = Vec::new();
        while let Some(joined) = probes.join_next().await {
            match joined {
                Ok(triple) => observations.push(triple),
                Err(e) => tracing::error!(error = %e, "probe task failed"),
            }
        }
        observations.sort_by_key(|(i, _, _)| *i);
        let mut reports = Vec::new();
        let observations = observations
            .into_iter()
            .map(|(_, o, r)| {
                reports.extend(r);
                o
            })
            .collect();
        (observations, reports)
    }

    /// Runs the decision's actions in order, under the shared [`ActionSequence`] rules
    /// (stop after a failed fatal action; no more best-effort calls to a hung site).
    async fn execute(&self, decision: &Decision) -> Vec<ActionOutcome> {
        let deadlines = ActionDeadlines {
            op: self.config.op_deadline,
            clone: self.config.clone_deadline,
        };
        let endpoints: HashMap<&str, &SourceEndpoint> = self
            .sites
            .iter()
            .map(|s| (s.name.as_str(), &s.endpoint))
            .collect();
        let mut outcomes = Vec::with_capacity(decision.actions.len());
        let mut sequence = ActionSequence::new();
        for action in &decision.actions {
            let site_name = action.kind.site();
            if let Gate::Skip(why) = sequence.gate(action) {
                if why == Skipped::SiteHung {
                    tracing::info!(
                        site = site_name,
                        action = action.kind.name(),
                        "skipped: the site did not answer this decision's previous call in time"
                    );
                }
                outcomes.push(ActionOutcome {
                    id: action.id,
                    result: why.outcome(),
                });
                continue;
            }
            let span = tracing::info_span!(
                "action",
                site = site_name,
                action = action.kind.name(),
                purpose = ?action.purpose
            );
            let started = Instant::now();
            let result = if let ActionKind::RunHook { site, .. } = &action.kind {
                self.fire_hook(site, &decision.state);
                OutcomeResult::Ok {
                    value: crate::failover::ActionValue::Done,
                }
            } else if let Some(handle) = self.sites.iter().find(|s| s.name == site_name) {
                let lookup = |name: &str| endpoints.get(name).map(|e| (*e).clone());
                execute::run(handle.site.as_ref(), action, deadlines, lookup)
                    .instrument(span.clone())
                    .await
            } else {
                OutcomeResult::Failed {
                    category: Category::Internal,
                }
            };
            let _entered = span.enter();
            let ok = result.succeeded();
            tracing::info!(
                ok,
                elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "action finished"
            );
            sequence.record(action, &result);
            outcomes.push(ActionOutcome {
                id: action.id,
                result,
            });
        }
        outcomes
    }

    fn fire_hook(&self, site: &str, state: &EngineState) {
        let address = self
            .policy
            .site(site)
            .map(|s| s.address.clone())
            .unwrap_or_default();
        let old = state
            .last_failover
            .as_ref()
            .filter(|r| r.target == site)
            .and_then(|r| r.previous.clone());
        let observers = self.observers.clone();
        self.hook.fire(
            HookInfo {
                new_primary_site: site.to_owned(),
                new_primary_address: address,
                old_primary_site: old,
            },
            Box::new(move || {
                for observer in &observers {
                    observer.hook_failed();
                }
            }),
        );
    }
}

fn not_run(decision: &Decision) -> Vec<ActionOutcome> {
    decision
        .actions
        .iter()
        .map(|a| ActionOutcome {
            id: a.id,
            result: OutcomeResult::NotRun,
        })
        .collect()
}

/// The wall clock as the engine's [`Timestamp`].
fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_millis(millis)
}
