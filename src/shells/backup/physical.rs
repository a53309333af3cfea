//! The clone method's data directory as a stream: a tar archive cut into fixed-size parts
//! on the way out, and the parts fed back into an unpacker on the way in. At most a few
//! parts are in memory at once, whatever the size of the data directory.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::error::BackupError;
use crate::ports::artifacts::{ArtifactSink, ArtifactSource, StoredArtifact};

const PART_BYTES: usize = 8 << 20;

/// Archives `dir` into parts stored through `sink`, in order.
pub(super) async fn archive_dir(
    dir: PathBuf,
    sink: &dyn ArtifactSink,
) -> Result<Vec<StoredArtifact>, BackupError> {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(2);
    let producer = tokio::task::spawn_blocking(move || -> io::Result<()> {
        let mut builder = tar::Builder::new(PartWriter {
            tx,
            buf: Vec::with_capacity(PART_BYTES),
        });
        builder.follow_symlinks(false);
        builder.append_dir_all(".", &dir)?;
        builder.into_inner()?.flush_last()
    });
    let mut parts = Vec::new();
    while let Some(part) = rx.recv().await {
        let key = format!("data/archive-{:05}.tar", parts.len());
        parts.push(sink.put(key, part).await?);
    }
    producer
        .await
        .map_err(|e| BackupError::Runtime(format!("archiving task: {e}")))?
        .map_err(|e| BackupError::Runtime(format!("archiving the cloned data directory: {e}")))?;
    Ok(parts)
}

/// Unpacks the parts (read and checked through `source`) into `dir`, which must be absent
/// or empty.
pub(super) async fn unpack_into(
    parts: &[StoredArtifact],
    source: &dyn ArtifactSource,
    dir: &Path,
) -> Result<(), BackupError> {
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if occupied {
        return Err(BackupError::Input(format!(
            "--target-datadir {}: not empty; a physical restore writes only into an empty directory",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| BackupError::Runtime(format!("creating {}: {e}", dir.display())))?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>(2);
    let target = dir.to_owned();
    let consumer = tokio::task::spawn_blocking(move || -> io::Result<()> {
        let mut archive = tar::Archive::new(PartReader {
            rx,
            current: io::Cursor::new(Vec::new()),
        });
        archive.set_preserve_permissions(true);
        // The tar crate refuses entries that would land outside `target`.
        archive.unpack(&target)
    });
    for part in parts {
        let bytes = source.get(part).await?;
        if tx.send(bytes).await.is_err() {
            break; // the unpacker stopped; its error is reported below
        }
    }
    drop(tx);
    consumer
        .await
        .map_err(|e| BackupError::Runtime(format!("unpacking task: {e}")))?
        .map_err(|e| BackupError::Runtime(format!("unpacking into {}: {e}", dir.display())))
}

/// Cuts what the archiver writes into parts and hands each to the uploader.
struct PartWriter {
    tx: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl PartWriter {
    fn send(&mut self) -> io::Result<()> {
        let part = std::mem::replace(&mut self.buf, Vec::with_capacity(PART_BYTES));
        self.tx
            .blocking_send(part)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    fn flush_last(mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

impl Write for PartWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = PART_BYTES - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PART_BYTES {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads the parts in order as one stream.
struct PartReader {
    rx: mpsc::Receiver<Vec<u8>>,
    current: io::Cursor<Vec<u8>>,
}

impl Read for PartReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.current.read(out)?;
            if n > 0 || out.is_empty() {
                return Ok(n);
            }
            match self.rx.blocking_recv() {
                Some(next) => self.current = io::Cursor::new(next),
                None => return Ok(0),
            }
        }
    }
}
