//! What one poll of one site saw. Produced by a MySQL adapter, consumed by the decision core.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::failover::gtid::GtidSet;

/// What one pass of killing a server's application sessions found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSweep {
    /// Sessions killed.
    pub killed: u32,
    /// The highest connection id among them. MySQL hands out connection ids in increasing
    /// order, so a session opened after this pass gets a larger one.
    pub newest_id: Option<u64>,
    /// Of the killed sessions, those with an id at or below the watermark the pass was
    /// given: sessions that already existed when the watermark was taken.
    pub older: u32,
}

/// A successful probe of one MySQL server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteProbe {
    pub server_uuid: String,
    pub read_only: bool,
    pub super_read_only: bool,
    pub gtid_executed: GtidSet,
    /// Transactions executed here whose binary logs are gone: a replica that lacks any of
    /// them cannot catch up from this server by replication, only by a clone.
    #[serde(default)]
    pub gtid_purged: GtidSet,
    /// `None` when the server has no replication channel configured.
    pub replica: Option<ReplicaStatus>,
}

/// The replica side of `SHOW REPLICA STATUS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub source_host: String,
    pub source_port: u16,
    pub io_running: bool,
    pub sql_running: bool,
    /// `None` when MySQL reports NULL (a thread is stopped).
    pub seconds_behind_source: Option<u64>,
    /// GTIDs received into the relay log but possibly not yet applied.
    pub retrieved_gtid_set: GtidSet,
}

impl ReplicaStatus {
    pub fn replicating(&self) -> bool {
        self.io_running && self.sql_running
    }
}

/// Why a probe failed. The distinction drives detection speed: a refused connection is a
/// fact that a couple of fast re-probes confirm, a timeout may be a hang or a blip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProbeFailure {
    /// The TCP connection was refused or reset: nothing is listening.
    Refused,
    /// The probe did not finish within its deadline.
    Timeout,
    /// Anything else (authentication, protocol, an SQL error).
    Error,
}

/// One site's result for one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteObservation {
    pub site: String,
    pub result: Result<SiteProbe, ProbeFailure>,
    /// How long the probe took, for latency metrics.
    pub elapsed: Duration,
}

/// What a site's sidecar says about its own MySQL: asked only when the controller's own probe
/// of that site failed, as a second opinion on whether "unreachable" also means "not
/// writable". It can only hold a failover back (see `matrix`), never start or lift one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarReport {
    pub site: String,
    /// The sidecar's last successful probe of its local MySQL.
    pub read_only: bool,
    pub super_read_only: bool,
    /// How old that probe was when the sidecar answered, measured on the sidecar's own clock
    /// (its answer time minus its probe time), so clock skew between hosts cannot make a
    /// stale view look fresh.
    pub age: Duration,
}
