//! The lease port: one `coordination.k8s.io/v1` Lease, read and written with optimistic
//! concurrency, for leader election.

use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;

use crate::error::{Categorized, Category};
use crate::failover::lease::LeaseView;

/// The lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: Option<String>,
    pub acquired_at: Option<SystemTime>,
    pub renewed_at: Option<SystemTime>,
    pub duration: Duration,
    pub transitions: i32,
    /// The resourceVersion a write must carry to succeed.
    pub version: String,
}

impl LeaseRecord {
    pub fn view(&self) -> LeaseView<'_> {
        LeaseView {
            holder: self.holder.as_deref(),
            renewed_at: self.renewed_at,
            duration: self.duration,
        }
    }
}

/// What a write sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseClaim {
    /// `None` releases the lease.
    pub holder: Option<String>,
    pub acquired_at: Option<SystemTime>,
    pub renewed_at: SystemTime,
    pub duration: Duration,
    pub transitions: i32,
}

/// A lease operation that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// Somebody wrote the lease since we read it (HTTP 409), or created it first.
    #[error("the lease was changed by someone else")]
    Conflict,
    #[error("lease store unavailable: {0}")]
    Unavailable(String),
    #[error("lease store refused the request: {0}")]
    Refused(String),
}

impl Categorized for LeaseError {
    fn category(&self) -> Category {
        match self {
            // A lost race is the store's safety gate working, not a failure of it.
            Self::Conflict | Self::Refused(_) => Category::Refused,
            Self::Unavailable(_) => Category::Unavailable,
        }
    }
}

/// One lease object. Every method is bounded by the caller's timeout.
pub trait LeaseStore: Send + Sync {
    fn get(&self) -> BoxFuture<'_, Result<Option<LeaseRecord>, LeaseError>>;
    /// Creates the lease; [`LeaseError::Conflict`] when it exists already.
    fn create<'a>(
        &'a self,
        claim: &'a LeaseClaim,
    ) -> BoxFuture<'a, Result<LeaseRecord, LeaseError>>;
    /// Replaces the lease if it is still at `version`; else [`LeaseError::Conflict`].
    fn replace<'a>(
        &'a self,
        claim: &'a LeaseClaim,
        version: &'a str,
    ) -> BoxFuture<'a, Result<LeaseRecord, LeaseError>>;
}
