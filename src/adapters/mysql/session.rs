//! One connection used by one operation, with one deadline for all of it.
//!
//! Every operation opens its own connection: a connection whose query timed out may still
//! have a statement in flight, so it is discarded, never reused. A discarded connection is
//! closed in the background with a short bound, so a hung server cannot pile up tasks.

use std::io;
use std::time::Duration;

use mysql_async::prelude::{FromRow, Queryable};
use mysql_async::{Conn, IoError, Opts, OptsBuilder, Row, SslOpts};
use tokio::time::{Instant, timeout_at};

use super::config::{ClientTls, Credentials};
use crate::ports::mysql::DbError;

/// How long a discarded connection may take to say goodbye.
const DISCARD_BOUND: Duration = Duration::from_millis(500);

/// Runs one driver call on the session's connection within the session's deadline.
macro_rules! bounded {
    ($session:expr, $conn:ident => $call:expr) => {{
        let session: &mut Session = $session;
        let deadline = session.deadline;
        let outcome = match session.conn.as_mut() {
            None => None,
            Some($conn) => Some(timeout_at(deadline, $call).await),
        };
        match outcome {
            None => {
                Err(session.query_error("connection already discarded after an earlier failure"))
            }
            Some(outcome) => session.settle(outcome),
        }
    }};
}

/// Where and as whom to connect; built once per client.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub address: String,
    pub opts: Opts,
    pub connect_timeout: Duration,
}

impl Target {
    pub fn new(
        address: &str,
        host: &str,
        port: u16,
        credentials: &Credentials,
        tls: &ClientTls,
        connect_timeout: Duration,
    ) -> Self {
        let mut builder = OptsBuilder::default()
            .ip_or_hostname(host)
            .tcp_port(port)
            .user(Some(credentials.user.clone()))
            .pass(Some(credentials.password.clone()))
            // Without this, mysql_async reconnects over the server's Unix socket when it
            // finds one, bypassing the address (and the fault) we are probing.
            .prefer_socket(false)
            .stmt_cache_size(0);
        if let ClientTls::Required { ca } = tls {
            let ssl = match ca {
                Some(path) => SslOpts::default().with_root_certs(vec![path.clone().into()]),
                None => SslOpts::default()
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true),
            };
            builder = builder.ssl_opts(ssl);
        }
        Self {
            address: address.to_owned(),
            opts: builder.into(),
            connect_timeout,
        }
    }
}

/// A connection plus the deadline of the operation it serves.
pub(super) struct Session {
    conn: Option<Conn>,
    address: String,
    operation: &'static str,
    budget: Duration,
    deadline: Instant,
}

impl Session {
    /// Connects within `min(connect_timeout, budget)`; the whole operation gets `budget`.
    pub async fn open(
        target: &Target,
        operation: &'static str,
        budget: Duration,
    ) -> Result<Self, DbError> {
        let start = Instant::now();
        let deadline = start + budget;
        let connect_deadline = start + target.connect_timeout.min(budget);
        let conn = match timeout_at(connect_deadline, Conn::new(target.opts.clone())).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(classify(&target.address, operation, &e)),
            Err(_) => {
                return Err(DbError::Timeout {
                    address: target.address.clone(),
                    operation,
                    after: connect_deadline - start,
                });
            }
        };
        Ok(Self {
            conn: Some(conn),
            address: target.address.clone(),
            operation,
            budget,
            deadline,
        })
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// An error of this operation that is not the server's fault.
    pub fn query_error(&self, message: impl Into<String>) -> DbError {
        DbError::Query {
            address: self.address.clone(),
            operation: self.operation,
            message: message.into(),
        }
    }

    pub fn unsafe_error(&self, reason: impl Into<String>) -> DbError {
        DbError::Unsafe {
            address: self.address.clone(),
            operation: self.operation,
            reason: reason.into(),
        }
    }

    fn timeout_error(&self) -> DbError {
        DbError::Timeout {
            address: self.address.clone(),
            operation: self.operation,
            after: self.budget,
        }
    }

