//! Fixture → verdict table tests for the decision core, orchestrator style: each test builds
//! a topology, runs `decide`, and checks the actions, events and status it returns.

mod ambiguity;
mod debounce;
mod matrix;
mod planned;
mod properties;
mod recovery;
mod regressions;
mod serialization;

use std::time::Duration;

use super::*;
use crate::error::Category;
use crate::failover::gtid::GtidSet;

const UUIDS: [(&str, &str); 4] = [
    ("iad", "00000000-0000-0000-0000-00000000000a"),
    ("pdx", "00000000-0000-0000-0000-00000000000b"),
    ("sea", "00000000-0000-0000-0000-00000000000c"),
    ("dr", "00000000-0000-0000-0000-00000000000d"),
];

/// `g("iad:1-10,pdx:1-2")`: a GTID set with site names standing in for server UUIDs.
pub(super) fn g(spec: &str) -> GtidSet {
    let mut text = spec.to_owned();
    for (site, uuid) in UUIDS {
        text = text.replace(&format!("{site}:"), &format!("{uuid}:"));
    }
    GtidSet::parse(&text).expect("test GTID spec")
}

pub(super) fn site(name: &str, role: SiteRole) -> SitePolicy {
    SitePolicy {
        name: name.to_owned(),
        role,
        address: format!("{name}:3306"),
    }
}

pub(super) fn pair() -> GroupPolicy {
    GroupPolicy::with_sites(vec![
        site("iad", SiteRole::PrimaryCandidate),
        site("pdx", SiteRole::PrimaryCandidate),
    ])
}

pub(super) fn trio() -> GroupPolicy {
    GroupPolicy::with_sites(vec![
        site("iad", SiteRole::PrimaryCandidate),
        site("pdx", SiteRole::PrimaryCandidate),
        site("sea", SiteRole::PrimaryCandidate),
        site("dr", SiteRole::DrOnly),
    ])
}

pub(super) fn probe(
    name: &str,
    read_only: bool,
    gtid: &str,
    source: Option<&str>,
) -> SiteObservation {
    SiteObservation {
        site: name.to_owned(),
        result: Ok(SiteProbe {
            server_uuid: UUIDS
                .iter()
                .find(|u| u.0 == name)
                .map_or("", |u| u.1)
                .to_owned(),
            read_only,
            super_read_only: read_only,
            gtid_executed: g(gtid),
            gtid_purged: GtidSet::default(),
            replica: source.map(|s| ReplicaStatus {
                source_host: s.to_owned(),
                source_port: 3306,
                io_running: true,
                sql_running: true,
                seconds_behind_source: Some(0),
                retrieved_gtid_set: g(gtid),
            }),
        }),
        elapsed: Duration::from_millis(2),
    }
}

pub(super) fn writable(name: &str, gtid: &str) -> SiteObservation {
    probe(name, false, gtid, None)
}

pub(super) fn replica(name: &str, source: &str, gtid: &str) -> SiteObservation {
    probe(name, true, gtid, Some(source))
}

/// Read-only with no replication channel: a fenced old primary.
pub(super) fn fenced(name: &str, gtid: &str) -> SiteObservation {
    probe(name, true, gtid, None)
}

pub(super) fn down(name: &str, failure: ProbeFailure) -> SiteObservation {
    SiteObservation {
        site: name.to_owned(),
        result: Err(failure),
        elapsed: Duration::from_secs(1),
    }
}

pub(super) fn ok(id: ActionId, value: ActionValue) -> ActionOutcome {
    ActionOutcome {
        id,
        result: OutcomeResult::Ok { value },
    }
}

/// Drives `decide` poll by poll, 2 s apart, feeding outcomes back.
pub(super) struct Harness {
    pub(super) policy: GroupPolicy,
    pub(super) state: EngineState,
    pub(super) now: Timestamp,
    pub(super) last: Option<Decision>,
    /// Sidecar reports fed to every poll until changed.
    pub(super) sidecars: Vec<SidecarReport>,
}

impl Harness {
    pub(super) fn new(policy: GroupPolicy) -> Self {
        Self {
            policy,
            state: EngineState::new(),
            now: Timestamp(1_000_000),
            last: None,
            sidecars: Vec::new(),
        }
    }

