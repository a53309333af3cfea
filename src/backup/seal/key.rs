//! Key derivation and the pure chunk-level API.

use argon2::{Algorithm, Argon2, Params, Version};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, KeyType, Prk};
use ring::rand::{SecureRandom, SystemRandom};

use super::SealError;
use super::format::{CHECK_LEN, HEADER_LEN, Header, KdfParams, PREFIX_LEN, SALT_LEN, TAG_LEN};

const MASTER_LEN: usize = 32;
// Domain separation: the data key and the key-check tag come from the same Argon2 output
// but must be independent, or the stored tag would reveal something about the data key.
const INFO_DATA: &[u8] = b"bloodraven seal v1 data key";
const INFO_CHECK: &[u8] = b"bloodraven seal v1 key check";

/// The Argon2id output for one passphrase, salt and parameter set.
///
/// Deriving costs ~64 MiB and a fraction of a second by design, so a backup of many
/// objects derives once and seals every object under it; each object still gets its own
/// data key through its random nonce prefix.
pub struct MasterKey {
    prk: Prk,
    kdf: KdfParams,
    salt: [u8; SALT_LEN],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("kdf", &self.kdf)
            .field("salt", &self.salt)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// Derives under a fresh random salt, for sealing; an empty passphrase is refused.
    pub fn generate(passphrase: &[u8], kdf: KdfParams) -> Result<Self, SealError> {
        if passphrase.is_empty() {
            return Err(SealError::EmptyPassphrase);
        }
        let mut salt = [0u8; SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| SealError::Random)?;
        Self::derive(passphrase, kdf, salt)
    }

    /// Derives under a given salt, as a reader does from a header.
    pub fn derive(
        passphrase: &[u8],
        kdf: KdfParams,
        salt: [u8; SALT_LEN],
    ) -> Result<Self, SealError> {
        let kdf = kdf.check()?;
        let params =
            Params::new(kdf.memory_kib, kdf.passes, kdf.lanes, Some(MASTER_LEN)).map_err(|e| {
                SealError::Kdf {
                    reason: e.to_string(),
                }
            })?;
        let mut master = [0u8; MASTER_LEN];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase, &salt, &mut master)
            .map_err(|e| SealError::Kdf {
                reason: e.to_string(),
            })?;
        Ok(Self {
            prk: Prk::new_less_safe(HKDF_SHA256, &master),
            kdf,
            salt,
        })
    }

    pub fn kdf(&self) -> KdfParams {
        self.kdf
    }

    pub fn salt(&self) -> [u8; SALT_LEN] {
        self.salt
    }

    fn key_check(&self) -> Result<[u8; CHECK_LEN], SealError> {
        let mut out = [0u8; CHECK_LEN];
        expand(&self.prk, &[INFO_CHECK], &mut out)?;
        Ok(out)
    }

    fn data_key(&self, nonce_prefix: [u8; PREFIX_LEN]) -> Result<LessSafeKey, SealError> {
        let mut key = [0u8; 32];
        expand(&self.prk, &[INFO_DATA, &nonce_prefix], &mut key)?;
        let unbound = UnboundKey::new(&AES_256_GCM, &key).map_err(|_| SealError::Kdf {
            reason: "AES-256-GCM rejected the derived key".to_owned(),
        })?;
        Ok(LessSafeKey::new(unbound))
    }
}

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &Prk, info: &[&[u8]], out: &mut [u8]) -> Result<(), SealError> {
    prk.expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| SealError::Kdf {
            reason: "HKDF expansion failed".to_owned(),
        })
}

/// The key for one artifact: its header and AES-256-GCM key. Seals or opens chunk `i`
/// given whether it is the last.
pub struct SealKey {
    key: LessSafeKey,
    header: Header,
    header_bytes: [u8; HEADER_LEN],
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealKey")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl SealKey {
    /// A new artifact under `master`, with a fresh random nonce prefix.
    pub fn create(master: &MasterKey, chunk_log2: u8) -> Result<Self, SealError> {
        let mut nonce_prefix = [0u8; PREFIX_LEN];
        SystemRandom::new()
            .fill(&mut nonce_prefix)
            .map_err(|_| SealError::Random)?;
        let header = Header {
            kdf: master.kdf,
            salt: master.salt,
            nonce_prefix,
            chunk_log2,
            key_check: master.key_check()?,
        };
        // Round-trip through the reader's checks so a writer cannot produce what no
        // reader accepts (an out-of-range chunk size).
        let header = Header::decode(&header.encode())?;
        Self::with_header(master, header)
    }

