//! One server as the backup commands use it besides the logical dump: its binary logs for
//! point-in-time recovery (which exist, what GTIDs each begins after, and, through MySQL's
//! own `mysqlbinlog` and `mysql` clients, fetching a closed log byte for byte and replaying
//! logs into a server), and a CLONE of its data directory for the physical method.
//!
//! The replay is `mysqlbinlog … | mysql`: it runs from wherever the restore runs, needs no
//! file on the target's host, and MySQL's GTID auto-skip makes it exact (a transaction the
//! target has is skipped, `--include-gtids` cuts at the target). The replica applier on
//! relay logs would apply in parallel, but needs the logs placed in the target's data
//! directory, which a restore over the network cannot do.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mysql_async::Row;
use tokio::process::Command;

use super::config::{ClientTls, Credentials, split_address};
use super::session::{Session, Target};
use crate::error::{Categorized, Category};
use crate::failover::Timestamp;
use crate::failover::gtid::GtidSet;
use crate::ports::mysql::DbError;

/// Bound on each inventory statement.
const STATEMENT_BUDGET: Duration = Duration::from_secs(30);

/// How long past a sanity query's limit the client waits for the server to stop it.
const KILL_GRACE: Duration = Duration::from_millis(500);
/// `ER_QUERY_TIMEOUT`: maximum statement execution time exceeded.
const ER_QUERY_TIMEOUT: u16 = 3024;

/// What a bounded query answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryAnswer {
    /// The first row's columns as text (`None` for NULL); `None` when no row came.
    pub first_row: Option<Vec<Option<String>>>,
    pub rows: u64,
    pub took: Duration,
}

/// A bounded query that failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("did not finish within {limit:?} (stopped after {took:?})")]
    TimedOut { limit: Duration, took: Duration },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A row's columns as the `mysql` client prints them.
fn row_text(row: &Row) -> Vec<Option<String>> {
    (0..row.len())
        .map(|i| match row.as_ref(i) {
            None | Some(mysql_async::Value::NULL) => None,
            Some(mysql_async::Value::Bytes(bytes)) => {
                Some(String::from_utf8_lossy(bytes).into_owned())
            }
            Some(mysql_async::Value::Int(v)) => Some(v.to_string()),
            Some(mysql_async::Value::UInt(v)) => Some(v.to_string()),
            Some(mysql_async::Value::Float(v)) => Some(v.to_string()),
            Some(mysql_async::Value::Double(v)) => Some(v.to_string()),
            Some(other) => Some(other.as_sql(true).trim_matches('\'').to_owned()),
        })
        .collect()
}

/// A server to read binary logs from or replay them into.
#[derive(Debug, Clone)]
pub struct BackupServer {
    target: Target,
    host: String,
    port: u16,
    credentials: Credentials,
    tls: ClientTls,
}

/// What a local CLONE captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneSnapshot {
    /// The donor's `gtid_executed` as the clone began: all of it is in the copy.
    pub gtid_executed: GtidSet,
    pub server_version: String,
}

/// One binary log as `SHOW BINARY LOGS` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryLog {
    pub name: String,
    pub size: u64,
}

/// A failure of the binary-log tools.
#[derive(Debug, thiserror::Error)]
pub enum BinlogError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{tool}: {message}")]
    Tool { tool: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Unexpected(String),
}

impl Categorized for BinlogError {
    fn category(&self) -> Category {
        match self {
            Self::Db(e) => e.category(),
            Self::Tool { .. } | Self::Io { .. } => Category::Unavailable,
            Self::Unexpected(_) => Category::Internal,
        }
    }
}

impl BackupServer {
    pub fn new(
        address: &str,
        credentials: Credentials,
        tls: ClientTls,
    ) -> Result<Self, super::MysqlConfigError> {
        let (host, port) = split_address(address)?;
        let target = Target::new(
            address,
            &host,
            port,
            &credentials,
            &tls,
            Duration::from_secs(5),
        );
        Ok(Self {
            target,
            host,
            port,
            credentials,
            tls,
        })
    }

    pub fn address(&self) -> &str {
        &self.target.address
    }

    async fn session(&self, operation: &'static str) -> Result<Session, DbError> {
        Session::open(&self.target, operation, STATEMENT_BUDGET).await
    }

    /// The server's UUID and its binary logs, oldest first; every log but the last is
    /// closed.
    pub async fn inventory(&self) -> Result<(String, Vec<BinaryLog>), DbError> {
        let mut session = self.session("list binary logs").await?;
        let uuid: Option<String> = session.first("SELECT @@GLOBAL.server_uuid").await?;
        let rows = session.rows("SHOW BINARY LOGS").await?;
        session.close().await;
        let logs = rows
            .iter()
            .filter_map(|row: &Row| {
                Some(BinaryLog {
                    name: row.get_opt::<String, _>(0)?.ok()?,
                    size: row.get_opt::<u64, _>(1)?.ok()?,
                })
            })
            .collect();
        Ok((uuid.unwrap_or_default(), logs))
    }

