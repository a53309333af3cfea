//! Per-site debounce: blips never change a state; refusals confirm faster than timeouts.

use super::*;

#[test]
fn one_refusal_is_a_blip_two_confirm_unreachable() {
    let mut h = Harness::healthy(pair());
    let d = h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    assert_eq!(
        h.state.site("iad").map(|t| t.state),
        Some(SiteState::Writable)
    );
    assert!(
        d.actions.is_empty(),
        "no action on one refusal: {:?}",
        kinds(&d)
    );
    assert_eq!(
        d.repoll_after,
        Some(h.policy.fast_repoll),
        "re-probe fast to confirm"
    );
    let d = h.poll(vec![
        down("iad", ProbeFailure::Refused),
        fenced("pdx", "iad:1-10"),
    ]);
    assert_eq!(
        h.state.site("iad").map(|t| t.state),
        Some(SiteState::Unreachable)
    );
    assert_eq!(promotes(&d), Some("pdx"));
}

#[test]
fn timeouts_need_the_failure_threshold() {
    let mut h = Harness::healthy(pair());
    for _ in 0..2 {
        let d = h.poll(vec![
            down("iad", ProbeFailure::Timeout),
            replica("pdx", "iad", "iad:1-10"),
        ]);
        assert!(d.actions.is_empty(), "{:?}", kinds(&d));
    }
    // A refusal after timeouts does not start a new refusal streak from the timeouts.
    let d = h.poll(vec![
        down("iad", ProbeFailure::Timeout),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    assert_eq!(
        h.state.site("iad").map(|t| t.state),
        Some(SiteState::Unreachable)
    );
    assert_eq!(promotes(&d), Some("pdx"));
}

#[test]
fn a_stall_shorter_than_the_threshold_then_recovery_causes_nothing() {
    let mut h = Harness::healthy(pair());
    h.poll(vec![
        down("iad", ProbeFailure::Timeout),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    h.poll(vec![
        down("iad", ProbeFailure::Timeout),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    let d = h.poll(h.steady_observations("iad:1-12"));
    assert!(d.actions.is_empty());
    assert_eq!(
        h.state.site("iad").map(|t| (t.state, t.failure_streak)),
        Some((SiteState::Writable, 0))
    );
    assert!(h.state.last_failover.is_none());
}

#[test]
fn writable_needs_recovery_threshold_polls() {
    let mut h = Harness::new(pair());
    let d = h.poll(vec![
        writable("iad", "iad:1-3"),
        replica("pdx", "iad", "iad:1-3"),
    ]);
    assert_eq!(
        h.state.site("iad").map(|t| t.state),
        Some(SiteState::Unknown)
    );
    assert_eq!(h.state.active_site, None);
    assert!(d.actions.is_empty());
    let d = h.poll(vec![
        writable("iad", "iad:1-3"),
        replica("pdx", "iad", "iad:1-3"),
    ]);
    assert_eq!(
        h.state.site("iad").map(|t| t.state),
        Some(SiteState::Writable)
    );
    assert_eq!(h.state.active_site.as_deref(), Some("iad"));
    assert!(reasons(&d).contains(&EventReason::PrimaryAdopted));
}

#[test]
fn transitions_are_reported_with_from_and_to() {
    let mut h = Harness::healthy(pair());
    h.poll(vec![
        down("iad", ProbeFailure::Refused),
        replica("pdx", "iad", "iad:1-10"),
    ]);
    let d = h.poll(vec![
        down("iad", ProbeFailure::Refused),
        fenced("pdx", "iad:1-10"),
    ]);
    let t = d
        .events
        .iter()
        .find_map(|e| e.transition.filter(|_| e.site.as_deref() == Some("iad")));
    assert_eq!(
        t,
        Some(SiteTransition {
            from: SiteState::Writable,
            to: SiteState::Unreachable
        })
    );
}
