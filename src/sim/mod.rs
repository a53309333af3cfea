//! A deterministic, seeded simulation of MySQL sites on a fake clock that drives the real
//! decision core and checks safety invariants on every step.
//!
//! One run: a group starts healthy; during the fault window, faults are drawn from the
//! seed (crashes that come back writable or fenced, hangs, one- and two-way partitions,
//! replication stalls, ambiguous and failed mutations, controller restarts, planned
//! failovers and reclone requests) while clients write to every writable site. Then the
//! faults stop and the group must settle within a bounded time. Every step checks the
//! invariants in [`invariants`]. The same seed always produces the same trace.

mod faults;
mod invariants;
mod rng;
mod world;

use std::time::Duration;

pub use invariants::{Invariant, Violation};

use crate::engine::failover::{
    Action, ActionKind, ActionOutcome, Decision, EngineState, GroupPolicy, OutcomeResult,
    PollInput, RecoveryLabel, Request, SitePolicy, SiteRole, Timestamp, decide,
};
use crate::error::Category;
use faults::{ActiveFault, FaultKind};
use invariants::Checker;
use rng::Rng;
use world::World;

/// Knobs of a simulation run. Probabilities are in parts per million.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    pub policy: GroupPolicy,
    pub tick: Duration,
    pub poll_interval: Duration,
    /// Faults are injected only during this window from the start.
    pub fault_window: Duration,
    /// How long the group may take to settle once faults stop.
    pub settle_budget: Duration,
    /// After settling, how long it must stay settled.
    pub settled_tail: Duration,
    /// Chance per tick that a new fault starts.
    pub fault_per_tick: u64,
    pub max_fault_duration: Duration,
    /// Chance per tick that a client writes to each writable site.
    pub write_per_tick: u64,
    /// Chance that a committed write is acknowledged to the client.
    pub ack: u64,
    /// Chance per tick that a replica applies its relay log.
    pub apply_per_tick: u64,
    /// Chance a mutation is applied but reports an error.
    pub ambiguous_action: u64,
    /// Chance a mutation (other than a fence) fails without being applied.
    pub failed_action: u64,
    /// Chance a probe of a healthy site times out anyway.
    pub probe_blip: u64,
    /// Chance per tick of a planned-failover request during the fault window.
    pub planned_per_tick: u64,
    /// Chance per tick of a reclone request for a random site during the fault window.
    pub reclone_per_tick: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        let site = |name: &str, role| SitePolicy {
            name: name.to_owned(),
            role,
            address: format!("{name}:3306"),
        };
        let mut policy = GroupPolicy::with_sites(vec![
            site("iad", SiteRole::PrimaryCandidate),
            site("pdx", SiteRole::PrimaryCandidate),
            site("sea", SiteRole::DrOnly),
        ]);
        policy.failover_cooldown = Duration::from_secs(30);
        policy.reassert_interval = Duration::from_secs(10);
        policy.divergence_recheck = Duration::from_secs(5);
        policy.max_lag_wait = Duration::from_secs(10);
        policy.drain_timeout = Duration::from_secs(2);
        Self {
            policy,
            tick: Duration::from_millis(100),
            poll_interval: Duration::from_secs(1),
            fault_window: Duration::from_secs(60),
            settle_budget: Duration::from_secs(90),
            settled_tail: Duration::from_secs(10),
            fault_per_tick: 15_000,
            max_fault_duration: Duration::from_secs(15),
            write_per_tick: 300_000,
            ack: 970_000,
            apply_per_tick: 700_000,
            ambiguous_action: 30_000,
            failed_action: 30_000,
            probe_blip: 5_000,
            planned_per_tick: 1_500,
            reclone_per_tick: 1_000,
        }
    }
}

/// Counters of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    pub ticks: u64,
    pub polls: u64,
    pub faults: u64,
    pub promotions: u64,
    pub acknowledged_writes: u64,
    pub reported_lost: u64,
    pub controller_restarts: u64,
    /// Milliseconds from the end of faults to the first settled poll.
    pub settled_after_ms: Option<u64>,
}

/// The result of one seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimReport {
    pub seed: u64,
    pub violation: Option<Violation>,
    /// What happened, one line per fault, decision with effects, and violation.
    pub trace: Vec<String>,
    pub stats: SimStats,
}

/// The result of many seeds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignReport {
    pub start_seed: u64,
    pub runs: u64,
    /// Reports of the seeds that broke an invariant.
    pub failures: Vec<SimReport>,
    pub total_polls: u64,
    pub total_promotions: u64,
    pub total_faults: u64,
}

