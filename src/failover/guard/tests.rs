use proptest::prelude::*;

use super::*;

const LEASE: Duration = Duration::from_secs(20);

fn at(secs: u64) -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000 + secs * 1000)
}

fn answer(site: Option<&str>, observed: u64, seen: u64) -> ActiveSiteAnswer {
    ActiveSiteAnswer {
        active_site: site.map(str::to_owned),
        observed_at: at(observed),
        seen_at: at(seen),
    }
}

fn contact(reached: Option<u64>, a: Option<ActiveSiteAnswer>) -> Contact {
    Contact {
        last_reached: reached.map(at),
        answer: a,
    }
}

fn run(operator: &Contact, peers: &[Contact], now: u64) -> Verdict {
    decide(
        &GuardInput {
            site: "a",
            lease_timeout: LEASE,
            started_at: at(0),
            operator,
            peers,
            writable_since: None,
        },
        at(now),
    )
    .verdict
}

#[test]
fn operator_naming_this_site_clears_and_another_fences() {
    let op = contact(Some(10), Some(answer(Some("a"), 10, 10)));
    assert_eq!(run(&op, &[], 12), Verdict::Cleared);
    let op = contact(Some(10), Some(answer(Some("b"), 10, 10)));
    assert_eq!(
        run(&op, &[], 12),
        Verdict::Fence(FenceReason::OtherSiteActive)
    );
    let op = contact(Some(10), Some(answer(None, 10, 10)));
    assert_eq!(run(&op, &[], 12), Verdict::Hold);
    let op = contact(Some(10), Some(answer(Some(""), 10, 10)));
    assert_eq!(run(&op, &[], 12), Verdict::Hold, "empty is no active site");
}

#[test]
fn lease_expires_only_when_operator_and_every_peer_are_silent() {
    let op = contact(Some(10), Some(answer(Some("a"), 10, 10)));
    let silent_peer = contact(None, None);
    assert_eq!(
        run(&op, std::slice::from_ref(&silent_peer), 29),
        Verdict::Cleared
    );
    assert_eq!(
        run(&op, std::slice::from_ref(&silent_peer), 30),
        Verdict::Fence(FenceReason::LeaseExpired)
    );
    // One reachable peer keeps the lease; with no fresh view there is nothing to confirm.
    let peer = contact(Some(35), None);
    assert_eq!(run(&op, &[peer, silent_peer], 40), Verdict::Hold);
    // Never reached anyone: the lease counts from the start.
    assert_eq!(
        run(&Contact::default(), &[], 20),
        Verdict::Fence(FenceReason::LeaseExpired)
    );
    assert_eq!(run(&Contact::default(), &[], 19), Verdict::Hold);
}

#[test]
fn peers_fence_only_as_a_strict_majority_and_only_with_a_newer_view() {
    let op_gone = contact(Some(1), Some(answer(Some("a"), 1, 1)));
    let says =
        |site: &str, observed: u64| contact(Some(30), Some(answer(Some(site), observed, 30)));
    let quiet = contact(Some(30), None);
    // One of three peers says b: not a majority.
    let peers = [says("b", 29), quiet.clone(), quiet.clone()];
    assert_eq!(run(&op_gone, &peers, 31), Verdict::Hold);
    // Two of three say b: fence.
    let peers = [says("b", 29), says("b", 28), quiet.clone()];
    assert_eq!(
        run(&op_gone, &peers, 31),
        Verdict::Fence(FenceReason::OtherSiteActive)
    );
    // The operator's own answer is newer than the peers' relayed view: it wins.
    let op = contact(Some(30), Some(answer(Some("a"), 30, 30)));
    assert_eq!(run(&op, &peers, 31), Verdict::Cleared);
    // The peers relay a newer operator view than ours: it wins.
    let op = contact(Some(27), Some(answer(Some("a"), 27, 27)));
    assert_eq!(
        run(&op, &peers, 31),
        Verdict::Fence(FenceReason::OtherSiteActive)
    );
    // A peer's clock in the future is clamped to when we heard it.
    let mut future = Contact::default();
    future.reached(at(30), Some(answer(Some("b"), 9_999, 30)));
    assert_eq!(future.answer.as_ref().map(|a| a.observed_at), Some(at(30)));
}

