//! Fault injection: what can go wrong, drawn from the seeded PRNG, and how each fault
//! starts and ends in the simulated world.

use std::fmt;

use super::rng::Rng;
use super::world::{Node, World};
use crate::failover::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// mysqld dies; when it comes back it is writable (no fence-first boot) or fenced.
    Crash { site: usize, back_writable: bool },
    /// SIGSTOP: probes time out, nothing commits, replication from it stalls.
    Hang { site: usize },
    /// The controller loses a site (`one_way`: only the replies are dropped).
    CutController { site: usize, one_way: bool },
    /// Sites lose each other (`one_way`: only `from → to` traffic is dropped).
    CutSites {
        from: usize,
        to: usize,
        one_way: bool,
    },
    /// A replica's SQL thread stops making progress (a relay backlog builds up).
    StallSql { site: usize },
    /// The controller process dies and restarts from its persisted state.
    RestartController,
    /// The operator's leader is deposed mid-decision (it stops acting before its lease can
    /// be taken); another replica takes the lease and resumes from the persisted status.
    LeaderChange,
    /// The next state write is refused (a stale resourceVersion): the decision is not
    /// persisted, so nothing of it is acted on.
    StaleStatusWrite,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Crash {
                site,
                back_writable,
            } => write!(
                f,
                "crash s{site} (back {})",
                if *back_writable { "writable" } else { "fenced" }
            ),
            Self::Hang { site } => write!(f, "hang s{site}"),
            Self::CutController { site, one_way } => {
                write!(
                    f,
                    "cut controller-s{site}{}",
                    if *one_way { " one-way" } else { "" }
                )
            }
            Self::CutSites { from, to, one_way } => {
                write!(
                    f,
                    "cut s{from}-s{to}{}",
                    if *one_way { " one-way" } else { "" }
                )
            }
            Self::StallSql { site } => write!(f, "stall sql s{site}"),
            Self::RestartController => write!(f, "restart controller"),
            Self::LeaderChange => write!(f, "leader change"),
            Self::StaleStatusWrite => write!(f, "stale status write"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveFault {
    pub kind: FaultKind,
    pub until: Timestamp,
}

/// Draws a fault for a group of `sites` sites.
pub fn draw(rng: &mut Rng, sites: usize) -> FaultKind {
    let n = u64::try_from(sites).unwrap_or(1);
    let site = usize::try_from(rng.below(n)).unwrap_or(0);
    let offset = 1 + usize::try_from(rng.below(n.saturating_sub(1))).unwrap_or(0);
    let other = (site + offset) % sites.max(1);
    match rng.below(100) {
        0..=24 => FaultKind::Crash {
            site,
            back_writable: rng.chance(500_000),
        },
        25..=39 => FaultKind::Hang { site },
        40..=54 => FaultKind::CutController {
            site,
            one_way: rng.chance(500_000),
        },
        55..=69 => FaultKind::CutSites {
            from: site,
            to: other,
            one_way: rng.chance(500_000),
        },
        70..=84 => FaultKind::StallSql { site },
        85..=91 => FaultKind::RestartController,
        92..=96 => FaultKind::LeaderChange,
        _ => FaultKind::StaleStatusWrite,
    }
}

/// Recomputes the world from the set of active faults, so overlapping faults compose and
/// a fault ending never undoes another that is still active. A site whose crash ended in
/// `ended` restarts the way that crash said.
pub fn reconcile(world: &mut World, active: &[ActiveFault], ended: &[ActiveFault]) {
    world.cut.clear();
    for fault in active {
        match fault.kind {
            FaultKind::CutController { site, one_way } => {
                world.cut.insert((Node::Site(site), Node::Controller));
                if !one_way {
                    world.cut.insert((Node::Controller, Node::Site(site)));
                }
            }
            FaultKind::CutSites { from, to, one_way } => {
                world.cut.insert((Node::Site(from), Node::Site(to)));
                if !one_way {
                    world.cut.insert((Node::Site(to), Node::Site(from)));
                }
            }
            _ => {}
        }
    }
    for (i, site) in world.sites.iter_mut().enumerate() {
        let crashed = active
            .iter()
            .any(|f| matches!(f.kind, FaultKind::Crash { site, .. } if site == i));
        site.hung = active
            .iter()
            .any(|f| matches!(f.kind, FaultKind::Hang { site } if site == i));
        site.sql_stalled = active
            .iter()
            .any(|f| matches!(f.kind, FaultKind::StallSql { site } if site == i));
        if crashed && site.up {
            site.up = false;
        } else if !crashed && !site.up {
            // Restart: replication does not start by itself (skip_replica_start).
            let back_writable = ended.iter().any(|f| {
                matches!(f.kind, FaultKind::Crash { site, back_writable } if site == i && back_writable)
            });
            site.up = true;
            site.read_only = !back_writable;
            if let Some(rep) = site.replication.as_mut() {
                rep.running = false;
            }
        }
    }
}
