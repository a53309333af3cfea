//! Leader election: only the replica that holds the Lease reconciles and fails over.
//!
//! A small loop over the lease port rather than a crate: the guarantee the failover core
//! needs is specific. A leader must stop acting **before** anyone else can take its lease,
//! whatever the API server or the network does. So leadership is timed on this process's
//! monotonic clock from the moment a renewal was *sent*: it ends `renew_deadline` later
//! unless another renewal succeeds, and `renew_deadline` is shorter than the lease
//! duration other replicas wait for. A renewal that is slow to answer cannot extend it.
//! Writes that commit failover decisions carry their own resourceVersion precondition on
//! top of this, so even a leader that was paused past its deadline acts on nothing.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Categorized, Category};
use crate::failover::lease::{LeaseStep, next_step};
use crate::ports::lease::{LeaseClaim, LeaseError, LeaseRecord, LeaseStore};

/// Timing of the election, as client-go names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionTiming {
    /// How long a lease is held without renewal (`leaseDurationSeconds`).
    pub lease_duration: Duration,
    /// A leader stops acting this long after its last successful renewal was sent.
    pub renew_deadline: Duration,
    /// How often the lease is read and renewed.
    pub retry_period: Duration,
}

impl Default for ElectionTiming {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Timing that cannot keep the guarantee.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "leader election needs retry period < renew deadline < lease duration, and a lease of at least 1s"
)]
pub struct BadTiming;

impl Categorized for BadTiming {
    fn category(&self) -> Category {
        Category::Config
    }
}

impl ElectionTiming {
    pub fn check(&self) -> Result<(), BadTiming> {
        let ok = self.retry_period < self.renew_deadline
            && self.renew_deadline < self.lease_duration
            && self.lease_duration >= Duration::from_secs(1);
        if ok { Ok(()) } else { Err(BadTiming) }
    }
}

/// One replica's side of the election.
pub struct LeaderElection {
    store: Arc<dyn LeaseStore>,
    identity: String,
    timing: ElectionTiming,
    leading: watch::Sender<bool>,
    /// Set while leading: when leadership ends unless renewed.
    leading_until: Option<Instant>,
    /// The wall clock lease times are written in (a test can drive it).
    clock: Clock,
}

/// The wall clock.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

impl LeaderElection {
    /// An election for `identity` (unique per replica, such as the pod name); the
    /// receiver says whether this replica may act right now.
    pub fn new(
        store: Arc<dyn LeaseStore>,
        identity: impl Into<String>,
        timing: ElectionTiming,
    ) -> Result<(Self, watch::Receiver<bool>), BadTiming> {
        timing.check()?;
        let (leading, rx) = watch::channel(false);
        Ok((
            Self {
                store,
                identity: identity.into(),
                timing,
                leading,
                leading_until: None,
                clock: Arc::new(SystemTime::now),
            },
            rx,
        ))
    }

    /// Uses `clock` instead of the system's wall clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Takes part until `shutdown` completes; a leader then releases the lease so another
    /// replica takes over at once instead of after the lease duration.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let next_attempt = Instant::now() + self.timing.retry_period;
            self.attempt().await;
            // Sleep until the next attempt, but wake at the deadline to stop acting.
            loop {
                let wake = self
                    .leading_until
                    .map_or(next_attempt, |u| u.min(next_attempt));
                tokio::select! {
                    () = &mut shutdown => {
                        self.release().await;
                        return;
                    }
                    () = tokio::time::sleep_until(wake) => {}
                }
                self.expire_if_due();
                if Instant::now() >= next_attempt {
                    break;
                }
            }
        }
    }

    /// One read and, if it is ours to take or keep, one write. Bounded so a hung API
    /// server cannot keep a leader acting past its deadline.
    async fn attempt(&mut self) {
        let sent = Instant::now();
        let bound = self.leading_until.map_or(self.timing.retry_period, |u| {
            u.saturating_duration_since(sent)
                .min(self.timing.retry_period)
        });
        match tokio::time::timeout(bound, self.try_acquire_or_renew()).await {
            Ok(Ok(true)) => self.lead_from(sent),
            Ok(Ok(false)) => self.step_down("another replica holds the lease"),
            Ok(Err(LeaseError::Conflict)) => {
                self.step_down("lost a race for the lease");
            }
            Ok(Err(e)) => {
                tracing::warn!(identity = %self.identity, error = %e, "lease attempt failed");
                self.expire_if_due();
            }
            Err(_) => {
                tracing::warn!(identity = %self.identity, "lease attempt timed out");
                self.expire_if_due();
            }
        }
    }

    /// Whether we hold the lease after this attempt.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, LeaseError> {
        let current = self.store.get().await?;
        let now = (self.clock)();
        let step = next_step(current.as_ref().map(LeaseRecord::view), &self.identity, now);
        let claim = |acquired_at, transitions| LeaseClaim {
            holder: Some(self.identity.clone()),
            acquired_at: Some(acquired_at),
            renewed_at: now,
            duration: self.timing.lease_duration,
            transitions,
        };
        let written = match (step, current) {
            (LeaseStep::Follow { .. }, _) => return Ok(false),
            (LeaseStep::Create, _) | (_, None) => self.store.create(&claim(now, 0)).await?,
            (LeaseStep::Renew, Some(lease)) => {
                let acquired = lease.acquired_at.unwrap_or(now);
                self.store
                    .replace(&claim(acquired, lease.transitions), &lease.version)
                    .await?
            }
            (LeaseStep::TakeOver, Some(lease)) => {
                let transitions = lease.transitions.saturating_add(1);
                self.store
                    .replace(&claim(now, transitions), &lease.version)
                    .await?
            }
        };
        Ok(written.holder.as_deref() == Some(self.identity.as_str()))
    }

    fn lead_from(&mut self, sent: Instant) {
        let until = sent + self.timing.renew_deadline;
        if self.leading_until.is_none() {
            tracing::info!(identity = %self.identity, "acquired the lease; acting as leader");
        }
        self.leading_until = Some(until);
        self.leading.send_replace(true);
    }

    fn step_down(&mut self, why: &str) {
        if self.leading_until.take().is_some() {
            tracing::warn!(identity = %self.identity, why, "no longer the leader");
        }
        self.leading.send_replace(false);
    }

    fn expire_if_due(&mut self) {
        if self.leading_until.is_some_and(|u| Instant::now() >= u) {
            self.step_down("the lease was not renewed before the renew deadline");
        }
    }

    /// Gives the lease up (best effort, bounded): stop acting first, then clear the holder.
    async fn release(&mut self) {
        let was_leading = self.leading_until.is_some();
        self.step_down("shutting down");
        if !was_leading {
            return;
        }
        let release = async {
            let Some(lease) = self.store.get().await? else {
                return Ok(());
            };
            if lease.holder.as_deref() != Some(self.identity.as_str()) {
                return Ok(());
            }
            let claim = LeaseClaim {
                holder: None,
                acquired_at: lease.acquired_at,
                renewed_at: (self.clock)(),
                duration: Duration::from_secs(1),
                transitions: lease.transitions,
            };
            self.store.replace(&claim, &lease.version).await.map(|_| ())
        };
        let identity = self.identity.as_str();
        match tokio::time::timeout(self.timing.retry_period, release).await {
            Ok(Ok(())) => tracing::info!(identity, "released the lease"),
            Ok(Err(e)) => tracing::warn!(identity, error = %e, "could not release the lease"),
            Err(_) => tracing::warn!(identity, "releasing the lease timed out"),
        }
    }
}

#[cfg(test)]
mod tests;
