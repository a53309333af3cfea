//! The fencing monitor: fence first, then every `peerCheckInterval` ask the operator and
//! the peers which site is active, probe the local MySQL, apply [`guard::decide`] and fence
//! when it says so. Never lifts a fence.
//!
//! Each tick decides twice: once on what is already known (so a lease that ran out is acted
//! on at once, not after this tick's polls have timed out), then again on the fresh answers.
//! The loop also wakes at the moment the lease would run out, so a self-fence comes within
//! `leaseTimeout` plus the fence's own round trip rather than plus a whole interval.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::future::Future;
use std::pin::Pin;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

use super::config::SidecarConfig;
use crate::adapters::mysql::MysqlSiteClient;
use crate::failover::Timestamp;
use crate::failover::guard::{
    self, ActiveSiteAnswer, Contact, FenceReason, GuardDecision, GuardInput, Verdict, View,
};
use crate::failover::observe::SiteProbe;
use crate::ports::mysql::MysqlSite as _;
use crate::telemetry::sidecar::SidecarMetrics;

/// Bound on each call to the operator or a peer (the original's client timeout).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(2);

/// A wall-clock [`Timestamp`] that never runs backwards: the wall time at start plus a
/// monotonic elapsed time, so a clock step cannot stretch or shrink a lease.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall0: u64,
    mono0: Instant,
}

impl Clock {
    pub fn new() -> Self {
        let wall0 = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            wall0,
            mono0: Instant::now(),
        }
    }

    pub fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.wall0).plus(self.mono0.elapsed())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// The wire form of an active-site answer: standalone's and the operator's `/active-site`,
/// and a sidecar's `/peer/active-site`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveSiteBody {
    #[serde(default)]
    pub active_site: Option<String>,
    /// Milliseconds since the epoch when the authority said so (peers relay it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<u64>,
}

impl ActiveSiteBody {
    /// The authority's own answer (standalone's and the operator's): `{"activeSite": ..}`,
    /// `null` when no site is active. The sidecar stamps it with the time it heard it.
    pub fn authoritative(active_site: Option<String>) -> Self {
        Self {
            active_site,
            observed_at: None,
        }
    }
}

/// The local MySQL as last probed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MysqlView {
    /// `primary` (writable), `replica` (a replication channel) or `read-only`.
    pub role: &'static str,
    pub read_only: bool,
    pub super_read_only: bool,
    pub gtid_executed: String,
    pub lag_seconds: Option<u64>,
    pub replicating: bool,
    pub probed_at: Timestamp,
}

impl MysqlView {
    fn of(probe: &SiteProbe, at: Timestamp) -> Self {
        let role = if probe.replica.is_some() {
            "replica"
        } else if probe.read_only {
            "read-only"
        } else {
            "primary"
        };
        Self {
            role,
            read_only: probe.read_only,
            super_read_only: probe.super_read_only,
            gtid_executed: probe.gtid_executed.to_string(),
            lag_seconds: probe.replica.as_ref().and_then(|r| r.seconds_behind_source),
            replicating: probe
                .replica
                .as_ref()
                .is_some_and(|r| r.io_running && r.sql_running),
            probed_at: at,
        }
    }
}

/// The sidecar's own fence claim, as `/status` reports it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FenceState {
    /// `fenced` (the sidecar holds the fence, see `reason`), `cleared` (a fresh
    /// confirmation names this site; lifting is the operator's call) or `hold`.
    pub state: &'static str,
    pub reason: Option<FenceReason>,
    pub since: Option<Timestamp>,
    /// Fences this process ran (boot included).
    pub self_fences: u64,
    /// When the last fence took hold (`super_read_only=ON` returned), when it was decided,
    /// and how long it took from the decision to the end of the kill pass.
    pub last_fence_at: Option<Timestamp>,
    pub last_decided_at: Option<Timestamp>,
    pub last_fence_ms: Option<u64>,
    pub last_error: Option<String>,
}

