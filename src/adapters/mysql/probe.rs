//! Reading one server's state: the globals and `SHOW REPLICA STATUS`.

use mysql_async::Row;
use mysql_async::prelude::FromValue;

use super::session::Session;
use crate::failover::gtid::GtidSet;
use crate::failover::observe::{ReplicaStatus, SiteProbe};
use crate::ports::mysql::DbError;

/// Parses a GTID set as MySQL prints it (it wraps long sets with newlines after commas).
pub(super) fn parse_gtid(session: &Session, text: &str) -> Result<GtidSet, DbError> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    GtidSet::parse(&compact)
        .map_err(|e| session.query_error(format!("unparsable GTID set {compact:?}: {e}")))
}

pub(super) async fn gtid_executed(session: &mut Session) -> Result<GtidSet, DbError> {
    let text: Option<String> = session.first("SELECT @@GLOBAL.gtid_executed").await?;
    parse_gtid(session, text.as_deref().unwrap_or_default())
}

/// Reads everything [`SiteProbe`] holds in two round trips.
pub(super) async fn read_probe(session: &mut Session) -> Result<SiteProbe, DbError> {
    let globals: Option<(u8, u8, String, String, String)> = session
        .first(
            "SELECT @@GLOBAL.read_only, @@GLOBAL.super_read_only, @@GLOBAL.gtid_executed, \
             @@GLOBAL.server_uuid, @@GLOBAL.gtid_purged",
        )
        .await?;
    let Some((read_only, super_read_only, gtid_text, server_uuid, purged_text)) = globals else {
        return Err(session.query_error("the globals query returned no row"));
    };
    let gtid_executed = parse_gtid(session, &gtid_text)?;
    let gtid_purged = parse_gtid(session, &purged_text)?;
    let replica = replica_status(session).await?;
    Ok(SiteProbe {
        server_uuid,
        read_only: read_only != 0,
        super_read_only: super_read_only != 0,
        gtid_executed,
        gtid_purged,
        replica,
    })
}

/// `SHOW REPLICA STATUS` for the default channel; `None` when no channel is configured.
pub(super) async fn replica_status(
    session: &mut Session,
) -> Result<Option<ReplicaStatus>, DbError> {
    let rows = session.rows("SHOW REPLICA STATUS").await?;
    let default_channel = rows
        .iter()
        .position(|row| column::<String>(row, "Channel_Name").is_none_or(|name| name.is_empty()));
    let Some(row) = default_channel.and_then(|i| rows.get(i)) else {
        return Ok(None);
    };
    let retrieved = column::<String>(row, "Retrieved_Gtid_Set").unwrap_or_default();
    Ok(Some(ReplicaStatus {
        source_host: column::<String>(row, "Source_Host").unwrap_or_default(),
        source_port: column::<u16>(row, "Source_Port").unwrap_or_default(),
        io_running: column::<String>(row, "Replica_IO_Running").as_deref() == Some("Yes"),
        sql_running: column::<String>(row, "Replica_SQL_Running").as_deref() == Some("Yes"),
        seconds_behind_source: column::<u64>(row, "Seconds_Behind_Source"),
        retrieved_gtid_set: parse_gtid(session, &retrieved)?,
    }))
}

/// A column by name; `None` when it is missing, NULL, or not convertible.
pub(super) fn column<T: FromValue>(row: &Row, name: &str) -> Option<T> {
    row.get_opt::<Option<T>, _>(name)
        .and_then(Result::ok)
        .flatten()
}
