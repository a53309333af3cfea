//! One backup's artifacts in the repository: written through a [`RepositorySink`], read
//! back through a [`RepositorySource`]. Encoding runs on the blocking pool: zstd and
//! AES-GCM over a few MiB would otherwise stall the runtime's workers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::BoxFuture;

use crate::backup::codec::Codec;
use crate::backup::manifest::backup_key;
use crate::ports::artifacts::{
    ArtifactError, ArtifactSink, ArtifactSource, BlobStore, StoredArtifact,
};

/// What a sink has written so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkTotals {
    pub artifacts: u64,
    pub plain_bytes: u64,
    pub stored_bytes: u64,
}

/// Writes the artifacts of backup `id`.
pub struct RepositorySink {
    store: Arc<dyn BlobStore>,
    codec: Codec,
    id: String,
    artifacts: AtomicU64,
    plain_bytes: AtomicU64,
    stored_bytes: AtomicU64,
}

impl RepositorySink {
    pub fn new(store: Arc<dyn BlobStore>, codec: Codec, id: impl Into<String>) -> Self {
        Self {
            store,
            codec,
            id: id.into(),
            artifacts: AtomicU64::new(0),
            plain_bytes: AtomicU64::new(0),
            stored_bytes: AtomicU64::new(0),
        }
    }

    pub fn totals(&self) -> SinkTotals {
        SinkTotals {
            artifacts: self.artifacts.load(Ordering::Relaxed),
            plain_bytes: self.plain_bytes.load(Ordering::Relaxed),
            stored_bytes: self.stored_bytes.load(Ordering::Relaxed),
        }
    }

    async fn store(&self, key: String, plain: Vec<u8>) -> Result<StoredArtifact, ArtifactError> {
        let codec = self.codec.clone();
        let encode_key = key.clone();
        let (stored, record) =
            tokio::task::spawn_blocking(move || codec.encode(&encode_key, &plain))
                .await
                .map_err(|e| ArtifactError::Storage {
                    key: key.clone(),
                    message: format!("encoding task failed: {e}"),
                })??;
        self.store
            .put(&backup_key(&self.id, &key), stored)
            .await
            .map_err(|e| e.into_artifact(&key))?;
        self.artifacts.fetch_add(1, Ordering::Relaxed);
        self.plain_bytes
            .fetch_add(record.plain_bytes, Ordering::Relaxed);
        self.stored_bytes
            .fetch_add(record.stored_bytes, Ordering::Relaxed);
        Ok(record)
    }
}

impl ArtifactSink for RepositorySink {
    fn put(
        &self,
        key: String,
        plain: Vec<u8>,
    ) -> BoxFuture<'_, Result<StoredArtifact, ArtifactError>> {
        Box::pin(self.store(key, plain))
    }
}

/// Reads the artifacts of backup `id`, checking each against its record.
pub struct RepositorySource {
    store: Arc<dyn BlobStore>,
    codec: Codec,
    id: String,
}

impl RepositorySource {
    pub fn new(store: Arc<dyn BlobStore>, codec: Codec, id: impl Into<String>) -> Self {
        Self {
            store,
            codec,
            id: id.into(),
        }
    }

    async fn fetch(&self, artifact: &StoredArtifact) -> Result<Vec<u8>, ArtifactError> {
        // The record bounds the read: an object grown in the store is refused, not read.
        let stored = self
            .store
            .get(&backup_key(&self.id, &artifact.key), artifact.stored_bytes)
            .await
            .map_err(|e| e.into_artifact(&artifact.key))?;
        let codec = self.codec.clone();
        let record = artifact.clone();
        tokio::task::spawn_blocking(move || codec.decode(&record, &stored))
            .await
            .map_err(|e| ArtifactError::Storage {
                key: artifact.key.clone(),
                message: format!("decoding task failed: {e}"),
            })?
    }
}

impl ArtifactSource for RepositorySource {
    fn get<'a>(
        &'a self,
        artifact: &'a StoredArtifact,
    ) -> BoxFuture<'a, Result<Vec<u8>, ArtifactError>> {
        Box::pin(self.fetch(artifact))
    }
}