/// One source as `/status` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceView {
    pub name: String,
    pub last_reached: Option<Timestamp>,
    pub active_site: Option<String>,
    pub observed_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// `/status`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub site: String,
    pub mysql: Option<MysqlView>,
    pub mysql_error: Option<String>,
    pub fence: FenceState,
    /// `fence`, `hold` or `cleared`: the rule's last word.
    pub verdict: &'static str,
    pub view: Option<View>,
    pub last_contact: Timestamp,
    pub lease_timeout_ms: u64,
    pub operator: SourceView,
    pub peers: Vec<SourceView>,
    /// This sidecar's clock when it answered: with `mysql.probedAt` it gives the probe's age
    /// on one clock, which is how the operator judges whether this view is still current.
    pub now: Timestamp,
    #[serde(skip)]
    relayed: Option<ActiveSiteAnswer>,
}

/// What the monitor shares with the HTTP handlers.
#[derive(Debug)]
pub struct Shared {
    snapshot: RwLock<Snapshot>,
}

impl Shared {
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What `/peer/active-site` relays: this sidecar's own operator answer while it is
    /// fresh (peers never relay what they heard from peers).
    pub fn relayed(&self, now: Timestamp) -> Option<ActiveSiteBody> {
        let snap = self.snapshot.read().unwrap_or_else(PoisonError::into_inner);
        let lease = Duration::from_millis(snap.lease_timeout_ms);
        snap.relayed
            .as_ref()
            .filter(|a| now.since(a.seen_at) < lease)
            .map(|a| ActiveSiteBody {
                active_site: a.active_site.clone(),
                observed_at: Some(a.observed_at.as_millis()),
            })
    }

    fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        f(&mut self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner));
    }
}

/// Outgoing calls: the operator and the peers.
#[derive(Debug, Clone)]
pub struct Caller {
    /// For the peers, and for the operator when `operator_trust` is `None`.
    pub http: reqwest::Client,
    /// The operator's client, pinned to `operator.caFile`.
    pub operator_trust: Option<Arc<super::operator_trust::OperatorTrust>>,
    pub token: super::auth::Token,
    /// Bound on each call: [`HTTP_TIMEOUT`], or the interval when shorter, so one tick's
    /// calls are over by the next tick.
    pub timeout: Duration,
}

#[derive(Debug)]
struct Source {
    name: String,
    contact: Contact,
    last_error: Option<String>,
}

impl Source {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            contact: Contact::default(),
            last_error: None,
        }
    }

    fn view(&self) -> SourceView {
        SourceView {
            name: self.name.clone(),
            last_reached: self.contact.last_reached,
            active_site: self
                .contact
                .answer
                .as_ref()
                .and_then(|a| a.active_site.clone()),
            observed_at: self.contact.answer.as_ref().map(|a| a.observed_at),
            last_error: self.last_error.clone(),
        }
    }
}

/// The monitor's state between ticks.
pub struct Monitor {
    config: Arc<SidecarConfig>,
    mysql: MysqlSiteClient,
    caller: Caller,
    metrics: Arc<SidecarMetrics>,
    shared: Arc<Shared>,
    clock: Clock,
    started_at: Timestamp,
    operator: Source,
    peers: Vec<Source>,
    held: Option<(FenceReason, Timestamp)>,
    boot_fence_pending: bool,
    fence: FenceState,
    mysql_view: Option<MysqlView>,
    mysql_error: Option<String>,
    /// Since when MySQL has been seen writable without a break.
    writable_since: Option<Timestamp>,
    last: Option<GuardDecision>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("site", &self.config.site)
            .finish_non_exhaustive()
    }
}

fn verdict_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Fence(_) => "fence",
        Verdict::Hold => "hold",
        Verdict::Cleared => "cleared",
    }
}

