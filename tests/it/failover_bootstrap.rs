//! Fresh bootstrap on real MySQL 9.7: two brand-new servers that booted fenced
//! (`super_read_only`, as the operator's my.cnf starts every site) and replicate from
//! nobody. The failover loop seeds one and the other converges on it.

use std::sync::Arc;
use std::time::Duration;

use bloodraven::failover::{GroupStatus, SiteState};
use bloodraven::ports::state::MemoryStateStore;

use crate::failover_common::{Group, TestResult, gtid_executed, policy, super_read_only};
use crate::support::mysql::{MysqlCluster, MysqlInstance};

/// Fences every server of `cluster` (as the operator's my.cnf boots them) and starts the
/// failover loop over them with a fresh state.
async fn start_fenced(cluster: &MysqlCluster) -> TestResult<Group> {
    for i in 0..2 {
        cluster.get(i)?.sql("SET GLOBAL super_read_only = ON")?;
    }
    Group::start(cluster, policy(cluster)?, Arc::new(MemoryStateStore::new())).await
}

/// Waits until `follower` is a read-only site replicating from the active `seed`.
async fn wait_following(
    group: &Group,
    seed: &str,
    follower: &str,
    within: Duration,
) -> TestResult<GroupStatus> {
    group
        .wait_for(
            &format!("{follower} replicating from {seed}"),
            within,
            |s| {
                s.active_site.as_deref() == Some(seed)
                    && s.sites.iter().any(|site| {
                        site.name == follower
                            && site.state == SiteState::ReadOnly
                            && site.replicating
                    })
            },
        )
        .await
}

/// Waits until `follower` holds everything `seed` executed.
async fn wait_caught_up(seed: &MysqlInstance, follower: &MysqlInstance) -> TestResult {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !gtid_executed(follower)?.contains(&gtid_executed(seed)?) {
        assert!(
            std::time::Instant::now() < deadline,
            "the follower never caught up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_fenced_sites_are_seeded_and_the_other_replicates_from_the_seed() -> TestResult {
    let cluster = MysqlCluster::start(2)?;
    let (iad, pdx) = (cluster.get(0)?, cluster.get(1)?);
    let group = start_fenced(&cluster).await?;
    let status = wait_following(&group, "iad", "pdx", Duration::from_secs(30)).await?;
    assert_eq!(status.active_site.as_deref(), Some("iad"), "{status:#?}");
    assert!(!super_read_only(iad)?, "the seed is writable");
    assert!(super_read_only(pdx)?, "the follower stays fenced");
    // A write on the seed reaches the follower.
    iad.sql("CREATE DATABASE seeded; CREATE TABLE seeded.t (id INT PRIMARY KEY); INSERT INTO seeded.t VALUES (1)")?;
    wait_caught_up(iad, pdx).await?;
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
    let group = start_fenced(&cluster).await?;
    let status = wait_following(&group, "iad", "pdx", Duration::from_secs(60)).await?;
    assert_eq!(status.active_site.as_deref(), Some("iad"), "{status:#?}");
    assert_eq!(pdx.supervisor_restarts(), 1, "one clone restarted pdx");
    assert_eq!(pdx.sql("SELECT COUNT(*) FROM seeded.t")?, "3");
    assert!(super_read_only(pdx)?, "the clone stays fenced");
    // And it now follows by replication.
    iad.sql("INSERT INTO seeded.t VALUES (4)")?;
    wait_caught_up(iad, pdx).await?;
    group.stop().await;
    Ok(())
}