    pub(super) fn poll_with(
        &mut self,
        observations: Vec<SiteObservation>,
        outcomes: Vec<ActionOutcome>,
        requests: Vec<Request>,
    ) -> Decision {
        self.now = self.now.plus(Duration::from_secs(2));
        let input = PollInput {
            observations,
            outcomes,
            requests,
            sidecars: self.sidecars.clone(),
        };
        let decision = decide(&self.state, &self.policy, &input, self.now);
        self.state = decision.state.clone();
        self.last = Some(decision.clone());
        decision
    }

    /// A poll where every previous action succeeded with a plain value.
    pub(super) fn poll(&mut self, observations: Vec<SiteObservation>) -> Decision {
        let outcomes = self.all_ok();
        self.poll_with(observations, outcomes, Vec::new())
    }

    pub(super) fn request(
        &mut self,
        observations: Vec<SiteObservation>,
        request: Request,
    ) -> Decision {
        let outcomes = self.all_ok();
        self.poll_with(observations, outcomes, vec![request])
    }

    pub(super) fn all_ok(&self) -> Vec<ActionOutcome> {
        self.last.as_ref().map_or_else(Vec::new, |d| {
            d.actions
                .iter()
                .map(|a| ok(a.id, default_value(&a.kind)))
                .collect()
        })
    }

    pub(super) fn advance(&mut self, d: Duration) {
        self.now = self.now.plus(d);
    }

    /// iad writable primary, pdx (and sea) replicating from it, until Healthy.
    pub(super) fn healthy(policy: GroupPolicy) -> Self {
        let mut h = Self::new(policy);
        for _ in 0..3 {
            let obs = h.steady_observations("iad:1-10");
            h.poll(obs);
        }
        assert_eq!(h.state.active_site.as_deref(), Some("iad"));
        h
    }

    pub(super) fn steady_observations(&self, gtid: &str) -> Vec<SiteObservation> {
        self.policy
            .sites
            .iter()
            .map(|s| {
                if s.name == "iad" {
                    writable("iad", gtid)
                } else {
                    replica(&s.name, "iad", gtid)
                }
            })
            .collect()
    }
}

pub(super) fn default_value(kind: &ActionKind) -> ActionValue {
    match kind {
        ActionKind::Promote { .. } => ActionValue::Promoted {
            gtid: g("iad:1-10"),
        },
        ActionKind::KillConnections { .. } => ActionValue::Killed(SessionSweep::default()),
        ActionKind::DrainRelay { .. } => ActionValue::Drained {
            outcome: DrainResult::Drained,
        },
        ActionKind::WaitForGtid { .. } => ActionValue::GtidWait { reached: true },
        _ => ActionValue::Done,
    }
}

pub(super) fn kinds(d: &Decision) -> Vec<String> {
    d.actions
        .iter()
        .map(|a| format!("{}:{}", a.kind.name(), a.kind.site()))
        .collect()
}

pub(super) fn reasons(d: &Decision) -> Vec<EventReason> {
    d.events.iter().map(|e| e.reason).collect()
}

pub(super) fn promotes(d: &Decision) -> Option<&str> {
    d.actions.iter().find_map(|a| match &a.kind {
        ActionKind::Promote { site } => Some(site.as_str()),
        _ => None,
    })
}

// ---- shared scenarios -------------------------------------------------------------------

pub(super) fn into_failover(h: &mut Harness) -> Decision {
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    let d = h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    assert_eq!(promotes(&d), Some("pdx"));
    d
}

/// Failed over from iad (still down) to pdx, which is confirmed and has taken writes.
pub(super) fn after_failover() -> Harness {
    let mut h = Harness::healthy(pair());
    into_failover(&mut h);
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        writable("pdx", "iad:1-10"),
    ]);
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        writable("pdx", "iad:1-10,pdx:1-2"),
    ]);
    assert_eq!(h.state.active_site.as_deref(), Some("pdx"));
    h
}

pub(super) fn plan(target: &str) -> Request {
    Request::PlannedFailover {
        target: target.to_owned(),
        max_lag_wait: None,
    }
}