impl Monitor {
    pub fn new(
        config: Arc<SidecarConfig>,
        mysql: MysqlSiteClient,
        caller: Caller,
        metrics: Arc<SidecarMetrics>,
        clock: Clock,
    ) -> (Self, Arc<Shared>) {
        let started_at = clock.now();
        let fence = FenceState {
            state: "fenced",
            reason: Some(FenceReason::Boot),
            since: Some(started_at),
            self_fences: 0,
            last_fence_at: None,
            last_decided_at: None,
            last_fence_ms: None,
            last_error: None,
        };
        let shared = Arc::new(Shared {
            snapshot: RwLock::new(Snapshot {
                now: clock.now(),
                site: config.site.clone(),
                mysql: None,
                mysql_error: None,
                fence: fence.clone(),
                verdict: "hold",
                view: None,
                last_contact: started_at,
                lease_timeout_ms: u64::try_from(config.lease_timeout.as_millis())
                    .unwrap_or(u64::MAX),
                operator: Source::new("operator").view(),
                peers: config
                    .peers
                    .iter()
                    .map(|p| Source::new(&p.name).view())
                    .collect(),
                relayed: None,
            }),
        });
        metrics.set_fenced(Some(FenceReason::Boot));
        let monitor = Self {
            peers: config.peers.iter().map(|p| Source::new(&p.name)).collect(),
            operator: Source::new("operator"),
            config,
            mysql,
            caller,
            metrics,
            shared: Arc::clone(&shared),
            clock,
            started_at,
            held: Some((FenceReason::Boot, started_at)),
            boot_fence_pending: true,
            fence,
            mysql_view: None,
            mysql_error: None,
            writable_since: None,
            last: None,
        };
        (monitor, shared)
    }

    /// Fence-first boot: `super_read_only=ON` before anything else, and the sessions of a
    /// server found writable killed. Retried every tick until it succeeds.
    pub async fn boot_fence(&mut self) {
        let writable = self.probe().await;
        if writable == Some(false) && self.mysql_view.as_ref().is_some_and(|v| v.super_read_only) {
            tracing::info!("boot: MySQL is already super_read_only");
            self.boot_fence_pending = false;
        } else if self.run_fence(FenceReason::Boot).await {
            self.boot_fence_pending = false;
            let _ = self.probe().await;
        }
        self.publish();
    }

