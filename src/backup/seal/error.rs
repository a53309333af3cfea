//! What went wrong opening or sealing an artifact, one variant per check.

use std::io;
use std::sync::Arc;

use crate::error::{Categorized, Category};

/// A failed check on a sealed artifact, or a failure of the stream underneath.
///
/// Cloneable (the I/O error is shared) so a streaming adapter can keep returning the
/// first failure instead of carrying on past it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SealError {
    /// The key-check tag did not match: the passphrase is wrong (or the header's salt or
    /// KDF parameters were altered, which derives a different key just the same).
    #[error("wrong passphrase: the key-check tag in the header does not match the derived key")]
    WrongPassphrase,
    /// The stream ended before the final chunk.
    #[error("truncated: the artifact ends after {chunks} chunk(s) without a final chunk")]
    Truncated { chunks: u64 },
    /// A chunk failed authentication: altered, reordered, cut short or spliced.
    #[error("tampered: chunk {chunk} failed authentication (altered, reordered or cut short)")]
    Tampered { chunk: u64 },
    /// Bytes follow the final chunk.
    #[error("trailing data: bytes follow the final chunk {chunk}")]
    TrailingData { chunk: u64 },
    /// The stream does not start with the sealed-artifact magic.
    #[error("not encrypted: the artifact does not start with the BRVS magic")]
    NotEncrypted,
    /// The header is malformed or out of the accepted bounds.
    #[error("bad header: {reason}")]
    BadHeader { reason: String },
    /// A format version this build cannot read.
    #[error("unsupported format version {version} (this build reads version {supported})")]
    UnsupportedVersion { version: u8, supported: u8 },
    /// The artifact would exceed the 2^32 chunks a nonce counter can number.
    #[error("too large: more than 2^32 chunks")]
    TooLarge,
    /// Sealing was asked to use an empty passphrase, which would protect nothing.
    #[error("empty passphrase: refusing to seal under a key anyone can derive")]
    EmptyPassphrase,
    /// The key derivation function refused its parameters.
    #[error("key derivation failed: {reason}")]
    Kdf { reason: String },
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
    /// The caller broke the API's contract (an oversized chunk); a bug on our side.
    #[error("misuse: {reason}")]
    Misuse { reason: String },
    /// A streaming adapter was used again after it failed or finished.
    #[error("the stream already failed or finished")]
    Poisoned,
    /// The stream underneath failed.
    #[error("I/O: {0}")]
    Io(#[source] Arc<io::Error>),
}

impl From<io::Error> for SealError {
    fn from(e: io::Error) -> Self {
        // A `SealError` carried through a `Read` impl comes back out as itself.
        match e.downcast::<SealError>() {
            Ok(seal) => seal,
            Err(e) => Self::Io(Arc::new(e)),
        }
    }
}

impl From<SealError> for io::Error {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Io(inner) => io::Error::new(inner.kind(), SealError::Io(inner)),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

impl Categorized for SealError {
    fn category(&self) -> Category {
        match self {
            // A wrong passphrase is a configuration problem (the Secret), not bad data.
            Self::WrongPassphrase | Self::EmptyPassphrase => Category::Config,
            Self::Truncated { .. }
            | Self::Tampered { .. }
            | Self::TrailingData { .. }
            | Self::NotEncrypted
            | Self::BadHeader { .. }
            | Self::UnsupportedVersion { .. }
            | Self::TooLarge
            | Self::Kdf { .. } => Category::InvalidInput,
            Self::Io(_) => Category::Unavailable,
            Self::Random | Self::Poisoned | Self::Misuse { .. } => Category::Internal,
        }
    }
}
