//! The election loop against an in-memory lease store with optimistic concurrency, on
//! tokio's paused clock (the real API server is exercised in tests/it/kube_lease.rs).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Clock, ElectionTiming, LeaderElection};
use crate::ports::lease::{LeaseClaim, LeaseError, LeaseRecord, LeaseStore};

#[derive(Default)]
struct Shared {
    lease: Option<LeaseRecord>,
    next_version: u64,
}

/// One replica's view of the shared store; `cut` makes every call fail (a partition).
struct Handle {
    shared: Arc<Mutex<Shared>>,
    cut: Arc<AtomicBool>,
}

impl Handle {
    fn check(&self) -> Result<(), LeaseError> {
        if self.cut.load(Ordering::SeqCst) {
            Err(LeaseError::Unavailable("partitioned".to_owned()))
        } else {
            Ok(())
        }
    }

    fn write(shared: &mut Shared, claim: &LeaseClaim) -> LeaseRecord {
        shared.next_version += 1;
        let record = LeaseRecord {
            holder: claim.holder.clone(),
            acquired_at: claim.acquired_at,
            renewed_at: Some(claim.renewed_at),
            duration: claim.duration,
            transitions: claim.transitions,
            version: shared.next_version.to_string(),
        };
        shared.lease = Some(record.clone());
        record
    }
}

impl LeaseStore for Handle {
    fn get(&self) -> BoxFuture<'_, Result<Option<LeaseRecord>, LeaseError>> {
        let result = self
            .check()
            .map(|()| self.shared.lock().unwrap().lease.clone());
        Box::pin(std::future::ready(result))
    }

    fn create<'a>(
        &'a self,
        claim: &'a LeaseClaim,
    ) -> BoxFuture<'a, Result<LeaseRecord, LeaseError>> {
        let result = self.check().and_then(|()| {
            let mut shared = self.shared.lock().unwrap();
            if shared.lease.is_some() {
                return Err(LeaseError::Conflict);
            }
            Ok(Self::write(&mut shared, claim))
        });
        Box::pin(std::future::ready(result))
    }

    fn replace<'a>(
        &'a self,
        claim: &'a LeaseClaim,
        version: &'a str,
    ) -> BoxFuture<'a, Result<LeaseRecord, LeaseError>> {
        let result = self.check().and_then(|()| {
            let mut shared = self.shared.lock().unwrap();
            if shared.lease.as_ref().map(|l| l.version.as_str()) != Some(version) {
                return Err(LeaseError::Conflict);
            }
            Ok(Self::write(&mut shared, claim))
        });
        Box::pin(std::future::ready(result))
    }
}

/// Wall time that follows tokio's paused clock.
fn paused_clock() -> Clock {
    let start = Instant::now();
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    Arc::new(move || base + start.elapsed())
}

struct Replica {
    leading: watch::Receiver<bool>,
    cut: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

fn replica(shared: &Arc<Mutex<Shared>>, name: &str, clock: &Clock) -> Replica {
    let cut = Arc::new(AtomicBool::new(false));
    let store = Arc::new(Handle {
        shared: Arc::clone(shared),
        cut: Arc::clone(&cut),
    });
    let (election, leading) = LeaderElection::new(store, name, ElectionTiming::default()).unwrap();
    let election = election.with_clock(Arc::clone(clock));
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(election.run(async move {
        let _ = stopped.await;
    }));
    Replica {
        leading,
        cut,
        stop: Some(stop),
        task,
    }
}

/// Advances the paused clock in 100 ms steps for `span`, checking that the two never lead
/// at once; returns when each first led and last led in that span (offsets from the start).
async fn watch_both(
    a: &Replica,
    b: &Replica,
    span: Duration,
) -> [(Option<Duration>, Option<Duration>); 2] {
    let start = Instant::now();
    let mut seen = [(None, None); 2];
    while start.elapsed() < span {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = [*a.leading.borrow(), *b.leading.borrow()];
        assert!(
            !(now[0] && now[1]),
            "both replicas lead at {:?}",
            start.elapsed()
        );
        for (i, leads) in now.into_iter().enumerate() {
            if leads {
                seen[i].0.get_or_insert(start.elapsed());
                seen[i].1 = Some(start.elapsed());
            }
        }
    }
    seen
}

#[test]
fn timing_must_keep_the_guarantee() {
    assert!(ElectionTiming::default().check().is_ok());
    let bad = ElectionTiming {
        renew_deadline: Duration::from_secs(15),
        ..ElectionTiming::default()
    };
    assert!(bad.check().is_err());
}

#[tokio::test(start_paused = true)]
async fn exactly_one_of_two_replicas_leads() {
    let shared = Arc::default();
    let clock = paused_clock();
    let a = replica(&shared, "a", &clock);
    let b = replica(&shared, "b", &clock);
    let seen = watch_both(&a, &b, Duration::from_secs(60)).await;
    let leaders = seen.iter().filter(|(first, _)| first.is_some()).count();
    assert_eq!(leaders, 1, "{seen:?}");
    let lease = shared.lock().unwrap().lease.clone().unwrap();
    assert_eq!(lease.transitions, 0);
}

#[tokio::test(start_paused = true)]
async fn a_partitioned_leader_stops_before_the_other_can_take_over() {
    let shared = Arc::default();
    let clock = paused_clock();
    let a = replica(&shared, "a", &clock);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(*a.leading.borrow());
    let b = replica(&shared, "b", &clock);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!*b.leading.borrow(), "b must follow a healthy leader");

    a.cut.store(true, Ordering::SeqCst);
    let seen = watch_both(&a, &b, Duration::from_secs(30)).await;
    let a_last = seen[0].1.expect("a led at first");
    let b_first = seen[1].0.expect("b took over");
    let timing = ElectionTiming::default();
    assert!(a_last < timing.renew_deadline, "a kept acting: {seen:?}");
    assert!(b_first > a_last, "{seen:?}");
    assert!(
        b_first <= timing.lease_duration + timing.retry_period + Duration::from_secs(1),
        "b took too long: {seen:?}"
    );
    assert_eq!(
        shared.lock().unwrap().lease.as_ref().unwrap().transitions,
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_shuts_down_hands_over_at_once() {
    let shared = Arc::default();
    let clock = paused_clock();
    let mut a = replica(&shared, "a", &clock);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let b = replica(&shared, "b", &clock);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(*a.leading.borrow() && !*b.leading.borrow());

    let _ = a.stop.take().unwrap().send(());
    a.task.await.unwrap();
    assert!(!*a.leading.borrow());
    let lease = shared.lock().unwrap().lease.clone().unwrap();
    assert_eq!(lease.holder, None, "released");
    let mut b_leading = b.leading.clone();
    tokio::time::timeout(
        ElectionTiming::default().retry_period + Duration::from_millis(500),
        b_leading.wait_for(|l| *l),
    )
    .await
    .expect("b leads within one retry period")
    .unwrap();
}
