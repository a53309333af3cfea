//! CLONE INSTANCE: replace a (diverged or empty) server's data with a donor's.
//!
//! Three MySQL behaviours shape this:
//! - CLONE fails under `super_read_only=ON`, so the fence is lowered to plain `read_only`
//!   (which still blocks application writes) for the statement, and raised again after.
//! - The recipient restarts when the copy is done: the statement may return OK or lose its
//!   connection, and the server is briefly down. The restart needs a supervisor
//!   (`MYSQLD_PARENT_PID`), which the deployment provides.
//! - The restarted server keeps its `server_uuid` but has the donor's data and no replication
//!   channel, and it starts with its configured `read_only` (possibly writable), so it is
//!   fenced and re-pointed at the donor at once.

use std::time::Duration;

use tokio::time::{Instant, sleep};

use super::client::MysqlSiteClient;
use super::session::Session;
use super::sql_text;
use crate::ports::mysql::{DbError, SourceEndpoint};

/// How often to look for the restarted server.
const RESTART_POLL: Duration = Duration::from_millis(100);

pub(super) async fn clone_from(
    client: &MysqlSiteClient,
    donor: &SourceEndpoint,
) -> Result<(), DbError> {
    let config = client.config();
    let started = Instant::now();
    let mut session = Session::open(client.target(), "clone_from", config.clone_timeout).await?;
    let donor_address = format!("{}:{}", donor.host, donor.port);
    if !sql_text::is_plain_token(&donor_address) {
        return Err(session.unsafe_error(format!("donor {donor_address:?} is not host:port")));
    }
    if client.endpoint() == *donor {
        return Err(session.unsafe_error("a server cannot clone itself"));
    }
    session.ensure_backslash_escapes().await?;
    let uptime_before = uptime(&mut session).await?;
    session.exec("SET GLOBAL read_only = ON").await?;
    session.exec("SET GLOBAL super_read_only = OFF").await?;
    session
        .exec(&format!(
            "SET GLOBAL clone_valid_donor_list = {}",
            sql_text::string_literal(&donor_address)
        ))
        .await?;
    let statement = sql_text::clone_instance(
        &donor.host,
        donor.port,
        &config.replication.user,
        &config.replication.password,
        config.replication_tls,
    );
    tracing::info!(donor = %donor_address, "cloning");
    let deadline = session.deadline();
    let mut saw_down = false;
    match session.exec(&statement).await {
        Ok(()) => {}
        // A dropped connection is the restart we asked for (or a failure the checks
        // below will expose: the server must come back with a fresh uptime).
        Err(DbError::Refused { .. }) => saw_down = true,
        Err(DbError::Query { message, .. }) if !message.starts_with("ERROR ") => saw_down = true,
        Err(e) => {
            // The data is intact after a failed CLONE; put the fence back before reporting.
            let _ = session.exec("SET GLOBAL super_read_only = ON").await;
            return Err(e);
        }
    }
    drop(session);
    wait_for_restart(client, deadline, uptime_before, saw_down).await?;
    tracing::info!(
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "clone finished and server restarted; re-pointing at the donor"
    );
    // The restarted server has no replication channel; fence and re-point it.
    let mut session = client.op_session("clone_from").await?;
    client.replicate_in(&mut session, donor, false).await?;
    session.close().await;
    Ok(())
}

async fn uptime(session: &mut Session) -> Result<u64, DbError> {
    let row: Option<(String, u64)> = session.first("SHOW GLOBAL STATUS LIKE 'Uptime'").await?;
    row.map(|(_, seconds)| seconds)
        .ok_or_else(|| session.query_error("SHOW GLOBAL STATUS LIKE 'Uptime' returned no row"))
}

/// Waits until the server answers again as a new process: after we saw it down, or with an
/// uptime below the one before the clone (the old process could still answer for a moment
/// after CLONE returned).
async fn wait_for_restart(
    client: &MysqlSiteClient,
    deadline: Instant,
    uptime_before: u64,
    mut saw_down: bool,
) -> Result<(), DbError> {
    let address = client.config().address.clone();
    loop {
        if Instant::now() >= deadline {
            return Err(DbError::Timeout {
                address,
                operation: "clone_from",
                after: client.config().clone_timeout,
            });
        }
        let poll_budget = client
            .config()
            .connect_timeout
            .max(Duration::from_millis(500));
        match Session::open(client.target(), "clone_from", poll_budget).await {
            Ok(mut session) => match uptime(&mut session).await {
                Ok(now) if saw_down || now < uptime_before => {
                    session.close().await;
                    return Ok(());
                }
                Ok(_) => session.close().await,
                Err(_) => saw_down = true,
            },
            Err(_) => saw_down = true,
        }
        sleep(RESTART_POLL).await;
    }
}
