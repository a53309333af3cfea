//! Dedicated threads for rule evaluation.
//!
//! Admission and `/lint` each get a pool of their own. Lint requests can carry megabytes of
//! manifests and keep a thread busy for seconds; on a shared pool (tokio's blocking pool
//! behind one semaphore, as before) a handful of them made every admission request wait
//! out its deadline, and the validating webhook fails closed, so every write to our
//! resources failed with it. With separate threads, lint can only ever delay admission by
//! competing for CPU, never by holding the threads admission runs on.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of named threads taking jobs from one bounded queue.
pub struct Workers {
    queue: SyncSender<Job>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Workers")
    }
}

/// The queue is full: the caller answers at once instead of waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("all workers are busy and the queue is full")]
pub struct Saturated;

impl Workers {
    /// Starts `threads` threads named `name-N`; at most `queue` jobs wait for one. The
    /// threads end when the pool is dropped and the queue is empty.
    pub fn start(name: &str, threads: usize, queue: usize) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || work(&rx))?;
        }
        Ok(Self { queue: tx })
    }

    /// Queues `job`; its result arrives on the receiver. A job whose receiver is gone by
    /// the time a thread takes it (the request timed out or the client left) is skipped.
    pub fn submit<T, F>(&self, job: F) -> Result<oneshot::Receiver<T>, Saturated>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(job());
        });
        match self.queue.try_send(job) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Saturated),
        }
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = next else { return };
        // A panicking job must not take the thread with it: the pool would shrink for good.
        // Its result sender is dropped, which the waiting handler answers with a 500.
        if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("an evaluation panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_refuses_beyond_the_queue() {
        let pool = Workers::start("test", 1, 1).expect("threads start");
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let first = pool
            .submit(move || hold_rx.recv().is_ok())
            .expect("first job queued");
        // Wait until the thread has taken the first job, so the next one fills the queue.
        let mut second = None;
        for _ in 0..200 {
            if let Ok(rx) = pool.submit(|| 2) {
                second = Some(rx);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let second = second.expect("second job queued");
        let mut refused = false;
        for _ in 0..200 {
            if pool.submit(|| 3).is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(refused, "a full queue refuses at once");
        hold_tx.send(()).expect("release the first job");
        assert_eq!(first.await, Ok(true));
        assert_eq!(second.await, Ok(2));
    }

    #[tokio::test]
    async fn a_panicking_job_does_not_kill_the_thread() {
        let pool = Workers::start("test", 1, 4).expect("threads start");
        #[allow(clippy::panic)]
        let failed = pool.submit(|| -> u8 { panic!("boom") }).expect("queued");
        assert!(failed.await.is_err(), "the result sender is dropped");
        let ok = pool.submit(|| 7).expect("queued");
        assert_eq!(ok.await, Ok(7));
    }
}
