//! Events the decision core reports: a stable, bounded reason vocabulary the shells can log,
//! count and turn into Kubernetes Events.

use serde::{Deserialize, Serialize};

use super::state::SiteState;
use crate::failover::gtid::GtidSet;

/// Why an event was raised. The names are a public contract (metrics labels, Event reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventReason {
    /// A site's debounced state changed (see [`Event::transition`]).
    SiteStateChanged,
    /// A writable site that must not be writable was fenced.
    SiteFenced,
    /// A writable dr-only or read-only site (fenced every poll).
    NonCandidateWritable,
    SplitBrainDetected,
    /// `sitePriorities` picked the split-brain winner.
    SplitBrainResolved,
    NoPrimaryDetected,
    TotalLossDetected,
    /// A site is unreachable while another is the primary.
    SiteUnreachable,
    /// The controller cannot reach a site's MySQL, but the site's sidecar freshly reports it
    /// writable: the site is not safely "unreachable", so no failover goes past it.
    UnreachableSiteWritable,
    /// The group has one confirmed primary and nothing unreachable again.
    GroupHealthy,
    /// A single confirmed writable candidate was adopted as the primary.
    PrimaryAdopted,
    FailoverStarted,
    FailoverExecuted,
    FailoverFailed,
    /// The promote call failed in a way that may still have been applied.
    PromotionInDoubt,
    FailoverBlockedByCooldown,
    /// No promotable candidate (all diverged, non-candidates or unprobed).
    NoCandidate,
    PrimaryReasserted,
    RecoveryStarted,
    RecoveryComplete,
    RecoveryFailed,
    /// Transactions exist only on a site that is not the primary; [`Event::gtid`] has them.
    DataLossDetected,
    SourceRepointed,
    SourceConvergenceBlocked,
    RecloneRequested,
    RecloneRejected,
    RecloneCompleted,
    RecloneFailed,
    PlannedFailoverStarted,
    PlannedFailoverSkipped,
    PlannedFailoverRejected,
    PlannedFailoverDeferred,
    PlannedFailoverDraining,
    PlannedFailoverLagOK,
    PlannedFailoverCompleted,
    PlannedFailoverFailed,
}

impl EventReason {
    /// Whether the event signals something an operator should look at.
    pub fn is_warning(self) -> bool {
        matches!(
            self,
            Self::SiteFenced
                | Self::NonCandidateWritable
                | Self::SplitBrainDetected
                | Self::NoPrimaryDetected
                | Self::TotalLossDetected
                | Self::SiteUnreachable
                | Self::UnreachableSiteWritable
                | Self::FailoverFailed
                | Self::PromotionInDoubt
                | Self::FailoverBlockedByCooldown
                | Self::NoCandidate
                | Self::RecoveryFailed
                | Self::DataLossDetected
                | Self::SourceConvergenceBlocked
                | Self::RecloneRejected
                | Self::RecloneFailed
                | Self::PlannedFailoverRejected
                | Self::PlannedFailoverFailed
        )
    }
}

/// A debounced state change of one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteTransition {
    pub from: SiteState,
    pub to: SiteState,
}

/// Something worth telling a human or a metric about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub reason: EventReason,
    pub site: Option<String>,
    pub message: String,
    /// Transactions the event is about: a promotion set, or a divergent/discarded set.
    pub gtid: Option<GtidSet>,
    pub transition: Option<SiteTransition>,
}

impl Event {
    pub fn new(reason: EventReason, site: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            reason,
            site: site.map(str::to_owned),
            message: message.into(),
            gtid: None,
            transition: None,
        }
    }

    #[must_use]
    pub fn with_gtid(mut self, gtid: GtidSet) -> Self {
        self.gtid = Some(gtid);
        self
    }
}
