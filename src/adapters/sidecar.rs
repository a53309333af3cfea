//! [`SidecarStatus`] over HTTP: `GET <sidecar>/status` with the group's bearer token, read
//! down to what the decision core needs ([`SidecarReport`]).
//!
//! The report's age is the sidecar's own `now` minus its own `mysql.probedAt`, both on the
//! sidecar's clock, so clock skew between the controller and the site cannot make a stale
//! view look current. An answer without `now` (an older sidecar) or without a `mysql` view
//! (the sidecar cannot reach its MySQL either) is no second opinion.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::failover::{SidecarReport, Timestamp};
use crate::ports::sidecar::{SidecarCallError, SidecarStatus, StatusFuture};

/// Where the bearer token comes from, read on every call so a rotation needs no restart.
pub type TokenSource = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Bound on the answer's size: a `/status` is a few hundred bytes; anything far larger is
/// not a sidecar.
const MAX_BODY: usize = 64 * 1024;

/// One site's sidecar, reached over HTTP(S).
pub struct HttpSidecar {
    site: String,
    status_url: String,
    token: TokenSource,
    http: reqwest::Client,
}

impl HttpSidecar {
    /// `base` is the sidecar's URL without a path (`https://host:8443`); `http` carries the
    /// TLS trust and the per-call timeout.
    pub fn new(site: &str, base: &str, token: TokenSource, http: reqwest::Client) -> Self {
        Self {
            site: site.to_owned(),
            status_url: format!("{}/status", base.trim_end_matches('/')),
            token,
            http,
        }
    }

    /// A client for sidecars (and for the operator's endpoint, from a sidecar): `timeout`
    /// per call, the given CA (PEM) as the only roots when set, HTTP/1.1.
    pub fn client(timeout: Duration, ca_pem: Option<&[u8]>) -> Result<reqwest::Client, String> {
        // reqwest is built without a provider of its own and panics without a process
        // default: make it ring, this binary's one provider (a no-op when the CLI has).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .http1_only()
            .pool_max_idle_per_host(1);
        if let Some(pem) = ca_pem {
            let roots = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| e.to_string())?;
            // No roots would refuse every server: say so instead of failing each call.
            if roots.is_empty() {
                return Err("the CA bundle holds no certificate".to_owned());
            }
            builder = builder.tls_certs_only(roots);
        }
        builder.build().map_err(|e| e.to_string())
    }

    async fn fetch(&self) -> Result<Option<SidecarReport>, SidecarCallError> {
        let url = &self.status_url;
        let transport = |e: &dyn std::fmt::Display| SidecarCallError::Transport {
            url: url.clone(),
            message: e.to_string(),
        };
        let mut request = self.http.get(url);
        if let Some(token) = (self.token)() {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| transport(&e))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(SidecarCallError::Status {
                url: url.clone(),
                status,
            });
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(SidecarCallError::Body {
                url: url.clone(),
                message: "answer too large".to_owned(),
            });
        }
        let body = response.bytes().await.map_err(|e| transport(&e))?;
        parse(&self.site, &body).map_err(|message| SidecarCallError::Body {
            url: url.clone(),
            message,
        })
    }
}

impl SidecarStatus for HttpSidecar {
    fn status(&self) -> StatusFuture<'_> {
        Box::pin(self.fetch())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody {
    site: String,
    mysql: Option<MysqlBody>,
    now: Option<Timestamp>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MysqlBody {
    read_only: bool,
    super_read_only: bool,
    probed_at: Timestamp,
}

/// Reads a sidecar's `/status` body for `site`.
pub fn parse(site: &str, body: &[u8]) -> Result<Option<SidecarReport>, String> {
    if body.len() > MAX_BODY {
        return Err("answer too large".to_owned());
    }
    let status: StatusBody = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    // A sidecar of another site (a mixed-up Service) must not vouch for this one.
    if status.site != site {
        return Err(format!(
            "the sidecar reports for site {:?}, not {site:?}",
            status.site
        ));
    }
    let (Some(mysql), Some(now)) = (status.mysql, status.now) else {
        return Ok(None);
    };
    Ok(Some(SidecarReport {
        site: site.to_owned(),
        read_only: mysql.read_only,
        super_read_only: mysql.super_read_only,
        age: now.since(mysql.probed_at),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bodies_become_reports_or_nothing() {
        let body = br#"{"site":"iad","mysql":{"role":"primary","readOnly":false,"superReadOnly":false,"probedAt":1000},"now":3500,"fence":{}}"#;
        let report = parse("iad", body).expect("parses").expect("a report");
        assert!(!report.read_only && !report.super_read_only);
        assert_eq!(report.age, Duration::from_millis(2500));
        // No MySQL view, or no clock to age it by: no opinion.
        assert_eq!(
            parse("iad", br#"{"site":"iad","mysql":null,"now":5}"#),
            Ok(None)
        );
        assert_eq!(
            parse(
                "iad",
                br#"{"site":"iad","mysql":{"readOnly":true,"superReadOnly":true,"probedAt":1}}"#
            ),
            Ok(None)
        );
        // Another site's sidecar, or garbage: an error, never a report.
        assert!(parse("pdx", body).is_err());
        assert!(parse("iad", b"<html>").is_err());
        // A probe time after the answer time (cannot happen on one clock) ages to zero.
        let odd = br#"{"site":"iad","mysql":{"readOnly":true,"superReadOnly":true,"probedAt":9000},"now":10}"#;
        assert_eq!(
            parse("iad", odd).expect("parses").map(|r| r.age),
            Some(Duration::ZERO)
        );
    }
}
