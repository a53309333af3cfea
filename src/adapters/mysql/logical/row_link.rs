//! A dump worker's connection: the [`wire`](super::super::wire) client, which hands rows
//! over as spans of its read buffer, under the same rules as [`super::link::Link`]: every
//! statement bounded, and a connection that timed out or broke discarded, never reused.

use std::time::Duration;

use tokio::time::timeout;

use super::super::config::split_address;
use super::super::wire::{WireConn, WireError, WireTarget};
use super::link::{DISCARD_BOUND, discarded};
use super::{LogicalEndpoint, LogicalError};

pub(super) struct RowLink {
    conn: Option<WireConn>,
    address: String,
    timeout: Duration,
}

impl RowLink {
    pub async fn open(
        endpoint: &LogicalEndpoint,
        statement_timeout: Duration,
        context: &str,
    ) -> Result<Self, LogicalError> {
        let (host, port) =
            split_address(&endpoint.address).map_err(|e| LogicalError::Options(e.to_string()))?;
        let target = WireTarget {
            host: &host,
            port,
            credentials: &endpoint.credentials,
            tls: &endpoint.tls,
        };
        let connect_error = |message: String| LogicalError::Connect {
            address: endpoint.address.clone(),
            context: context.to_owned(),
            message,
        };
        let mut conn = match timeout(endpoint.connect_timeout, WireConn::connect(&target)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(WireError::Server(refused))) => {
                // Access denied and its kin keep their code (and so their category).
                return Err(LogicalError::Server {
                    address: endpoint.address.clone(),
                    context: context.to_owned(),
                    code: refused.code,
                    message: refused.message,
                });
            }
            Ok(Err(e)) => return Err(connect_error(e.to_string())),
            Err(_) => {
                return Err(connect_error(format!(
                    "no handshake within {:?}",
                    endpoint.connect_timeout
                )));
            }
        };
        // A streamed result fails when it stops moving for this long, not after it.
        conn.set_io_timeout(statement_timeout);
        Ok(Self {
            conn: Some(conn),
            address: endpoint.address.clone(),
            timeout: statement_timeout,
        })
    }

    pub async fn exec(&mut self, sql: &str, context: &str) -> Result<(), LogicalError> {
        let bound = self.timeout;
        let conn = self.conn(context)?;
        match timeout(bound, conn.exec(sql)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.fail(&e, context)),
            Err(_) => Err(self.timed_out(context)),
        }
    }

    /// The connection, for streaming a result (the caller bounds each step and reports
    /// failures through [`Self::fail`]).
    pub fn conn(&mut self, context: &str) -> Result<&mut WireConn, LogicalError> {
        self.conn
            .as_mut()
            .ok_or_else(|| discarded(&self.address, context))
    }

    /// Maps a wire error; anything but a plain SQL error discards the connection.
    pub fn fail(&mut self, error: &WireError, context: &str) -> LogicalError {
        match error {
            WireError::Server(server) => {
                return LogicalError::Server {
                    address: self.address.clone(),
                    context: context.to_owned(),
                    code: server.code,
                    message: server.message.clone(),
                };
            }
            WireError::Stalled(_) => return self.timed_out(context),
            _ => {}
        }
        // Dropping the socket ends the session server-side.
        self.conn = None;
        LogicalError::ConnectionLost {
            address: self.address.clone(),
            context: context.to_owned(),
            message: error.to_string(),
        }
    }

    /// A statement or row did not arrive in time: the connection is discarded.
    pub fn timed_out(&mut self, context: &str) -> LogicalError {
        self.conn = None;
        LogicalError::Timeout {
            address: self.address.clone(),
            context: context.to_owned(),
            after: self.timeout,
        }
    }

    /// Closes the connection politely (bounded).
    pub async fn close(mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = timeout(DISCARD_BOUND, conn.quit()).await;
        }
    }
}
