//! Shared set-up for the failover tests: a MySQL pair (site `iad` = instance 0, the primary;
//! `pdx` = instance 1, its replica) driven by a real [`FailoverLoop`] over
//! [`MysqlSiteClient`]s, with short poll intervals.

use std::error::Error;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bloodraven::adapters::mysql::{Credentials, MysqlSiteClient, MysqlSiteConfig};
use bloodraven::control::{ControlHandle, FailoverLoop, LoopConfig, LoopParts, SiteHandle};
use bloodraven::failover::gtid::GtidSet;
use bloodraven::failover::observe::ReplicaStatus;
use bloodraven::failover::{GroupPolicy, GroupStatus, SitePolicy, SiteRole};
use bloodraven::ports::hook::NoHook;
use bloodraven::ports::mysql::MysqlSite;
use bloodraven::ports::state::{MemoryStateStore, StateStore};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::support::mysql::{MysqlCluster, MysqlInstance, REPL_PASSWORD, REPL_USER, ROOT_USER};

pub type TestResult<T = ()> = Result<T, Box<dyn Error + Send + Sync>>;

pub const SITES: [&str; 2] = ["iad", "pdx"];

pub fn client(instance: &MysqlInstance, site: &str) -> TestResult<MysqlSiteClient> {
    let mut config = MysqlSiteConfig::new(
        site,
        instance.address(),
        Credentials::new(ROOT_USER, ""),
        Credentials::new(REPL_USER, REPL_PASSWORD),
    );
    // Generous for a loaded 2-core CI machine: a slow answer must not look like a hang.
    config.probe_timeout = Duration::from_secs(1);
    config.connect_timeout = Duration::from_secs(1);
    config.op_timeout = Duration::from_secs(10);
    config.clone_timeout = Duration::from_secs(120);
    Ok(MysqlSiteClient::new(config)?)
}

/// The reference defaults with this cluster's sites and a fast test cadence.
pub fn policy(cluster: &MysqlCluster) -> TestResult<GroupPolicy> {
    let sites = SITES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Ok(SitePolicy {
                name: (*name).to_owned(),
                role: SiteRole::PrimaryCandidate,
                address: cluster.get(i)?.address(),
            })
        })
        .collect::<TestResult<Vec<_>>>()?;
    Ok(GroupPolicy::with_sites(sites))
}

pub fn loop_config() -> LoopConfig {
    LoopConfig {
        poll_interval: Duration::from_millis(250),
        probe_deadline: Duration::from_millis(1500),
        op_deadline: Duration::from_secs(15),
        clone_deadline: Duration::from_secs(150),
        liveness_interval: Some(Duration::from_millis(100)),
    }
}

/// Starts a pair with `pdx` replicating from `iad` and an `app.t` table.
pub async fn start_pair() -> TestResult<MysqlCluster> {
    let cluster = MysqlCluster::start(2)?;
    let iad = client(cluster.get(0)?, "iad")?;
    let pdx = client(cluster.get(1)?, "pdx")?;
    cluster
        .get(0)?
        .sql("CREATE DATABASE app; CREATE TABLE app.t (id BIGINT PRIMARY KEY, site VARCHAR(64))")?;
    pdx.replicate_from(&iad.endpoint(), true).await?;
    wait_caught_up(&pdx, &iad).await?;
    Ok(cluster)
}

/// Waits until `replica` replicates and has applied everything `primary` holds.
pub async fn wait_caught_up(replica: &MysqlSiteClient, primary: &MysqlSiteClient) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let target = primary.probe().await?.gtid_executed;
        let probe = replica.probe().await?;
        if probe
            .replica
            .as_ref()
            .is_some_and(ReplicaStatus::replicating)
            && probe.gtid_executed.contains(&target)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{} never caught up: {probe:?}", replica.address()).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running failover loop over a cluster.
