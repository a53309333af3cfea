//! Divergence and split brain on real MySQL: an errant write on a demoted primary is
//! recorded exactly (equal to MySQL's own GTID_SUBTRACT) and cleared by a reclone; two
//! writable sites are resolved by `sitePriorities` without promoting anyone.

use std::sync::Arc;
use std::time::Duration;

use bloodraven::control::Reply;
use bloodraven::failover::gtid::GtidSet;
use bloodraven::failover::{Request, SiteState};
use bloodraven::ports::state::MemoryStateStore;

use crate::failover_common::{
    Group, TestResult, accepts_writes, gtid_executed, insert_rows, policy, start_pair,
    super_read_only,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_errant_write_is_recorded_as_gtid_subtract_and_a_reclone_clears_it() -> TestResult {
    let cluster = start_pair().await?;
    let (iad, pdx) = (cluster.get(0)?, cluster.get(1)?);
    let group = Group::start(
        &cluster,
        policy(&cluster)?,
        Arc::new(MemoryStateStore::new()),
    )
    .await?;
    group.wait_healthy_on("iad").await?;
    insert_rows(iad, 1, 10, "iad")?;
    iad.kill9()?;
    group
        .wait_for("pdx promoted", Duration::from_secs(10), |s| {
            s.active_site.as_deref() == Some("pdx")
                && s.site("pdx")
                    .is_some_and(|p| p.state == SiteState::Writable)
        })
        .await?;
    insert_rows(pdx, 100, 5, "pdx")?;
    // The controller is down while the old primary comes back writable and takes a write
    // that pdx will never have. The restarted controller resumes from its stored state.
    let store = group.stop().await;
    iad.restart()?;
    iad.sql("INSERT INTO app.t VALUES (9001, 'errant'), (9002, 'errant'); INSERT INTO app.t VALUES (9003, 'errant')")?;
    let group = Group::start(&cluster, policy(&cluster)?, store).await?;
    let status = group
        .wait_for("divergence recorded on iad", Duration::from_secs(20), |s| {
            s.site("iad")
                .is_some_and(|i| i.divergent_transaction_count > 0)
        })
        .await?;
    assert_eq!(
        status.active_site.as_deref(),
        Some("pdx"),
        "the authority survived the restart"
    );
    assert!(super_read_only(iad)?, "the diverged site is kept fenced");
    let recorded = status
        .site("iad")
        .and_then(|i| i.divergent_gtid.clone())
        .ok_or("no divergent set")?;
    let mysql_says = pdx.sql(&format!(
        "SELECT GTID_SUBTRACT('{}', '{}')",
        gtid_executed(iad)?,
        gtid_executed(pdx)?
    ))?;
    let mysql_says = GtidSet::parse(&mysql_says.replace("\\n", ""))?;
    assert_eq!(
        recorded, mysql_says,
        "the recorded set is MySQL's GTID_SUBTRACT"
    );
    assert_eq!(recorded.count(), 2, "two errant transactions");
    assert_eq!(
        status.site("iad").map(|i| i.divergent_transaction_count),
        Some(2)
    );

    let reply = group
        .handle
        .submit(Request::Reclone {
            site: "pdx".to_owned(),
        })
        .await?;
    assert!(
        matches!(reply, Reply::Rejected { .. }),
        "the primary is never recloned: {reply:?}"
    );
    let reply = group
        .handle
        .submit(Request::Reclone {
            site: "iad".to_owned(),
        })
        .await?;
    assert!(matches!(reply, Reply::Accepted { .. }), "{reply:?}");
    group
        .wait_for(
            "iad recloned and replicating",
            Duration::from_secs(120),
            |s| {
                s.site("iad").is_some_and(|i| {
                    i.divergent_transaction_count == 0
                        && i.replicating
                        && i.state == SiteState::ReadOnly
                })
            },
        )
        .await?;
    assert_eq!(
        iad.sql("SELECT COUNT(*) FROM app.t WHERE site = 'errant'")?,
        "0"
    );
    assert_eq!(
        iad.sql("SELECT COUNT(*) FROM app.t WHERE site = 'pdx'")?,
        "5"
    );
    assert!(gtid_executed(pdx)?.contains(&gtid_executed(iad)?));
    assert!(iad.supervisor_restarts() >= 1, "the clone restarted mysqld");
    group.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writable_sites_are_resolved_by_priority_without_a_promotion() -> TestResult {
    let cluster = start_pair().await?;
    let (iad, pdx) = (cluster.get(0)?, cluster.get(1)?);
    pdx.sql("STOP REPLICA; SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF")?;
    assert!(
        accepts_writes(iad, 1) && accepts_writes(pdx, 2),
        "both writable"
    );
    let mut policy = policy(&cluster)?;
    policy.site_priorities = vec!["iad".to_owned()];
    let group = Group::start(&cluster, policy, Arc::new(MemoryStateStore::new())).await?;
    group
        .wait_for("pdx fenced", Duration::from_secs(10), |s| {
            s.active_site.as_deref() == Some("iad")
                && s.site("pdx").is_some_and(|p| p.read_only == Some(true))
        })
        .await?;
    // From here on exactly one writer, and it is iad: nobody was promoted.
    for _ in 0..20 {
        let writable: Vec<bool> = [iad, pdx]
            .iter()
            .map(|i| i.sql("SELECT @@GLOBAL.read_only").map(|v| v == "0"))
            .collect::<Result<_, _>>()?;
        assert_eq!(writable, vec![true, false]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = group.handle.status().ok_or("no status")?;
    assert!(status.last_failover.is_none(), "no promotion: {status:#?}");
    assert!(super_read_only(pdx)?);
    // pdx took a write iad never saw: it stays fenced with the divergence recorded.
    let status = group
        .wait_for("pdx's divergence recorded", Duration::from_secs(20), |s| {
            s.site("pdx")
                .is_some_and(|p| p.divergent_transaction_count == 1)
        })
        .await?;
    assert_eq!(status.active_site.as_deref(), Some("iad"));
    assert!(!accepts_writes(pdx, 3));
    group.stop().await;
    Ok(())
}
