//! Leader election as a pure rule: given the lease as last read, who we are and the time,
//! what to do next. The loop that applies it is [`crate::control::leader`]; the Lease
//! object is read and written through [`crate::ports::lease`].
//!
//! The rule follows `coordination.k8s.io/v1` Lease semantics: a lease is held until
//! `renewTime + leaseDurationSeconds`; an expired or released (no holder) lease may be
//! taken; every write carries the resourceVersion that was read, so of two replicas racing
//! for one lease exactly one wins.

use std::time::{Duration, SystemTime};

/// The lease as last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseView<'a> {
    /// `None` or empty: released.
    pub holder: Option<&'a str>,
    pub renewed_at: Option<SystemTime>,
    pub duration: Duration,
}

/// What to do with the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseStep {
    /// No lease object yet: create it, held by us.
    Create,
    /// We hold it: renew it.
    Renew,
    /// Expired or released: take it (a leader transition).
    TakeOver,
    /// Someone else holds it until `until` (by their renewal and our clock).
    Follow { holder: String, until: SystemTime },
}

/// The next step for `me`.
pub fn next_step(lease: Option<LeaseView<'_>>, me: &str, now: SystemTime) -> LeaseStep {
    let Some(lease) = lease else {
        return LeaseStep::Create;
    };
    let holder = lease.holder.filter(|h| !h.is_empty());
    match holder {
        None => LeaseStep::TakeOver,
        Some(h) if h == me => LeaseStep::Renew,
        Some(h) => {
            // A lease that was never renewed counts as expired: nobody can prove holding it.
            let until = lease
                .renewed_at
                .map_or(SystemTime::UNIX_EPOCH, |t| t + lease.duration);
            if now >= until {
                LeaseStep::TakeOver
            } else {
                LeaseStep::Follow {
                    holder: h.to_owned(),
                    until,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::from_secs(1_700_000_000);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + T0 + Duration::from_secs(secs)
    }

    fn held_by(holder: &str, renewed: u64) -> LeaseView<'_> {
        LeaseView {
            holder: Some(holder),
            renewed_at: Some(at(renewed)),
            duration: Duration::from_secs(15),
        }
    }

    #[test]
    fn no_lease_is_created_and_our_own_is_renewed() {
        assert_eq!(next_step(None, "a", at(0)), LeaseStep::Create);
        assert_eq!(
            next_step(Some(held_by("a", 0)), "a", at(100)),
            LeaseStep::Renew
        );
    }

    #[test]
    fn another_holder_is_followed_until_its_lease_expires() {
        assert_eq!(
            next_step(Some(held_by("b", 10)), "a", at(24)),
            LeaseStep::Follow {
                holder: "b".to_owned(),
                until: at(25)
            }
        );
        assert_eq!(
            next_step(Some(held_by("b", 10)), "a", at(25)),
            LeaseStep::TakeOver
        );
    }

    #[test]
    fn released_or_never_renewed_leases_are_taken() {
        for holder in [None, Some("")] {
            let lease = LeaseView {
                holder,
                renewed_at: Some(at(10)),
                duration: Duration::from_secs(15),
            };
            assert_eq!(next_step(Some(lease), "a", at(11)), LeaseStep::TakeOver);
        }
        let never = LeaseView {
            holder: Some("b"),
            renewed_at: None,
            duration: Duration::from_secs(15),
        };
        assert_eq!(next_step(Some(never), "a", at(0)), LeaseStep::TakeOver);
    }
}