    /// Opens an artifact's header with a passphrase, deriving its master key.
    pub fn open(passphrase: &[u8], header_bytes: &[u8]) -> Result<Self, SealError> {
        let header = Header::decode(header_bytes)?;
        let master = MasterKey::derive(passphrase, header.kdf, header.salt)?;
        Self::open_with(&master, header)
    }

    /// Opens an artifact's header with an already derived master key (for a backup's
    /// many objects). A header under a different salt or parameters is refused rather
    /// than derived afresh, since the caller asked for this key.
    pub fn open_with_master(master: &MasterKey, header_bytes: &[u8]) -> Result<Self, SealError> {
        let header = Header::decode(header_bytes)?;
        if header.salt != master.salt || header.kdf != master.kdf {
            return Err(SealError::BadHeader {
                reason: "salt or KDF parameters differ from the supplied master key's".to_owned(),
            });
        }
        Self::open_with(master, header)
    }

    fn open_with(master: &MasterKey, header: Header) -> Result<Self, SealError> {
        let expected = master.key_check()?;
        // Constant-time compare: cheap, and keeps the check free of a timing signal.
        let diff = expected
            .iter()
            .zip(header.key_check.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(SealError::WrongPassphrase);
        }
        Self::with_header(master, header)
    }

    fn with_header(master: &MasterKey, header: Header) -> Result<Self, SealError> {
        Ok(Self {
            key: master.data_key(header.nonce_prefix)?,
            header_bytes: header.encode(),
            header,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The exact header bytes to write first; also every chunk's AAD.
    pub fn header_bytes(&self) -> &[u8; HEADER_LEN] {
        &self.header_bytes
    }

    pub fn chunk_size(&self) -> usize {
        self.header.chunk_size()
    }

    fn nonce(&self, index: u32, last: bool) -> Nonce {
        let mut n = [0u8; NONCE_LEN];
        n[..PREFIX_LEN].copy_from_slice(&self.header.nonce_prefix);
        n[PREFIX_LEN..PREFIX_LEN + 4].copy_from_slice(&index.to_be_bytes());
        n[NONCE_LEN - 1] = u8::from(last);
        Nonce::assume_unique_for_key(n)
    }

    /// Encrypts `buf` (at most one chunk of plaintext) in place and appends the tag.
    pub fn seal_chunk(&self, index: u32, last: bool, buf: &mut Vec<u8>) -> Result<(), SealError> {
        if buf.len() > self.chunk_size() {
            return Err(SealError::Misuse {
                reason: format!(
                    "chunk of {} bytes exceeds the chunk size {}",
                    buf.len(),
                    self.chunk_size()
                ),
            });
        }
        self.key
            .seal_in_place_append_tag(
                self.nonce(index, last),
                Aad::from(&self.header_bytes[..]),
                buf,
            )
            .map_err(|_| SealError::Misuse {
                reason: "AES-256-GCM refused to seal".to_owned(),
            })
    }

    /// Verifies and decrypts chunk `index` in place, leaving only its plaintext. On a
    /// failed tag `buf` is cleared, so no unverified plaintext can escape.
    pub fn open_chunk(&self, index: u32, last: bool, buf: &mut Vec<u8>) -> Result<(), SealError> {
        let chunk = u64::from(index);
        if buf.len() < TAG_LEN || buf.len() > self.chunk_size() + TAG_LEN {
            buf.clear();
            return Err(SealError::Tampered { chunk });
        }
        let opened = self
            .key
            .open_in_place(
                self.nonce(index, last),
                Aad::from(&self.header_bytes[..]),
                buf,
            )
            .map(|plain| plain.len());
        if let Ok(len) = opened {
            buf.truncate(len);
            Ok(())
        } else {
            buf.clear();
            Err(SealError::Tampered { chunk })
        }
    }
}
