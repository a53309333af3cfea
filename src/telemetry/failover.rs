//! Failover metrics (the original operator's `bloodraven_*` names, so existing dashboards
//! and alerts keep working), fed by [`crate::control::FailoverLoop`] as one of its decision
//! observers.
//!
//! Every label value comes from the group's configuration (site names, roles) or from a
//! fixed vocabulary (states, results, threads): never from error text or observed data, so
//! cardinality stays bounded by the config.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::failover::{
    Decision, EngineState, Event, EventReason, FailoverKind, GroupPolicy, GroupStatus,
    PlannedPhase, PlannedReason, SiteRole, SiteState,
};
use crate::ports::observer::{DecisionObserver, DecisionReport};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetSite {
    target_site: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Site {
    site: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Transition {
    site: String,
    from: String,
    to: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SiteRoleState {
    site: String,
    role: String,
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SiteRoleLabels {
    site: String,
    role: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ThreadLabels {
    site: String,
    role: String,
    thread: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlannedResult {
    target_site: String,
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaintAction {
    site: String,
    action: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PreferSite {
    prefer_site: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Sub-second buckets (a planned switchover here takes well under a second) plus the
/// reference's 1..300 s range.
fn planned_duration_histogram() -> Histogram {
    Histogram::new([
        0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    ])
}

/// The Prometheus client library's default buckets.
fn poll_latency_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// The failover metric families, registered into one [`Registry`].
#[derive(Debug)]
pub struct FailoverMetrics {
    failovers: Family<TargetSite, Counter>,
    state_transitions: Family<Transition, Counter>,
    site_state: Family<SiteRoleState, Gauge>,
    replication_lag: Family<SiteRoleLabels, Gauge<f64, AtomicU64>>,
    replication_running: Family<ThreadLabels, Gauge>,
    divergent: Family<Site, Gauge>,
    planned_failovers: Family<PlannedResult, Counter>,
    planned_duration: HistogramFamily<TargetSite>,
    poll_latency: HistogramFamily<Site>,
    split_brain_resolves: Family<PreferSite, Counter>,
    reclones: Family<Site, Counter>,
    hook_failures: Counter,
    taint_operations: Family<TaintAction, Counter>,
    dns_flips: Family<Site, Counter>,
}

impl FailoverMetrics {
    /// Registers every family into `registry` (prefix it with `bloodraven` first).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            failovers: Family::default(),
            state_transitions: Family::default(),
            site_state: Family::default(),
            replication_lag: Family::default(),
            replication_running: Family::default(),
            divergent: Family::default(),
            planned_failovers: Family::default(),
            planned_duration: Family::new_with_constructor(planned_duration_histogram),
            poll_latency: Family::new_with_constructor(poll_latency_histogram),
            split_brain_resolves: Family::default(),
            reclones: Family::default(),
            hook_failures: Counter::default(),
            taint_operations: Family::default(),
            dns_flips: Family::default(),
        };
        registry.register(
            "failovers",
            "Automatic promotions confirmed writable",
            metrics.failovers.clone(),
        );
        registry.register(
            "state_transitions",
            "Debounced per-site state changes",
            metrics.state_transitions.clone(),
        );
        registry.register(
            "site_state",
            "Per-site state (state-set: 1 for the current state)",
            metrics.site_state.clone(),
        );
        registry.register(
            "replication_lag_seconds",
            "Seconds_Behind_Source of each replica; -1 when NULL or not a replica",
            metrics.replication_lag.clone(),
        );
        registry.register(
            "replication_running",
            "Whether each replication thread runs (1) or not (0)",
            metrics.replication_running.clone(),
        );
        registry.register(
            "divergent_transactions",
            "Transactions a site holds that the primary lacks",
            metrics.divergent.clone(),
        );
        registry.register(
            "planned_failovers",
            "Planned switchovers by result",
            metrics.planned_failovers.clone(),
        );
        registry.register(
            "planned_failover_duration_seconds",
            "Planned switchover duration, acceptance to terminal",
            metrics.planned_duration.clone(),
        );
        registry.register(
            "poll_latency_seconds",
            "MySQL probe duration per site",
            metrics.poll_latency.clone(),
        );
        registry.register(
            "split_brain_auto_resolve",
            "Split brains resolved by sitePriorities",
            metrics.split_brain_resolves.clone(),
        );
        registry.register(
            "reclone_operations",
            "Reclones started",
            metrics.reclones.clone(),
        );
        registry.register(
            "hook_failures",
            "Failover hook runs that failed or timed out",
            metrics.hook_failures.clone(),
        );
        registry.register(
            "taint_operations",
            "Node taints put on (add) or taken off (remove) for a site, one per node",
            metrics.taint_operations.clone(),
        );
        registry.register(
            "dns_flips",
            "DNSEndpoint target changes, by the site it now points at",
            metrics.dns_flips.clone(),
        );
        metrics
    }

    /// A node's taint for `site` was put on (`add`) or taken off (`remove`).
    pub fn taint_operation(&self, site: &str, added: bool) {
        self.taint_operations
            .get_or_create(&TaintAction {
                site: site.to_owned(),
                action: if added { "add" } else { "remove" },
            })
            .inc();
    }

    /// The group's DNSEndpoint now points at `site`.
    pub fn dns_flip(&self, site: &str) {
        self.dns_flips
            .get_or_create(&Site {
                site: site.to_owned(),
            })
            .inc();
    }

    pub fn observe_poll(&self, site: &str, elapsed: Duration) {
        self.poll_latency
            .get_or_create(&Site {
                site: site.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts what the events of one decision report.
    pub fn record_events(&self, events: &[Event]) {
        for event in events {
            let site = event.site.clone().unwrap_or_default();
            match event.reason {
                EventReason::SiteStateChanged => {
                    if let Some(t) = event.transition {
                        self.state_transitions
                            .get_or_create(&Transition {
                                site,
                                from: t.from.as_str().to_owned(),
                                to: t.to.as_str().to_owned(),
                            })
                            .inc();
                    }
                }
                EventReason::SplitBrainResolved => {
                    self.split_brain_resolves
                        .get_or_create(&PreferSite { prefer_site: site })
                        .inc();
                }
                EventReason::RecloneRequested => {
                    self.reclones.get_or_create(&Site { site }).inc();
                }
                EventReason::PlannedFailoverRejected => {
                    self.planned(&site, "rejected");
                }
                _ => {}
            }
        }
    }

    /// A promotion confirmed writable. Planned ones are counted by [`Self::planned_finished`].
    pub fn failover(&self, target: &str) {
        self.failovers
            .get_or_create(&TargetSite {
                target_site: target.to_owned(),
            })
            .inc();
    }

    fn planned(&self, target: &str, result: &str) {
        self.planned_failovers
            .get_or_create(&PlannedResult {
                target_site: target.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// A planned failover that reached a terminal phase after it was accepted.
    pub fn planned_finished(
        &self,
        target: &str,
        phase: PlannedPhase,
        lag_timeout: bool,
        duration: Duration,
    ) {
        let result = match (phase, lag_timeout) {
            (PlannedPhase::Succeeded, _) => "success",
            (_, true) => "failed_timeout",
            _ => "failed_other",
        };
        self.planned(target, result);
        self.planned_duration
            .get_or_create(&TargetSite {
                target_site: target.to_owned(),
            })
            .observe(duration.as_secs_f64());
    }

    /// Refreshes the gauges from the latest status.
    pub fn record_status(&self, status: &GroupStatus, state: &EngineState, policy: &GroupPolicy) {
        const STATES: [SiteState; 4] = [
            SiteState::Unknown,
            SiteState::Writable,
            SiteState::ReadOnly,
            SiteState::Unreachable,
        ];
        for site in &status.sites {
            let role = role_label(policy.role(&site.name).unwrap_or(site.role));
            for state in STATES {
                self.site_state
                    .get_or_create(&SiteRoleState {
                        site: site.name.clone(),
                        role: role.to_owned(),
                        state: state.as_str().to_owned(),
                    })
                    .set(i64::from(site.state == state));
            }
            let lag = site
                .seconds_behind_source
                .map_or(-1.0, |s| f64::from(u32::try_from(s).unwrap_or(u32::MAX)));
            self.replication_lag
                .get_or_create(&SiteRoleLabels {
                    site: site.name.clone(),
                    role: role.to_owned(),
                })
                .set(lag);
            let replica = state
                .site(&site.name)
                .and_then(|t| t.last_probe.as_ref())
                .and_then(|p| p.replica.as_ref());
            let threads = [
                ("io", replica.is_some_and(|r| r.io_running)),
                ("sql", replica.is_some_and(|r| r.sql_running)),
            ];
            for (thread, running) in threads {
                self.replication_running
                    .get_or_create(&ThreadLabels {
                        site: site.name.clone(),
                        role: role.to_owned(),
                        thread: thread.to_owned(),
                    })
                    .set(i64::from(running));
            }
            self.divergent
                .get_or_create(&Site {
                    site: site.name.clone(),
                })
                .set(i64::try_from(site.divergent_transaction_count).unwrap_or(i64::MAX));
        }
    }
}

fn role_label(role: SiteRole) -> &'static str {
    match role {
        SiteRole::PrimaryCandidate => "primary-candidate",
        SiteRole::DrOnly => "dr-only",
        SiteRole::ReadOnly => "read-only",
    }
}

impl DecisionObserver for FailoverMetrics {
    fn decided(&self, report: &DecisionReport<'_>) {
        for obs in &report.input.observations {
            self.observe_poll(&obs.site, obs.elapsed);
        }
        let decision = report.decision;
        self.record_events(&decision.events);
        let emergency = decision
            .state
            .last_failover
            .as_ref()
            .is_some_and(|r| r.kind == FailoverKind::Emergency);
        for event in &decision.events {
            if event.reason == EventReason::FailoverExecuted
                && emergency
                && let Some(site) = &event.site
            {
                self.failover(site);
            }
        }
        self.record_status(&decision.status, &decision.state, report.policy);
        self.count_planned(report.previous, decision);
    }

    fn hook_failed(&self) {
        self.hook_failures.inc();
    }
}

impl FailoverMetrics {
    /// Counts a planned failover that was accepted earlier and ended in this decision.
    fn count_planned(&self, previous: &EngineState, decision: &Decision) {
        let Some(now) = &decision.state.planned else {
            return;
        };
        if !now.phase.is_terminal() {
            return;
        }
        let ended_now = previous.planned.as_ref().is_none_or(|before| {
            before.started_at != now.started_at || !before.phase.is_terminal()
        });
        let rejected = decision
            .events
            .iter()
            .any(|e| e.reason == EventReason::PlannedFailoverRejected);
        if ended_now && !rejected {
            let duration = now
                .completed_at
                .unwrap_or(now.phase_since)
                .since(now.started_at);
            self.planned_finished(
                &now.target,
                now.phase,
                now.reason == Some(PlannedReason::LagTimeout),
                duration,
            );
        }
    }
}

/// The Prometheus text exposition (format 0.0.4) of `registry`.
pub fn encode(registry: &Registry) -> String {
    super::exposition::prometheus_text(registry)
}
