//! Fresh bootstrap on real MySQL 9.7: two brand-new servers that booted fenced
//! (`super_read_only`, as the operator's my.cnf starts every site) and replicate from
//! nobody. The failover loop seeds one and the other converges on it.

use std::sync::Arc;
use std::time::Duration;

use bloodraven::failover::SiteState;
use bloodraven::ports::state::MemoryStateStore;

use crate::failover_common::{Group, TestResult, gtid_executed, policy, super_read_only};
use crate::support::mysql::MysqlCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_fenced_sites_are_seeded_and_the_other_replicates_from_the_seed() -> TestResult {
    let cluster = MysqlCluster::start(2)?;
    let (iad, pdx) = (cluster.get(0)?, cluster.get(1)?);
    for instance in [iad, pdx] {
        instance.sql("SET GLOBAL super_read_only = ON")?;
    }
    let group = Group::start(
        &cluster,
        policy(&cluster)?,
        Arc::new(MemoryStateStore::new()),
    )
    .await?;
    let status = group
        .wait_for(
            "a seed promoted and the other site replicating from it",
            Duration::from_secs(30),
            |s| {
                s.active_site.is_some()
                    && s.sites
                        .iter()
                        .filter(|site| Some(&site.name) != s.active_site.as_ref())
                        .all(|site| site.state == SiteState::ReadOnly && site.replicating)
            },
        )
        .await?;
    assert_eq!(status.active_site.as_deref(), Some("iad"), "{status:#?}");
    assert!(!super_read_only(iad)?, "the seed is writable");
    assert!(super_read_only(pdx)?, "the follower stays fenced");
    // A write on the seed reaches the follower.
    iad.sql("CREATE DATABASE seeded; CREATE TABLE seeded.t (id INT PRIMARY KEY); INSERT INTO seeded.t VALUES (1)")?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !gtid_executed(pdx)?.contains(&gtid_executed(iad)?) {
        assert!(std::time::Instant::now() < deadline, "pdx never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pdx.sql("SELECT COUNT(*) FROM seeded.t")?, "1");
    group.stop().await;
    Ok(())
}

/// A site that lacks transactions whose binary logs the seed has purged cannot catch up
/// by replication (the IO thread stops on a purged-logs error): it is cloned instead, and
/// then replicates. Nothing of its own is discarded, since it holds nothing the seed lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_behind_purged_binary_logs_is_cloned_then_replicates() -> TestResult {
    let cluster = MysqlCluster::start(2)?;
    let (iad, pdx) = (cluster.get(0)?, cluster.get(1)?);
    iad.sql(
        "CREATE DATABASE seeded; CREATE TABLE seeded.t (id INT PRIMARY KEY); \
         INSERT INTO seeded.t VALUES (1), (2), (3); FLUSH BINARY LOGS",
    )?;
    let current = iad.sql("SHOW BINARY LOG STATUS")?;
    let current = current.split_whitespace().next().ok_or("no binary log")?;
    iad.sql(&format!("PURGE BINARY LOGS TO '{current}'"))?;
    assert!(
        !iad.sql("SELECT @@GLOBAL.gtid_purged")?.trim().is_empty(),
        "the seed's early transactions are purged"
    );
    for instance in [iad, pdx] {
        instance.sql("SET GLOBAL super_read_only = ON")?;
    }
    let group = Group::start(
        &cluster,
        policy(&cluster)?,
        Arc::new(MemoryStateStore::new()),
    )
    .await?;
    let status = group
        .wait_for(
            "pdx cloned from iad and replicating",
            Duration::from_secs(60),
            |s| {
                s.active_site.as_deref() == Some("iad")
                    && s.sites.iter().any(|site| {
                        site.name == "pdx" && site.state == SiteState::ReadOnly && site.replicating
                    })
            },
        )
        .await?;
    assert_eq!(status.active_site.as_deref(), Some("iad"), "{status:#?}");
    assert_eq!(pdx.supervisor_restarts(), 1, "one clone restarted pdx");
    assert_eq!(pdx.sql("SELECT COUNT(*) FROM seeded.t")?, "3");
    assert!(super_read_only(pdx)?, "the clone stays fenced");
    // And it now follows by replication.
    iad.sql("INSERT INTO seeded.t VALUES (4)")?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !gtid_executed(pdx)?.contains(&gtid_executed(iad)?) {
        assert!(std::time::Instant::now() < deadline, "pdx never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    group.stop().await;
    Ok(())
}
