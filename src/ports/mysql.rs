//! The MySQL operations the failover engine needs, and nothing more (MOCO's `dbop` shape).
//!
//! Every method has its own deadline inside the implementation: a hung server must never
//! freeze the caller.

use std::future::Future;
use std::time::Duration;

use crate::error::{Categorized, Category};
use crate::failover::gtid::GtidSet;
use crate::failover::observe::{ProbeFailure, SessionSweep, SiteProbe};

/// Where a replica should replicate from (or a clone should copy from).
pub use crate::failover::address::HostPort as SourceEndpoint;

/// A failed MySQL operation.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("connection refused by {address}")]
    Refused { address: String },
    #[error("{operation} on {address} timed out after {after:?}")]
    Timeout {
        address: String,
        operation: &'static str,
        after: Duration,
    },
    #[error("{operation} on {address} failed: {message}")]
    Query {
        address: String,
        operation: &'static str,
        message: String,
    },
    #[error("{operation} on {address} refused by a safety check: {reason}")]
    Unsafe {
        address: String,
        operation: &'static str,
        reason: String,
    },
}

impl DbError {
    /// How this error should be reported to the decision core as a probe result.
    pub fn as_probe_failure(&self) -> ProbeFailure {
        match self {
            Self::Refused { .. } => ProbeFailure::Refused,
            Self::Timeout { .. } => ProbeFailure::Timeout,
            Self::Query { .. } | Self::Unsafe { .. } => ProbeFailure::Error,
        }
    }
}

impl Categorized for DbError {
    fn category(&self) -> Category {
        match self {
            Self::Refused { .. } | Self::Query { .. } => Category::Unavailable,
            Self::Timeout { .. } => Category::Timeout,
            Self::Unsafe { .. } => Category::Refused,
        }
    }
}

/// Outcome of a bounded relay-log drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Everything received has been applied.
    Drained,
    /// The budget ran out with transactions still unapplied (non-fatal).
    BudgetExhausted,
    /// The site has no replication channel, so there was nothing to drain.
    NotAReplica,
}

/// One MySQL server, as the failover engine drives it.
pub trait MysqlSite: Send + Sync {
    /// `host:port`, for logs and errors.
    fn address(&self) -> &str;

    /// Read read_only, super_read_only, gtid_executed, server_uuid and replica status.
    fn probe(&self) -> impl Future<Output = Result<SiteProbe, DbError>> + Send;

    /// `SET GLOBAL super_read_only=ON` (which implies read_only).
    fn fence(&self) -> impl Future<Output = Result<(), DbError>> + Send;

    /// Kill application sessions, never replication threads or our own. Killed sessions
    /// with an id at or below `opened_by` are counted apart ([`SessionSweep::older`]).
    fn kill_app_connections(
        &self,
        opened_by: Option<u64>,
    ) -> impl Future<Output = Result<SessionSweep, DbError>> + Send;

    /// Let the SQL thread apply what the relay log holds, within `budget`.
    fn drain_relay_log(
        &self,
        budget: Duration,
    ) -> impl Future<Output = Result<DrainOutcome, DbError>> + Send;

    /// STOP REPLICA, RESET REPLICA ALL, capture gtid_executed, clear super_read_only and
    /// read_only, and confirm the server is writable. Returns the promotion GTID set.
    fn promote(&self) -> impl Future<Output = Result<GtidSet, DbError>> + Send;

    /// Clear the fence on a site that must stay the primary (planned-failover rollback).
    fn unfence(&self) -> impl Future<Output = Result<(), DbError>> + Send;

    /// Fence, then CHANGE REPLICATION SOURCE (auto-position, SSL) to `source` and START
    /// REPLICA. With `reset`, RESET REPLICA ALL first (old-primary rejoin); without it the
    /// relay log is kept (source convergence).
    fn replicate_from(
        &self,
        source: &SourceEndpoint,
        reset: bool,
    ) -> impl Future<Output = Result<(), DbError>> + Send;

    /// `WAIT_FOR_EXECUTED_GTID_SET(set, timeout)`: true when `set` is applied in time.
    fn wait_for_gtid(
        &self,
        set: &GtidSet,
        timeout: Duration,
    ) -> impl Future<Output = Result<bool, DbError>> + Send;

    /// Replace this server's data with a CLONE of `donor`, survive the restart, and start
    /// replicating from `donor`.
    fn clone_from(
        &self,
        donor: &SourceEndpoint,
    ) -> impl Future<Output = Result<(), DbError>> + Send;
}
