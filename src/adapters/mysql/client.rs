//! [`MysqlSiteClient`]: the failover engine's view of one MySQL server.

use std::time::Duration;

use tracing::Instrument as _;

use super::config::{MysqlConfigError, MysqlSiteConfig, split_address};
use super::session::{Session, Target, server_code};
use super::{clone, drain, probe, sql_text};
use crate::failover::gtid::GtidSet;
use crate::failover::observe::{SessionSweep, SiteProbe};
use crate::ports::mysql::{DbError, DrainOutcome, MysqlSite, SourceEndpoint};

/// `ER_NO_SUCH_THREAD`: the session ended between listing and killing it.
const ER_NO_SUCH_THREAD: u16 = 1094;

/// Drives one MySQL server through `mysql_async`. Cheap to clone; holds no connection.
#[derive(Debug, Clone)]
pub struct MysqlSiteClient {
    config: MysqlSiteConfig,
    host: String,
    port: u16,
    target: Target,
}

impl MysqlSiteClient {
    pub fn new(config: MysqlSiteConfig) -> Result<Self, MysqlConfigError> {
        let (host, port) = split_address(&config.address)?;
        let target = Target::new(
            &config.address,
            &host,
            port,
            &config.operator,
            &config.client_tls,
            config.connect_timeout,
        );
        Ok(Self {
            config,
            host,
            port,
            target,
        })
    }

    pub fn config(&self) -> &MysqlSiteConfig {
        &self.config
    }

    /// This server as a replication source for others.
    pub fn endpoint(&self) -> SourceEndpoint {
        SourceEndpoint {
            host: self.host.clone(),
            port: self.port,
        }
    }

    pub(super) fn target(&self) -> &Target {
        &self.target
    }

    /// A span carrying the fields every operation logs with.
    pub(super) fn span(&self, operation: &'static str) -> tracing::Span {
        tracing::info_span!(
            "mysql",
            site = %self.config.site,
            address = %self.config.address,
            operation
        )
    }

    /// A session for a mutating operation, bounded by `op_timeout`.
    pub(super) async fn op_session(&self, operation: &'static str) -> Result<Session, DbError> {
        Session::open(&self.target, operation, self.config.op_timeout).await
    }

    pub(super) async fn replicate_in(
        &self,
        session: &mut Session,
        source: &SourceEndpoint,
        reset: bool,
    ) -> Result<(), DbError> {
        if !sql_text::is_plain_token(&source.host) {
            return Err(
                session.unsafe_error(format!("source host {:?} is not a host name", source.host))
            );
        }
        if source.host == self.host && source.port == self.port {
            return Err(session.unsafe_error("a server cannot replicate from itself"));
        }
        session.ensure_backslash_escapes().await?;
        session.exec("SET GLOBAL super_read_only = ON").await?;
        session.exec("STOP REPLICA").await?;
        if reset {
            session.exec("RESET REPLICA ALL").await?;
        }
        let replication = &self.config.replication;
        let change = sql_text::change_source(
            &source.host,
            source.port,
            &replication.user,
            &replication.password,
            self.config.replication_tls,
        );
        session.exec(&change).await?;
        session.exec("START REPLICA").await
    }

    /// Creates or updates the per-role users; see [`super::users`].
    pub async fn create_role_users(&self, users: &super::RoleUsers) -> Result<(), DbError> {
        super::users::create_role_users(self, users)
            .instrument(self.span("create_role_users"))
            .await
    }
}

impl MysqlSite for MysqlSiteClient {
    fn address(&self) -> &str {
        &self.config.address
    }

    async fn probe(&self) -> Result<SiteProbe, DbError> {
        async {
            let mut session =
                Session::open(&self.target, "probe", self.config.probe_timeout).await?;
            let probe = probe::read_probe(&mut session).await?;
            session.close().await;
            Ok(probe)
        }
        .instrument(self.span("probe"))
        .await
    }

    async fn fence(&self) -> Result<(), DbError> {
        async {
            let mut session = self.op_session("fence").await?;
            session.exec("SET GLOBAL super_read_only = ON").await?;
            session.close().await;
            tracing::info!("fenced: super_read_only=ON");
            Ok(())
        }
        .instrument(self.span("fence"))
        .await
    }

    async fn kill_app_connections(&self, opened_by: Option<u64>) -> Result<SessionSweep, DbError> {
        async {
            let mut session = self.op_session("kill_app_connections").await?;
            let rows = session.rows("SHOW FULL PROCESSLIST").await?;
            let own: Option<u64> = session.first("SELECT CONNECTION_ID()").await?;
            let mut sweep = SessionSweep::default();
            for row in &rows {
                let id = probe::column::<u64>(row, "Id");
                let user = probe::column::<String>(row, "User").unwrap_or_default();
                let command = probe::column::<String>(row, "Command").unwrap_or_default();
                let Some(id) = id else { continue };
                if Some(id) == own || !is_app_session(&user, &command) {
                    continue;
                }
                match session.exec(&format!("KILL {id}")).await {
                    Ok(()) => {
                        sweep.killed += 1;
                        sweep.newest_id = sweep.newest_id.max(Some(id));
                        if opened_by.is_some_and(|watermark| id <= watermark) {
                            sweep.older += 1;
                        }
                    }
                    Err(e) if server_code(&e) == Some(ER_NO_SUCH_THREAD) => {}
                    Err(e) => return Err(e),
                }
            }
            session.close().await;
            tracing::info!(
                killed = sweep.killed,
                older = sweep.older,
                "killed application sessions"
            );
            Ok(sweep)
        }
        .instrument(self.span("kill_app_connections"))
        .await
    }

