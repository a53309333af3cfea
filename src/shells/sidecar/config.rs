//! The sidecar's config file.
//!
//! ```yaml
//! site: iad
//! mysql:
//!   address: 127.0.0.1:3306
//!   credentials: {user: bloodraven, passwordFile: operator.password}   # or userEnv/passwordEnv
//! operator:
//!   url: "https://bloodraven.bloodraven-system.svc:8082/sidecar/v1/namespaces/db/groups/orders/active-site"
//!   caFile: /var/run/bloodraven/sidecar/operator-ca.crt   # the only CA trusted for it; re-read on change
//! peers:
//!   - {name: pdx, url: "https://mysql-orders-pdx-internal:8443"}
//! leaseTimeout: 20s         # operator and every peer silent this long: fence
//! peerCheckInterval: 5s     # how often the operator and the peers are polled
//! listen: 0.0.0.0:8443
//! auth:
//!   tokenFile: /var/run/bloodraven/sidecar-token   # required: the bearer token (a Secret)
//! tls:                      # optional (without it: plain HTTP, for loopback only)
//!   certDir: /etc/bloodraven/tls     # tls.crt and tls.key, reloaded on change
//!   clientCaFile: ca.crt    # set: every endpoint but /health also needs a client certificate
//!   peerCaFile: ca.crt      # verifies https peers and operator (default: clientCaFile)
//! ```
//!
//! Only `site`, `mysql`, `operator` and `auth` are required. Relative paths are relative to
//! the file's directory. The same checks as the CRD's CEL rules apply to the timings:
//! `peerCheckInterval` ≥ 1 s, `leaseTimeout` ≥ 3 s and ≥ 3 × `peerCheckInterval` (so a lease
//! spans at least three polls and one lost answer never fences).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::adapters::mysql::Credentials;
use crate::shells::standalone::config::{Builder, ConfigError, RawCredential, read_document};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    site: String,
    mysql: RawMysql,
    operator: RawOperator,
    #[serde(default)]
    peers: Vec<RawPeer>,
    lease_timeout: Option<String>,
    peer_check_interval: Option<String>,
    listen: Option<String>,
    auth: RawAuth,
    tls: Option<RawTls>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawMysql {
    address: String,
    credentials: RawCredential,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawOperator {
    url: String,
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPeer {
    name: String,
    url: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawAuth {
    token_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawTls {
    cert_dir: PathBuf,
    client_ca_file: Option<PathBuf>,
    peer_ca_file: Option<PathBuf>,
}

/// One peer sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub name: String,
    /// Base URL (`https://host:port`), without a path.
    pub url: String,
}

/// TLS for the sidecar's listener and its calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert_dir: PathBuf,
    pub client_ca_file: Option<PathBuf>,
    pub peer_ca_file: Option<PathBuf>,
}

/// A validated sidecar configuration.
#[derive(Debug, Clone)]
pub struct SidecarConfig {
    pub site: String,
    pub mysql_address: String,
    pub mysql_credentials: Credentials,
    /// The operator's (or standalone's) active-site endpoint, the full URL.
    pub operator_url: String,
    /// The CA bundle that alone is trusted for an `https` operator URL (the operator
    /// publishes its serving CA into the group's token Secret); `None`: the peers' CA.
    pub operator_ca_file: Option<PathBuf>,
    pub peers: Vec<PeerConfig>,
    pub lease_timeout: Duration,
    pub peer_check_interval: Duration,
    pub listen: SocketAddr,
    pub token_file: PathBuf,
    pub tls: Option<TlsConfig>,
}

pub const DEFAULT_LEASE_TIMEOUT: Duration = Duration::from_secs(20);
pub const DEFAULT_PEER_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<SidecarConfig, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        location: file.clone(),
        message: format!("cannot read: {e}"),
    })?;
    parse(
        &file,
        &text,
        path.parent().unwrap_or_else(|| Path::new(".")),
    )
}

fn is_http_url(url: &str) -> bool {
    url.strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}