#[test]
fn a_site_just_lifted_is_not_fenced_on_an_answer_older_than_the_lift_plus_the_lease() {
    // The operator lifted the fence at 10 s and still named the old primary (b) until it
    // published its next poll.
    let op = contact(Some(12), Some(answer(Some("b"), 12, 12)));
    let decide_at = |writable_since: Option<u64>, now: u64| {
        decide(
            &GuardInput {
                site: "a",
                lease_timeout: LEASE,
                started_at: at(0),
                operator: &op,
                peers: &[],
                writable_since: writable_since.map(at),
            },
            at(now),
        )
        .verdict
    };
    assert_eq!(decide_at(Some(10), 13), Verdict::Hold);
    assert_eq!(
        decide_at(None, 13),
        Verdict::Fence(FenceReason::OtherSiteActive)
    );
    // An answer heard a lease after the lift counts again.
    let op2 = contact(Some(31), Some(answer(Some("b"), 31, 31)));
    let late = decide(
        &GuardInput {
            site: "a",
            lease_timeout: LEASE,
            started_at: at(0),
            operator: &op2,
            peers: &[],
            writable_since: Some(at(10)),
        },
        at(31),
    );
    assert_eq!(late.verdict, Verdict::Fence(FenceReason::OtherSiteActive));
    // Lease expiry is never suspended by a lift.
    let silent = contact(Some(1), None);
    assert_eq!(
        decide(
            &GuardInput {
                site: "a",
                lease_timeout: LEASE,
                started_at: at(0),
                operator: &silent,
                peers: &[],
                writable_since: Some(at(15)),
            },
            at(25),
        )
        .verdict,
        Verdict::Fence(FenceReason::LeaseExpired)
    );
}

#[test]
fn stale_answers_are_no_evidence() {
    // The operator said b long ago but peers keep the lease alive.
    let op = contact(Some(5), Some(answer(Some("b"), 5, 5)));
    let peer = contact(Some(40), None);
    assert_eq!(run(&op, &[peer], 41), Verdict::Hold);
}

#[test]
fn must_fence_skips_only_a_server_seen_read_only() {
    let d = GuardDecision {
        verdict: Verdict::Fence(FenceReason::LeaseExpired),
        view: None,
        last_contact: at(0),
    };
    assert!(d.must_fence(Some(true)));
    assert!(d.must_fence(None));
    assert!(!d.must_fence(Some(false)));
    let hold = GuardDecision {
        verdict: Verdict::Hold,
        ..d
    };
    assert!(!hold.must_fence(Some(true)));
}

/// One tick of a random history: which sources answered, and what they said. `None`: no
/// answer; `Some(None)`: reached, with no active-site answer (a peer's 204); the three
/// cases are exactly what a source can do, hence the nested options.
#[allow(clippy::option_option)]
#[derive(Debug, Clone)]
struct Tick {
    /// Milliseconds since the previous tick.
    gap_ms: u64,
    operator: Option<Option<u8>>,
    peers: Vec<Option<Option<(u8, u64)>>>,
}

/// Site 0 is this site ("a"); 1 and 2 are others; 3 is "no active site".
fn site_name(i: u8) -> Option<&'static str> {
    match i % 4 {
        0 => Some("a"),
        1 => Some("b"),
        2 => Some("c"),
        _ => None,
    }
}

fn tick(peers: usize) -> impl Strategy<Value = Tick> {
    (
        0u64..8_000,
        prop::option::weighted(0.5, prop::option::weighted(0.8, 0u8..4)),
        prop::collection::vec(
            prop::option::weighted(0.5, prop::option::weighted(0.7, (0u8..4, 0u64..30_000))),
            peers,
        ),
    )
        .prop_map(|(gap_ms, operator, peers)| Tick {
            gap_ms,
            operator,
            peers,
        })
}

