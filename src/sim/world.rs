//! Simulated MySQL sites, the network between them and the controller, and the clients
//! writing to them. Only what the failover engine can observe or change is modelled.

use std::collections::BTreeSet;
use std::time::Duration;

use super::rng::Rng;
use crate::failover::gtid::{GtidSet, Uuid};
use crate::failover::{
    ActionKind, ActionValue, DrainResult, ProbeFailure, ReplicaStatus, SessionSweep,
    SiteObservation, SitePolicy, SiteProbe,
};

/// A node in the network: the controller or a site (by index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Controller,
    Site(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    pub source: usize,
    /// Both threads configured to run (`START REPLICA` issued, not stopped).
    pub running: bool,
}

/// One simulated MySQL server.
#[derive(Debug, Clone)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent facts about one server, not a state machine"
)]
pub struct SimSite {
    pub name: String,
    pub uuid: Uuid,
    pub up: bool,
    /// Stopped with `SIGSTOP`: probes time out, nothing commits or replicates.
    pub hung: bool,
    pub read_only: bool,
    pub gtid: GtidSet,
    /// Received by the IO thread but not yet applied.
    pub relay: GtidSet,
    pub replication: Option<Replication>,
    /// The SQL thread makes no progress (a long transaction, a lock).
    pub sql_stalled: bool,
    /// Client sessions currently connected (what `KillConnections` reports).
    pub sessions: u32,
}

impl SimSite {
    fn next_gno(&self) -> u64 {
        self.gtid.last_gno(self.uuid, None).unwrap_or(0) + 1
    }
}

/// The whole simulated group.
#[derive(Debug, Clone)]
pub struct World {
    pub sites: Vec<SimSite>,
    /// Directed links that drop traffic: `(from, to)`.
    pub cut: BTreeSet<(Node, Node)>,
    /// Every write a client saw acknowledged.
    pub acked: GtidSet,
    /// Writes that committed but whose acknowledgement was lost.
    pub unacked: GtidSet,
}

/// A distinct, stable server UUID per site index.
pub fn uuid_for(index: usize) -> Uuid {
    const BASE: u128 = 0x0000_0000_0000_4000_8000_0000_0000_0000;
    Uuid::from_u128(BASE + index as u128 + 1)
}

impl World {
    /// Site 0 is a writable primary with a little history; the others replicate from it.
    pub fn new(policy_sites: &[SitePolicy]) -> Self {
        let mut seed = GtidSet::new();
        let _ = seed.insert_range(uuid_for(0), None, 1, 5);
        let sites = policy_sites
            .iter()
            .enumerate()
            .map(|(i, sp)| SimSite {
                name: sp.name.clone(),
                uuid: uuid_for(i),
                up: true,
                hung: false,
                read_only: i != 0,
                gtid: seed.clone(),
                relay: GtidSet::new(),
                replication: (i != 0).then_some(Replication {
                    source: 0,
                    running: true,
                }),
                sql_stalled: false,
                sessions: 0,
            })
            .collect();
        Self {
            sites,
            cut: BTreeSet::new(),
            acked: GtidSet::new(),
            unacked: GtidSet::new(),
        }
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.sites.iter().position(|s| s.name == name)
    }

    pub fn link_ok(&self, from: Node, to: Node) -> bool {
        !self.cut.contains(&(from, to))
    }

    /// The controller can talk to the site (both directions, TCP needs both).
    pub fn controller_reaches(&self, i: usize) -> bool {
        self.link_ok(Node::Controller, Node::Site(i))
            && self.link_ok(Node::Site(i), Node::Controller)
    }

    /// Running, not hung, and reachable from the controller.
    pub fn observable(&self, i: usize) -> bool {
        self.sites.get(i).is_some_and(|s| s.up && !s.hung) && self.controller_reaches(i)
    }

    pub fn writable(&self, i: usize) -> bool {
        self.sites.get(i).is_some_and(|s| s.up && !s.read_only)
    }

    /// Writable sites the controller can currently see.
    pub fn observable_writable(&self) -> Vec<usize> {
        (0..self.sites.len())
            .filter(|&i| self.writable(i) && self.observable(i))
            .collect()
    }

    /// Whether replication data can flow from `source` to `replica`.
    fn can_replicate(&self, source: usize, replica: usize) -> bool {
        let (Some(s), Some(r)) = (self.sites.get(source), self.sites.get(replica)) else {
            return false;
        };
        s.up && !s.hung && r.up && !r.hung && self.link_ok(Node::Site(source), Node::Site(replica))
    }

    // ---- time passing ---------------------------------------------------------------

    /// Clients write to every site that accepts writes (the worst case for split brain).
    pub fn client_writes(&mut self, rng: &mut Rng, write_per_million: u64, ack_per_million: u64) {
        for site in &mut self.sites {
            site.sessions = 0;
            if !site.up || site.hung || site.read_only {
                continue;
            }
            site.sessions = 1;
            if !rng.chance(write_per_million) {
                continue;
            }
            let gno = site.next_gno();
            let _ = site.gtid.insert_range(site.uuid, None, gno, gno);
            let ledger = if rng.chance(ack_per_million) {
                &mut self.acked
            } else {
                &mut self.unacked
            };
            let _ = ledger.insert_range(site.uuid, None, gno, gno);
        }
    }