    /// Runs until `stop` resolves.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        if self.boot_fence_pending {
            self.boot_fence().await;
        }
        loop {
            let started = Instant::now();
            let span = tracing::info_span!("sidecar_tick", site = %self.config.site);
            self.tick().instrument(span).await;
            let sleep = self.next_wake(started.elapsed());
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// The next tick: one interval after this one *started* (a call waiting out its timeout
    /// must not stretch the period: the lease is sized in intervals, and a peer that answers
    /// has to be asked again on time), or the moment the lease runs out if sooner.
    fn next_wake(&self, tick_took: Duration) -> Duration {
        self.config
            .peer_check_interval
            .saturating_sub(tick_took)
            .min(self.until_lease_expiry())
    }

    async fn tick(&mut self) {
        self.caller.token.reload();
        if self.boot_fence_pending {
            self.boot_fence().await;
        }
        // On what is known already: a lease that ran out is acted on before any poll.
        let writable = self.probe().await;
        self.decide_and_act(writable).await;
        // Each answer is recorded the moment it arrives: a peer that answered must keep
        // the lease even while the operator's call is still waiting out its timeout. And
        // the lease may run out meanwhile (everyone silent), which is acted on then.
        let mut pending: FuturesUnordered<_> =
            poll_all(&self.caller, &self.config).into_iter().collect();
        let mut expiry_handled = false;
        loop {
            let until_expiry = self.until_lease_expiry();
            tokio::select! {
                next = pending.next() => {
                    let Some((who, result)) = next else { break };
                    let now = self.clock.now();
                    match who {
                        None => record(&mut self.operator, result, now, false, &self.metrics),
                        Some(i) => {
                            if let Some(source) = self.peers.get_mut(i) {
                                record(source, result, now, true, &self.metrics);
                            }
                        }
                    }
                }
                () = tokio::time::sleep(until_expiry), if !expiry_handled => {
                    expiry_handled = true;
                    let writable = self.probe().await;
                    self.decide_and_act(writable).await;
                }
            }
        }
        let writable = self.probe().await;
        self.decide_and_act(writable).await;
        self.publish();
    }

    /// How long until the lease runs out with no further contact (a little past it, so
    /// the decision then sees it expired); an interval when it already has.
    fn until_lease_expiry(&self) -> Duration {
        let now = self.clock.now();
        let last_contact = std::iter::once(self.started_at)
            .chain(self.operator.contact.last_reached)
            .chain(self.peers.iter().filter_map(|p| p.contact.last_reached))
            .max()
            .unwrap_or(self.started_at);
        let expiry = last_contact.plus(self.config.lease_timeout);
        let left = Duration::from_millis(expiry.as_millis().saturating_sub(now.as_millis()));
        if left.is_zero() {
            self.config.peer_check_interval
        } else {
            left + Duration::from_millis(5)
        }
    }

    async fn probe(&mut self) -> Option<bool> {
        match self.mysql.probe().await {
            Ok(p) => {
                let now = self.clock.now();
                self.writable_since = if p.read_only {
                    None
                } else {
                    Some(self.writable_since.unwrap_or(now))
                };
                self.mysql_view = Some(MysqlView::of(&p, now));
                self.mysql_error = None;
                Some(!p.read_only)
            }
            Err(e) => {
                // A server that does not answer has no role to report: an old "primary"
                // in /status would mislead whoever reads it during an incident.
                // `writable_since` stays: a probe blip is not a fence, and must not restart the
                // grace a freshly lifted site gets.
                self.mysql_view = None;
                self.mysql_error = Some(e.to_string());
                None
            }
        }
    }

    async fn decide_and_act(&mut self, writable: Option<bool>) {
        let now = self.clock.now();
        let peers: Vec<Contact> = self.peers.iter().map(|p| p.contact.clone()).collect();
        let decision = guard::decide(
            &GuardInput {
                site: &self.config.site,
                lease_timeout: self.config.lease_timeout,
                started_at: self.started_at,
                operator: &self.operator.contact,
                peers: &peers,
                writable_since: self.writable_since,
            },
            now,
        );
        match decision.verdict {
            Verdict::Fence(reason) => {
                if decision.must_fence(writable) {
                    self.run_fence(reason).await;
                    let _ = self.probe().await;
                }
                if self.held.map(|(r, _)| r) != Some(reason) {
                    tracing::warn!(reason = reason.as_str(), "holding MySQL fenced");
                    self.held = Some((reason, self.held.map_or(now, |(_, since)| since)));
                }
            }
            Verdict::Cleared => {
                if self.held.is_some() {
                    tracing::info!(
                        "cleared: a fresh confirmation names this site (lifting the fence is the operator's call)"
                    );
                }
                self.held = None;
            }
            Verdict::Hold => {}
        }
        self.metrics.set_fenced(self.held.map(|(r, _)| r));
        self.metrics
            .set_cleared(decision.verdict == Verdict::Cleared);
        self.metrics
            .set_last_contact_age(now.since(decision.last_contact));
        self.last = Some(decision);
    }

    /// `super_read_only=ON`, then the application sessions killed. Returns whether the
    /// fence itself succeeded (a failed kill pass is logged; the fence already holds).
    async fn run_fence(&mut self, reason: FenceReason) -> bool {
        let started = Instant::now();
        let at = self.clock.now();
        let span =
            tracing::warn_span!("self_fence", site = %self.config.site, reason = reason.as_str());
        let clock = self.clock;
        let outcome = async {
            self.mysql.fence().await?;
            // The moment no new write can commit: what the fence's timing is measured to.
            let fenced_at = clock.now();
            let sweep = self.mysql.kill_app_connections(None).await;
            if let Err(e) = &sweep {
                tracing::warn!(error = %e, "fenced, but killing sessions failed");
            }
            Ok::<_, crate::ports::mysql::DbError>((fenced_at, sweep.map_or(0, |s| s.killed)))
        }
        .instrument(span)
        .await;
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok((fenced_at, killed)) => {
                tracing::warn!(
                    reason = reason.as_str(),
                    killed,
                    elapsed_ms = elapsed,
                    fenced_at_ms = fenced_at.as_millis(),
                    "self-fenced: super_read_only=ON"
                );
                self.metrics.observe_self_fence(reason);
                self.fence.self_fences += 1;
                self.fence.last_fence_at = Some(fenced_at);
                self.fence.last_decided_at = Some(at);
                self.fence.last_fence_ms = Some(elapsed);
                self.fence.last_error = None;
                true
            }
            Err(e) => {
                tracing::error!(reason = reason.as_str(), error = %e, "self-fence failed; retrying next tick");
                self.fence.last_error = Some(e.to_string());
                false
            }
        }
    }

    fn publish(&mut self) {
        let decision = self.last.clone();
        self.fence.state = if self.held.is_some() {
            "fenced"
        } else if decision
            .as_ref()
            .is_some_and(|d| d.verdict == Verdict::Cleared)
        {
            "cleared"
        } else {
            "hold"
        };
        self.fence.reason = self.held.map(|(r, _)| r);
        self.fence.since = self.held.map(|(_, s)| s);
        let fence = self.fence.clone();
        let mysql = self.mysql_view.clone();
        let mysql_error = self.mysql_error.clone();
        let operator = self.operator.view();
        let peers = self.peers.iter().map(Source::view).collect();
        let relayed = self.operator.contact.answer.clone();
        let started_at = self.started_at;
        self.shared.update(|s| {
            s.fence = fence;
            s.mysql = mysql;
            s.mysql_error = mysql_error;
            s.operator = operator;
            s.peers = peers;
            s.relayed = relayed;
            if let Some(d) = decision {
                s.verdict = verdict_name(&d.verdict);
                s.view = d.view;
                s.last_contact = d.last_contact;
            } else {
                s.last_contact = started_at;
            }
        });
    }
}

