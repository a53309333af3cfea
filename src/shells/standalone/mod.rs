//! `bloodraven standalone --config group.yaml`: the failover engine driving MySQL hosts with
//! no Kubernetes, plus `bloodraven failover --to SITE`, its command-line client.

pub mod backups;
pub mod client;
pub mod config;
pub mod hook;
pub mod http;
pub mod state_file;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use prometheus_client::registry::Registry;

use crate::adapters::mysql::{MysqlSiteClient, MysqlSiteConfig};
use crate::adapters::sidecar::{HttpSidecar, TokenSource};
use crate::control::{FailoverLoop, LoopParts, SiteHandle};
use crate::error::{Categorized, Category};
use crate::failover::{GroupStatus, PlannedPhase};
use crate::ports::hook::{FailoverHook, NoHook};
use crate::ports::mysql::SourceEndpoint;
use crate::ports::observer::DecisionObserver;
use crate::ports::sidecar::SidecarStatus;
use crate::telemetry::event_log::EventLog;
use crate::telemetry::failover::FailoverMetrics;

/// `bloodraven standalone`.
#[derive(Debug, Args)]
pub struct StandaloneArgs {
    /// The group config file (YAML).
    #[arg(long)]
    pub config: PathBuf,
}

/// `bloodraven failover`.
#[derive(Debug, Args)]
pub struct FailoverArgs {
    /// The site to switch to (planned, zero-loss).
    #[arg(long = "to")]
    pub to: String,
    /// The standalone API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// How long to wait for the switchover to finish.
    #[arg(long, default_value = "10m", value_parser = parse_duration_arg)]
    pub timeout: Duration,
}

fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    crate::api::duration::parse_go_duration(text)
}

/// Why standalone mode stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("site {site}: {message}")]
    Site { site: String, message: String },
    #[error(transparent)]
    Loop(#[from] crate::control::LoopError),
    #[error("listening on {address}: {message}")]
    Listen { address: String, message: String },
    #[error("runtime: {0}")]
    Runtime(String),
}

impl Categorized for StandaloneError {
    fn category(&self) -> Category {
        match self {
            Self::Config(e) => e.category(),
            Self::Site { .. } => Category::Config,
            Self::Loop(e) => e.category(),
            Self::Listen { .. } | Self::Runtime(_) => Category::Unavailable,
        }
    }
}

pub fn run(args: &StandaloneArgs) -> ExitCode {
    let outcome = config::load(&args.config)
        .map_err(StandaloneError::from)
        .and_then(|config| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| StandaloneError::Runtime(e.to_string()))?
                .block_on(serve(config))
        });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bloodraven standalone: {e}");
            ExitCode::from(if e.category() == Category::Config {
                2
            } else {
                1
            })
        }
    }
}

fn split_endpoint(site: &str, address: &str) -> Result<SourceEndpoint, StandaloneError> {
    SourceEndpoint::parse(address).map_err(|e| StandaloneError::Site {
        site: site.to_owned(),
        message: e.to_string(),
    })
}

/// The site's sidecar, when the config names one: called with the token from
/// `sidecarAuth.tokenFile` (re-read on every call) within the probe timeout.
fn sidecar_for(
    config: &config::StandaloneConfig,
    site: &config::SiteConfig,
) -> Result<Option<Arc<dyn SidecarStatus>>, StandaloneError> {
    let (Some(url), Some(auth)) = (&site.sidecar, &config.sidecar_auth) else {
        return Ok(None);
    };
    let error = |message: String| StandaloneError::Site {
        site: site.name.clone(),
        message,
    };
    let ca = auth
        .ca_file
        .as_ref()
        .map(|p| std::fs::read(p).map_err(|e| error(format!("{}: {e}", p.display()))))
        .transpose()?;
    let http = HttpSidecar::client(config.probe_timeout, ca.as_deref()).map_err(error)?;
    let token_file = auth.token_file.clone();
    let token: TokenSource = Arc::new(move || {
        std::fs::read_to_string(&token_file)
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
    });
    Ok(Some(Arc::new(HttpSidecar::new(
        &site.name, url, token, http,
    ))))
}

