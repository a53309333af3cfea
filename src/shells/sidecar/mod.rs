//! `bloodraven sidecar --config FILE`: the per-site agent beside mysqld.
//!
//! It fences its MySQL first (`super_read_only=ON`) and never lifts that itself; it asks the
//! operator's active-site endpoint and its peers which site is active, and fences again
//! (killing client sessions) when everyone has been silent for `leaseTimeout` or another
//! site is active ([`crate::failover::guard`] decides; [`monitor`] acts). Its API is
//! `/health` (open), `/status`, `/peer/ping`, `/peer/active-site` and `/metrics` (bearer
//! token, and mTLS with a client CA configured: [`auth`]). See `docs/sidecar.md`.

pub mod auth;
pub mod config;
pub mod http;
pub mod monitor;
pub mod operator_trust;

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use clap::Args;
use prometheus_client::registry::Registry;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::adapters::mysql::{MysqlSiteClient, MysqlSiteConfig};
use crate::error::{Categorized, Category};
use crate::shells::serve::tls::{self, CertStore};
use crate::telemetry::sidecar::SidecarMetrics;

use self::auth::{AuthState, ClientCertificate, Token};
use self::config::SidecarConfig;
use self::monitor::{Caller, Clock, Monitor};

/// `bloodraven sidecar`.
#[derive(Debug, Args)]
pub struct SidecarArgs {
    /// The sidecar config file (YAML); see `docs/sidecar.md`.
    #[arg(long, required_unless_present = "config_yaml")]
    pub config: Option<PathBuf>,
    /// The config itself, as YAML (the operator renders it into the pod's environment);
    /// relative paths in it resolve against the working directory.
    #[arg(
        long,
        env = "BLOODRAVEN_SIDECAR_CONFIG",
        hide_env_values = true,
        conflicts_with = "config"
    )]
    pub config_yaml: Option<String>,
}

/// Why the sidecar could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error(transparent)]
    Config(#[from] crate::shells::standalone::config::ConfigError),
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Tls(#[from] crate::shells::serve::ServeError),
    #[error("listening on {address}: {message}")]
    Listen { address: String, message: String },
}

impl Categorized for SidecarError {
    fn category(&self) -> Category {
        match self {
            Self::Config(e) => e.category(),
            Self::Setup(_) => Category::Config,
            Self::Tls(e) => e.category(),
            Self::Listen { .. } => Category::Unavailable,
        }
    }
}

/// How often the serving certificate files are checked for a rotation.
const CERT_RELOAD_INTERVAL: Duration = Duration::from_secs(10);
/// Bound on the fence and the kill pass (connection included).
const FENCE_TIMEOUT: Duration = Duration::from_secs(5);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(args: &SidecarArgs) -> ExitCode {
    // One thread: the sidecar idles between ticks, and a second worker thread would only
    // add memory (the original's target is < 20 MiB RSS).
    let loaded = match (&args.config, &args.config_yaml) {
        (Some(path), _) => config::load(path),
        (None, Some(text)) => config::parse(
            "$BLOODRAVEN_SIDECAR_CONFIG",
            text,
            &std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        ),
        (None, None) => config::parse("(no config)", "", std::path::Path::new("/")),
    };
    let outcome = loaded.map_err(SidecarError::from).and_then(|config| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SidecarError::Setup(format!("runtime: {e}")))?
            .block_on(serve(config, crate::shells::standalone::shutdown_signal()))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bloodraven sidecar: {e}");
            ExitCode::from(if e.category() == Category::Config {
                2
            } else {
                1
            })
        }
    }
}

fn read_pem_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, SidecarError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| SidecarError::Setup(format!("{}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| SidecarError::Setup(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(SidecarError::Setup(format!(
            "{} holds no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// The client for the peers, and for the operator unless `operator.caFile` pins it: the
/// peers' CA when given, and our own certificate as the client identity when we have one
/// (peers that require mTLS ask for it).
fn http_client(config: &SidecarConfig) -> Result<reqwest::Client, SidecarError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| SidecarError::Setup(format!("{what}: {e}"));
    let mut builder = reqwest::Client::builder()
        .timeout(monitor::HTTP_TIMEOUT)
        .connect_timeout(monitor::HTTP_TIMEOUT)
        .http1_only()
        .pool_max_idle_per_host(2);
    if let Some(tls) = &config.tls {
        if let Some(ca) = &tls.peer_ca_file {
            let pem = std::fs::read(ca).map_err(|e| setup(&ca.display().to_string(), &e))?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| setup(&ca.display().to_string(), &e))?;
            builder = builder.tls_certs_only(roots);
        }
        let mut identity = std::fs::read(tls.cert_dir.join(tls::CERT_FILE))
            .map_err(|e| setup("the client identity", &e))?;
        identity.extend(
            std::fs::read(tls.cert_dir.join(tls::KEY_FILE))
                .map_err(|e| setup("the client identity", &e))?,
        );
        builder = builder.identity(
            reqwest::Identity::from_pem(&identity).map_err(|e| setup("the client identity", &e))?,
        );
    }
    builder.build().map_err(|e| setup("the HTTP client", &e))
}

