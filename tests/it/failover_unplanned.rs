//! Unplanned failover on real MySQL: a crash (kill -9), a hang (SIGSTOP) and a short stall,
//! a relay backlog, and the anti-flap cooldown.

use std::sync::Arc;
use std::time::Duration;

use bloodraven::control::Reply;
use bloodraven::failover::{FailoverKind, Request, SiteState};
use bloodraven::ports::state::MemoryStateStore;

use bloodraven::ports::mysql::MysqlSite;

use crate::failover_common::{
    Group, TestResult, accepts_writes, client, gtid_executed, insert_rows, policy, start_pair,
    super_read_only,
};

fn state_of(status: &bloodraven::failover::GroupStatus, site: &str) -> Option<SiteState> {
    status.site(site).map(|s| s.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_promotes_the_replica_and_the_old_primary_rejoins_fenced() -> TestResult {
    let cluster = start_pair().await?;
    let (iad, pdx) = (cluster.get(0)?, cluster.get(1)?);
    let group = Group::start(
        &cluster,
        policy(&cluster)?,
        Arc::new(MemoryStateStore::new()),
    )
    .await?;
    group.wait_healthy_on("iad").await?;
    insert_rows(iad, 1, 20, "iad")?;
    let before = gtid_executed(iad)?;
    // Replicated before the crash, so the old primary's set stays contained.
    group
        .wait_for("pdx caught up", Duration::from_secs(10), |s| {
            s.site("pdx")
                .and_then(|p| p.gtid_executed.as_ref())
                .is_some_and(|g| g.contains(&before))
        })
        .await?;

    iad.kill9()?;
    let status = group
        .wait_for("pdx promoted", Duration::from_secs(10), |s| {
            s.active_site.as_deref() == Some("pdx")
                && state_of(s, "pdx") == Some(SiteState::Writable)
        })
        .await?;
    let record = status.last_failover.ok_or("no failover record")?;
    assert_eq!(record.target, "pdx");
    assert_eq!(record.kind, FailoverKind::Emergency);
    assert_eq!(record.previous.as_deref(), Some("iad"));
    assert!(
        record.promotion_gtid.is_some_and(|g| g.contains(&before)),
        "the promotion set holds every transaction of the old primary"
    );
    assert!(
        accepts_writes(pdx, 1000),
        "the promoted replica takes writes"
    );
    assert_eq!(
        pdx.sql("SELECT COUNT(*) FROM app.t WHERE site = 'iad'")?,
        "20"
    );

    // The old primary restarts writable (nothing fences it at boot in this harness): the
    // loop must fence it, see its set is contained, and rejoin it under pdx.
    iad.restart()?;
    let pdx_address = pdx.address();
    group
        .wait_for("iad rejoined under pdx", Duration::from_secs(20), |s| {
            s.site("iad").is_some_and(|i| {
                i.state == SiteState::ReadOnly
                    && i.replicating
                    && i.source_host.as_deref() == Some(pdx_address.as_str())
                    && i.divergent_transaction_count == 0
            })
        })
        .await?;
    assert!(super_read_only(iad)?, "the rejoined old primary is fenced");
    assert!(!accepts_writes(iad, 2000), "the old primary refuses writes");
    // Writes on the new primary reach the old one.
    insert_rows(pdx, 3000, 5, "pdx")?;
    let target = gtid_executed(pdx)?;
    group
        .wait_for("iad applies pdx's writes", Duration::from_secs(10), |s| {
            s.site("iad")
                .and_then(|i| i.gtid_executed.as_ref())
                .is_some_and(|g| g.contains(&target))
        })
        .await?;
    assert_eq!(
        group.handle.status().and_then(|s| s.active_site).as_deref(),
        Some("pdx")
    );
    group.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_fails_over_through_timeouts_but_a_short_stall_does_not() -> TestResult {
    let cluster = start_pair().await?;
    let iad = cluster.get(0)?;
    let group = Group::start(
        &cluster,
        policy(&cluster)?,
        Arc::new(MemoryStateStore::new()),
    )
    .await?;
    group.wait_healthy_on("iad").await?;

    // A stall well under failureThreshold (3) × probe timeout (1 s): no failover.
    iad.sigstop()?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    iad.sigcont()?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = group.handle.status().ok_or("no status")?;
    assert_eq!(status.active_site.as_deref(), Some("iad"), "{status:#?}");
    assert!(
        status.last_failover.is_none(),
        "a short stall caused a failover: {status:#?}"
    );
    assert_eq!(state_of(&status, "iad"), Some(SiteState::Writable));

    // A real hang: the probes time out (the port still accepts) and pdx is promoted.
    iad.sigstop()?;
    let status = group
        .wait_for("pdx promoted after a hang", Duration::from_secs(20), |s| {
            s.active_site.as_deref() == Some("pdx")
                && state_of(s, "pdx") == Some(SiteState::Writable)
        })
        .await?;
    assert_eq!(state_of(&status, "iad"), Some(SiteState::Unreachable));
    assert!(accepts_writes(cluster.get(1)?, 500));

    // Resumed, the old primary is still writable in its own eyes: it is fenced at once.
    iad.sigcont()?;
    group
        .wait_for("iad fenced after resuming", Duration::from_secs(10), |s| {
            s.site("iad").is_some_and(|i| i.read_only == Some(true))
        })
        .await?;
    assert!(super_read_only(iad)?);
    assert!(!accepts_writes(iad, 501));
    group.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_backlog_is_applied_before_promotion() -> TestResult {
    let cluster = start_pair().await?;
    let (iad, pdx) = (cluster.get(0)?, cluster.get(1)?);
    let pdx_client = client(pdx, "pdx")?;
    // Received but not applied: the SQL thread is stopped while the primary writes.
    pdx.sql("STOP REPLICA SQL_THREAD")?;
    insert_rows(iad, 1, 300, "iad")?;
    let acknowledged = gtid_executed(iad)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let retrieved = pdx_client
            .probe()
            .await?
            .replica
            .map(|r| r.retrieved_gtid_set)
            .unwrap_or_default();
        if retrieved.contains(&acknowledged) {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("pdx never received the backlog: {retrieved}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !gtid_executed(pdx)?.contains(&acknowledged),
        "the backlog is still unapplied before the crash"
    );
    iad.kill9()?;
    // The controller starts after the crash (a restart mid-incident): it finds iad refusing
    // and pdx read-only with a relay backlog, drains it, then promotes.
    let group = Group::start(
        &cluster,
        policy(&cluster)?,
        Arc::new(MemoryStateStore::new()),
    )
    .await?;
    let status = group
        .wait_for("pdx promoted", Duration::from_secs(30), |s| {
            s.active_site.as_deref() == Some("pdx")
                && state_of(s, "pdx") == Some(SiteState::Writable)
        })
        .await?;
    let promoted = status
        .last_failover
        .and_then(|r| r.promotion_gtid)
        .ok_or("no promotion set")?;
    assert!(
        promoted.contains(&acknowledged),
        "promoted before applying the backlog: {promoted} lacks part of {acknowledged}"
    );
    assert_eq!(pdx.sql("SELECT COUNT(*) FROM app.t")?, "300");
    group.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cooldown_blocks_a_second_automatic_failover() -> TestResult {
    let cluster = start_pair().await?;
    let (iad, pdx) = (cluster.get(0)?, cluster.get(1)?);
    let mut policy = policy(&cluster)?;
    policy.failover_cooldown = Duration::from_secs(120);
    let group = Group::start(&cluster, policy, Arc::new(MemoryStateStore::new())).await?;
    group.wait_healthy_on("iad").await?;

    iad.kill9()?;
    group
        .wait_for("pdx promoted", Duration::from_secs(10), |s| {
            s.active_site.as_deref() == Some("pdx")
                && state_of(s, "pdx") == Some(SiteState::Writable)
        })
        .await?;
    iad.restart()?;
    group
        .wait_for("iad rejoined", Duration::from_secs(20), |s| {
            s.site("iad")
                .is_some_and(|i| i.state == SiteState::ReadOnly && i.replicating)
        })
        .await?;
    // A planned failover inside the window is rejected too (onCooldown: reject).
    let reply = group
        .handle
        .submit(Request::PlannedFailover {
            target: "iad".to_owned(),
            max_lag_wait: None,
        })
        .await?;
    assert!(
        matches!(&reply, Reply::Rejected { reason } if reason.contains("Cooldown")),
        "{reply:?}"
    );

    pdx.kill9()?;
    group
        .wait_for("pdx unreachable", Duration::from_secs(10), |s| {
            state_of(s, "pdx") == Some(SiteState::Unreachable)
        })
        .await?;
    // Several more polls: still no promotion of iad.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = group.handle.status().ok_or("no status")?;
    assert_eq!(status.active_site.as_deref(), Some("pdx"), "{status:#?}");
    assert_eq!(state_of(&status, "iad"), Some(SiteState::ReadOnly));
    assert_eq!(
        status.last_failover.map(|r| r.target).as_deref(),
        Some("pdx")
    );
    assert!(
        super_read_only(iad)?,
        "iad was not promoted inside the cooldown"
    );
    group.stop().await;
    Ok(())
}
