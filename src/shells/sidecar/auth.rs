//! Who may talk to the sidecar: a bearer token from a mounted Secret on every endpoint but
//! `/health`, and with a client CA configured also a client certificate that CA signed,
//! except on `/status`: the operator reads it for its second opinion and holds no
//! certificate of the group's CA. It is still TLS then, so the token is never in clear,
//! and the operator verifies the sidecar's certificate against the group's CA, so no one
//! else can answer for the sidecar.
//!
//! The token is compared in constant time (both sides hashed, then compared without an
//! early exit), so response timing says nothing about how much of a guess was right. It is
//! re-read from its file on every monitor tick: a rotated Secret takes effect within one
//! `peerCheckInterval`, and an unreadable or empty file keeps the previous token rather
//! than opening the door.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::telemetry::sidecar::SidecarMetrics;

/// The bearer token, swapped atomically on reload.
#[derive(Debug, Clone)]
pub struct Token {
    path: PathBuf,
    current: Arc<ArcSwap<String>>,
}

impl Token {
    /// Reads the token; the sidecar does not start without a non-empty one.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = read(path)?;
        Ok(Self {
            path: path.to_owned(),
            current: Arc::new(ArcSwap::from_pointee(text)),
        })
    }

    /// Re-reads the file; keeps the current token when it cannot.
    pub fn reload(&self) {
        match read(&self.path) {
            Ok(text) if *self.current.load_full() != text => {
                self.current.store(Arc::new(text));
                tracing::info!(file = %self.path.display(), "bearer token reloaded");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "keeping the current bearer token"),
        }
    }

    pub fn current_text(&self) -> String {
        self.current.load_full().as_ref().clone()
    }

    /// Whether `offered` is the token, in time independent of where they differ.
    pub fn matches(&self, offered: &[u8]) -> bool {
        token_matches(self.current.load().as_bytes(), offered)
    }
}

/// Whether `offered` equals `want`, in time independent of where they differ (both are
/// hashed, then compared without an early exit). The operator's sidecar endpoint checks
/// the group's token with it too.
pub fn token_matches(want: &[u8], offered: &[u8]) -> bool {
    let want = Sha256::digest(want);
    let got = Sha256::digest(offered);
    want.iter()
        .zip(got.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

fn read(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(format!("the token file {} is empty", path.display()));
    }
    Ok(text)
}

/// Whether the connection a request came on presented a client certificate the configured
/// CA verified. Set per connection by the server; absent on plain HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCertificate(pub bool);

/// What the auth layer needs.
#[derive(Debug, Clone)]
pub struct AuthState {
    pub token: Token,
    /// A verified client certificate is required (a client CA is configured).
    pub require_client_cert: bool,
    pub metrics: Arc<SidecarMetrics>,
}

/// The one route anyone may call.
pub const OPEN_PATH: &str = "/health";
/// The route the token alone opens, with a client CA configured too: the sidecar's report,
/// which the operator asks for (see the module's comment). Matched exactly, as the router
/// matches it; any other spelling needs the certificate.
pub const TOKEN_ONLY_PATH: &str = "/status";

/// The credentials of an `Authorization: Bearer <token>` header, trimmed.
pub fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| value.get(7..))
        .flatten()
        .map(<[u8]>::trim_ascii)
}

/// Why a request is refused, if it is.
pub fn refusal(
    auth: &AuthState,
    path: &str,
    headers: &HeaderMap,
    cert: Option<ClientCertificate>,
) -> Option<&'static str> {
    if path == OPEN_PATH {
        return None;
    }
    if auth.require_client_cert && path != TOKEN_ONLY_PATH && cert != Some(ClientCertificate(true))
    {
        return Some("no_client_certificate");
    }
    match bearer(headers) {
        None => Some("no_token"),
        Some(offered) if !auth.token.matches(offered) => Some("bad_token"),
        Some(_) => None,
    }
}