    /// Settles the outcome of one bounded statement. A timeout or a broken connection
    /// discards the connection; a plain SQL error keeps it.
    fn settle<T>(
        &mut self,
        outcome: Result<mysql_async::Result<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, DbError> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if !matches!(e, mysql_async::Error::Server(_)) {
                    self.discard();
                }
                Err(classify(&self.address, self.operation, &e))
            }
            Err(_) => {
                self.discard();
                Err(self.timeout_error())
            }
        }
    }

    pub async fn exec(&mut self, sql: &str) -> Result<(), DbError> {
        bounded!(self, conn => conn.query_drop(sql))
    }

    pub async fn first<T: FromRow + Send + 'static>(
        &mut self,
        sql: &str,
    ) -> Result<Option<T>, DbError> {
        bounded!(self, conn => conn.query_first::<T, _>(sql))
    }

    pub async fn rows(&mut self, sql: &str) -> Result<Vec<Row>, DbError> {
        bounded!(self, conn => conn.query::<Row, _>(sql))
    }

    /// Runs `sql`, keeping only its first row (the rest are read and dropped, so a large
    /// result never sits in memory); answers that row and how many rows came.
    pub async fn first_row_counted(&mut self, sql: &str) -> Result<(Option<Row>, u64), DbError> {
        bounded!(self, conn => async move {
            let mut result = conn.query_iter(sql).await?;
            let mut first = None;
            let mut count = 0u64;
            while let Some(row) = result.next().await? {
                if first.is_none() {
                    first = Some(row);
                }
                count += 1;
            }
            result.drop_result().await?;
            Ok((first, count))
        })
    }

    /// Gives the rest of the operation a new budget, from now.
    pub fn rebudget(&mut self, budget: Duration) {
        self.budget = budget;
        self.deadline = Instant::now() + budget;
    }

    /// A prepared statement with parameters, first row.
    pub async fn exec_first<T: FromRow + Send + 'static>(
        &mut self,
        sql: &str,
        params: Vec<mysql_async::Value>,
    ) -> Result<Option<T>, DbError> {
        bounded!(self, conn => conn.exec_first::<T, _, _>(sql, params))
    }

    /// Makes backslash escapes in string literals mean what [`super::sql_text`] assumes.
    pub async fn ensure_backslash_escapes(&mut self) -> Result<(), DbError> {
        self.exec("SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')")
            .await
    }

    /// Closes the connection in the background, bounded, and forgets it.
    fn discard(&mut self) {
        // Outside a runtime (or while it shuts down) there is nobody to say goodbye; the
        // socket closes when the connection is dropped.
        if let (Some(conn), Ok(runtime)) = (self.conn.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(async move {
                // disconnect() marks the connection closed first, so dropping it here on
                // timeout does not spawn yet another cleanup.
                let _ = tokio::time::timeout(DISCARD_BOUND, conn.disconnect()).await;
            });
        }
    }

    /// Closes the connection politely (bounded); errors are irrelevant by now.
    pub async fn close(mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = tokio::time::timeout(DISCARD_BOUND, conn.disconnect()).await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.discard();
    }
}

/// The server's error code, when the server (not the network) failed the statement.
pub(super) fn server_code(error: &DbError) -> Option<u16> {
    match error {
        DbError::Query { message, .. } => message
            .strip_prefix("ERROR ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|code| code.parse().ok()),
        _ => None,
    }
}

/// Maps a driver error onto the port's error kinds. Refused (nothing listening, or the
/// connection reset by a dying server) is told apart from everything else because it
/// confirms a dead server faster than a timeout can.
pub(super) fn classify(
    address: &str,
    operation: &'static str,
    error: &mysql_async::Error,
) -> DbError {
    if let mysql_async::Error::Io(IoError::Io(io_error)) = error
        && matches!(
            io_error.kind(),
            io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
        )
    {
        return DbError::Refused {
            address: address.to_owned(),
        };
    }
    let message = match error {
        mysql_async::Error::Server(server) => {
            format!(
                "ERROR {} ({}): {}",
                server.code, server.state, server.message
            )
        }
        other => other.to_string(),
    };
    DbError::Query {
        address: address.to_owned(),
        operation,
        message,
    }
}
