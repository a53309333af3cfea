//! One simulation run: the fake clock, the fault schedule, clients and replication, and
//! the settle check once faults stop.

use std::time::Duration;

use super::controller::{Controller, CrashPoint};
use super::faults::{self, ActiveFault, FaultKind};
use super::invariants::{self, Checker, Invariant, Violation};
use super::rng::Rng;
use super::world::World;
use super::{SimConfig, SimReport, SimStats};
use crate::failover::{EngineState, RecoveryLabel, Request, Timestamp};

pub(super) struct Sim<'a> {
    pub(super) config: &'a SimConfig,
    pub(super) rng: Rng,
    pub(super) world: World,
    pub(super) controller: Controller,
    pub(super) checker: Checker,
    pub(super) faults: Vec<ActiveFault>,
    pub(super) now: Timestamp,
    pub(super) start: Timestamp,
    pub(super) trace: Vec<String>,
    pub(super) stats: SimStats,
    pub(super) last_reclone_request: Option<Timestamp>,
    /// How long the controller stays down after its next crash.
    pub(super) restart_for: Duration,
    /// Whether the previous poll executed all its actions (no controller crash).
    pub(super) last_poll_completed: bool,
    /// Which sites answered this poll's probe.
    pub(super) seen: Vec<bool>,
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
        last_poll_completed: true,
        seen: Vec::new(),
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
    pub(super) fn stamp(&self) -> String {
        let ms = self.now.since(self.start).as_millis();
        format!("t={}.{:01}s", ms / 1000, (ms % 1000) / 100)
    }

    pub(super) fn log(&mut self, line: impl AsRef<str>) {
        let line = format!("{} {}", self.stamp(), line.as_ref());
        self.trace.push(line);
    }

    fn run_to_end(&mut self) -> Option<Violation> {
        let faults_from = self.start.plus(self.config.warmup);
        let quiet_at = faults_from.plus(self.config.fault_window);
        let deadline = quiet_at.plus(self.config.settle_budget);
        let end = deadline.plus(self.config.settled_tail);
        let mut settled_since: Option<Timestamp> = None;
        while self.now < end {
            self.stats.ticks += 1;
            let faulty = self.now >= faults_from && self.now < quiet_at;
            let settling = self.now >= quiet_at;
            if settling {
                // A restart drawn near the end must not land after the faults stop.
                self.controller.crash_at = None;
            }
            self.tick_faults(faulty);
            self.world
                .client_writes(&mut self.rng, self.config.write_per_tick, self.config.ack);
            self.world
                .replicate(&mut self.rng, self.config.apply_per_tick);
            if faulty {
                self.maybe_request();
            } else if settling {
                self.admin();
            }
            if self.controller_due() {
                if let Some(v) = self.poll(faulty) {
                    return Some(v);
                }
                if settling {
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
                        Err((invariant, why)) => {
                            let lost = invariant == Invariant::SilentDataLoss;
                            if lost || settled_since.is_some() || self.now >= deadline {
                                return Some(Violation {
                                    invariant,
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
        self.stats.acknowledged_reported_lost =
            self.world.acked.intersect(&self.checker.reported).count();
        None
    }

    fn check_settled(&self) -> Result<(), (Invariant, String)> {
        let Some(decision) = &self.controller.last_decision else {
            return Err((Invariant::NoConvergence, "no decision yet".to_owned()));
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
            } else if kind == FaultKind::LeaderChange {
                // The new leader acts once the old lease has expired.
                self.stats.leader_changes += 1;
                self.schedule_restart(self.config.lease_duration);
            } else if kind == FaultKind::StaleStatusWrite {
                self.controller.crash_at = Some(CrashPoint::SaveRefused);
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
}
