//! The reading side: sealed artifact in, verified plaintext out, one chunk at a time.

use std::io::{self, Read};

use super::format::{HEADER_LEN, TAG_LEN};
use super::{MasterKey, SealError, SealKey};

/// Bytes of AES-GCM work the failure path may spend looking for where a final chunk
/// followed by appended bytes ends (about a second).
const TRAILING_SEARCH_BUDGET: u64 = 4 << 30;

/// Reads and verifies a sealed artifact from `inner`, yielding its plaintext.
///
/// A chunk's plaintext is released only after its tag verifies, and the final chunk's
/// only after the end of the stream is confirmed, so a reader that stops at the first
/// error has seen only authentic data; but a stream cut or altered later still fails
/// later, so a restore that must write nothing on failure verifies the whole artifact
/// first (see [`Opener::verify_to_end`]).
pub struct Opener<R: Read> {
    inner: R,
    key: SealKey,
    /// Ciphertext, then (after verification) plaintext served from `pos`.
    buf: Vec<u8>,
    pos: usize,
    /// Where a chunk is decrypted, so `buf` keeps the ciphertext if its tag fails.
    spare: Vec<u8>,
    /// One byte read past a full chunk to learn whether it is the last.
    lookahead: Option<u8>,
    index: u32,
    state: State,
}

#[derive(Debug)]
enum State {
    Reading,
    Done,
    Failed(SealError),
}

impl<R: Read> std::fmt::Debug for Opener<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("key", &self.key)
            .field("index", &self.index)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Opener<R> {
    /// Reads the header and checks `passphrase` against its key-check tag.
    pub fn new(mut inner: R, passphrase: &[u8]) -> Result<Self, SealError> {
        let header = read_header(&mut inner)?;
        let key = SealKey::open(passphrase, &header)?;
        Ok(Self::with_key(inner, key))
    }

    /// As [`Opener::new`] with a master key derived once for a backup's many objects.
    pub fn with_master(mut inner: R, master: &MasterKey) -> Result<Self, SealError> {
        let header = read_header(&mut inner)?;
        let key = SealKey::open_with_master(master, &header)?;
        Ok(Self::with_key(inner, key))
    }

    fn with_key(inner: R, key: SealKey) -> Self {
        let buf = Vec::with_capacity(key.chunk_size() + TAG_LEN);
        let spare = Vec::with_capacity(key.chunk_size() + TAG_LEN);
        Self {
            inner,
            key,
            buf,
            pos: 0,
            spare,
            lookahead: None,
            index: 0,
            state: State::Reading,
        }
    }

    pub fn key(&self) -> &SealKey {
        &self.key
    }

    /// Reads and verifies the rest of the artifact, discarding the plaintext.
    pub fn verify_to_end(mut self) -> Result<u64, SealError> {
        let mut total = 0u64;
        loop {
            match self.next_chunk() {
                Ok(true) => {
                    total += (self.buf.len() - self.pos) as u64;
                    self.pos = self.buf.len();
                }
                Ok(false) => return Ok(total),
                Err(e) => return Err(e),
            }
        }
    }

    /// Loads and verifies the next chunk into `buf`; false once the stream has ended.
    fn next_chunk(&mut self) -> Result<bool, SealError> {
        match &self.state {
            State::Done => return Ok(false),
            State::Failed(e) => return Err(e.clone()),
            State::Reading => {}
        }
        match self.load_chunk() {
            Ok(()) => Ok(true),
            Err(e) => {
                self.buf.clear();
                self.pos = 0;
                self.state = State::Failed(e.clone());
                Err(e)
            }
        }
    }

    fn load_chunk(&mut self) -> Result<(), SealError> {
        let full = self.key.chunk_size() + TAG_LEN;
        let chunk = u64::from(self.index);
        self.buf.clear();
        self.pos = 0;
        self.buf.extend(self.lookahead.take());
        fill(&mut self.inner, &mut self.buf, full)?;
        let at_eof = if self.buf.len() == full {
            let mut one = [0u8; 1];
            if read_some(&mut self.inner, &mut one)? == 0 {
                true
            } else {
                self.lookahead = Some(one[0]);
                false
            }
        } else {
            true
        };
        if at_eof && self.buf.len() < TAG_LEN {
            if self.buf.is_empty() {
                return Err(SealError::Truncated { chunks: chunk });
            }
            return self.explain_failure(self.buf.len());
        }
        self.spare.clear();
        self.spare.extend_from_slice(&self.buf);
        if self
            .key
            .open_chunk(self.index, at_eof, &mut self.spare)
            .is_ok()
        {
            std::mem::swap(&mut self.buf, &mut self.spare);
            if at_eof {
                self.state = State::Done;
            } else {
                self.index = self.index.checked_add(1).ok_or(SealError::TooLarge)?;
            }
            return Ok(());
        }
        let len = self.buf.len();
        self.explain_failure(len)
    }

    /// Names the failed check for the ciphertext in `buf` that did not verify. Runs only
    /// on the failure path, where it may spend time to be precise.
    fn explain_failure(&mut self, len: usize) -> Result<(), SealError> {
        let chunk = u64::from(self.index);
        let full = self.key.chunk_size() + TAG_LEN;
        let mut scratch = std::mem::take(&mut self.spare);
        // A full chunk at the very end that verifies as non-final: the stream was cut at a
        // chunk boundary.
        if len == full && self.lookahead.is_none() {
            scratch.clear();
            scratch.extend_from_slice(&self.buf);
            if self.key.open_chunk(self.index, false, &mut scratch).is_ok() {
                return Err(SealError::Truncated { chunks: chunk + 1 });
            }
        }
        // A shorter prefix that verifies as the final chunk: bytes were appended after it.
        let trailing = self.lookahead.is_some() || len > TAG_LEN;
        let mut spent = 0u64;
        if trailing {
            for candidate in (TAG_LEN..=len.min(full)).rev() {
                if candidate == len && self.lookahead.is_none() {
                    continue;
                }
                // Each try costs its length, so the whole search is quadratic in the
                // chunk size; the budget caps an edited chunk size (up to 16 MiB) from
                // turning one bad artifact into hours of work. At the default 64 KiB the
                // budget covers every length.
                spent = spent.saturating_add(u64::try_from(candidate).unwrap_or(u64::MAX));
                if spent > TRAILING_SEARCH_BUDGET {
                    break;
                }
                scratch.clear();
                scratch.extend_from_slice(&self.buf[..candidate]);
                if self.key.open_chunk(self.index, true, &mut scratch).is_ok() {
                    return Err(SealError::TrailingData { chunk });
                }
            }
        }
        if len < TAG_LEN {
            return Err(SealError::Truncated { chunks: chunk });
        }
        Err(SealError::Tampered { chunk })
    }
}

impl<R: Read> Read for Opener<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.pos == self.buf.len() {
            if !self.next_chunk()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn read_header<R: Read>(inner: &mut R) -> Result<Vec<u8>, SealError> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    fill(inner, &mut header, HEADER_LEN)?;
    Ok(header)
}

/// Reads until `buf` holds `want` bytes or the stream ends.
fn fill<R: Read>(inner: &mut R, buf: &mut Vec<u8>, want: usize) -> Result<(), SealError> {
    let missing = want.saturating_sub(buf.len());
    inner.by_ref().take(missing as u64).read_to_end(buf)?;
    Ok(())
}

fn read_some<R: Read>(inner: &mut R, out: &mut [u8]) -> Result<usize, SealError> {
    loop {
        match inner.read(out) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}
