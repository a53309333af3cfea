//! The fixed header of a sealed artifact and its bounds.
//!
//! Layout (all integers big-endian), [`HEADER_LEN`] = 58 bytes:
//!
//! | offset | len | field |
//! |---|---|---|
//! | 0 | 4 | magic `BRVS` |
//! | 4 | 1 | format version (1) |
//! | 5 | 1 | KDF id (1 = Argon2id v1.3) |
//! | 6 | 4 | Argon2 memory, KiB |
//! | 10 | 4 | Argon2 passes |
//! | 14 | 4 | Argon2 lanes |
//! | 18 | 16 | salt |
//! | 34 | 7 | nonce prefix |
//! | 41 | 1 | chunk size, log2 |
//! | 42 | 16 | key-check tag |

use super::SealError;

pub const MAGIC: [u8; 4] = *b"BRVS";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 58;
/// The AES-GCM tag appended to every chunk.
pub const TAG_LEN: usize = 16;
pub const SALT_LEN: usize = 16;
pub const PREFIX_LEN: usize = 7;
pub const CHECK_LEN: usize = 16;
/// 64 KiB: small enough that one chunk per stream is a negligible buffer, large enough
/// that the 16-byte tag costs 0.02%.
pub const DEFAULT_CHUNK_LOG2: u8 = 16;
pub const MIN_CHUNK_LOG2: u8 = 8;
/// 16 MiB: bounds the buffer an attacker-supplied header can make a reader allocate.
pub const MAX_CHUNK_LOG2: u8 = 24;

const KDF_ARGON2ID: u8 = 1;

/// Argon2id cost parameters, stored in the header so they can be raised for new
/// artifacts while old ones stay readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl KdfParams {
    /// m = 64 MiB, t = 3, p = 1: RFC 9106's second recommended setting, at one lane
    /// because a backup Job may be limited to one core and the derivation runs once per
    /// artifact (or once per backup with [`super::MasterKey`]).
    pub const STRONG: Self = Self {
        memory_kib: 64 * 1024,
        passes: 3,
        lanes: 1,
    };

    /// The cheapest parameters Argon2 accepts; for tests only, never for real backups.
    pub const fn insecure_fast_for_tests() -> Self {
        Self {
            memory_kib: 8,
            passes: 1,
            lanes: 1,
        }
    }

    /// Bounds a reader enforces before deriving, so an edited header cannot make it
    /// allocate or compute without limit.
    pub(super) fn check(self) -> Result<Self, SealError> {
        let bad = |reason: String| Err(SealError::BadHeader { reason });
        if !(1..=16).contains(&self.lanes) {
            return bad(format!("Argon2 lanes {} outside 1..=16", self.lanes));
        }
        if !(1..=64).contains(&self.passes) {
            return bad(format!("Argon2 passes {} outside 1..=64", self.passes));
        }
        let min_memory = 8 * self.lanes;
        if !(min_memory..=4 * 1024 * 1024).contains(&self.memory_kib) {
            return bad(format!(
                "Argon2 memory {} KiB outside {min_memory}..=4194304",
                self.memory_kib
            ));
        }
        Ok(self)
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::STRONG
    }
}

/// A decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub kdf: KdfParams,
    pub salt: [u8; SALT_LEN],
    pub nonce_prefix: [u8; PREFIX_LEN],
    pub chunk_log2: u8,
    pub key_check: [u8; CHECK_LEN],
}

impl Header {
    /// Plaintext bytes per chunk.
    pub fn chunk_size(&self) -> usize {
        1 << self.chunk_log2
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = KDF_ARGON2ID;
        out[6..10].copy_from_slice(&self.kdf.memory_kib.to_be_bytes());
        out[10..14].copy_from_slice(&self.kdf.passes.to_be_bytes());
        out[14..18].copy_from_slice(&self.kdf.lanes.to_be_bytes());
        out[18..34].copy_from_slice(&self.salt);
        out[34..41].copy_from_slice(&self.nonce_prefix);
        out[41] = self.chunk_log2;
        out[42..58].copy_from_slice(&self.key_check);
        out
    }

    /// Decodes and bounds-checks a header; `bytes` may be shorter than [`HEADER_LEN`]
    /// when the stream ended early.
    pub fn decode(bytes: &[u8]) -> Result<Self, SealError> {
        let magic_seen = bytes.len().min(MAGIC.len());
        if bytes[..magic_seen] != MAGIC[..magic_seen] || bytes.is_empty() {
            return Err(SealError::NotEncrypted);
        }
        if bytes.len() < HEADER_LEN {
            return Err(SealError::BadHeader {
                reason: format!("cut short: {} of {HEADER_LEN} header bytes", bytes.len()),
            });
        }
        if bytes[4] != VERSION {
            return Err(SealError::UnsupportedVersion {
                version: bytes[4],
                supported: VERSION,
            });
        }
        if bytes[5] != KDF_ARGON2ID {
            return Err(SealError::BadHeader {
                reason: format!("unknown KDF id {}", bytes[5]),
            });
        }
        let kdf = KdfParams {
            memory_kib: be_u32(&bytes[6..10]),
            passes: be_u32(&bytes[10..14]),
            lanes: be_u32(&bytes[14..18]),
        }
        .check()?;
        let chunk_log2 = bytes[41];
        if !(MIN_CHUNK_LOG2..=MAX_CHUNK_LOG2).contains(&chunk_log2) {
            return Err(SealError::BadHeader {
                reason: format!(
                    "chunk size 2^{chunk_log2} outside 2^{MIN_CHUNK_LOG2}..=2^{MAX_CHUNK_LOG2}"
                ),
            });
        }
        let mut header = Self {
            kdf,
            salt: [0; SALT_LEN],
            nonce_prefix: [0; PREFIX_LEN],
            chunk_log2,
            key_check: [0; CHECK_LEN],
        };
        header.salt.copy_from_slice(&bytes[18..34]);
        header.nonce_prefix.copy_from_slice(&bytes[34..41]);
        header.key_check.copy_from_slice(&bytes[42..58]);
        Ok(header)
    }
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_be_bytes(a)
}
