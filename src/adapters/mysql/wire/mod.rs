//! A minimal MySQL client for the one path where the general driver's cost per value sets
//! the pace: streaming a logical dump's rows.
//!
//! `mysql_async` turns every field of every row into an owned `Value` inside a `Row`: one
//! allocation per field, plus its packet and row machinery, about a third of the dump's
//! client CPU (docs/performance.md). This connection reads packets into one reusable
//! buffer and hands out each text-protocol row as spans of that buffer, which the dump
//! encodes straight into its chunk; no value is ever built.
//!
//! It speaks only what the dump needs: the handshake (TLS through rustls with the same
//! settings as the driver, `caching_sha2_password` and `mysql_native_password`), `COM_QUERY`
//! with text results, and `COM_QUIT`. Everything else (the catalog, the load, the failover
//! engine) stays on `mysql_async`. The packet layouts come from `mysql_common`, the
//! driver's own protocol crate, where they are more than a few bytes.

mod conn;
mod frame;
mod handshake;
mod tls;

use std::io;
use std::time::Duration;

pub use conn::{Row, WireConn};
pub use frame::{FrameError, ServerError};

use super::config::{ClientTls, Credentials};

/// Where to connect and as whom.
#[derive(Debug, Clone)]
pub struct WireTarget<'a> {
    pub host: &'a str,
    pub port: u16,
    pub credentials: &'a Credentials,
    pub tls: &'a ClientTls,
}

/// A failed exchange. Only [`WireError::Server`] leaves the connection usable.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket failed or closed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The server refused the command (or the login, during the handshake).
    #[error("ERROR {}: {}", .0.code, .0.message)]
    Server(ServerError),
    /// The server sent something this client cannot follow.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The handshake cannot be completed as configured.
    #[error("handshake: {0}")]
    Handshake(String),
    /// TLS could not be set up or negotiated.
    #[error("TLS: {0}")]
    Tls(String),
    /// The socket neither delivered nor accepted a byte for this long.
    #[error("no progress within {0:?}")]
    Stalled(Duration),
}