    /// IO threads fetch what their source has that they lack; SQL threads apply.
    pub fn replicate(&mut self, rng: &mut Rng, apply_per_million: u64) {
        for i in 0..self.sites.len() {
            let Some(rep) = self.sites[i].replication.clone() else {
                continue;
            };
            if !rep.running {
                continue;
            }
            if self.can_replicate(rep.source, i) {
                let missing = {
                    let me = &self.sites[i];
                    self.sites[rep.source]
                        .gtid
                        .subtract(&me.gtid)
                        .subtract(&me.relay)
                };
                let me = &mut self.sites[i];
                me.relay = me.relay.union(&missing);
            }
            let me = &mut self.sites[i];
            if me.up
                && !me.hung
                && !me.sql_stalled
                && !me.relay.is_empty()
                && rng.chance(apply_per_million)
            {
                me.gtid = me.gtid.union(&me.relay);
                me.relay = GtidSet::new();
            }
        }
    }

    // ---- what the controller sees ---------------------------------------------------------

    pub fn probe(
        &self,
        i: usize,
        blip: bool,
        address_of: &dyn Fn(usize) -> String,
    ) -> SiteObservation {
        let site = &self.sites[i];
        let result = if !self.controller_reaches(i) || blip {
            Err(ProbeFailure::Timeout)
        } else if !site.up {
            Err(ProbeFailure::Refused)
        } else if site.hung {
            Err(ProbeFailure::Timeout)
        } else {
            let replica = site.replication.as_ref().map(|rep| {
                let connected = rep.running && self.can_replicate(rep.source, i);
                let host = address_of(rep.source);
                ReplicaStatus {
                    source_host: host,
                    source_port: 3306,
                    io_running: connected,
                    sql_running: rep.running,
                    seconds_behind_source: rep.running.then(|| u64::from(!site.relay.is_empty())),
                    retrieved_gtid_set: site.gtid.union(&site.relay),
                }
            });
            Ok(SiteProbe {
                server_uuid: site.uuid.to_string(),
                read_only: site.read_only,
                super_read_only: site.read_only,
                gtid_executed: site.gtid.clone(),
                gtid_purged: GtidSet::default(),
                replica,
            })
        };
        SiteObservation {
            site: site.name.clone(),
            result,
            elapsed: Duration::from_millis(1),
        }
    }

    // ---- applying actions -----------------------------------------------------------

    /// Applies an action to the world. `Err(())` when the site cannot be reached.
    pub fn apply(&mut self, kind: &ActionKind, rng: &mut Rng) -> Result<ActionValue, ()> {
        let target = self.index(kind.site()).ok_or(())?;
        if !self.observable(target) {
            return Err(());
        }
        match kind {
            ActionKind::Fence { .. } => {
                self.sites[target].read_only = true;
                Ok(ActionValue::Done)
            }
            ActionKind::KillConnections { .. } => {
                let killed = self.sites[target].sessions;
                self.sites[target].sessions = 0;
                // The simulated clients do not reconnect to a fenced server, so every
                // session a pass finds existed before it.
                Ok(ActionValue::Killed(SessionSweep {
                    killed,
                    newest_id: None,
                    older: killed,
                }))
            }
            ActionKind::DrainRelay { .. } => {
                let site = &mut self.sites[target];
                let outcome = if site.replication.is_none() {
                    DrainResult::NotAReplica
                } else if site.sql_stalled && !site.relay.is_empty() {
                    DrainResult::BudgetExhausted
                } else {
                    site.gtid = site.gtid.union(&site.relay);
                    site.relay = GtidSet::new();
                    DrainResult::Drained
                };
                Ok(ActionValue::Drained { outcome })
            }
            ActionKind::Promote { .. } => {
                let site = &mut self.sites[target];
                // STOP REPLICA + RESET REPLICA ALL: unapplied relay log is discarded.
                site.replication = None;
                site.relay = GtidSet::new();
                site.read_only = false;
                Ok(ActionValue::Promoted {
                    gtid: site.gtid.clone(),
                })
            }
            ActionKind::Unfence { .. } => {
                self.sites[target].read_only = false;
                Ok(ActionValue::Done)
            }
            ActionKind::ReplicateFrom {
                source_site, reset, ..
            } => {
                let source = self.index(source_site).ok_or(())?;
                let site = &mut self.sites[target];
                site.read_only = true;
                if *reset {
                    site.relay = GtidSet::new();
                }
                site.replication = Some(Replication {
                    source,
                    running: true,
                });
                Ok(ActionValue::Done)
            }
            ActionKind::WaitForGtid { gtid, .. } => {
                // The wait lets the applier run; time is not charged in the simulation.
                let site = &mut self.sites[target];
                if !site.sql_stalled && rng.chance(900_000) {
                    site.gtid = site.gtid.union(&site.relay);
                    site.relay = GtidSet::new();
                }
                Ok(ActionValue::GtidWait {
                    reached: site.gtid.contains(gtid),
                })
            }
            ActionKind::Clone { donor_site, .. } => {
                let donor = self.index(donor_site).ok_or(())?;
                if !self.observable(donor) {
                    return Err(());
                }
                let data = self.sites[donor].gtid.clone();
                let site = &mut self.sites[target];
                site.gtid = data;
                site.relay = GtidSet::new();
                site.read_only = true;
                site.replication = Some(Replication {
                    source: donor,
                    running: true,
                });
                Ok(ActionValue::Done)
            }
            ActionKind::RunHook { .. } => Ok(ActionValue::Done),
        }
    }
}
