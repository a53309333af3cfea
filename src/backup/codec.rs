//! How one artifact's plain bytes become the stored object and back: zstd, then (for an
//! encrypted backup) the sealed format of [`super::seal`], then a SHA-256 of the result.
//!
//! Reading checks in the reverse order and stops at the first failure, naming it: the
//! digest (a swapped, truncated or altered object), then the seal (a wrong passphrase,
//! tampering), then decompression, then the plain length the manifest recorded. A
//! decompression never produces more than that length, so a hostile object cannot inflate
//! into unbounded memory.

use crate::digest::sha256_hex;
use std::io::{Read as _, Write as _};
use std::sync::Arc;

use super::seal::{DEFAULT_CHUNK_LOG2, MasterKey, Opener, SealError, Sealer};
use crate::ports::artifacts::{ArtifactError, StoredArtifact};

/// zstd level 1: on the benchmark's row data it stored 295 MB against level 3's 309 MB
/// (chunks of 8 MiB compress well at any level) and took the dump from 10.4 s to 8.3 s on
/// two cores, where compression competes with the server for CPU (docs/performance.md).
const ZSTD_LEVEL: i32 = 1;

/// Whether artifacts are sealed, and under which key.
#[derive(Debug, Clone)]
pub enum Protection {
    Plain,
    Sealed(Arc<MasterKey>),
}

/// Encodes and decodes the artifacts of one backup.
#[derive(Debug, Clone)]
pub struct Codec {
    protection: Protection,
}

impl Codec {
    pub fn new(protection: Protection) -> Self {
        Self { protection }
    }

    pub fn is_sealed(&self) -> bool {
        matches!(self.protection, Protection::Sealed(_))
    }

    /// The stored object for `plain`, and the record that lets a reader check it.
    pub fn encode(
        &self,
        key: &str,
        plain: &[u8],
    ) -> Result<(Vec<u8>, StoredArtifact), ArtifactError> {
        let compressed =
            zstd::bulk::compress(plain, ZSTD_LEVEL).map_err(|e| ArtifactError::Integrity {
                key: key.to_owned(),
                check: "compression",
                message: e.to_string(),
            })?;
        let stored = match &self.protection {
            Protection::Plain => compressed,
            Protection::Sealed(master) => {
                let seal_error = |e: SealError| ArtifactError::Integrity {
                    key: key.to_owned(),
                    check: "encryption",
                    message: e.to_string(),
                };
                let mut sealer = Sealer::with_master(
                    Vec::with_capacity(compressed.len() + compressed.len() / 64 + 128),
                    master,
                    DEFAULT_CHUNK_LOG2,
                )
                .map_err(seal_error)?;
                sealer
                    .write_all(&compressed)
                    .map_err(|e| seal_error(SealError::from(e)))?;
                sealer.finish().map_err(seal_error)?
            }
        };
        let record = StoredArtifact {
            key: key.to_owned(),
            plain_bytes: plain.len() as u64,
            stored_bytes: stored.len() as u64,
            sha256: sha256_hex(&stored),
        };
        Ok((stored, record))
    }

    /// The plain bytes of `stored`, after every check against `record` passed.
    pub fn decode(&self, record: &StoredArtifact, stored: &[u8]) -> Result<Vec<u8>, ArtifactError> {
        let failed = |check: &'static str, message: String| ArtifactError::Integrity {
            key: record.key.clone(),
            check,
            message,
        };
        if stored.len() as u64 != record.stored_bytes {
            return Err(failed(
                "size",
                format!(
                    "{} bytes stored, the manifest says {}",
                    stored.len(),
                    record.stored_bytes
                ),
            ));
        }
        let digest = sha256_hex(stored);
        if digest != record.sha256 {
            return Err(failed(
                "digest",
                format!("SHA-256 {digest}, the manifest says {}", record.sha256),
            ));
        }
        let compressed = match &self.protection {
            Protection::Plain => stored.to_vec(),
            Protection::Sealed(master) => {
                let mut out = Vec::with_capacity(stored.len());
                Opener::with_master(stored, master)
                    .and_then(|mut opener| {
                        opener.read_to_end(&mut out).map_err(SealError::from)?;
                        Ok(())
                    })
                    .map_err(|e| match e {
                        SealError::WrongPassphrase => ArtifactError::WrongPassphrase {
                            key: record.key.clone(),
                        },
                        other => failed("authentication", other.to_string()),
                    })?;
                out
            }
        };
        let limit = usize::try_from(record.plain_bytes)
            .map_err(|_| failed("size", "plain size does not fit in memory".to_owned()))?;
        let mut plain = Vec::with_capacity(limit);
        zstd::stream::read::Decoder::new(compressed.as_slice())
            .map_err(|e| failed("decompression", e.to_string()))?
            .take(record.plain_bytes + 1)
            .read_to_end(&mut plain)
            .map_err(|e| failed("decompression", e.to_string()))?;
        if plain.len() != limit {
            return Err(failed(
                "size",
                format!(
                    "{} plain bytes, the manifest says {}",
                    plain.len(),
                    record.plain_bytes
                ),
            ));
        }
        Ok(plain)
    }
}

#[cfg(test)]
mod tests;