pub struct Group {
    pub handle: ControlHandle,
    pub store: Arc<MemoryStateStore>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Group {
    /// Starts a loop over `cluster` with `policy`, resuming from `store`.
    pub async fn start(
        cluster: &MysqlCluster,
        policy: GroupPolicy,
        store: Arc<MemoryStateStore>,
    ) -> TestResult<Self> {
        let sites = SITES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let instance = cluster.get(i)?;
                Ok(SiteHandle {
                    name: (*name).to_owned(),
                    endpoint: instance.endpoint(),
                    site: Arc::new(client(instance, name)?),
                    sidecar: None,
                })
            })
            .collect::<TestResult<Vec<_>>>()?;
        let (failover_loop, handle) = FailoverLoop::new(LoopParts {
            sites,
            policy,
            config: loop_config(),
            store: Arc::clone(&store) as Arc<dyn StateStore>,
            hook: Arc::new(NoHook),
            observers: Vec::new(),
        })
        .await?;
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(failover_loop.run(async move {
            let mut rx = stop_rx;
            let _ = rx.wait_for(|s| *s).await;
        }));
        Ok(Self {
            handle,
            store,
            stop,
            task,
        })
    }

    /// Stops the loop (as a controller restart would), returning its state store.
    pub async fn stop(self) -> Arc<MemoryStateStore> {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.store
    }

    /// Polls the published status until `pred` holds, for at most `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&GroupStatus) -> bool,
    ) -> TestResult<GroupStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.handle.status()
                && pred(&status)
            {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "timed out after {timeout:?} waiting for {what}; last status: {:#?}",
                    self.handle.status()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits for `iad` to be adopted as the healthy primary.
    pub async fn wait_healthy_on(&self, site: &str) -> TestResult<GroupStatus> {
        self.wait_for(
            &format!("{site} healthy primary"),
            Duration::from_secs(20),
            |s| {
                s.active_site.as_deref() == Some(site)
                    && s.condition(bloodraven::failover::ConditionType::Ready)
                        .is_some_and(bloodraven::failover::Condition::is_true)
            },
        )
        .await
    }
}

/// `SELECT @@GLOBAL.super_read_only` through the mysql client.
/// `super_read_only`, read again when the read's own session is cut: a fence kills client
/// sessions, and a read made just after one may be among them.
pub fn super_read_only(instance: &MysqlInstance) -> TestResult<bool> {
    let mut attempt = 0;
    loop {
        match instance.sql("SELECT @@GLOBAL.super_read_only") {
            Ok(value) => return Ok(value == "1"),
            Err(_) if attempt < 5 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

pub fn gtid_executed(instance: &MysqlInstance) -> TestResult<GtidSet> {
    let text = instance
        .sql("SELECT @@GLOBAL.gtid_executed")?
        .replace("\\n", "");
    Ok(GtidSet::parse(&text)?)
}

/// Inserts `count` rows (one transaction each) starting at `first`.
pub fn insert_rows(instance: &MysqlInstance, first: u64, count: u64, site: &str) -> TestResult {
    let mut statements = String::new();
    for id in first..first + count {
        let _ = write!(statements, "INSERT INTO app.t VALUES ({id}, '{site}');");
    }
    instance.sql(&statements)?;
    Ok(())
}

/// Whether the site at `instance` is writable for an application (an insert succeeds).
pub fn accepts_writes(instance: &MysqlInstance, id: u64) -> bool {
    instance
        .sql(&format!("INSERT INTO app.t VALUES ({id}, 'probe')"))
        .is_ok()
}

/// Writes one row into `app.t` every 10 ms to whichever of `sites` (name, loopback port)
/// accepts it, until `stop`: the playground's counter app, which reconnects to a site at
/// most once a second like a connection pool. Returns every acknowledged write.
pub async fn write_until(
    sites: [(&'static str, u16); 2],
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<crate::failover_writer::Ack> {
    let targets = sites
        .into_iter()
        .map(|(name, port)| crate::failover_writer::SiteTarget {
            name: name.to_owned(),
            host: "127.0.0.1".to_owned(),
            port,
        })
        .collect();
    let mut writer = crate::failover_writer::Writer::new(targets, ROOT_USER, "", "app.t");
    let mut acks = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if let Some(ack) = writer.tick().await {
            acks.push(ack);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    acks
}
