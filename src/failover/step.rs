//! The working context of one `decide` call: the state being built, this poll's fresh
//! probes, and the actions and events collected so far.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::action::{Action, ActionId, ActionKind, ActionPurpose};
use super::event::{Event, EventReason};
use super::observe::{SidecarReport, SiteProbe};
use super::policy::{GroupPolicy, SiteRole};
use super::state::{EngineState, MatrixReason, SiteState, SiteTrack};
use super::time::Timestamp;
use crate::failover::gtid::GtidSet;

pub(super) struct Step<'a> {
    pub st: EngineState,
    pub policy: &'a GroupPolicy,
    pub now: Timestamp,
    /// Successful probes from this poll only; safety checks never use older data.
    pub fresh: BTreeMap<String, SiteProbe>,
    /// Fresh sidecar reports from this poll, for sites without a fresh probe of our own.
    sidecars: BTreeMap<String, SidecarReport>,
    pub actions: Vec<Action>,
    pub events: Vec<Event>,
    pub verdict: MatrixReason,
    raised: BTreeSet<(EventReason, Option<String>)>,
    /// Sites already fenced by this decision, so no site is fenced twice.
    fenced: BTreeSet<String>,
}

impl<'a> Step<'a> {
    pub fn new(st: EngineState, policy: &'a GroupPolicy, now: Timestamp) -> Self {
        Self {
            st,
            policy,
            now,
            fresh: BTreeMap::new(),
            sidecars: BTreeMap::new(),
            actions: Vec::new(),
            events: Vec::new(),
            verdict: MatrixReason::NoPrimary,
            raised: BTreeSet::new(),
            fenced: BTreeSet::new(),
        }
    }

    /// Keeps this poll's sidecar reports that are recent enough to mean anything.
    pub fn take_sidecar_reports(&mut self, reports: &[SidecarReport]) {
        for report in reports {
            if report.age <= self.policy.sidecar_report_max_age {
                self.sidecars.insert(report.site.clone(), report.clone());
            }
        }
    }

    // ---- reading --------------------------------------------------------------------

    /// The site's sidecar's fresh report, when our own probe of the site failed this poll
    /// (our own probe, when there is one, always wins).
    pub fn sidecar_view(&self, site: &str) -> Option<&SidecarReport> {
        if self.fresh.contains_key(site) {
            return None;
        }
        self.sidecars.get(site)
    }

    pub fn fresh(&self, site: &str) -> Option<&SiteProbe> {
        self.fresh.get(site)
    }

    /// Observed writable by this poll's probe (no debounce).
    pub fn writable_now(&self, site: &str) -> bool {
        self.fresh(site).is_some_and(|p| !p.read_only)
    }

    /// Observed read-only by this poll's probe.
    pub fn read_only_now(&self, site: &str) -> bool {
        self.fresh(site).is_some_and(|p| p.read_only)
    }

    pub fn state_of(&self, site: &str) -> SiteState {
        self.st.sites.get(site).map(|t| t.state).unwrap_or_default()
    }

    pub fn track(&self, site: &str) -> Option<&SiteTrack> {
        self.st.sites.get(site)
    }

    pub fn track_mut(&mut self, site: &str) -> &mut SiteTrack {
        self.st.sites.entry(site.to_owned()).or_default()
    }

    pub fn role(&self, site: &str) -> Option<SiteRole> {
        self.policy.role(site)
    }

    /// Debounced writable and observed writable now: a primary we can trust this poll.
    pub fn confirmed_writable(&self, site: &str) -> bool {
        self.state_of(site) == SiteState::Writable && self.writable_now(site)
    }

    /// The site a probed replica replicates from, if it is one of ours.
    pub fn source_site(&self, probe: &SiteProbe) -> Option<String> {
        let replica = probe.replica.as_ref()?;
        self.policy
            .site_at(&replica.source_host, replica.source_port)
            .map(|s| s.name.clone())
    }

    pub fn gtid_now(&self, site: &str) -> Option<&GtidSet> {
        self.fresh(site).map(|p| &p.gtid_executed)
    }

    pub fn cooldown_until(&self) -> Option<Timestamp> {
        let last = [
            self.st.last_promotion_attempt,
            self.st.last_failover.as_ref().map(|r| r.at),
        ]
        .into_iter()
        .flatten()
        .max()?;
        Some(last.plus(self.policy.failover_cooldown))
    }

    pub fn cooldown_active(&self) -> bool {
        self.cooldown_until().is_some_and(|until| self.now < until)
    }

    /// Core site names in declaration order.
    pub fn core_sites(&self) -> Vec<String> {
        self.policy
            .sites
            .iter()
            .filter(|s| s.role.is_core())
            .map(|s| s.name.clone())
            .collect()
    }

    pub fn all_sites(&self) -> Vec<String> {
        self.policy.sites.iter().map(|s| s.name.clone()).collect()
    }

    // ---- writing --------------------------------------------------------------------

    pub fn emit(&mut self, kind: ActionKind, purpose: ActionPurpose, fatal: bool) -> ActionId {
        self.push(kind, purpose, fatal, None)
    }

    /// A non-fatal action with a short deadline, for sites that may not answer.
    pub fn emit_best_effort(&mut self, kind: ActionKind, purpose: ActionPurpose) -> ActionId {
        let deadline = Some(self.policy.best_effort_deadline);
        self.push(kind, purpose, false, deadline)
    }

    fn push(
        &mut self,
        kind: ActionKind,
        purpose: ActionPurpose,
        fatal: bool,
        deadline: Option<Duration>,
    ) -> ActionId {
        let id = ActionId(self.st.next_action_id);
        self.st.next_action_id += 1;
        self.actions.push(Action {
            id,
            kind,
            fatal,
            purpose,
            deadline,
        });
        id
    }

    /// Fence a site and kill its sessions, once per decision. Best effort (short deadline,
    /// non-fatal) unless `fatal`, in which case the fence gates the actions after it.
    pub fn fence(&mut self, site: &str, purpose: ActionPurpose, fatal: bool) {
        if !self.fenced.insert(site.to_owned()) {
            return;
        }
        let fence = ActionKind::Fence {
            site: site.to_owned(),
        };
        let kill = ActionKind::KillConnections {
            site: site.to_owned(),
            opened_by: None,
        };
        if fatal {
            self.emit(fence, purpose, true);
            self.emit(kill, purpose, false);
        } else if self.fresh(site).is_some() {
            self.emit(fence, purpose, false);
            self.emit(kill, purpose, false);
        } else {
            self.emit_best_effort(fence, purpose);
            self.emit_best_effort(kill, purpose);
        }
    }

    pub fn was_fenced(&self, site: &str) -> bool {
        self.fenced.contains(site)
    }

    pub fn event(&mut self, event: Event) {
        self.events.push(event);
    }

    pub fn note(&mut self, reason: EventReason, site: Option<&str>, message: impl Into<String>) {
        self.events.push(Event::new(reason, site, message));
    }

    /// Raise an alert: reported when it starts, remembered while it lasts.
    pub fn alert(&mut self, reason: EventReason, site: Option<&str>, message: impl Into<String>) {
        let key = (reason, site.map(str::to_owned));
        if !self.st.raised_alerts.contains(&key) {
            self.events.push(Event::new(reason, site, message));
        }
        self.raised.insert(key);
    }

    /// Ends the decision: alerts not raised again this poll are cleared.
    pub fn finish_alerts(&mut self) {
        self.st.raised_alerts = std::mem::take(&mut self.raised);
        self.st.last_verdict = Some(self.verdict);
    }
}
