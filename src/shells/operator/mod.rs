//! The Kubernetes operator shell: leader election, then the controllers.
//!
//! `bloodraven serve` starts it beside the webhooks (`--controllers auto|on|off`). Every
//! replica serves admission; only the holder of the `coordination.k8s.io/v1` Lease
//! reconciles and fails over. The controllers run on a runtime of their own, on their own
//! threads, so no watch, reconcile or MySQL probe can delay an admission request.
//!
//! Per `MysqlFailoverGroup` ([`manager`]): the child objects are rendered
//! ([`crate::render`]) and server-side applied when they differ from the watch caches; one
//! [`crate::control::FailoverLoop`] (the loop standalone mode runs) drives the sites
//! through their internal Services, persists its state in the group's status with a
//! resourceVersion precondition, and reports decisions as status, Events, pod labels, node
//! taints and the DNSEndpoint ([`group`]).
//!
//! Every replica also answers the sidecars' active-site endpoint ([`sidecar_api`]) when
//! given a listener for it; the leader creates each opted-in group's sidecar token Secret
//! ([`sidecar_token`]).

mod archiver;
mod artifacts;
mod backups;
pub mod endpoints;
mod group;
mod job_record;
mod job_runs;
mod manager;
mod restores;
mod retries;
mod schedules;
pub mod sidecar_api;
mod sidecar_token;
mod verifications;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::adapters::kube::WatchScope;
use crate::adapters::kube::lease::KubeLeaseStore;
use crate::adapters::kube::objects::KubeObjects;
use crate::control::LoopConfig;
use crate::control::leader::{ElectionTiming, LeaderElection};
use crate::error::{Categorized, Category};
use crate::render::RenderOptions;
use crate::shells::serve::metrics::ServeMetrics;
pub use endpoints::Endpoints;

/// How the operator runs.
#[derive(Debug, Clone)]
pub struct OperatorOptions {
    /// Where groups (and the objects they own) are watched.
    pub scope: WatchScope,
    /// The Lease replicas elect the leader with.
    pub lease_namespace: String,
    pub lease_name: String,
    /// This replica's name in the Lease (the pod name in a cluster).
    pub identity: String,
    pub election: ElectionTiming,
    /// Every group is reconciled at least this often (Secret rotations, drift).
    pub resync: Duration,
    /// Where each site's MySQL is reached.
    pub endpoints: Endpoints,
    pub render: RenderOptions,
    pub loop_config: LoopConfig,
    /// What backup Jobs and schedule CronJobs run.
    pub jobs: JobSettings,
    /// The CA bundle that signs the serving certificate, published into every opted-in
    /// group's sidecar token Secret (`ca.crt`); `None`: nothing is published.
    pub sidecar_ca_file: Option<PathBuf>,
}

/// The image and account of the Jobs the operator creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSettings {
    /// The operator's own image; `None`: backups wait, saying so.
    pub image: Option<String>,
    /// The ServiceAccount of schedule CronJobs (it creates `MysqlBackup` objects).
    pub service_account: String,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            image: None,
            service_account: "bloodraven".to_owned(),
        }
    }
}

impl Default for OperatorOptions {
    fn default() -> Self {
        Self {
            scope: WatchScope::AllNamespaces,
            lease_namespace: "default".to_owned(),
            lease_name: "bloodraven-operator".to_owned(),
            identity: default_identity(),
            election: ElectionTiming {
                lease_duration: Duration::from_secs(15),
                renew_deadline: Duration::from_secs(10),
                retry_period: Duration::from_secs(2),
            },
            resync: Duration::from_secs(60),
            endpoints: Endpoints::services(),
            render: RenderOptions::default(),
            loop_config: LoopConfig::default(),
            jobs: JobSettings::default(),
            sidecar_ca_file: None,
        }
    }
}

/// `POD_NAME` in a cluster (the chart sets it), else the host name and process id.
fn default_identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map_or_else(|_| "bloodraven".to_owned(), |h| h.trim().to_owned());
        format!("{host}-{}", std::process::id())
    })
}

/// The operator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("leader election timing: {0}")]
    Election(String),
    #[error("starting the object caches: {0}")]
    Caches(String),
    #[error("Kubernetes client: {0}")]
    Client(String),
    #[error("the sidecar endpoint's listener: {0}")]
    SidecarListener(String),
}

impl Categorized for OperatorError {
    fn category(&self) -> Category {
        match self {
            Self::Election(_) => Category::Config,
            Self::Caches(_) | Self::Client(_) | Self::SidecarListener(_) => Category::Unavailable,
        }
    }
}

