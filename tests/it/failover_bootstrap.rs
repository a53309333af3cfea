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