    /// Closes the current binary log and opens a new one, so everything committed so far
    /// is in a closed log the archiver can take.
    pub async fn rotate(&self) -> Result<(), DbError> {
        let mut session = self.session("flush binary logs").await?;
        session.exec("FLUSH BINARY LOGS").await?;
        session.close().await;
        Ok(())
    }

    /// The `Previous_gtids` of log `name`: every GTID written before it.
    pub async fn previous_gtids(&self, name: &str) -> Result<GtidSet, BinlogError> {
        let mut session = self.session("read previous_gtids").await?;
        let sql = format!(
            "SHOW BINLOG EVENTS IN {} LIMIT 4",
            super::sql_text::string_literal(name)
        );
        let rows = session.rows(&sql).await?;
        session.close().await;
        for row in &rows {
            let kind: Option<String> = row.get_opt(2).and_then(Result::ok);
            if kind.as_deref() == Some("Previous_gtids") {
                let info: String = row.get_opt(5).and_then(Result::ok).unwrap_or_default();
                return GtidSet::parse(info.trim()).map_err(|e| {
                    BinlogError::Unexpected(format!("{name}: Previous_gtids {info:?}: {e}"))
                });
            }
        }
        Err(BinlogError::Unexpected(format!(
            "{name}: no Previous_gtids event among its first events"
        )))
    }

    /// `CLONE LOCAL DATA DIRECTORY`: a consistent physical copy of the server, written by
    /// the server itself into `dir` (which must not exist, on a filesystem the server
    /// writes and this process reads: the same host or a shared volume).
    pub async fn clone_local(
        &self,
        dir: &Path,
        budget: Duration,
    ) -> Result<CloneSnapshot, BinlogError> {
        let text = dir
            .to_str()
            .ok_or_else(|| BinlogError::Unexpected(format!("{}: not UTF-8", dir.display())))?;
        let mut session = Session::open(&self.target, "clone local", budget).await?;
        session.ensure_backslash_escapes().await?;
        // A local clone records no consistent GTID position (performance_schema's
        // clone_status leaves it empty), so the set is read just before: every transaction
        // in it is in the copy, which may hold a few more. The copy itself knows its exact
        // set (mysql.gtid_executed), and a replay from this lower bound skips the extra
        // ones by GTID.
        let row: Option<(String, String)> = session
            .first("SELECT @@GLOBAL.gtid_executed, @@GLOBAL.version")
            .await?;
        session
            .exec(&format!(
                "CLONE LOCAL DATA DIRECTORY = {}",
                super::sql_text::string_literal(text)
            ))
            .await?;
        session.close().await;
        let (gtids, version) = row.unwrap_or_default();
        let gtid_executed = GtidSet::parse(&gtids.replace(['\n', ' '], ""))
            .map_err(|e| BinlogError::Unexpected(format!("gtid_executed {gtids:?}: {e}")))?;
        Ok(CloneSnapshot {
            gtid_executed,
            server_version: version,
        })
    }

    /// Runs `sql` (a read-only check) within `limit`, bounded twice: the server's
    /// `max_execution_time` stops a SELECT at the limit, and the client gives up shortly
    /// after it and kills the statement (`KILL QUERY`) for anything else. A statement that
    /// took the whole limit (an interrupted `SLEEP` may answer without an error) is a timeout.
    pub async fn sanity_query(
        &self,
        sql: &str,
        limit: Duration,
    ) -> Result<QueryAnswer, QueryError> {
        let mut session = self.session("sanity query").await?;
        let id: Option<u64> = session.first("SELECT CONNECTION_ID()").await?;
        let millis = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        session
            .exec(&format!("SET SESSION max_execution_time = {millis}"))
            .await?;
        session.rebudget(limit + KILL_GRACE);
        let started = std::time::Instant::now();
        let outcome = session.first_row_counted(sql).await;
        let took = started.elapsed();
        match outcome {
            Ok((row, count)) => {
                session.close().await;
                if took >= limit {
                    return Err(QueryError::TimedOut { limit, took });
                }
                Ok(QueryAnswer {
                    first_row: row.as_ref().map(row_text),
                    rows: count,
                    took,
                })
            }
            Err(e @ DbError::Timeout { .. }) => {
                drop(session);
                if let Some(id) = id {
                    self.kill_query(id).await;
                }
                tracing::warn!(error = %e, "sanity query timed out");
                Err(QueryError::TimedOut { limit, took })
            }
            Err(e) if super::session::server_code(&e) == Some(ER_QUERY_TIMEOUT) => {
                Err(QueryError::TimedOut { limit, took })
            }
            Err(e) => Err(QueryError::Db(e)),
        }
    }

