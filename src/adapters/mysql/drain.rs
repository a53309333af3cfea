//! Bounded relay-log drain before a promotion.
//!
//! The candidate may hold transactions it received but has not applied yet. Promoting it
//! before they apply would lose them (they were acknowledged by the old primary), so we give
//! the SQL thread a bounded chance to catch up. The check is exact, not lag-based: drained
//! means `Retrieved_Gtid_Set ⊆ gtid_executed`. Waiting uses `WAIT_FOR_EXECUTED_GTID_SET`, which
//! returns the moment the set is applied, in slices that grow from 50 ms to 1 s so a fresh
//! `SHOW REPLICA STATUS` notices a stopped SQL thread quickly.

use std::time::Duration;

use tokio::time::Instant;

use super::client::MysqlSiteClient;
use super::probe;
use super::session::Session;
use crate::ports::mysql::{DbError, DrainOutcome};

const FIRST_SLICE: Duration = Duration::from_millis(50);
const MAX_SLICE: Duration = Duration::from_secs(1);

pub(super) async fn drain_relay_log(
    client: &MysqlSiteClient,
    budget: Duration,
) -> Result<DrainOutcome, DbError> {
    let started = Instant::now();
    // One round trip beyond the budget so the last check can still answer.
    let allowance = budget.saturating_add(client.config().op_timeout.min(Duration::from_secs(2)));
    let mut session = Session::open(client.target(), "drain_relay_log", allowance).await?;
    let deadline = started + budget;
    let mut slice = FIRST_SLICE;
    let mut restarted_sql_thread = false;
    loop {
        let Some(status) = probe::replica_status(&mut session).await? else {
            session.close().await;
            return Ok(DrainOutcome::NotAReplica);
        };
        let executed = probe::gtid_executed(&mut session).await?;
        if executed.contains(&status.retrieved_gtid_set) {
            session.close().await;
            tracing::info!(elapsed_ms = elapsed_ms(started), "relay log drained");
            return Ok(DrainOutcome::Drained);
        }
        if !status.sql_running && !restarted_sql_thread {
            // Once only: an SQL thread that stops again has a real error to look at.
            restarted_sql_thread = true;
            tracing::warn!("SQL thread stopped with a relay backlog; restarting it once");
            session.exec("START REPLICA SQL_THREAD").await?;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            session.close().await;
            tracing::warn!(
                elapsed_ms = elapsed_ms(started),
                "relay log drain budget exhausted"
            );
            return Ok(DrainOutcome::BudgetExhausted);
        }
        let wait = slice.min(left);
        let _: Option<Option<i64>> = session
            .exec_first(
                "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)",
                vec![
                    status.retrieved_gtid_set.to_string().into(),
                    wait.as_secs_f64().into(),
                ],
            )
            .await?;
        slice = (slice * 2).min(MAX_SLICE);
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}
