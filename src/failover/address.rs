//! `host:port` addresses: the one parser behind every configured site address (the
//! standalone config, the operator's Service addresses, the MySQL adapter).

use std::fmt;

use crate::error::{Categorized, Category};

/// A `host:port` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

/// An address that is not `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{address:?} is not host:port")]
pub struct BadAddress {
    pub address: String,
}

impl Categorized for BadAddress {
    fn category(&self) -> Category {
        Category::Config
    }
}

impl HostPort {
    /// Parses `host:port` or `[v6]:port`: the one address parser behind every configured
    /// site address. The host must be non-empty and the port in 1..=65535.
    pub fn parse(address: &str) -> Result<Self, BadAddress> {
        let bad = || BadAddress {
            address: address.to_owned(),
        };
        let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_bracketed_v6_and_prints_them_back() {
        for (text, host, port) in [
            ("db.example:3306", "db.example", 3306),
            ("[::1]:3307", "::1", 3307),
            ("10.0.0.1:1", "10.0.0.1", 1),
        ] {
            let parsed = HostPort::parse(text).expect(text);
            assert_eq!((parsed.host.as_str(), parsed.port), (host, port));
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn refuses_missing_host_or_bad_port() {
        for bad in [
            "db", "db:", "db:x", ":3306", "db:0", "db:70000", "[]:3306", "db:-1",
        ] {
            assert!(HostPort::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