/// Runs the loop and the HTTP API until SIGINT or SIGTERM.
pub async fn serve(config: config::StandaloneConfig) -> Result<(), StandaloneError> {
    let mut sites = Vec::with_capacity(config.sites.len());
    for site in &config.sites {
        let mut mysql = MysqlSiteConfig::new(
            &site.name,
            &site.address,
            config.operator.clone(),
            config.replication.clone(),
        );
        mysql.probe_timeout = config.probe_timeout;
        mysql.connect_timeout = config.probe_timeout;
        mysql.replication_tls = config.replication_tls;
        let client = MysqlSiteClient::new(mysql).map_err(|e| StandaloneError::Site {
            site: site.name.clone(),
            message: e.to_string(),
        })?;
        sites.push(SiteHandle {
            name: site.name.clone(),
            endpoint: split_endpoint(&site.name, &site.address)?,
            site: Arc::new(client),
            sidecar: sidecar_for(&config, site)?,
        });
    }
    let mut registry = Registry::with_prefix("bloodraven");
    let metrics = Arc::new(FailoverMetrics::register(&mut registry));
    let hook: Arc<dyn FailoverHook> = match &config.hook {
        Some(h) => Arc::new(hook::CommandHook::new(h.command.clone(), h.timeout)),
        None => Arc::new(NoHook),
    };
    let (failover_loop, handle) = FailoverLoop::new(LoopParts {
        sites,
        policy: config.policy.clone(),
        config: config.loop_config,
        store: Arc::new(state_file::FileStateStore::new(&config.state_file)),
        hook,
        observers: vec![Arc::new(EventLog) as Arc<dyn DecisionObserver>, metrics],
    })
    .await?;
    let (listener, bound) = crate::shells::bind_listener(config.listen, |address, message| {
        StandaloneError::Listen { address, message }
    })
    .await?;
    tracing::info!(listen = %bound, sites = config.sites.len(), state_file = %config.state_file.display(), "bloodraven standalone started");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let backups = backups::start(&config, &handle, &mut registry, &stop_rx)?;
    let loop_task = tokio::spawn(failover_loop.run(stopped(stop_rx.clone())));
    let app = http::router(http::ApiState {
        handle,
        registry: Arc::new(registry),
        backups,
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(stopped(stop_rx))
        .await;
    let _ = loop_task.await;
    served.map_err(|e| StandaloneError::Listen {
        address: bound,
        message: e.to_string(),
    })
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// `bloodraven failover --to SITE`: request a planned failover and wait for its outcome.
pub fn failover(args: &FailoverArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bloodraven failover: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(request_failover(args)) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("bloodraven failover: {message}");
            ExitCode::from(1)
        }
    }
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

async fn request_failover(args: &FailoverArgs) -> Result<String, String> {
    let path = format!("/planned-failover?target={}", encode_query(&args.to));
    let response = client::request(&args.url, "POST", &path, REQUEST_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value = serde_json::from_str(&response.body).unwrap_or_default();
    if response.status != 202 {
        let reason = body
            .get("reason")
            .and_then(serde_json::Value::as_str)
            .unwrap_or(&response.body);
        return Err(format!("rejected ({}): {reason}", response.status));
    }
    let start = body.get("startTime").and_then(serde_json::Value::as_u64);
    eprintln!(
        "accepted: {}",
        body.get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
    );
    let deadline = Instant::now() + args.timeout;
    loop {
        if Instant::now() > deadline {
            return Err(format!("no outcome within {:?}", args.timeout));
        }
        if let Ok(r) = client::request(&args.url, "GET", "/status", REQUEST_TIMEOUT).await
            && let Ok(status) = serde_json::from_str::<GroupStatus>(&r.body)
            && let Some(p) = status.planned_failover
            && p.target == args.to
            && start.is_none_or(|s| p.start_time.as_millis() == s)
        {
            match p.phase {
                PlannedPhase::Succeeded => {
                    return Ok(format!(
                        "planned failover to {} succeeded in {:.2}s; {} transactions lost",
                        p.target,
                        p.duration_seconds.unwrap_or_default(),
                        p.transactions_lost.unwrap_or_default()
                    ));
                }
                PlannedPhase::Failed => {
                    return Err(format!(
                        "planned failover to {} failed ({:?}): {}",
                        p.target, p.reason, p.message
                    ));
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Percent-encodes a query value (site names are plain, but be safe).
fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
