//! The sidecar's self-fencing rule as a pure function: given what the sidecar last heard
//! from the operator's active-site endpoint and from its peers (each with the time it was
//! heard), its own site, `leaseTimeout` and the time, should its MySQL be fenced, and why.
//!
//! The shell that polls and fences is [`crate::shells::sidecar`]. The rule never *lifts* a
//! fence: the best it says is [`Verdict::Cleared`] ("a fresh confirmation names this site"),
//! which the sidecar reports; lifting stays the operator's (or the failover core's) call,
//! so an isolated or confused sidecar can only ever make its site *less* writable.
//!
//! Rules, in order:
//! 1. **Lease expiry**: neither the operator nor any peer has answered for `leaseTimeout`
//!    → fence (`lease-expired`). One reachable peer keeps the lease, as in the original:
//!    a site that can still talk to another site is not the isolated one.
//! 2. **Another site is active**: the newest authoritative view names another site
//!    → fence (`other-site-active`). Views are the operator's own answer, and a strict
//!    majority of the configured peers relaying the same operator view (peers relay only
//!    what they heard from the operator themselves, never each other, so a view cannot
//!    echo around). A single peer out of three cannot fence a site on its own.
//!    A site the operator has just made writable is given `leaseTimeout` from the lift
//!    before this rule applies to it: the operator unfences a promoted site a poll before
//!    its active-site answer names it, and a sidecar fencing in that gap would undo every
//!    failover (the original's "re-arm"). A real second writer in that window is the
//!    operator's to fence: it fences every writable site but the active one on each poll.
//! 3. **Confirmed**: the newest view names this site → [`Verdict::Cleared`].
//! 4. Otherwise (no fresh view, or "no site is active") → [`Verdict::Hold`]: change nothing.
//!
//! Only answers heard within `leaseTimeout` count ("fresh"); an older answer is no
//! evidence either way.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::time::Timestamp;

/// Why the sidecar fenced (or keeps fencing) its site. Bounded: used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FenceReason {
    /// Neither the operator nor any peer answered for `leaseTimeout`.
    LeaseExpired,
    /// The operator, or a majority of peers relaying it, names another site as active.
    OtherSiteActive,
    /// Fenced at start-up, before any confirmation (fence-first boot).
    Boot,
}

impl FenceReason {
    pub const ALL: [FenceReason; 3] = [Self::LeaseExpired, Self::OtherSiteActive, Self::Boot];

    /// Stable label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LeaseExpired => "lease-expired",
            Self::OtherSiteActive => "other-site-active",
            Self::Boot => "boot",
        }
    }
}

/// One answer naming the active site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSiteAnswer {
    /// `None` or empty: the authority knows no active site.
    pub active_site: Option<String>,
    /// When the operator said so: for the operator's own answer the time we heard it; for a
    /// peer, the time the peer heard it from the operator (never later than we heard the peer).
    pub observed_at: Timestamp,
    /// When we received this answer.
    pub seen_at: Timestamp,
}

impl ActiveSiteAnswer {
    fn site(&self) -> Option<&str> {
        self.active_site.as_deref().filter(|s| !s.is_empty())
    }
}

/// What we last heard from one source (the operator or one peer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// The last time the source answered at all (a ping or an active-site answer).
    pub last_reached: Option<Timestamp>,
    /// The last active-site answer it gave (a peer with nothing cached gives none).
    pub answer: Option<ActiveSiteAnswer>,
}

impl Contact {
    /// Records a successful exchange at `now`, with the answer when there was one.
    pub fn reached(&mut self, now: Timestamp, answer: Option<ActiveSiteAnswer>) {
        self.last_reached = Some(self.last_reached.map_or(now, |t| t.max(now)));
        if let Some(mut a) = answer {
            // A peer cannot have heard the operator after we heard the peer: a skewed or
            // lying clock must not make its view win every comparison.
            a.observed_at = a.observed_at.min(a.seen_at);
            self.answer = Some(a);
        }
    }
}

/// Everything the rule looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardInput<'a> {
    /// This sidecar's site.
    pub site: &'a str,
    pub lease_timeout: Duration,
    /// When the sidecar started: the lease counts from here until a first contact, so a
    /// fresh start gets one full lease to find someone (MySQL is fenced meanwhile anyway).
    pub started_at: Timestamp,
    pub operator: &'a Contact,
    pub peers: &'a [Contact],
    /// Since when MySQL has been seen writable without a break (`None`: read-only, or not
    /// known): the moment the operator lifted the fence.
    pub writable_since: Option<Timestamp>,
}

