//! Leader election against a real API server (the standalone apiextensions-apiserver in
//! built-in kinds mode, which stores `coordination.k8s.io/v1` Leases in etcd and answers a
//! stale resourceVersion with 409, as kube-apiserver does), through the real kube client.
//!
//! Run by `scripts/kube-apiserver-test.sh PATH/TO/crd-apiserver.sh`, which starts the server
//! and sets `KUBECONFIG`; CI runs it. Without that server the test fails, naming the
//! script: it never passes on nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bloodraven::adapters::kube::lease::KubeLeaseStore;
use bloodraven::control::leader::{ElectionTiming, LeaderElection};
use bloodraven::ports::lease::LeaseStore;
use tokio::sync::watch;

use crate::support::kube::client;

const TIMING: ElectionTiming = ElectionTiming {
    lease_duration: Duration::from_secs(4),
    renew_deadline: Duration::from_secs(3),
    retry_period: Duration::from_millis(500),
};

fn start(
    client: &kube::Client,
    lease: &str,
    who: &str,
) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let store = Arc::new(KubeLeaseStore::new(client.clone(), "default", lease));
    let (election, leading) = LeaderElection::new(store, who, TIMING).unwrap();
    let task = tokio::spawn(election.run(std::future::pending()));
    (leading, task)
}

#[tokio::test]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_only_the_holder_leads_and_a_killed_holder_is_replaced_within_the_lease() {
    let client = client().await;
    let lease = format!(
        "bloodraven-test-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let (a, a_task) = start(&client, &lease, "replica-a");
    let (b, b_task) = start(&client, &lease, "replica-b");

    // Exactly one leads, and it stays that way while both are healthy.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !*a.borrow() && !*b.borrow() {
        assert!(Instant::now() < deadline, "nobody acquired the lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..60 {
        assert!(!(*a.borrow() && *b.borrow()), "both replicas lead");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (holder, holder_task, other, other_task) = if *a.borrow() {
        (a, a_task, b, b_task)
    } else {
        (b, b_task, a, a_task)
    };
    assert!(*holder.borrow() && !*other.borrow());

    // kill: the holder's task ends without releasing the lease.
    let killed = Instant::now();
    holder_task.abort();
    let mut other = other;
    tokio::time::timeout(
        TIMING.lease_duration + TIMING.retry_period + Duration::from_secs(3),
        other.wait_for(|leading| *leading),
    )
    .await
    .expect("the other replica takes over within the lease duration")
    .unwrap();
    let took = killed.elapsed();
    assert!(
        // The last renewal was at most one retry period before the kill.
        took >= TIMING
            .lease_duration
            .saturating_sub(TIMING.retry_period + Duration::from_millis(200)),
        "took over before the lease could expire: {took:?}"
    );
    let store = KubeLeaseStore::new(client.clone(), "default", &lease);
    let record = store.get().await.unwrap().expect("the lease exists");
    assert_eq!(record.transitions, 1, "{record:?}");
    other_task.abort();
}

#[tokio::test]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_a_stale_resource_version_is_refused() {
    use bloodraven::ports::lease::{LeaseClaim, LeaseError};
    let client = client().await;
    let store = KubeLeaseStore::new(client, "default", "bloodraven-test-stale");
    let claim = |who: &str| LeaseClaim {
        holder: Some(who.to_owned()),
        acquired_at: Some(std::time::SystemTime::now()),
        renewed_at: std::time::SystemTime::now(),
        duration: Duration::from_secs(15),
        transitions: 0,
    };
    let first = match store.create(&claim("a")).await {
        Ok(record) => record,
        Err(LeaseError::Conflict) => store.get().await.unwrap().unwrap(),
        Err(e) => panic!("{e}"),
    };
    let second = store.replace(&claim("b"), &first.version).await.unwrap();
    assert_ne!(second.version, first.version);
    assert_eq!(
        store.replace(&claim("c"), &first.version).await,
        Err(LeaseError::Conflict)
    );
    assert_eq!(store.create(&claim("d")).await, Err(LeaseError::Conflict));
}
