//! One connection of a dump or load, every statement bounded by a timeout.
//!
//! Like [`super::super::session`], a connection whose statement timed out or broke is
//! discarded (closed in the background, bounded) and never used again; unlike it, the bound
//! is per statement (and per streamed row), because a dump or load runs for as long as the
//! data takes, not within one deadline.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use mysql_async::prelude::{FromRow, Queryable};
use mysql_async::{Conn, Params};
use tokio::time::timeout;

use super::super::config::split_address;
use super::super::session::Target;
use super::{LogicalEndpoint, LogicalError};

/// How long a discarded connection may take to say goodbye.
pub(super) const DISCARD_BOUND: Duration = Duration::from_millis(500);

/// Infile data goes to the driver in pieces of this size, well below the protocol's
/// 16 MiB packet limit.
const INFILE_PIECE: usize = 1 << 20;

pub(super) struct Link {
    conn: Option<Conn>,
    address: String,
    timeout: Duration,
}

impl Link {
    pub async fn open(
        endpoint: &LogicalEndpoint,
        statement_timeout: Duration,
        context: &str,
    ) -> Result<Self, LogicalError> {
        let (host, port) =
            split_address(&endpoint.address).map_err(|e| LogicalError::Options(e.to_string()))?;
        let target = Target::new(
            &endpoint.address,
            &host,
            port,
            &endpoint.credentials,
            &endpoint.tls,
            endpoint.connect_timeout,
        );
        let conn = match timeout(endpoint.connect_timeout, Conn::new(target.opts)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                return Err(LogicalError::Connect {
                    address: endpoint.address.clone(),
                    context: context.to_owned(),
                    message: e.to_string(),
                });
            }
            Err(_) => {
                return Err(LogicalError::Connect {
                    address: endpoint.address.clone(),
                    context: context.to_owned(),
                    message: format!("no handshake within {:?}", endpoint.connect_timeout),
                });
            }
        };
        Ok(Self {
            conn: Some(conn),
            address: endpoint.address.clone(),
            timeout: statement_timeout,
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn statement_timeout(&self) -> Duration {
        self.timeout
    }

    pub async fn exec(&mut self, sql: &str, context: &str) -> Result<(), LogicalError> {
        let bound = self.timeout;
        let conn = self.conn(context)?;
        let outcome = timeout(bound, conn.query_drop(sql)).await;
        self.settle(outcome, context)
    }

    pub async fn first<T: FromRow + Send + 'static>(
        &mut self,
        sql: &str,
        context: &str,
    ) -> Result<Option<T>, LogicalError> {
        let bound = self.timeout;
        let conn = self.conn(context)?;
        let outcome = timeout(bound, conn.query_first::<T, _>(sql)).await;
        self.settle(outcome, context)
    }

    /// A query without parameters, all rows (small results only: catalog reads).
    pub async fn all<T: FromRow + Send + 'static>(
        &mut self,
        sql: &str,
        context: &str,
    ) -> Result<Vec<T>, LogicalError> {
        let bound = self.timeout;
        let conn = self.conn(context)?;
        let outcome = timeout(bound, conn.query::<T, _>(sql)).await;
        self.settle(outcome, context)
    }

    /// A prepared statement with parameters, all rows (catalog reads by schema name).
    pub async fn all_with<T: FromRow + Send + 'static>(
        &mut self,
        sql: &str,
        params: impl Into<Params> + Send,
        context: &str,
    ) -> Result<Vec<T>, LogicalError> {
        let bound = self.timeout;
        let conn = self.conn(context)?;
        let outcome = timeout(bound, conn.exec::<T, _, _>(sql, params)).await;
        self.settle(outcome, context)
    }

    /// Runs a `LOAD DATA LOCAL INFILE` statement fed with `data`; returns the rows it
    /// affected and its warning count.
    pub async fn load_infile(
        &mut self,
        sql: &str,
        data: Vec<u8>,
        context: &str,
    ) -> Result<(u64, u16), LogicalError> {
        let bound = self.timeout;
        let conn = self.conn(context)?;
        let data = Bytes::from(data);
        conn.set_infile_handler(async move {
            let pieces: Vec<std::io::Result<Bytes>> = (0..data.len())
                .step_by(INFILE_PIECE)
                .map(|start| Ok(data.slice(start..(start + INFILE_PIECE).min(data.len()))))
                .collect();
            Ok(futures_util::stream::iter(pieces).boxed())
        });
        let outcome = timeout(bound, async {
            conn.query_drop(sql).await?;
            Ok((conn.affected_rows(), conn.get_warnings()))
        })
        .await;
        self.settle(outcome, context)
    }

    /// The connection, for streaming a result (the caller bounds each step and reports
    /// failures through [`Self::fail`]).
    pub fn conn(&mut self, context: &str) -> Result<&mut Conn, LogicalError> {
        self.conn
            .as_mut()
            .ok_or_else(|| discarded(&self.address, context))
    }

    fn settle<T>(
        &mut self,
        outcome: Result<mysql_async::Result<T>, tokio::time::error::Elapsed>,
        context: &str,
    ) -> Result<T, LogicalError> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.fail(&e, context)),
            Err(_) => Err(self.timed_out(context)),
        }
    }

    /// Maps a driver error; anything but a plain SQL error discards the connection.
    pub fn fail(&mut self, error: &mysql_async::Error, context: &str) -> LogicalError {
        if let mysql_async::Error::Server(server) = error {
            return LogicalError::Server {
                address: self.address.clone(),
                context: context.to_owned(),
                code: server.code,
                message: server.message.clone(),
            };
        }
        self.discard();
        LogicalError::ConnectionLost {
            address: self.address.clone(),
            context: context.to_owned(),
            message: error.to_string(),
        }
    }

    /// A statement or row did not arrive in time: the connection is discarded.
    pub fn timed_out(&mut self, context: &str) -> LogicalError {
        self.discard();
        LogicalError::Timeout {
            address: self.address.clone(),
            context: context.to_owned(),
            after: self.timeout,
        }
    }

    fn discard(&mut self) {
        if let (Some(conn), Ok(runtime)) = (self.conn.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(async move {
                let _ = timeout(DISCARD_BOUND, conn.disconnect()).await;
            });
        }
    }

    /// Closes the connection politely (bounded).
    pub async fn close(mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = timeout(DISCARD_BOUND, conn.disconnect()).await;
        }
    }
}

/// Why a statement cannot run on a connection an earlier failure discarded.
pub(super) fn discarded(address: &str, context: &str) -> LogicalError {
    LogicalError::ConnectionLost {
        address: address.to_owned(),
        context: context.to_owned(),
        message: "connection already discarded after an earlier failure".to_owned(),
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.discard();
    }
}
