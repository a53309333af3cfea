//! Reading the event headers of a binary log file, to learn the time span it covers.
//!
//! The v4 format: the magic `\xfe bin`, then events, each with a 19-byte header
//! (`timestamp` u32 LE, `type` u8, `server_id` u32, `event_size` u32, `log_pos` u32,
//! `flags` u16) followed by `event_size - 19` bytes. Only the headers are read; the bodies
//! are skipped, so the scan holds one header in memory whatever the file's size.

use std::io::{self, Read};

const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];
/// An encrypted binary log (`binlog_encryption=ON`) starts with this instead.
const ENCRYPTED_MAGIC: [u8; 4] = [0xfd, b'b', b'i', b'n'];
const HEADER_LEN: u32 = 19;

/// What a scan of one file found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BinlogScan {
    pub events: u64,
    /// Unix seconds of the first and last events (0 when there are none).
    pub first_event: u32,
    pub last_event: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("not a binary log: it does not start with the v4 magic")]
    NotBinlog,
    #[error("an encrypted binary log: archive it from a server with binlog_encryption=OFF")]
    Encrypted,
    #[error("event {event} at byte {offset}: size {size} is smaller than its header")]
    BadEvent { event: u64, offset: u64, size: u32 },
    #[error("truncated: event {event} at byte {offset} runs past the end of the file")]
    Truncated { event: u64, offset: u64 },
    #[error("reading: {0}")]
    Io(#[from] io::Error),
}

/// Scans every event header of a binary log.
pub fn scan_events(mut reader: impl Read) -> Result<BinlogScan, ScanError> {
    let mut magic = [0u8; 4];
    reader
        .read_exact(&mut magic)
        .map_err(|_| ScanError::NotBinlog)?;
    if magic == ENCRYPTED_MAGIC {
        return Err(ScanError::Encrypted);
    }
    if magic != MAGIC {
        return Err(ScanError::NotBinlog);
    }
    let mut scan = BinlogScan::default();
    let mut offset = 4u64;
    let mut header = [0u8; HEADER_LEN as usize];
    loop {
        match read_full(&mut reader, &mut header)? {
            0 => return Ok(scan),
            n if n < header.len() => {
                return Err(ScanError::Truncated {
                    event: scan.events,
                    offset,
                });
            }
            _ => {}
        }
        let timestamp = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let size = u32::from_le_bytes([header[9], header[10], header[11], header[12]]);
        if size < HEADER_LEN {
            return Err(ScanError::BadEvent {
                event: scan.events,
                offset,
                size,
            });
        }
        let body = u64::from(size - HEADER_LEN);
        let skipped = io::copy(&mut (&mut reader).take(body), &mut io::sink())?;
        if skipped < body {
            return Err(ScanError::Truncated {
                event: scan.events,
                offset,
            });
        }
        // The format description event of a log opened at startup can carry 0; the
        // span is over events that say when they happened.
        if timestamp != 0 {
            if scan.first_event == 0 {
                scan.first_event = timestamp;
            }
            scan.last_event = scan.last_event.max(timestamp);
        }
        scan.events += 1;
        offset += u64::from(size);
    }
}

/// Reads until `buf` is full or the input ends; the count read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
