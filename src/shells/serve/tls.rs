//! The serving certificate: resolved per handshake from an atomically swapped slot, and
//! reloaded when the files change.
//!
//! Kubernetes updates a mounted Secret by swapping a `..data` symlink, and cert-manager may
//! write the certificate and the key at slightly different moments. A content-hash poll
//! handles both: paths are re-opened each time (following the new symlink), and a pair that
//! does not parse or does not match is ignored until the files change again, while the old
//! certificate keeps serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::error::ServeError;
use super::metrics::ServeMetrics;

pub const CERT_FILE: &str = "tls.crt";
pub const KEY_FILE: &str = "tls.key";
/// The CA bundle beside the pair (cert-manager's Secrets and `certs generate` write it;
/// `--self-managed-certs` writes its current bundle): what the sidecars are given to trust.
pub const CA_FILE: &str = "ca.crt";

/// The current serving certificate, swapped without locking the handshake path.
pub struct CertStore {
    dir: PathBuf,
    current: ArcSwap<CertifiedKey>,
    /// Hash of the file contents last looked at (loaded or rejected), so a broken pair is
    /// reported once, not on every poll.
    seen: Mutex<[u8; 32]>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The outcome of one poll.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Reloaded,
    Rejected(String),
}

impl CertStore {
    /// Loads the pair from `dir`; the server does not start without a usable one.
    pub fn load(dir: &Path) -> Result<Self, ServeError> {
        let (hash, key) = read_pair(dir).map_err(|message| ServeError::Certificate {
            dir: dir.to_owned(),
            message,
        })?;
        Ok(Self {
            dir: dir.to_owned(),
            current: ArcSwap::from_pointee(key),
            seen: Mutex::new(hash),
        })
    }

    /// Re-reads the files and swaps in the new pair if they changed and are valid.
    pub fn poll(&self) -> Reload {
        // Mid-swap the files may be briefly missing; that is not a change worth reporting.
        let Ok(files) = read_files(&self.dir) else {
            return Reload::Unchanged;
        };
        let hash = content_hash(&files.0, &files.1);
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if *seen == hash {
                return Reload::Unchanged;
            }
            *seen = hash;
        }
        match parse_pair(&files.0, &files.1) {
            Ok(key) => {
                self.current.store(Arc::new(key));
                Reload::Reloaded
            }
            Err(message) => Reload::Rejected(message),
        }
    }

    /// When the certificate currently served expires (notAfter, Unix seconds); `None` if
    /// its DER does not parse (rustls accepted it, so that would be a parser gap).
    pub fn not_after(&self) -> Option<i64> {
        let leaf = self.current_leaf()?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
        Some(cert.validity().not_after.timestamp())
    }

    /// The DER of the certificate currently served.
    pub fn current_leaf(&self) -> Option<CertificateDer<'static>> {
        self.current.load().cert.first().cloned()
    }
}

/// A TLS server configuration that asks `store` for the certificate on every handshake.
pub fn server_config(store: Arc<CertStore>) -> Result<ServerConfig, ServeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // No session resumption: every new connection gets a full handshake with the current
    // certificate, so a rotation is verified by clients at once instead of whenever their
    // cached sessions expire. The API server keeps its connections alive, so this costs
    // one handshake per connection, not per request.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// [`server_config`] that also asks clients for a certificate and verifies any it gets
/// against `client_roots`. A client without one still completes the handshake (the
/// sidecar's `/health` is open to kubelet probes); one with a certificate the roots do not
/// sign is refused at the handshake. Whether a verified certificate was presented is read
/// from the connection afterwards.
pub fn server_config_with_client_roots(
    store: Arc<CertStore>,
    client_roots: Arc<rustls::RootCertStore>,
) -> Result<ServerConfig, ServeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        client_roots,
        Arc::clone(&provider),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| ServeError::ClientRoots(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// Polls the certificate files until `shutdown` flips, logging and counting every reload.
pub async fn watch_files(
    store: Arc<CertStore>,
    metrics: Arc<ServeMetrics>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let poll_store = Arc::clone(&store);
        // File reads and key parsing are blocking work.
        let Ok(outcome) = tokio::task::spawn_blocking(move || poll_store.poll()).await else {
            continue;
        };
        match outcome {
            Reload::Unchanged => {}
            Reload::Reloaded => {
                metrics.observe_cert_reload(true);
                if let Some(not_after) = store.not_after() {
                    metrics.observe_cert_expiry(not_after);
                }
                tracing::info!(dir = %store.dir.display(), "serving certificate reloaded");
            }
            Reload::Rejected(reason) => {
                metrics.observe_cert_reload(false);
                tracing::warn!(dir = %store.dir.display(), %reason, "new certificate files rejected; keeping the current certificate");
            }
        }
    }
}

fn read_files(dir: &Path) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    Ok((
        std::fs::read(dir.join(CERT_FILE))?,
        std::fs::read(dir.join(KEY_FILE))?,
    ))
}

fn read_pair(dir: &Path) -> Result<([u8; 32], CertifiedKey), String> {
    let (cert, key) =
        read_files(dir).map_err(|e| format!("cannot read {CERT_FILE}/{KEY_FILE}: {e}"))?;
    let parsed = parse_pair(&cert, &key)?;
    Ok((content_hash(&cert, &key), parsed))
}

fn content_hash(cert: &[u8], key: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(u64::try_from(cert.len()).unwrap_or(u64::MAX).to_be_bytes());
    h.update(cert);
    h.update(key);
    h.finalize().into()
}

fn parse_pair(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{CERT_FILE}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("{CERT_FILE} holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("{KEY_FILE}: {e}"))?;
    let provider = rustls::crypto::ring::default_provider();
    // from_der also checks that the key belongs to the leaf certificate.
    CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| format!("{CERT_FILE} and {KEY_FILE} do not form a usable pair: {e}"))
}
