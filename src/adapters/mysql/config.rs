//! How to reach one MySQL server and with which deadlines.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Categorized, Category};
use crate::ports::mysql::SourceEndpoint;

/// A user name and password. `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// TLS for the operator's own connection to the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ClientTls {
    /// Plain TCP (`caching_sha2_password` then exchanges the password with the server's RSA key).
    #[default]
    Off,
    /// TLS, verifying the server certificate against `ca` (PEM). With `ca: None` the
    /// certificate is not verified: only for servers with self-generated certificates.
    Required { ca: Option<PathBuf> },
}

/// Everything a [`super::MysqlSiteClient`] needs. Credentials come from the caller.
#[derive(Debug, Clone)]
pub struct MysqlSiteConfig {
    /// Site name, for logs.
    pub site: String,
    /// `host:port` (`[v6]:port` for IPv6).
    pub address: String,
    /// The account bloodraven administers the server with.
    pub operator: Credentials,
    /// The account replicas and clone recipients use to reach this server's peers.
    pub replication: Credentials,
    /// Bound on establishing a connection (TCP plus handshake), inside each call's budget.
    pub connect_timeout: Duration,
    /// Bound on a whole probe, connection included. A hung server fails the probe with
    /// [`crate::ports::mysql::DbError::Timeout`] after this long.
    pub probe_timeout: Duration,
    /// Bound on each mutating operation (fence, promote, repoint, …), connection included.
    pub op_timeout: Duration,
    /// Bound on CLONE INSTANCE plus the restart that follows it.
    pub clone_timeout: Duration,
    /// `SOURCE_SSL=1` for replication and `REQUIRE SSL` for clone. Without it, replicas use
    /// `GET_SOURCE_PUBLIC_KEY=1` to authenticate with `caching_sha2_password`.
    pub replication_tls: bool,
    pub client_tls: ClientTls,
}

impl MysqlSiteConfig {
    /// A config with the default deadlines (connect 1 s, probe 1 s, operations 10 s, clone
    /// 10 min) and replication over TLS.
    pub fn new(
        site: impl Into<String>,
        address: impl Into<String>,
        operator: Credentials,
        replication: Credentials,
    ) -> Self {
        Self {
            site: site.into(),
            address: address.into(),
            operator,
            replication,
            connect_timeout: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(1),
            op_timeout: Duration::from_secs(10),
            clone_timeout: Duration::from_secs(600),
            replication_tls: true,
            client_tls: ClientTls::Off,
        }
    }
}

/// A config that cannot describe a server.
#[derive(Debug, thiserror::Error)]
pub enum MysqlConfigError {
    #[error("address {address:?} is not host:port")]
    BadAddress { address: String },
}

impl Categorized for MysqlConfigError {
    fn category(&self) -> Category {
        Category::Config
    }
}

/// Splits `host:port` / `[v6]:port` (through [`SourceEndpoint::parse`]).
pub(super) fn split_address(address: &str) -> Result<(String, u16), MysqlConfigError> {
    let endpoint = SourceEndpoint::parse(address)
        .map_err(|e| MysqlConfigError::BadAddress { address: e.address })?;
    Ok((endpoint.host, endpoint.port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_password() {
        let text = format!("{:?}", Credentials::new("op", "s3cret"));
        assert!(text.contains("op") && !text.contains("s3cret"), "{text}");
    }
}
