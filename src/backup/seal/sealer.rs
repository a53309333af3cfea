//! The writing side: plaintext in, sealed artifact out, one chunk buffered.

use std::io::{self, Write};

use super::format::{DEFAULT_CHUNK_LOG2, KdfParams, TAG_LEN};
use super::{MasterKey, SealError, SealKey};

/// How a new artifact is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealOptions {
    pub kdf: KdfParams,
    pub chunk_log2: u8,
}

impl Default for SealOptions {
    fn default() -> Self {
        Self {
            kdf: KdfParams::STRONG,
            chunk_log2: DEFAULT_CHUNK_LOG2,
        }
    }
}

/// Seals everything written to it into `inner`.
///
/// The final chunk is written only by [`Sealer::finish`]; a sealer dropped without it
/// leaves an artifact every reader rejects as truncated, so an interrupted backup can
/// never pass for a complete one.
pub struct Sealer<W: Write> {
    inner: W,
    key: SealKey,
    buf: Vec<u8>,
    index: u32,
    poisoned: bool,
}

impl<W: Write> std::fmt::Debug for Sealer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("key", &self.key)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Sealer<W> {
    /// Derives a key from `passphrase` (a fresh salt) and writes the header.
    pub fn new(inner: W, passphrase: &[u8], options: SealOptions) -> Result<Self, SealError> {
        let master = MasterKey::generate(passphrase, options.kdf)?;
        Self::with_master(inner, &master, options.chunk_log2)
    }

    /// Seals under an already derived master key and writes the header.
    pub fn with_master(
        mut inner: W,
        master: &MasterKey,
        chunk_log2: u8,
    ) -> Result<Self, SealError> {
        let key = SealKey::create(master, chunk_log2)?;
        inner.write_all(key.header_bytes())?;
        let buf = Vec::with_capacity(key.chunk_size() + TAG_LEN);
        Ok(Self {
            inner,
            key,
            buf,
            index: 0,
            poisoned: false,
        })
    }

    fn emit(&mut self, last: bool) -> Result<(), SealError> {
        self.poisoned = true;
        self.key.seal_chunk(self.index, last, &mut self.buf)?;
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        if !last {
            self.index = self.index.checked_add(1).ok_or(SealError::TooLarge)?;
        }
        self.poisoned = false;
        Ok(())
    }

    /// Writes the final chunk (possibly empty), flushes, and hands back the inner writer.
    pub fn finish(mut self) -> Result<W, SealError> {
        if self.poisoned {
            return Err(SealError::Poisoned);
        }
        self.emit(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(SealError::Poisoned.into());
        }
        if data.is_empty() {
            return Ok(0);
        }
        // A full buffer is sealed only once more data arrives: until then it may still be
        // the final chunk.
        if self.buf.len() == self.key.chunk_size() {
            self.emit(false)?;
        }
        let take = data.len().min(self.key.chunk_size() - self.buf.len());
        self.buf.extend_from_slice(&data[..take]);
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Buffered plaintext stays buffered: sealing it early would fix the chunk layout.
        self.inner.flush()
    }
}