fn history() -> impl Strategy<Value = Vec<Tick>> {
    (0usize..4).prop_flat_map(|n| prop::collection::vec(tick(n), 1..60))
}

proptest! {
    /// Over random histories of who answered what: the rule never clears without a fresh
    /// answer naming this site; it always fences once everyone has been silent for the lease;
    /// and whenever the operator's fresh answer is the newest view and names another site,
    /// it fences.
    #[test]
    fn random_histories_keep_the_invariants(history in history()) {
        let peers_n = history.first().map_or(0, |t| t.peers.len());
        let mut operator = Contact::default();
        let mut peers = vec![Contact::default(); peers_n];
        let mut now = at(0);
        for t in &history {
            now = now.plus(Duration::from_millis(t.gap_ms));
            if let Some(said) = t.operator {
                let a = said.map(|s| ActiveSiteAnswer {
                    active_site: site_name(s).map(str::to_owned),
                    observed_at: now,
                    seen_at: now,
                });
                operator.reached(now, a);
            }
            for (contact, said) in peers.iter_mut().zip(&t.peers) {
                if let Some(said) = said {
                    let a = said.map(|(s, age_ms)| ActiveSiteAnswer {
                        active_site: site_name(s).map(str::to_owned),
                        observed_at: Timestamp::from_millis(now.as_millis().saturating_sub(age_ms)),
                        seen_at: now,
                    });
                    contact.reached(now, a);
                }
            }
            let input = GuardInput { site: "a", lease_timeout: LEASE, started_at: at(0), operator: &operator, peers: &peers, writable_since: None };
            let d = decide(&input, now);
            let fresh_a = |c: &Contact| c.answer.as_ref().is_some_and(|a| {
                now.since(a.seen_at) < LEASE && a.active_site.as_deref() == Some("a")
            });
            if d.verdict == Verdict::Cleared {
                prop_assert!(fresh_a(&operator) || peers.iter().any(fresh_a),
                    "cleared without a fresh confirmation naming this site");
            }
            let last = std::iter::once(at(0)).chain(operator.last_reached).chain(peers.iter().filter_map(|p| p.last_reached)).max().unwrap_or(at(0));
            if now.since(last) >= LEASE {
                prop_assert_eq!(&d.verdict, &Verdict::Fence(FenceReason::LeaseExpired));
            } else {
                prop_assert!(d.verdict != Verdict::Fence(FenceReason::LeaseExpired));
            }
            if let Some(a) = operator.answer.as_ref()
                && now.since(a.seen_at) < LEASE
                && a.active_site.as_deref().is_some_and(|s| s != "a")
                && peers.iter().filter_map(|p| p.answer.as_ref()).all(|p| p.observed_at <= a.observed_at)
            {
                prop_assert!(matches!(d.verdict, Verdict::Fence(_)), "{:?}", d);
            }
        }
    }

    /// Ticking every `interval` (≤ lease/3), the fence comes no later than one interval after
    /// the lease runs out from the last contact.
    #[test]
    fn fences_within_one_interval_of_the_lease(contacts in 0u64..20, interval_ms in 100u64..6_000) {
        let mut operator = Contact::default();
        let mut now = at(0);
        let interval = Duration::from_millis(interval_ms);
        for _ in 0..contacts {
            now = now.plus(interval);
            operator.reached(now, Some(ActiveSiteAnswer { active_site: Some("a".into()), observed_at: now, seen_at: now }));
        }
        let cut = now;
        let fenced_at = loop {
            now = now.plus(interval);
            let input = GuardInput { site: "a", lease_timeout: LEASE, started_at: at(0), operator: &operator, peers: &[], writable_since: None };
            if decide(&input, now).verdict == Verdict::Fence(FenceReason::LeaseExpired) {
                break now;
            }
            prop_assert!(now.since(cut) < LEASE + interval * 2);
        };
        prop_assert!(fenced_at.since(cut) >= LEASE);
        prop_assert!(fenced_at.since(cut) < LEASE + interval);
    }
}