    /// Stops connection `id`'s statement; best effort (the server may be the problem).
    async fn kill_query(&self, id: u64) {
        match self.session("kill the sanity query").await {
            Ok(mut session) => {
                if let Err(e) = session.exec(&format!("KILL QUERY {id}")).await {
                    tracing::warn!(error = %e, id, "cannot kill the sanity query");
                }
                session.close().await;
            }
            Err(e) => tracing::warn!(error = %e, id, "cannot kill the sanity query"),
        }
    }

    /// Empties the server for an in-place restore: replication stopped and forgotten,
    /// then every user schema dropped, without binary logging (the drop must not reach
    /// replicas as transactions of its own; they are recloned afterwards). Answers the
    /// schemas dropped.
    ///
    /// `mysql`, `sys`, `performance_schema` and `information_schema` stay: they hold the
    /// server's accounts and its own state, and a logical dump never contains them.
    pub async fn clear_user_schemas(&self, budget: Duration) -> Result<Vec<String>, DbError> {
        let mut session = Session::open(&self.target, "clear user schemas", budget).await?;
        session.exec("SET SESSION sql_log_bin = 0").await?;
        session.exec("STOP REPLICA").await?;
        session.exec("RESET REPLICA ALL").await?;
        let schemas = user_schemas(&mut session).await?;
        drop_all(&mut session, &schemas).await?;
        session.close().await;
        Ok(schemas)
    }

    /// Drops those of `schemas` the server has, binlogged, so its replicas drop them too
    /// (a per-schema restore into a live primary); returns the ones dropped. Replication
    /// and the rest of the server are left alone.
    pub async fn drop_schemas(
        &self,
        schemas: &[String],
        budget: Duration,
    ) -> Result<Vec<String>, DbError> {
        let mut session = Session::open(&self.target, "drop schemas", budget).await?;
        let present: Vec<String> = user_schemas(&mut session)
            .await?
            .into_iter()
            .filter(|s| schemas.contains(s))
            .collect();
        drop_all(&mut session, &present).await?;
        session.close().await;
        Ok(present)
    }

    /// The current `gtid_executed`.
    pub async fn gtid_executed(&self) -> Result<GtidSet, BinlogError> {
        let mut session = self.session("read gtid_executed").await?;
        let text: Option<String> = session.first("SELECT @@GLOBAL.gtid_executed").await?;
        session.close().await;
        let text = text.unwrap_or_default().replace('\n', "");
        GtidSet::parse(&text)
            .map_err(|e| BinlogError::Unexpected(format!("gtid_executed {text:?}: {e}")))
    }
}

/// The server's user schemas, by name.
async fn user_schemas(session: &mut Session) -> Result<Vec<String>, DbError> {
    let rows = session
        .rows(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN \
             ('mysql', 'sys', 'performance_schema', 'information_schema') ORDER BY SCHEMA_NAME",
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|row: &Row| row.get_opt::<String, _>(0)?.ok())
        .collect())
}

async fn drop_all(session: &mut Session, schemas: &[String]) -> Result<(), DbError> {
    for schema in schemas {
        session
            .exec(&format!(
                "DROP DATABASE {}",
                crate::backup::logical::sql::quote_ident(schema)
            ))
            .await?;
    }
    Ok(())
}

/// MySQL's client programs.
#[derive(Debug, Clone)]
pub struct MysqlTools {
    pub mysqlbinlog: PathBuf,
    pub mysql: PathBuf,
}

impl MysqlTools {
    /// Copies closed log `name` from `server`, byte for byte, into `dir`; its path.
    pub async fn fetch(
        &self,
        server: &BackupServer,
        name: &str,
        dir: &Path,
    ) -> Result<PathBuf, BinlogError> {
        let login = LoginFile::write(dir, server)?;
        let mut command = Command::new(&self.mysqlbinlog);
        command
            .arg(login.flag())
            .args(server.connection_flags())
            .args(["--read-from-remote-server", "--raw"])
            .arg(format!("--result-file={}/", dir.display()))
            .arg(name);
        run(&mut command, &self.mysqlbinlog, None).await?;
        Ok(dir.join(name))
    }