/// Runs `count` seeds from `start_seed`.
pub fn campaign(start_seed: u64, count: u64, config: &SimConfig) -> CampaignReport {
    let mut report = CampaignReport {
        start_seed,
        ..CampaignReport::default()
    };
    for seed in start_seed..start_seed.saturating_add(count) {
        let run = run(seed, config);
        report.runs += 1;
        report.total_polls += run.stats.polls;
        report.total_promotions += run.stats.promotions;
        report.total_faults += run.stats.faults;
        if run.violation.is_some() {
            report.failures.push(run);
        }
    }
    report
}

/// The simulated controller: persisted state, undelivered outcomes, pending requests.
struct Controller {
    persisted: EngineState,
    outcomes: Vec<ActionOutcome>,
    requests: Vec<Request>,
    next_poll: Timestamp,
    down_until: Option<Timestamp>,
    /// Set by a restart fault: dies during the next poll at this point.
    crash_at: Option<CrashPoint>,
    last_decision: Option<Decision>,
}

#[derive(Debug, Clone, Copy)]
enum CrashPoint {
    /// After deciding, before persisting: the decision is lost, nothing executed.
    BeforePersist,
    /// After persisting and executing this many actions: their outcomes are lost.
    AfterActions(usize),
}

struct Sim<'a> {
    config: &'a SimConfig,
    rng: Rng,
    world: World,
    controller: Controller,
    checker: Checker,
    faults: Vec<ActiveFault>,
    now: Timestamp,
    start: Timestamp,
    trace: Vec<String>,
    stats: SimStats,
    last_reclone_request: Option<Timestamp>,
    /// How long the controller stays down after its next crash.
    restart_for: Duration,
}

/// Runs one seed to completion or to the first violated invariant.
pub fn run(seed: u64, config: &SimConfig) -> SimReport {
    let start = Timestamp(1_700_000_000_000);
    let mut sim = Sim {
        config,
        rng: Rng::new(seed),
        world: World::new(&config.policy.sites),
        controller: Controller {
            persisted: EngineState::new(),
            outcomes: Vec::new(),
            requests: Vec::new(),
            next_poll: start,
            down_until: None,
            crash_at: None,
            last_decision: None,
        },
        checker: Checker::new(&config.policy),
        faults: Vec::new(),
        now: start,
        start,
        trace: Vec::new(),
        stats: SimStats::default(),
        last_reclone_request: None,
        restart_for: Duration::ZERO,
    };
    let violation = sim.run_to_end();
    if let Some(v) = &violation {
        let line = format!("{} VIOLATION {}: {}", sim.stamp(), v.invariant, v.detail);
        sim.trace.push(line);
    }
    SimReport {
        seed,
        violation,
        trace: sim.trace,
        stats: sim.stats,
    }
}

