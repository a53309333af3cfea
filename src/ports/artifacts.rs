//! The backup engine's boundary with storage: where the plain bytes of one backup
//! artifact (a data chunk, a DDL script, an archived binlog) go, and where they come back
//! from.
//!
//! The MySQL side of the engine (dump, load) deals only in plain artifact bytes and
//! relative keys. What happens between (compression, client-side encryption, digests, the
//! object store and its retries) is the sink's and the source's business, so the database
//! code never sees a passphrase or a bucket, and either side can be tested on its own.
//!
//! [`BlobStore`] is the object store under both: the repository of backups itself, which
//! listing and pruning address directly.
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

/// One stored object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// The key relative to the store's root.
    pub key: String,
    pub size: u64,
}

/// A failed object-store operation.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("{key}: not found in the store")]
    Missing { key: String },
    /// The object is larger than the caller's bound: never read whole.
    #[error("{key}: {size} bytes is more than the {limit} bytes this read allows")]
    TooLarge { key: String, size: u64, limit: u64 },
    /// The store failed or could not be reached, after the client's own retries.
    #[error("{operation} {key}: {message}")]
    Unavailable {
        operation: &'static str,
        key: String,
        message: String,
    },
}

impl Categorized for BlobError {
    fn category(&self) -> Category {
        match self {
            Self::Missing { .. } | Self::TooLarge { .. } => Category::InvalidInput,
            Self::Unavailable { .. } => Category::Unavailable,
        }
    }
}

impl BlobError {
    /// The same failure as seen by an artifact read or write.
    pub fn into_artifact(self, key: &str) -> ArtifactError {
        match self {
            Self::Missing { .. } => ArtifactError::Missing {
                key: key.to_owned(),
            },
            Self::TooLarge { size, limit, .. } => ArtifactError::Integrity {
                key: key.to_owned(),
                check: "size",
                message: format!("{size} bytes stored, the manifest says {limit}"),
            },
            other @ Self::Unavailable { .. } => ArtifactError::Storage {
                key: key.to_owned(),
                message: other.to_string(),
            },
        }
    }
}

/// The object store a backup repository lives in (S3, a mounted volume), addressed by
/// keys relative to the repository's root. Writes of one key are atomic: a reader sees the
/// whole object or none of it.
pub trait BlobStore: Send + Sync {
    /// Writes `bytes` under `key`, replacing any object there.
    fn put(&self, key: &str, bytes: Vec<u8>) -> BoxFuture<'_, Result<(), BlobError>>;
    /// Reads the whole object, refusing one larger than `limit` bytes.
    fn get(&self, key: &str, limit: u64) -> BoxFuture<'_, Result<Vec<u8>, BlobError>>;
    /// Every object whose key starts with `prefix` followed by `/` (recursively).
    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<Vec<BlobInfo>, BlobError>>;
    /// The immediate "directories" under `prefix` (their names, not full keys).
    fn list_dirs(&self, prefix: &str) -> BoxFuture<'_, Result<Vec<String>, BlobError>>;
    /// Deletes `key`; deleting a missing object is not an error.
    fn delete(&self, key: &str) -> BoxFuture<'_, Result<(), BlobError>>;
}
