//! The backup engine's boundary with storage: where the plain bytes of one backup
//! artifact (a data chunk, a DDL script, an archived binlog) go, and where they come back
//! from.
//!
//! The MySQL side of the engine (dump, load) deals only in plain artifact bytes and
//! relative keys. What happens between (compression, client-side encryption, digests, the
//! object store and its retries) is the sink's and the source's business, so the database
//! code never sees a passphrase or a bucket, and either side can be tested on its own.
//!
//! An artifact is held in memory whole, so callers keep each one bounded (the logical dump
//! cuts tables into chunks of a few MiB); memory is then bounded by the number of artifacts
//! in flight, whatever the size of the database.

use futures_util::future::BoxFuture;

use crate::error::{Categorized, Category};

/// What the sink recorded about one stored artifact; it goes into the backup's manifest so
/// a restore or a verification can check every object before it trusts it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredArtifact {
    /// The key, relative to the backup's own prefix (`data/shop/orders/00003.tsv`).
    pub key: String,
    /// Bytes of the plain artifact, before compression and encryption.
    pub plain_bytes: u64,
    /// Bytes of the object as stored.
    pub stored_bytes: u64,
    /// Lower-case hex SHA-256 of the object as stored.
    pub sha256: String,
}

/// A failed artifact write or read.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The store failed or could not be reached (after its own retries).
    #[error("artifact {key}: storage: {message}")]
    Storage { key: String, message: String },
    /// The artifact is missing from the store.
    #[error("artifact {key}: not found")]
    Missing { key: String },
    /// The stored object fails a check: its digest, its authentication tag (tampering, a
    /// truncated or reordered object), its decompression.
    #[error("artifact {key}: {check} check failed: {message}")]
    Integrity {
        key: String,
        check: &'static str,
        message: String,
    },
    /// The passphrase does not open the artifact.
    #[error("artifact {key}: wrong passphrase")]
    WrongPassphrase { key: String },
}

impl Categorized for ArtifactError {
    fn category(&self) -> Category {
        match self {
            Self::Storage { .. } => Category::Unavailable,
            Self::Missing { .. } | Self::Integrity { .. } => Category::InvalidInput,
            Self::WrongPassphrase { .. } => Category::Refused,
        }
    }
}

/// Where a backup's artifacts go.
pub trait ArtifactSink: Send + Sync {
    /// Stores `plain` under `key` (relative to the backup). Called concurrently from the
    /// dump's workers; a key is written once.
    fn put(
        &self,
        key: String,
        plain: Vec<u8>,
    ) -> BoxFuture<'_, Result<StoredArtifact, ArtifactError>>;
}

/// Where a backup's artifacts come back from, checked against what the sink recorded.
pub trait ArtifactSource: Send + Sync {
    /// The plain bytes of `artifact`, after every check passed.
    fn get<'a>(
        &'a self,
        artifact: &'a StoredArtifact,
    ) -> BoxFuture<'a, Result<Vec<u8>, ArtifactError>>;
}