/// What the controllers share.
pub(crate) struct OperatorContext {
    pub client: kube::Client,
    pub scope: WatchScope,
    pub identity: String,
    pub resync: Duration,
    pub reconcile_timeout: Duration,
    pub endpoints: Endpoints,
    pub render: RenderOptions,
    pub loop_config: LoopConfig,
    pub objects: Arc<KubeObjects>,
    /// Where each group's failover metrics are registered (one /metrics with admission).
    pub metrics: Arc<ServeMetrics>,
    pub jobs: JobSettings,
    pub sidecar_ca_file: Option<PathBuf>,
}

/// The sidecars' active-site endpoint's listener, and the serving certificate it speaks
/// TLS with.
pub struct SidecarListener {
    pub listener: std::net::TcpListener,
    pub tls: tokio_rustls::TlsAcceptor,
}

/// Runs [`run`] on a runtime of its own, on `threads` threads of its own, until `stop`
/// turns true: the admission server's threads never run controller work.
pub fn spawn(
    config: kube::Config,
    options: OperatorOptions,
    metrics: Arc<ServeMetrics>,
    threads: usize,
    sidecar_listener: Option<SidecarListener>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<Result<(), OperatorError>>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("bloodraven-operator")
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("bloodraven-operator".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                let client = metrics
                    .kube_requests()
                    .client(config)
                    .map_err(|e| OperatorError::Client(e.to_string()))?;
                Box::pin(run(
                    client,
                    options,
                    metrics,
                    sidecar_listener,
                    async move {
                        let _ = stop.wait_for(|s| *s).await;
                    },
                ))
                .await
            })
        })
}

/// Takes part in the election until `shutdown`, running the controllers while leading,
/// and answers the sidecars on `sidecar_listener` (leading or not) when given one.
pub async fn run(
    client: kube::Client,
    options: OperatorOptions,
    metrics: Arc<ServeMetrics>,
    sidecar_listener: Option<SidecarListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), OperatorError> {
    let (sidecar_stop_tx, sidecar_stop) = watch::channel(false);
    let sidecar_server = match sidecar_listener {
        Some(SidecarListener { listener, tls }) => {
            let listener = listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(listener))
                .map_err(|e| OperatorError::SidecarListener(e.to_string()))?;
            let api = sidecar_api::SidecarApi::start(client.clone(), &options.scope);
            metrics.register_with(|registry| api.register_metrics(registry));
            let router = sidecar_api::router(api.clone());
            Some((
                api,
                tokio::spawn(sidecar_api::serve(listener, tls, router, sidecar_stop)),
            ))
        }
        None => None,
    };
    let store = Arc::new(KubeLeaseStore::new(
        client.clone(),
        &options.lease_namespace,
        options.lease_name.clone(),
    ));
    let (election, leading) =
        LeaderElection::new(store, options.identity.clone(), options.election)
            .map_err(|e| OperatorError::Election(e.to_string()))?;
    let objects = KubeObjects::start(client.clone(), options.scope.clone())
        .await
        .map_err(|e| OperatorError::Caches(e.to_string()))?;
    metrics.register_with(|registry| objects.register_metrics(registry));
    let ctx = Arc::new(OperatorContext {
        client,
        scope: options.scope,
        identity: options.identity,
        resync: options.resync,
        reconcile_timeout: Duration::from_secs(30),
        endpoints: options.endpoints,
        render: options.render,
        loop_config: options.loop_config,
        objects: Arc::new(objects),
        metrics,
        jobs: options.jobs,
        sidecar_ca_file: options.sidecar_ca_file,
    });
    // `halt`: stop acting (shutdown). The controllers finish their actions in progress and
    // stop every loop before the election task releases the Lease, so the next leader
    // never overlaps this one.
    let (halt_tx, halt) = watch::channel(false);
    let (release_tx, release) = watch::channel(false);
    let election_task = tokio::spawn(election.run(changed_to_true(release)));
    let controllers = async {
        let mut halted = halt.clone();
        let mut leading_rx = leading.clone();
        loop {
            tokio::select! {
                _ = halted.wait_for(|h| *h) => return,
                changed = leading_rx.wait_for(|l| *l) => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            Box::pin(manager::lead(
                Arc::clone(&ctx),
                leading.clone(),
                halt.clone(),
            ))
            .await;
        }
    };
    tokio::pin!(controllers);
    tokio::select! {
        () = &mut controllers => {}
        () = shutdown => {
            let _ = halt_tx.send(true);
            controllers.await;
        }
    }
    let _ = release_tx.send(true);
    let _ = election_task.await;
    let _ = sidecar_stop_tx.send(true);
    if let Some((api, server)) = sidecar_server {
        let _ = server.await;
        api.stop();
    }
    Ok(())
}

async fn changed_to_true(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}
