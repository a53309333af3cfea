//! Client-side streaming encryption of backup artifacts: AES-256-GCM in chunks under a
//! key derived from a passphrase with Argon2id.
//!
//! The byte format is specified in `docs/backup-format.md` ("Encryption"). In short: a
//! fixed header, then chunks whose nonce carries the chunk's index and a last-chunk flag
//! and whose AAD is the whole header, so reordering, truncation, a header edit and a
//! flipped byte all fail authentication, and a key-check tag tells a wrong passphrase
//! apart from tampering.
//!
//! [`SealKey`] is the pure chunk-level API; [`Sealer`] and [`Opener`] are streaming
//! adapters over `std::io` holding one chunk in memory.

mod error;
mod format;
mod key;
mod opener;
mod sealer;

pub use error::SealError;
pub use format::{
    DEFAULT_CHUNK_LOG2, HEADER_LEN, Header, KdfParams, MAGIC, MAX_CHUNK_LOG2, MIN_CHUNK_LOG2,
    TAG_LEN, VERSION,
};
pub use key::{MasterKey, SealKey};
pub use opener::Opener;
pub use sealer::{SealOptions, Sealer};

#[cfg(test)]
mod tests;