/// What the rule says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// MySQL must be (or stay) fenced.
    Fence(FenceReason),
    /// No reason to fence, no confirmation to serve: change nothing.
    Hold,
    /// A fresh confirmation names this site: the operator may lift the fence. The sidecar
    /// itself never does.
    Cleared,
}

/// The view that decided, for `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    pub active_site: Option<String>,
    pub observed_at: Timestamp,
    /// `operator` or `peers`.
    pub source: &'static str,
}

/// The rule's answer with the view it acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardDecision {
    pub verdict: Verdict,
    pub view: Option<View>,
    /// When the last contact with anyone was (or the start).
    pub last_contact: Timestamp,
}

impl GuardDecision {
    /// Whether the shell should run the fence now, given whether MySQL was seen writable
    /// (`None`: the probe failed, so try anyway: a fence is idempotent and always safe).
    pub fn must_fence(&self, writable: Option<bool>) -> bool {
        matches!(self.verdict, Verdict::Fence(_)) && writable != Some(false)
    }
}

fn fresh(now: Timestamp, at: Timestamp, lease: Duration) -> bool {
    now.since(at) < lease
}

/// The newest peer view held by a strict majority of the configured peers.
fn peer_majority(input: &GuardInput<'_>, now: Timestamp) -> Option<View> {
    let total = input.peers.len();
    if total == 0 {
        return None;
    }
    let fresh_answers: Vec<&ActiveSiteAnswer> = input
        .peers
        .iter()
        .filter_map(|p| p.answer.as_ref())
        .filter(|a| fresh(now, a.seen_at, input.lease_timeout))
        .collect();
    let mut best: Option<View> = None;
    for candidate in &fresh_answers {
        let site = candidate.site();
        let voters: Vec<&&ActiveSiteAnswer> =
            fresh_answers.iter().filter(|a| a.site() == site).collect();
        if voters.len() * 2 <= total {
            continue;
        }
        // The majority's view is only as new as its oldest voter.
        let observed_at = voters
            .iter()
            .map(|a| a.observed_at)
            .min()
            .unwrap_or(candidate.observed_at);
        if best.as_ref().is_none_or(|b| observed_at > b.observed_at) {
            best = Some(View {
                active_site: site.map(str::to_owned),
                observed_at,
                source: "peers",
            });
        }
    }
    best
}

/// The pure rule; see the module comment.
pub fn decide(input: &GuardInput<'_>, now: Timestamp) -> GuardDecision {
    let last_contact = std::iter::once(input.started_at)
        .chain(input.operator.last_reached)
        .chain(input.peers.iter().filter_map(|p| p.last_reached))
        .max()
        .unwrap_or(input.started_at);
    let operator_view = input
        .operator
        .answer
        .as_ref()
        .filter(|a| fresh(now, a.seen_at, input.lease_timeout))
        .map(|a| View {
            active_site: a.site().map(str::to_owned),
            observed_at: a.observed_at,
            source: "operator",
        });
    let peer_view = peer_majority(input, now);
    // The newest view wins; on a tie, the operator's own answer.
    let view = match (operator_view, peer_view) {
        (Some(o), Some(p)) => Some(if p.observed_at > o.observed_at { p } else { o }),
        (o, p) => o.or(p),
    };
    let verdict = if now.since(last_contact) >= input.lease_timeout {
        Verdict::Fence(FenceReason::LeaseExpired)
    } else {
        match view.as_ref().and_then(|v| v.active_site.as_deref()) {
            Some(site) if site == input.site => Verdict::Cleared,
            Some(_)
                if input.writable_since.is_some_and(|lifted| {
                    view.as_ref()
                        .is_some_and(|v| v.observed_at < lifted.plus(input.lease_timeout))
                }) =>
            {
                Verdict::Hold
            }
            Some(_) => Verdict::Fence(FenceReason::OtherSiteActive),
            None => Verdict::Hold,
        }
    };
    GuardDecision {
        verdict,
        view,
        last_contact,
    }
}

#[cfg(test)]
mod tests;
