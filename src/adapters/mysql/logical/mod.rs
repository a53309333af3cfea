//! The logical backup method against a live server: a parallel dump from one consistent
//! snapshot, and a parallel load into an empty server, in plain artifact bytes through
//! [`ArtifactSink`](crate::ports::artifacts::ArtifactSink) and
//! [`ArtifactSource`](crate::ports::artifacts::ArtifactSource).
//!
//! What a dump is made of (and the chunk format) is pure code in
//! [`crate::backup::logical`]; this module only talks to MySQL.

mod catalog;
mod dump;
mod error;
mod link;
mod load;
mod load_objects;
mod row_link;
mod worker;

use std::time::Duration;

pub use dump::dump;
pub use error::LogicalError;
pub use load::load;

use super::config::{ClientTls, Credentials, MysqlSiteConfig};

/// The server a dump reads or a load writes, and how to reach it.
#[derive(Debug, Clone)]
pub struct LogicalEndpoint {
    /// `host:port` (`[v6]:port` for IPv6).
    pub address: String,
    pub credentials: Credentials,
    pub tls: ClientTls,
    /// Bound on establishing each connection.
    pub connect_timeout: Duration,
}

impl LogicalEndpoint {
    /// The server of a site, as the operator account reaches it.
    pub fn from_site(config: &MysqlSiteConfig) -> Self {
        Self {
            address: config.address.clone(),
            credentials: config.operator.clone(),
            tls: config.client_tls.clone(),
            connect_timeout: config.connect_timeout,
        }
    }

    /// Plain TCP with a 5 s connect timeout.
    pub fn new(address: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            address: address.into(),
            credentials,
            tls: ClientTls::Off,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// How to dump.
#[derive(Debug, Clone)]
pub struct DumpOptions {
    /// Connections reading the snapshot (default 4).
    pub threads: usize,
    /// Target size of a chunk's plain bytes (default 8 MiB). Memory is about
    /// `threads × chunk_bytes` plus what the sink holds.
    pub chunk_bytes: u64,
    /// Bound on each statement, and on every 64 rows of a streamed result (default 5 min).
    pub statement_timeout: Duration,
    /// How long `FLUSH TABLES WITH READ LOCK` may wait for running statements and locks
    /// (default 30 s); writes stall while it waits, so keep it short.
    pub lock_wait_timeout: Duration,
    /// Bound on each artifact write (default 10 min).
    pub artifact_timeout: Duration,
    /// The user schemas taken (default: all).
    pub schemas: crate::backup::logical::SchemaFilter,
}

impl Default for DumpOptions {
    fn default() -> Self {
        Self {
            threads: 4,
            chunk_bytes: 8 << 20,
            statement_timeout: Duration::from_secs(300),
            lock_wait_timeout: Duration::from_secs(30),
            artifact_timeout: Duration::from_secs(600),
            schemas: crate::backup::logical::SchemaFilter::default(),
        }
    }
}

/// What a load does with the target's GTID history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GtidHistory {
    /// Unlogged (`sql_log_bin=0`), then `gtid_purged` set to the dump's set, so the
    /// target's history is exactly what its data holds. Its own `gtid_executed` must be
    /// empty, or with `reset` is cleared first (`RESET BINARY LOGS AND GTIDS`, which
    /// forgets it).
    FromDump { reset: bool },
    /// Binlogged under the target's own GTIDs, its history left as it is: some schemas
    /// restored into a live primary, whose replicas must receive the dropped and reloaded
    /// schemas by replication.
    Own,
}

/// How to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Connections loading chunks (default 4).
    pub threads: usize,
    /// What the load does with the target's GTID history (default: takes the dump's, into
    /// a target whose own is empty).
    pub history: GtidHistory,
    /// Create secondary indexes after the data instead of with the table (default true;
    /// see [`crate::backup::logical::ddl`] for the figures and the exceptions).
    pub defer_indexes: bool,
    /// Bound on each statement, a chunk's `LOAD DATA` and an index build included
    /// (default 10 min).
    pub statement_timeout: Duration,
    /// Bound on each artifact read (default 10 min).
    pub artifact_timeout: Duration,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            threads: 4,
            history: GtidHistory::FromDump { reset: false },
            defer_indexes: true,
            statement_timeout: Duration::from_secs(600),
            artifact_timeout: Duration::from_secs(600),
        }
    }
}

/// What a load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Rows loaded per table, in dump order.
    pub tables: Vec<TableLoad>,
    /// Plain chunk bytes loaded.
    pub plain_bytes: u64,
    /// The target's `@@GLOBAL.gtid_executed` after the load (whitespace removed).
    pub gtid_executed: String,
    pub elapsed: Duration,
}

impl LoadReport {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// Rows loaded into one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLoad {
    pub schema: String,
    pub table: String,
    pub rows: u64,
    pub chunks: usize,
}

/// Schemas that are the server's own, never dumped.
const SYSTEM_SCHEMAS: [&str; 4] = ["mysql", "sys", "information_schema", "performance_schema"];

/// A GTID set as MySQL prints it may hold line breaks between UUIDs.
fn compact_gtids(set: &str) -> String {
    set.chars().filter(|c| !c.is_whitespace()).collect()
}