/// One call in flight: which source (`None`: the operator, `Some(i)`: peer `i`) and what
/// it brought.
type Call = Pin<Box<dyn Future<Output = (Option<usize>, Fetched)> + Send>>;

/// One call per source, each owning what it needs.
fn poll_all(caller: &Caller, config: &SidecarConfig) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::with_capacity(config.peers.len() + 1);
    let operator_caller = match &caller.operator_trust {
        None => Ok(caller.clone()),
        Some(trust) => trust.client().map(|http| Caller {
            http,
            ..caller.clone()
        }),
    };
    let operator_url = config.operator_url.clone();
    calls.push(Box::pin(async move {
        match operator_caller {
            Ok(operator_caller) => (None, fetch(&operator_caller, &operator_url).await),
            Err(why) => (None, Err(why)),
        }
    }));
    for (i, peer) in config.peers.iter().enumerate() {
        let caller = caller.clone();
        let url = format!("{}/peer/active-site", peer.url);
        calls.push(Box::pin(
            async move { (Some(i), fetch(&caller, &url).await) },
        ));
    }
    calls
}

/// What one poll brought: `Ok(None)` reached with nothing to say (204).
type Fetched = Result<Option<ActiveSiteBody>, String>;

async fn fetch(caller: &Caller, url: &str) -> Fetched {
    // The operator's endpoint checks the group's token as the peers do (standalone's
    // loopback endpoint ignores it).
    let response = caller
        .http
        .get(url)
        .timeout(caller.timeout)
        .bearer_auth(caller.token.current_text())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    match response.status().as_u16() {
        204 => Ok(None),
        200 => {
            let bytes = response.bytes().await.map_err(|e| e.to_string())?;
            serde_json::from_slice::<ActiveSiteBody>(&bytes)
                .map(Some)
                .map_err(|e| format!("unreadable answer: {e}"))
        }
        code => Err(format!("HTTP {code}")),
    }
}

fn record(
    source: &mut Source,
    result: Fetched,
    now: Timestamp,
    peer: bool,
    metrics: &SidecarMetrics,
) {
    metrics.observe_contact(peer, result.is_ok());
    match result {
        Ok(body) => {
            let answer = body.map(|b| ActiveSiteAnswer {
                active_site: b.active_site,
                // The operator's own answer is observed now; a peer's when the peer heard it.
                observed_at: if peer {
                    b.observed_at.map_or(now, Timestamp::from_millis)
                } else {
                    now
                },
                seen_at: now,
            });
            source.contact.reached(now, answer);
            source.last_error = None;
        }
        Err(e) => {
            tracing::debug!(source = %source.name, error = %e, "no answer");
            source.last_error = Some(e);
        }
    }
}