/// Fences MySQL, then serves and monitors until `stop` resolves.
pub async fn serve(
    config: SidecarConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SidecarError> {
    let config = Arc::new(config);
    let token = Token::load(&config.token_file).map_err(SidecarError::Setup)?;
    let mut mysql = MysqlSiteConfig::new(
        &config.site,
        &config.mysql_address,
        config.mysql_credentials.clone(),
        config.mysql_credentials.clone(),
    );
    mysql.op_timeout = FENCE_TIMEOUT;
    let mysql = MysqlSiteClient::new(mysql).map_err(|e| SidecarError::Setup(e.to_string()))?;
    let mut registry = Registry::with_prefix("bloodraven");
    let metrics = Arc::new(SidecarMetrics::register(&mut registry));
    let clock = Clock::new();
    let caller = Caller {
        http: http_client(&config)?,
        operator_trust: config
            .operator_ca_file
            .clone()
            .map(|path| Arc::new(operator_trust::OperatorTrust::new(path))),
        token: token.clone(),
        timeout: monitor::HTTP_TIMEOUT.min(config.peer_check_interval),
    };
    let (mut monitor, shared) = Monitor::new(
        Arc::clone(&config),
        mysql,
        caller,
        Arc::clone(&metrics),
        clock,
    );
    // Fence first: before the API answers anyone, and before any question is asked.
    monitor.boot_fence().await;

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let monitor_task = tokio::spawn(monitor.run(stopped(stop_rx.clone())));

    let auth = AuthState {
        token,
        require_client_cert: config
            .tls
            .as_ref()
            .is_some_and(|t| t.client_ca_file.is_some()),
        metrics: Arc::clone(&metrics),
    };
    let app = http::router(
        http::HttpState {
            shared,
            registry: Arc::new(registry),
            metrics,
            clock,
        },
        auth,
    );
    let (listener, bound) = crate::shells::bind_listener(config.listen, |address, message| {
        SidecarError::Listen { address, message }
    })
    .await?;
    tracing::info!(site = %config.site, listen = %bound, tls = config.tls.is_some(), peers = config.peers.len(), lease_timeout_ms = config.lease_timeout.as_millis(), "bloodraven sidecar started");
    let served = match &config.tls {
        None => axum::serve(listener, app)
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .await
            .map_err(|e| SidecarError::Listen {
                address: bound,
                message: e.to_string(),
            }),
        Some(tls_config) => {
            let certs = Arc::new(CertStore::load(&tls_config.cert_dir)?);
            let server_config = match &tls_config.client_ca_file {
                Some(ca) => {
                    let mut roots = rustls::RootCertStore::empty();
                    for cert in read_pem_certs(ca)? {
                        roots
                            .add(cert)
                            .map_err(|e| SidecarError::Setup(format!("{}: {e}", ca.display())))?;
                    }
                    tls::server_config_with_client_roots(Arc::clone(&certs), Arc::new(roots))?
                }
                None => tls::server_config(Arc::clone(&certs))?,
            };
            let acceptor = TlsAcceptor::from(Arc::new(server_config));
            serve_tls(listener, acceptor, app, certs, stop_rx.clone()).await;
            Ok(())
        }
    };
    let _ = monitor_task.await;
    served
}

/// The TLS accept loop: each connection gets the router with whether its client
/// certificate was verified.
async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: axum::Router,
    certs: Arc<CertStore>,
    mut stop: watch::Receiver<bool>,
) {
    let reload_certs = Arc::clone(&certs);
    let mut reload_stop = stop.clone();
    let reloader = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(CERT_RELOAD_INTERVAL);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = reload_stop.changed() => return,
            }
            let store = Arc::clone(&reload_certs);
            if let Ok(tls::Reload::Rejected(reason)) =
                tokio::task::spawn_blocking(move || store.poll()).await
            {
                tracing::warn!(%reason, "new serving certificate rejected; keeping the current one");
            }
        }
    });
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let app = app.clone();
                    connections.spawn(crate::shells::serve::server::serve_tls_connection(
                        tcp,
                        peer,
                        acceptor.clone(),
                        move |conn| {
                            let verified = conn.peer_certificates().is_some_and(|c| !c.is_empty());
                            app.layer(Extension(ClientCertificate(verified)))
                        },
                        stop.clone(),
                    ));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        connections.abort_all();
    }
    let _ = reloader.await;
}