impl Sim<'_> {
    fn stamp(&self) -> String {
        let ms = self.now.since(self.start).as_millis();
        format!("t={}.{:01}s", ms / 1000, (ms % 1000) / 100)
    }

    fn log(&mut self, line: impl AsRef<str>) {
        let line = format!("{} {}", self.stamp(), line.as_ref());
        self.trace.push(line);
    }

    fn run_to_end(&mut self) -> Option<Violation> {
        let quiet_at = self.start.plus(self.config.fault_window);
        let deadline = quiet_at.plus(self.config.settle_budget);
        let end = deadline.plus(self.config.settled_tail);
        let mut settled_since: Option<Timestamp> = None;
        while self.now < end {
            self.stats.ticks += 1;
            let faulty = self.now < quiet_at;
            self.tick_faults(faulty);
            self.world
                .client_writes(&mut self.rng, self.config.write_per_tick, self.config.ack);
            self.world
                .replicate(&mut self.rng, self.config.apply_per_tick);
            if faulty {
                self.maybe_request();
            } else {
                self.admin();
            }
            if self.controller_due() {
                if let Some(v) = self.poll() {
                    return Some(v);
                }
                if !faulty {
                    match self.check_settled() {
                        Ok(()) => {
                            if settled_since.is_none() {
                                settled_since = Some(self.now);
                                self.stats.settled_after_ms = Some(
                                    self.now
                                        .since(quiet_at)
                                        .as_millis()
                                        .try_into()
                                        .unwrap_or(u64::MAX),
                                );
                                self.log("settled");
                            }
                        }
                        Err(why) => {
                            if settled_since.is_some() || self.now >= deadline {
                                return Some(Violation {
                                    invariant: Invariant::NoConvergence,
                                    at: self.now,
                                    detail: why,
                                });
                            }
                        }
                    }
                }
            }
            if let Some(v) = self.checker.silent_loss(&self.world, self.now) {
                return Some(v);
            }
            self.now = self.now.plus(self.config.tick);
        }
        if settled_since.is_none() {
            return Some(Violation {
                invariant: Invariant::NoConvergence,
                at: self.now,
                detail: "never settled".to_owned(),
            });
        }
        self.stats.acknowledged_writes = self.world.acked.count();
        self.stats.reported_lost = self.checker.reported.count();
        None
    }

    fn check_settled(&self) -> Result<(), String> {
        let Some(decision) = &self.controller.last_decision else {
            return Err("no decision yet".to_owned());
        };
        invariants::converged(
            &self.world,
            decision,
            &self.config.policy,
            &self.checker.reported,
        )
    }

    // ---- faults and requests ----------------------------------------------------------

    fn tick_faults(&mut self, faulty: bool) {
        let now = self.now;
        let (ended, active): (Vec<ActiveFault>, Vec<ActiveFault>) =
            std::mem::take(&mut self.faults)
                .into_iter()
                .partition(|f| f.until <= now || !faulty);
        self.faults = active;
        for f in &ended {
            let line = format!("fault ends: {}", f.kind);
            self.log(line);
        }
        if faulty && self.rng.chance(self.config.fault_per_tick) {
            let kind = faults::draw(&mut self.rng, self.world.sites.len());
            let max = u64::try_from(self.config.max_fault_duration.as_millis()).unwrap_or(u64::MAX);
            let lasting = Duration::from_millis(self.rng.between(300, max.max(300)));
            self.stats.faults += 1;
            self.log(format!("fault: {kind} for {lasting:?}"));
            if kind == FaultKind::RestartController {
                self.schedule_restart(lasting);
            } else {
                self.faults.push(ActiveFault {
                    kind,
                    until: now.plus(lasting),
                });
            }
        }
        if !ended.is_empty() || !self.faults.is_empty() {
            faults::reconcile(&mut self.world, &self.faults, &ended);
        }
    }

    fn schedule_restart(&mut self, down_for: Duration) {
        let point = if self.rng.chance(300_000) {
            CrashPoint::BeforePersist
        } else {
            CrashPoint::AfterActions(usize::try_from(self.rng.below(4)).unwrap_or(0))
        };
        self.controller.crash_at = Some(point);
        // The restart itself is applied when the next poll reaches the crash point.
        self.controller.down_until = None;
        self.restart_for = down_for.min(Duration::from_secs(5));
    }

    fn maybe_request(&mut self) {
        if self.rng.chance(self.config.planned_per_tick) {
            let candidates: Vec<String> = self
                .config
                .policy
                .sites
                .iter()
                .filter(|s| s.role.is_candidate())
                .map(|s| s.name.clone())
                .collect();
            if let Some(target) = self.rng.pick(&candidates).cloned() {
                self.log(format!("request: planned failover to {target}"));
                self.controller.requests.push(Request::PlannedFailover {
                    target,
                    max_lag_wait: None,
                });
            }
        }
        if self.rng.chance(self.config.reclone_per_tick) {
            let names: Vec<String> = self.world.sites.iter().map(|s| s.name.clone()).collect();
            if let Some(site) = self.rng.pick(&names).cloned() {
                self.log(format!("request: reclone {site}"));
                self.controller.requests.push(Request::Reclone { site });
            }
        }
    }

    /// After the faults: an operator reclones sites the engine reports as diverged.
    fn admin(&mut self) {
        let Some(decision) = &self.controller.last_decision else {
            return;
        };
        if self
            .last_reclone_request
            .is_some_and(|t| !self.now.has_elapsed(t, Duration::from_secs(5)))
        {
            return;
        }
        let diverged = decision.status.sites.iter().find(|s| {
            s.divergent_transaction_count > 0
                && s.recovery_state != RecoveryLabel::RecoveryInProgress
        });
        if let Some(site) = diverged.map(|s| s.name.clone()) {
            self.last_reclone_request = Some(self.now);
            self.log(format!("admin: reclone {site}"));
            self.controller.requests.push(Request::Reclone { site });
        }
    }

    // ---- the controller -----------------------------------------------------------------

    fn controller_due(&mut self) -> bool {
        if let Some(until) = self.controller.down_until {
            if self.now < until {
                return false;
            }
            self.controller.down_until = None;
            self.log("controller restarted from persisted state");
        }
        self.now >= self.controller.next_poll
    }

    fn poll(&mut self) -> Option<Violation> {
        self.stats.polls += 1;
        if let Some(v) = self.checker.two_writable(&self.world, self.now) {
            return Some(v);
        }
        let names: Vec<String> = self.world.sites.iter().map(|s| s.name.clone()).collect();
        let address_of = |i: usize| names.get(i).cloned().unwrap_or_default();
        let observations = (0..self.world.sites.len())
            .map(|i| {
                let blip = self.rng.chance(self.config.probe_blip);
                self.world.probe(i, blip, &address_of)
            })
            .collect();
        let input = PollInput {
            observations,
            outcomes: std::mem::take(&mut self.controller.outcomes),
            requests: std::mem::take(&mut self.controller.requests),
        };
        let decision = decide(
            &self.controller.persisted,
            &self.config.policy,
            &input,
            self.now,
        );
        if let Some(v) = self.checker.decision(&input, &decision, self.now) {
            return Some(v);
        }
        self.trace_decision(&decision);
        let crash = self.controller.crash_at.take();
        if matches!(crash, Some(CrashPoint::BeforePersist)) {
            self.crash_controller("before persisting");
            return None;
        }
        self.controller.persisted = decision.state.clone();
        let limit = match crash {
            Some(CrashPoint::AfterActions(n)) => Some(n),
            _ => None,
        };
        let outcomes = match self.execute(&decision.actions, limit) {
            Ok(outcomes) => outcomes,
            Err(v) => return Some(v),
        };
        if crash.is_some() {
            self.crash_controller("mid-execution");
            return None;
        }
        self.controller.outcomes = outcomes;
        self.controller.next_poll = self
            .now
            .plus(decision.repoll_after.unwrap_or(self.config.poll_interval));
        self.controller.last_decision = Some(decision);
        None
    }

    fn crash_controller(&mut self, when: &str) {
        self.stats.controller_restarts += 1;
        self.log(format!("controller crashed {when}"));
        self.controller.outcomes.clear();
        self.controller.requests.clear();
        self.controller.down_until = Some(self.now.plus(self.restart_for));
        self.controller.next_poll = self.now.plus(self.restart_for);
    }

    /// Runs actions in order; stops after a fatal one that did not succeed. With `limit`,
    /// the controller dies after that many actions (outcomes are then discarded).
    fn execute(
        &mut self,
        actions: &[Action],
        limit: Option<usize>,
    ) -> Result<Vec<ActionOutcome>, Violation> {
        let mut outcomes = Vec::with_capacity(actions.len());
        let mut stopped = false;
        for (n, action) in actions.iter().enumerate() {
            if limit.is_some_and(|l| n >= l) {
                break;
            }
            let result = if stopped {
                OutcomeResult::NotRun
            } else {
                self.execute_one(action)?
            };
            if action.fatal && !result.succeeded() {
                stopped = true;
            }
            outcomes.push(ActionOutcome {
                id: action.id,
                result,
            });
        }
        Ok(outcomes)
    }

    fn execute_one(&mut self, action: &Action) -> Result<OutcomeResult, Violation> {
        let kind = &action.kind;
        let mutating = matches!(
            kind,
            ActionKind::Fence { .. }
                | ActionKind::Promote { .. }
                | ActionKind::Unfence { .. }
                | ActionKind::ReplicateFrom { .. }
                | ActionKind::Clone { .. }
        );
        let fence = matches!(kind, ActionKind::Fence { .. });
        // Fences are never failed by injection: partitions already fail them for real.
        if mutating && !fence && self.rng.chance(self.config.failed_action) {
            self.log(format!("inject: {} {} failed", kind.name(), kind.site()));
            return Ok(OutcomeResult::Failed {
                category: Category::Unavailable,
            });
        }
        if let ActionKind::Promote { site } = kind
            && let Some(target) = self.world.index(site)
            && self.world.observable(target)
        {
            if let Some(v) = self
                .checker
                .promote(&self.world, target, action.purpose, self.now)
            {
                return Err(v);
            }
            if !self.world.writable(target) {
                self.stats.promotions += 1;
            }
        }
        match self.world.apply(kind, &mut self.rng) {
            Ok(value) => {
                if mutating && self.rng.chance(self.config.ambiguous_action) {
                    self.log(format!(
                        "inject: {} {} applied but errored",
                        kind.name(),
                        kind.site()
                    ));
                    Ok(OutcomeResult::Failed {
                        category: Category::Timeout,
                    })
                } else {
                    Ok(OutcomeResult::Ok { value })
                }
            }
            Err(()) => Ok(OutcomeResult::Failed {
                category: Category::Unavailable,
            }),
        }
    }

    fn trace_decision(&mut self, decision: &Decision) {
        if decision.actions.is_empty() && decision.events.is_empty() {
            return;
        }
        let actions: Vec<String> = decision
            .actions
            .iter()
            .map(|a| format!("{}:{}", a.kind.name(), a.kind.site()))
            .collect();
        let events: Vec<String> = decision
            .events
            .iter()
            .map(|e| {
                format!(
                    "{:?}{}",
                    e.reason,
                    e.site
                        .as_deref()
                        .map(|s| format!("({s})"))
                        .unwrap_or_default()
                )
            })
            .collect();
        self.log(format!(
            "decide: actions [{}] events [{}]",
            actions.join(" "),
            events.join(" ")
        ));
    }
}
