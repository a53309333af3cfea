//! A response body written by a worker thread while the client reads it.
//!
//! A `/lint` report can be far larger than the manifests it describes (a 3 MiB body once
//! became a 177 MB SARIF log), and a client that does not read would have kept all of it in
//! memory. Here the renderer writes into a channel of a few chunks: when the client stops
//! reading, the channel fills and the renderer waits; when the client goes away, or the
//! request's deadline passes, the renderer's next write fails and the work stops.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Bytes;
use futures_util::Stream;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// Bytes gathered before a chunk is handed to the connection.
const CHUNK: usize = 64 * 1024;
/// Chunks that may wait for the client: what one slow response can hold.
const CHUNKS_IN_FLIGHT: usize = 2;

/// Whether the work for a request should stop: its handler or body was dropped (timeout,
/// client gone) or its deadline passed.
#[derive(Debug, Clone)]
pub struct Cancel {
    dropped: Arc<AtomicBool>,
    deadline: Instant,
}

impl Cancel {
    /// A token for work due by `deadline`, and the guard that cancels it when dropped.
    pub fn new(deadline: Instant) -> (Self, CancelOnDrop) {
        let dropped = Arc::new(AtomicBool::new(false));
        (
            Self {
                dropped: Arc::clone(&dropped),
                deadline,
            },
            CancelOnDrop(dropped),
        )
    }

    pub fn is_cancelled(&self) -> bool {
        self.dropped.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// Held by whatever is waiting for the work (the handler, then the response body): when
/// it is dropped, the work is cancelled.
#[derive(Debug)]
pub struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The receiving end: a response body that cancels the writer when dropped.
pub struct ChunkStream {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    _guard: CancelOnDrop,
}

impl Stream for ChunkStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// The writing end, used from a worker thread (never from the async runtime: it blocks).
pub struct ChunkWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    cancel: Cancel,
    runtime: Handle,
    written: usize,
    limit: usize,
}

/// A connected writer and body; `guard` moves into the body so dropping it cancels.
pub fn channel(
    cancel: Cancel,
    guard: CancelOnDrop,
    runtime: Handle,
    limit: usize,
) -> (ChunkWriter, ChunkStream) {
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    (
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            cancel,
            runtime,
            written: 0,
            limit,
        },
        ChunkStream { rx, _guard: guard },
    )
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.cancel.is_cancelled() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request was cancelled",
            ));
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        let deadline = tokio::time::Instant::from_std(self.cancel.deadline());
        let tx = self.tx.clone();
        // Waits while the client is not reading; gives up at the deadline or when the
        // body is dropped (the client went away).
        match self
            .runtime
            .block_on(async move { tokio::time::timeout_at(deadline, tx.send(Ok(chunk))).await })
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client went away",
            )),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not read the response before the deadline",
            )),
        }
    }

    /// Ends the body with an error, so the client sees an aborted transfer rather than a
    /// complete-looking truncated document.
    pub fn abort(self, error: &io::Error) {
        let _ = self
            .tx
            .try_send(Err(io::Error::new(error.kind(), error.to_string())));
    }
}

impl io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.written += data.len();
        if self.written > self.limit {
            return Err(io::Error::other(format!(
                "the response exceeds {} bytes",
                self.limit
            )));
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// An `io::Write` that only counts, to size a rendering before sending any of it.
#[derive(Debug, Default)]
pub struct Counter(pub usize);

impl io::Write for Counter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0 += data.len();
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
