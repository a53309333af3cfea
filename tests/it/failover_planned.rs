//! Planned switchover on real MySQL under continuous writes: zero acknowledged writes lost,
//! counted one by one.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bloodraven::control::Reply;
use bloodraven::failover::{GroupStatus, PlannedPhase, Request, SiteState};
use bloodraven::ports::state::MemoryStateStore;

use crate::failover_common::{Group, TestResult, policy, start_pair, write_until};
use crate::support::mysql::{MysqlInstance, ROOT_USER};

/// Asks for a planned failover to `target` and waits up to `within` for it to end.
async fn switch_over(group: &Group, target: &str, within: Duration) -> TestResult<GroupStatus> {
    let reply = group
        .handle
        .submit(Request::PlannedFailover {
            target: target.to_owned(),
            max_lag_wait: None,
        })
        .await?;
    assert!(matches!(reply, Reply::Accepted { .. }), "{reply:?}");
    group
        .wait_for("planned failover finished", within, |s| {
            s.planned_failover
                .as_ref()
                .is_some_and(|p| p.phase.is_terminal())
        })
        .await
}

fn ids_on(instance: &MysqlInstance) -> TestResult<HashSet<u64>> {
    let text = instance.sql("SELECT id FROM app.t")?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_switchover_under_writes_loses_no_acknowledged_write() -> TestResult {
    let cluster = start_pair().await?;
    let (iad, pdx) = (cluster.get(0)?, cluster.get(1)?);
    let group = Group::start(
        &cluster,
        policy(&cluster)?,
        Arc::new(MemoryStateStore::new()),
    )
    .await?;
    group.wait_healthy_on("iad").await?;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_until(
        [("iad", iad.port()), ("pdx", pdx.port())],
        Arc::clone(&stop),
    ));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let status = switch_over(&group, "pdx", Duration::from_secs(30)).await?;
    let planned = status.planned_failover.ok_or("no planned status")?;
    assert_eq!(planned.phase, PlannedPhase::Succeeded, "{planned:#?}");
    assert_eq!(planned.transactions_lost, Some(0));
    let fenced_set = planned.source_gtid_at_fence.ok_or("no fenced set")?;
    let promoted_set = planned.target_gtid_at_promotion.ok_or("no promotion set")?;
    assert!(promoted_set.contains(&fenced_set));
    assert_eq!(status.active_site.as_deref(), Some("pdx"));

    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<(u64, usize)> = writer.await?.iter().map(|a| (a.id, a.site)).collect();
    let on_iad = acked.iter().filter(|(_, s)| *s == 0).count();
    let on_pdx = acked.iter().filter(|(_, s)| *s == 1).count();
    assert!(
        on_iad > 10 && on_pdx > 10,
        "writes on both sides: {on_iad} / {on_pdx}"
    );
    let present = ids_on(pdx)?;
    let lost: Vec<u64> = acked
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !present.contains(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");

    // The old primary rejoins under the new one.
    group
        .wait_for("iad replicating from pdx", Duration::from_secs(20), |s| {
            s.site("iad")
                .is_some_and(|i| i.state == SiteState::ReadOnly && i.replicating)
        })
        .await?;
    group.stop().await;
    Ok(())
}

/// A client that reconnects the moment it is killed (an eager pool) keeps holding a session
/// on the fenced source. Those sessions opened after the fence and cannot write, so the
/// drain must not wait for `drainTimeout` because of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_reconnects_do_not_hold_the_drain_until_its_timeout() -> TestResult {
    let cluster = start_pair().await?;
    let iad = cluster.get(0)?;
    let mut policy = policy(&cluster)?;
    policy.drain_timeout = Duration::from_secs(60);
    let group = Group::start(&cluster, policy, Arc::new(MemoryStateStore::new())).await?;
    group.wait_healthy_on("iad").await?;

    let stop = Arc::new(AtomicBool::new(false));
    let port = iad.port();
    let connects = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pool = tokio::spawn({
        let (stop, connects) = (Arc::clone(&stop), Arc::clone(&connects));
        async move {
            use mysql_async::prelude::Queryable as _;
            while !stop.load(Ordering::Relaxed) {
                let opts = mysql_async::OptsBuilder::default()
                    .ip_or_hostname("127.0.0.1")
                    .tcp_port(port)
                    .user(Some(ROOT_USER))
                    .prefer_socket(false);
                let Ok(mut conn) = mysql_async::Conn::new(opts).await else {
                    continue;
                };
                connects.fetch_add(1, Ordering::Relaxed);
                // Hold the session, busy, until it is killed.
                while !stop.load(Ordering::Relaxed)
                    && conn.query_drop("SELECT SLEEP(0.05)").await.is_ok()
                {}
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Far below the 60 s drain timeout: the drain ends once the pre-fence session is gone.
    let status = switch_over(&group, "pdx", Duration::from_secs(20)).await?;
    stop.store(true, Ordering::Relaxed);
    pool.await?;
    let planned = status.planned_failover.ok_or("no planned status")?;
    assert_eq!(planned.phase, PlannedPhase::Succeeded, "{planned:#?}");
    assert!(
        connects.load(Ordering::Relaxed) >= 2,
        "the pool was killed and reconnected during the switchover"
    );
    assert_eq!(status.active_site.as_deref(), Some("pdx"));
    group.stop().await;
    Ok(())
}
