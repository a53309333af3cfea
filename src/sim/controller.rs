//! The simulated controller: it probes the world, runs the real `decide`, persists the
//! state write-ahead, executes the actions (with injected failures) and may crash at any
//! point of that sequence.

use super::invariants::Violation;
use super::run::Sim;
use crate::error::Category;
use crate::failover::sequence::{ActionSequence, Gate};
use crate::failover::{
    Action, ActionKind, ActionOutcome, Decision, EngineState, EventReason, OutcomeResult,
    PollInput, Request, Timestamp, decide,
};

/// The simulated controller: persisted state, undelivered outcomes, pending requests.
pub(super) struct Controller {
    pub(super) persisted: EngineState,
    pub(super) outcomes: Vec<ActionOutcome>,
    pub(super) requests: Vec<Request>,
    pub(super) next_poll: Timestamp,
    pub(super) down_until: Option<Timestamp>,
    /// Set by a restart fault: dies during the next poll at this point.
    pub(super) crash_at: Option<CrashPoint>,
    pub(super) last_decision: Option<Decision>,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum CrashPoint {
    /// After deciding, before persisting: the decision is lost, nothing executed.
    BeforePersist,
    /// After persisting and executing this many actions: their outcomes are lost.
    AfterActions(usize),
    /// The state write is refused: nothing is persisted or executed, and the controller
    /// lives on (the shipped loop's reaction to a failed save).
    SaveRefused,
}

impl Sim<'_> {
    pub(super) fn controller_due(&mut self) -> bool {
        if let Some(until) = self.controller.down_until {
            if self.now < until {
                return false;
            }
            self.controller.down_until = None;
            self.log("controller restarted from persisted state");
        }
        self.now >= self.controller.next_poll
    }

    pub(super) fn poll(&mut self, faulty: bool) -> Option<Violation> {
        self.stats.polls += 1;
        let names: Vec<String> = self.world.sites.iter().map(|s| s.name.clone()).collect();
        let address_of = |i: usize| names.get(i).cloned().unwrap_or_default();
        let observations = (0..self.world.sites.len())
            .map(|i| {
                let blip = faulty && self.rng.chance(self.config.probe_blip);
                self.world.probe(i, blip, &address_of)
            })
            .collect::<Vec<_>>();
        self.seen = observations.iter().map(|o| o.result.is_ok()).collect();
        let completed = self.last_poll_completed;
        if let Some(v) = self
            .checker
            .two_writable(&self.world, &self.seen, completed, self.now)
        {
            return Some(v);
        }
        let input = PollInput {
            observations,
            outcomes: std::mem::take(&mut self.controller.outcomes),
            requests: std::mem::take(&mut self.controller.requests),
            // The simulated world has no sidecars: every decision is the probe-only one.
            sidecars: Vec::new(),
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
        self.trace_decision(&input, &decision);
        self.count_events(&decision);
        let crash = self.controller.crash_at.take();
        if matches!(crash, Some(CrashPoint::BeforePersist)) {
            self.crash_controller("before persisting");
            return None;
        }
        if matches!(crash, Some(CrashPoint::SaveRefused)) {
            self.stats.refused_writes += 1;
            self.log("state write refused: acting on nothing");
            // As the loop does: the decided state is kept in memory and its actions are
            // reported as not run, so the next decision knows none of them happened.
            self.controller.outcomes = decision
                .actions
                .iter()
                .map(|a| ActionOutcome {
                    id: a.id,
                    result: OutcomeResult::NotRun,
                })
                .collect();
            self.controller.persisted = decision.state.clone();
            self.last_poll_completed = true;
            self.controller.next_poll = self
                .now
                .plus(decision.repoll_after.unwrap_or(self.config.poll_interval));
            self.controller.last_decision = Some(decision);
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
        self.last_poll_completed = true;
        self.controller.next_poll = self
            .now
            .plus(decision.repoll_after.unwrap_or(self.config.poll_interval));
        self.controller.last_decision = Some(decision);
        None
    }

    fn crash_controller(&mut self, when: &str) {
        self.stats.controller_restarts += 1;
        self.last_poll_completed = false;
        self.log(format!("controller crashed {when}"));
        self.controller.outcomes.clear();
        self.controller.requests.clear();
        self.controller.down_until = Some(self.now.plus(self.restart_for));
        self.controller.next_poll = self.now.plus(self.restart_for);
    }

    /// Runs actions in order under the loop's own [`ActionSequence`] rules. With `limit`,
    /// the controller dies after that many actions (outcomes are then discarded).
    fn execute(
        &mut self,
        actions: &[Action],
        limit: Option<usize>,
    ) -> Result<Vec<ActionOutcome>, Violation> {
        let mut outcomes = Vec::with_capacity(actions.len());
        let mut sequence = ActionSequence::new();
        for (n, action) in actions.iter().enumerate() {
            if limit.is_some_and(|l| n >= l) {
                break;
            }
            let result = match sequence.gate(action) {
                Gate::Run => {
                    let result = self.execute_one(action)?;
                    sequence.record(action, &result);
                    result
                }
                Gate::Skip(why) => why.outcome(),
            };
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
            if let Some(v) =
                self.checker
                    .promote(&self.world, &self.seen, target, action.purpose, self.now)
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

    fn count_events(&mut self, decision: &Decision) {
        for event in &decision.events {
            match event.reason {
                EventReason::FailoverExecuted => self.stats.failovers_executed += 1,
                EventReason::PlannedFailoverCompleted => self.stats.planned_completed += 1,
                EventReason::DataLossDetected => self.stats.divergences_reported += 1,
                EventReason::RecloneCompleted => self.stats.reclones_completed += 1,
                _ => {}
            }
        }
    }

    fn trace_decision(&mut self, input: &PollInput, decision: &Decision) {
        if decision.actions.is_empty() && decision.events.is_empty() {
            return;
        }
        // What the controller saw: W writable, R read-only, x refused, t timed out.
        let seen: String = input
            .observations
            .iter()
            .map(|o| match &o.result {
                Ok(p) if p.read_only => 'R',
                Ok(_) => 'W',
                Err(crate::failover::ProbeFailure::Refused) => 'x',
                Err(_) => 't',
            })
            .collect();
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
            "decide [{seen}]: actions [{}] events [{}]",
            actions.join(" "),
            events.join(" ")
        ));
    }
}