    /// Replays `files` into `server`: `mysqlbinlog [bounds] files | mysql`.
    pub async fn replay(
        &self,
        server: &BackupServer,
        files: &[PathBuf],
        include_gtids: Option<&GtidSet>,
        exclude_gtids: Option<&GtidSet>,
        stop_at: Option<Timestamp>,
        scratch: &Path,
    ) -> Result<(), BinlogError> {
        if files.is_empty() {
            return Ok(());
        }
        let login = LoginFile::write(scratch, server)?;
        let mut decode = Command::new(&self.mysqlbinlog);
        // mysqlbinlog reads --stop-datetime in its own time zone: make that UTC.
        decode.env("TZ", "UTC");
        if let Some(gtids) = include_gtids {
            decode.arg(format!("--include-gtids={gtids}"));
        }
        if let Some(gtids) = exclude_gtids.filter(|g| !g.is_empty()) {
            decode.arg(format!("--exclude-gtids={gtids}"));
        }
        if let Some(at) = stop_at {
            decode.arg(format!("--stop-datetime={}", mysql_datetime(at)));
        }
        decode
            .args(files)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut decoder = decode.spawn().map_err(|e| BinlogError::Tool {
            tool: self.mysqlbinlog.display().to_string(),
            message: e.to_string(),
        })?;
        let stdout = decoder
            .stdout
            .take()
            .ok_or_else(|| BinlogError::Unexpected("mysqlbinlog has no stdout".to_owned()))?;
        let stdin: Stdio = stdout
            .try_into()
            .map_err(|e: std::io::Error| BinlogError::Tool {
                tool: "pipe".to_owned(),
                message: e.to_string(),
            })?;
        let mut apply = Command::new(&self.mysql);
        apply
            .arg(login.flag())
            .args(server.connection_flags())
            .arg("--binary-mode");
        let applied = run(&mut apply, &self.mysql, Some(stdin)).await;
        let decoder_exit = decoder
            .wait_with_output()
            .await
            .map_err(|e| BinlogError::Tool {
                tool: self.mysqlbinlog.display().to_string(),
                message: e.to_string(),
            })?;
        if !decoder_exit.status.success() {
            return Err(BinlogError::Tool {
                tool: "mysqlbinlog".to_owned(),
                message: String::from_utf8_lossy(&decoder_exit.stderr)
                    .trim()
                    .to_owned(),
            });
        }
        applied
    }
}

impl BackupServer {
    fn connection_flags(&self) -> Vec<String> {
        let mut flags = vec![
            format!("--host={}", self.host),
            format!("--port={}", self.port),
            "--protocol=TCP".to_owned(),
        ];
        match &self.tls {
            ClientTls::Off => flags.push("--ssl-mode=DISABLED".to_owned()),
            ClientTls::Required { ca: None } => flags.push("--ssl-mode=REQUIRED".to_owned()),
            ClientTls::Required { ca: Some(ca) } => {
                flags.push("--ssl-mode=VERIFY_CA".to_owned());
                flags.push(format!("--ssl-ca={}", ca.display()));
            }
        }
        flags
    }
}

/// A `[client]` option file holding the login, so the password is on no command line;
/// readable by its owner only, removed on drop.
struct LoginFile {
    path: PathBuf,
}

impl LoginFile {
    fn write(dir: &Path, server: &BackupServer) -> Result<Self, BinlogError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = dir.join(".bloodraven-login.cnf");
        let mut text = String::from("[client]\n");
        let _ = writeln!(text, "user=\"{}\"", option_escape(&server.credentials.user));
        let _ = writeln!(
            text,
            "password=\"{}\"",
            option_escape(&server.credentials.password)
        );
        let io = |source| BinlogError::Io {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        Ok(Self { path })
    }

    /// Must be the first argument of the client.
    fn flag(&self) -> String {
        format!("--defaults-extra-file={}", self.path.display())
    }
}

impl Drop for LoginFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Escapes a value for a double-quoted option-file value.
fn option_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, the form `--stop-datetime` takes.
fn mysql_datetime(at: Timestamp) -> String {
    at.rfc3339().trim_end_matches('Z').replacen('T', " ", 1)
}

async fn run(command: &mut Command, tool: &Path, stdin: Option<Stdio>) -> Result<(), BinlogError> {
    command
        .stdin(stdin.unwrap_or_else(Stdio::null))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = command.output().await.map_err(|e| BinlogError::Tool {
        tool: tool.display().to_string(),
        message: format!("cannot run it: {e}"),
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(BinlogError::Tool {
        tool: tool.file_name().map_or_else(
            || tool.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_datetime_is_utc_without_a_zone_suffix() {
        assert_eq!(
            mysql_datetime(Timestamp::from_millis(1_764_689_400_999)),
            "2025-12-02 15:30:00"
        );
    }

    #[test]
    fn option_values_are_escaped() {
        assert_eq!(option_escape(r#"a"b\c"#), r#"a\"b\\c"#);
    }
}