    async fn drain_relay_log(&self, budget: Duration) -> Result<DrainOutcome, DbError> {
        drain::drain_relay_log(self, budget)
            .instrument(self.span("drain_relay_log"))
            .await
    }

    async fn promote(&self) -> Result<GtidSet, DbError> {
        async {
            let mut session = self.op_session("promote").await?;
            session.exec("STOP REPLICA").await?;
            session.exec("RESET REPLICA ALL").await?;
            let promotion = probe::gtid_executed(&mut session).await?;
            session.exec("SET GLOBAL super_read_only = OFF").await?;
            session.exec("SET GLOBAL read_only = OFF").await?;
            session.close().await;
            // Confirm on a fresh connection: only a server that says so to a new session is
            // known to be writable.
            let mut confirm = self.op_session("promote").await?;
            let flags: Option<(u8, u8)> = confirm
                .first("SELECT @@GLOBAL.read_only, @@GLOBAL.super_read_only")
                .await?;
            confirm.close().await;
            if flags != Some((0, 0)) {
                return Err(DbError::Query {
                    address: self.config.address.clone(),
                    operation: "promote",
                    message: format!("still read-only after promotion: {flags:?}"),
                });
            }
            tracing::info!(gtid_executed = %promotion, "promoted: writable");
            Ok(promotion)
        }
        .instrument(self.span("promote"))
        .await
    }

    async fn unfence(&self) -> Result<(), DbError> {
        async {
            let mut session = self.op_session("unfence").await?;
            session.exec("SET GLOBAL super_read_only = OFF").await?;
            session.exec("SET GLOBAL read_only = OFF").await?;
            session.close().await;
            tracing::info!("unfenced: writable");
            Ok(())
        }
        .instrument(self.span("unfence"))
        .await
    }

    async fn replicate_from(&self, source: &SourceEndpoint, reset: bool) -> Result<(), DbError> {
        async {
            let mut session = self.op_session("replicate_from").await?;
            self.replicate_in(&mut session, source, reset).await?;
            session.close().await;
            tracing::info!(source_host = %source.host, source_port = source.port, reset, "replicating");
            Ok(())
        }
        .instrument(self.span("replicate_from"))
        .await
    }

    async fn wait_for_gtid(&self, set: &GtidSet, timeout: Duration) -> Result<bool, DbError> {
        async {
            // The wait itself may take `timeout`; the connection and the round trip get
            // op_timeout on top.
            let budget = timeout.saturating_add(self.config.op_timeout);
            let mut session = Session::open(&self.target, "wait_for_gtid", budget).await?;
            let result: Option<Option<i64>> = session
                .exec_first(
                    "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)",
                    vec![set.to_string().into(), timeout.as_secs_f64().into()],
                )
                .await?;
            session.close().await;
            match result.flatten() {
                Some(0) => Ok(true),
                Some(1) => Ok(false),
                other => Err(DbError::Query {
                    address: self.config.address.clone(),
                    operation: "wait_for_gtid",
                    message: format!("WAIT_FOR_EXECUTED_GTID_SET returned {other:?}"),
                }),
            }
        }
        .instrument(self.span("wait_for_gtid"))
        .await
    }

    async fn clone_from(&self, donor: &SourceEndpoint) -> Result<(), DbError> {
        clone::clone_from(self, donor)
            .instrument(self.span("clone_from"))
            .await
    }
}

/// Whether a processlist entry is an application session. Replication (the applier runs as
/// `system user`, a replica's dump thread as `Binlog Dump [GTID]`), the event scheduler and
/// other daemons are never killed.
fn is_app_session(user: &str, command: &str) -> bool {
    !matches!(user, "system user" | "event_scheduler")
        && !matches!(command, "Binlog Dump" | "Binlog Dump GTID" | "Daemon")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_and_daemon_threads_are_not_app_sessions() {
        assert!(!is_app_session("system user", "Connect"));
        assert!(!is_app_session("system user", "Query"));
        assert!(!is_app_session("repl", "Binlog Dump GTID"));
        assert!(!is_app_session("repl", "Binlog Dump"));
        assert!(!is_app_session("event_scheduler", "Daemon"));
        assert!(!is_app_session("root", "Daemon"));
        assert!(is_app_session("app", "Sleep"));
        assert!(is_app_session("app", "Query"));
    }
}