/// Parses config `text` (named `file` in errors); relative paths resolve against `base`.
pub fn parse(file: &str, text: &str, base: &Path) -> Result<SidecarConfig, ConfigError> {
    let (raw, document) = read_document::<RawConfig>(file, text)?;
    let b = Builder {
        file,
        document: &document,
        base,
    };
    if raw.site.is_empty() {
        return Err(b.error("/site", "must name this sidecar's site"));
    }
    crate::failover::address::HostPort::parse(&raw.mysql.address)
        .map_err(|e| b.error("/mysql/address", e.to_string()))?;
    if !is_http_url(&raw.operator.url) {
        return Err(b.error("/operator/url", "expected an http:// or https:// URL"));
    }
    if raw.operator.ca_file.is_some() && !raw.operator.url.starts_with("https://") {
        return Err(b.error(
            "/operator/caFile",
            "a CA is only used for an https:// operator URL",
        ));
    }
    let mut peers = Vec::with_capacity(raw.peers.len());
    for (i, p) in raw.peers.iter().enumerate() {
        if p.name.is_empty() || p.name == raw.site {
            return Err(b.error(
                &format!("/peers/{i}/name"),
                "must name another site than this one",
            ));
        }
        if !is_http_url(&p.url) {
            return Err(b.error(
                &format!("/peers/{i}/url"),
                "expected an http:// or https:// base URL",
            ));
        }
        peers.push(PeerConfig {
            name: p.name.clone(),
            url: p.url.trim_end_matches('/').to_owned(),
        });
    }
    let lease_timeout = b
        .duration("/leaseTimeout", raw.lease_timeout.as_ref())?
        .unwrap_or(DEFAULT_LEASE_TIMEOUT);
    let peer_check_interval = b
        .duration("/peerCheckInterval", raw.peer_check_interval.as_ref())?
        .unwrap_or(DEFAULT_PEER_CHECK_INTERVAL);
    if peer_check_interval < Duration::from_secs(1) {
        return Err(b.error("/peerCheckInterval", "must be at least 1s"));
    }
    if lease_timeout < Duration::from_secs(3) || lease_timeout < peer_check_interval * 3 {
        return Err(b.error(
            "/leaseTimeout",
            "must be at least 3s and at least 3 × peerCheckInterval",
        ));
    }
    let listen_text = raw.listen.as_deref().unwrap_or("127.0.0.1:8443");
    let listen: SocketAddr = listen_text
        .parse()
        .map_err(|e| b.error("/listen", format!("{listen_text:?} is not ip:port: {e}")))?;
    let token_file = b.path(&raw.auth.token_file);
    let tls = raw.tls.as_ref().map(|t| TlsConfig {
        cert_dir: b.path(&t.cert_dir),
        client_ca_file: t.client_ca_file.as_deref().map(|p| b.path(p)),
        peer_ca_file: t
            .peer_ca_file
            .as_deref()
            .or(t.client_ca_file.as_deref())
            .map(|p| b.path(p)),
    });
    Ok(SidecarConfig {
        mysql_credentials: b.credential("/mysql/credentials", &raw.mysql.credentials)?,
        site: raw.site,
        mysql_address: raw.mysql.address,
        operator_url: raw.operator.url,
        operator_ca_file: raw.operator.ca_file.as_deref().map(|p| b.path(p)),
        peers,
        lease_timeout,
        peer_check_interval,
        listen,
        token_file,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
site: iad
mysql: {address: \"127.0.0.1:3306\", credentials: {user: root}}
operator: {url: \"http://127.0.0.1:8080/active-site\"}
peers: [{name: pdx, url: \"https://10.0.0.2:8443/\"}]
auth: {tokenFile: token}
tls: {certDir: tls, clientCaFile: ca.crt}
";

    fn error_of(text: &str) -> String {
        match parse("sidecar.yaml", text, Path::new("/cfg")) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_and_defaults() {
        let c = parse("sidecar.yaml", GOOD, Path::new("/cfg")).expect("parses");
        assert_eq!(c.site, "iad");
        assert_eq!(c.lease_timeout, Duration::from_secs(20));
        assert_eq!(c.peer_check_interval, Duration::from_secs(5));
        assert_eq!(c.peers[0].url, "https://10.0.0.2:8443");
        assert_eq!(c.token_file, Path::new("/cfg/token"));
        let tls = c.tls.expect("tls");
        assert_eq!(tls.peer_ca_file.as_deref(), Some(Path::new("/cfg/ca.crt")));
        assert_eq!(c.listen.port(), 8443);
        assert_eq!(c.operator_ca_file, None);
        let pinned = GOOD.replace(
            "url: \"http://127.0.0.1:8080/active-site\"",
            "url: \"https://op:8082/active-site\", caFile: op-ca.crt",
        );
        let c = parse("sidecar.yaml", &pinned, Path::new("/cfg")).expect("parses");
        assert_eq!(
            c.operator_ca_file.as_deref(),
            Some(Path::new("/cfg/op-ca.crt"))
        );
    }

    #[test]
    fn bad_values_are_located() {
        let e = error_of(&format!("{GOOD}leaseTimeout: 2s\n"));
        assert!(e.contains("/leaseTimeout"), "{e}");
        let e = error_of(&format!("{GOOD}leaseTimeout: 10s\npeerCheckInterval: 5s\n"));
        assert!(e.contains("3 × peerCheckInterval"), "{e}");
        let e = error_of(&GOOD.replace("name: pdx", "name: iad"));
        assert!(e.contains("/peers/0/name"), "{e}");
        let e = error_of(&GOOD.replace("http://127.0.0.1:8080/active-site", "ftp://x"));
        assert!(e.contains("/operator/url"), "{e}");
        let e = error_of(&GOOD.replace(
            "url: \"http://127.0.0.1:8080/active-site\"",
            "url: \"http://127.0.0.1:8080/active-site\", caFile: ca.crt",
        ));
        assert!(e.contains("/operator/caFile"), "{e}");
        let e = error_of(&GOOD.replace("auth: {tokenFile: token}\n", ""));
        assert!(e.contains("auth"), "{e}");
    }
}