/// The middleware: 401 with a `WWW-Authenticate` challenge, and the reason counted.
pub async fn require(State(auth): State<AuthState>, request: Request, next: Next) -> Response {
    let cert = request.extensions().get::<ClientCertificate>().copied();
    if let Some(reason) = refusal(&auth, request.uri().path(), request.headers(), cert) {
        auth.metrics.observe_auth_refused(reason);
        return (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"bloodraven-sidecar\"",
            )],
            "unauthorized\n",
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn auth(require_client_cert: bool) -> (AuthState, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret-token\n").expect("write");
        (
            AuthState {
                token: Token::load(&path).expect("token"),
                require_client_cert,
                metrics: Arc::new(SidecarMetrics::default()),
            },
            dir,
        )
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        h
    }

    #[test]
    fn health_is_open_and_the_rest_needs_the_token() {
        let (a, _dir) = auth(false);
        assert_eq!(refusal(&a, "/health", &HeaderMap::new(), None), None);
        assert_eq!(
            refusal(&a, "/status", &HeaderMap::new(), None),
            Some("no_token")
        );
        assert_eq!(
            refusal(&a, "/status", &headers("Bearer nope"), None),
            Some("bad_token")
        );
        assert_eq!(
            refusal(&a, "/status", &headers("Bearer s3cret-token"), None),
            None
        );
        assert_eq!(
            refusal(&a, "/status", &headers("bearer  s3cret-token "), None),
            None
        );
        assert_eq!(
            refusal(&a, "/status", &headers("Basic s3cret-token"), None),
            Some("no_token")
        );
        assert_eq!(
            refusal(&a, "/status", &headers("Bearer s3cret-tokenX"), None),
            Some("bad_token")
        );
    }

    #[test]
    fn with_a_client_ca_a_verified_certificate_is_also_required() {
        let (a, _dir) = auth(true);
        let good = headers("Bearer s3cret-token");
        assert_eq!(
            refusal(&a, "/peer/ping", &good, None),
            Some("no_client_certificate")
        );
        assert_eq!(
            refusal(&a, "/peer/ping", &good, Some(ClientCertificate(false))),
            Some("no_client_certificate")
        );
        assert_eq!(
            refusal(&a, "/peer/ping", &good, Some(ClientCertificate(true))),
            None
        );
        assert_eq!(refusal(&a, "/health", &HeaderMap::new(), None), None);
        for path in [
            "/peer/active-site",
            "/metrics",
            "//status",
            "/status/",
            "/STATUS",
        ] {
            assert_eq!(
                refusal(&a, path, &good, None),
                Some("no_client_certificate"),
                "{path}"
            );
        }
    }

    #[test]
    fn with_a_client_ca_the_status_report_opens_to_the_token_alone() {
        let (a, _dir) = auth(true);
        let good = headers("Bearer s3cret-token");
        assert_eq!(refusal(&a, "/status", &good, None), None);
        assert_eq!(
            refusal(&a, "/status", &good, Some(ClientCertificate(false))),
            None
        );
        assert_eq!(
            refusal(&a, "/status", &HeaderMap::new(), None),
            Some("no_token")
        );
        assert_eq!(
            refusal(&a, "/status", &headers("Bearer nope"), None),
            Some("bad_token")
        );
    }

    #[test]
    fn an_empty_token_file_keeps_the_old_token() {
        let (a, dir) = auth(false);
        std::fs::write(dir.path().join("token"), "\n").expect("write");
        a.token.reload();
        assert!(a.token.matches(b"s3cret-token"));
        std::fs::write(dir.path().join("token"), "rotated").expect("write");
        a.token.reload();
        assert!(a.token.matches(b"rotated"));
        assert!(!a.token.matches(b"s3cret-token"));
        let dir2 = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir2.path().join("t"), "  ").expect("write");
        assert!(Token::load(&dir2.path().join("t")).is_err());
    }
}
