//! `bloodraven serve` and `bloodraven certs generate`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::adapters::kube::WatchScope;
use crate::control::leader::ElectionTiming;
use crate::policy::rules::{Catalog, LintConfig};
use crate::render::webhook_certs::Policy;
use crate::shells::certs::generate_certs;
use crate::shells::operator::{self, Endpoints, JobSettings, OperatorError, OperatorOptions};
use crate::shells::serve::self_managed::{SelfManagedCerts, SelfManagedOptions};
use crate::shells::serve::tls::CA_FILE;
use crate::shells::serve::{
    ClusterLookups, DEFAULT_OPERATOR_SERVICE_ACCOUNT, LintLimits, ServeOptions, Server, bind,
};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the HTTPS listener.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Directory with tls.crt and tls.key (reloaded when they change).
    #[arg(long)]
    pub cert_dir: PathBuf,
    /// The only user allowed to write the status of our resources.
    #[arg(long, default_value = DEFAULT_OPERATOR_SERVICE_ACCOUNT)]
    pub operator_service_account: String,
    /// Deny updates of objects that already violate required rules, even when the update
    /// adds no new violation.
    #[arg(long)]
    pub no_ratchet: bool,
    /// Lint configuration (rules, levels, exemptions) for /validate and /lint.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// How often to check the certificate files for changes, in seconds.
    #[arg(long, default_value_t = 5)]
    pub reload_interval_secs: u64,
    /// Where cross-object rules (credential Secrets, StorageClass settings, NetworkPolicy,
    /// PodDisruptionBudget, PrometheusRule) read the cluster: `auto` watches the API server
    /// when in-cluster or kubeconfig credentials exist, `kube` requires them, `off` never
    /// reads the cluster (those rules stay silent).
    #[arg(long, value_enum, default_value_t = ClusterMode::Auto)]
    pub cluster_lookups: ClusterMode,
    /// Watch namespaced kinds only in this namespace (repeatable; default: every namespace).
    #[arg(long = "watch-namespace")]
    pub watch_namespaces: Vec<String>,
    /// /lint evaluations at once, on threads admission never uses (default: half the cores,
    /// at least one).
    #[arg(long)]
    pub lint_concurrency: Option<usize>,
    /// /lint requests that may wait for a thread; more get 429 before their body is read.
    #[arg(long, default_value_t = 2)]
    pub lint_queue: usize,
    /// Deadline of a /lint request, response included, in seconds; work past it is
    /// cancelled.
    #[arg(long, default_value_t = 20)]
    pub lint_timeout_secs: u64,
    /// Documents in one /lint body; more: 413.
    #[arg(long, default_value_t = LintLimits::default().max_documents)]
    pub lint_max_documents: usize,
    /// Sites of one MysqlFailoverGroup in a /lint body; more: 422.
    #[arg(long, default_value_t = LintLimits::default().max_sites_per_group)]
    pub lint_max_sites_per_group: usize,
    /// Findings listed in one /lint response; the rest are counted and the report says it
    /// is truncated.
    #[arg(long, default_value_t = LintLimits::default().max_findings)]
    pub lint_max_findings: usize,
    /// Bytes of one /lint response; findings are left out (and the report says so) until
    /// it fits.
    #[arg(long, default_value_t = LintLimits::default().max_output_bytes)]
    pub lint_max_output_bytes: usize,
    /// Run the operator's controllers beside the webhooks: `auto` when Kubernetes
    /// credentials are found (in-cluster or kubeconfig), `on` requires them, `off` serves
    /// the webhooks only. Replicas elect one leader; only it reconciles and fails over.
    #[arg(long, value_enum, default_value_t = ControllersMode::Auto)]
    pub controllers: ControllersMode,
    /// Namespace of the leader-election Lease (default: the pod's namespace, else
    /// `default`).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "bloodraven-operator")]
    pub lease_name: String,
    /// Seconds a Lease is valid without renewal: how long a crashed leader blocks the next.
    #[arg(long, default_value_t = 15)]
    pub lease_duration_secs: u64,
    /// Every group is reconciled at least this often, in seconds (Secret rotation, drift).
    #[arg(long, default_value_t = 60)]
    pub resync_secs: u64,
    /// Threads the controllers run on (apart from the threads that serve admission).
    #[arg(long, default_value_t = 2)]
    pub controller_threads: usize,
    /// Keep the webhook certificate without cert-manager: make a CA and a serving
    /// certificate in the `--cert-secret` Secret, publish the CA bundle to both webhook
    /// configurations, rotate both before they expire, and serve the Secret's certificate
    /// (written into `--cert-dir`, an empty writable directory).
    #[arg(long, requires_all = ["cert_secret", "validating_webhook", "mutating_webhook"])]
    pub self_managed_certs: bool,
    /// The Secret that holds the self-managed CA, serving certificate and CA bundle.
    #[arg(long, value_name = "NAME")]
    pub cert_secret: Option<String>,
    /// Namespace of `--cert-secret` (default: the pod's namespace, else `default`).
    #[arg(
        long,
        env = "POD_NAMESPACE",
        default_value = "default",
        value_name = "NAMESPACE"
    )]
    pub cert_namespace: String,
    /// DNS names of the self-managed serving certificate (repeatable; the webhook Service's
    /// `<service>.<namespace>.svc`).
    #[arg(long = "cert-dns", value_name = "NAME")]
    pub cert_dns: Vec<String>,
    /// The ValidatingWebhookConfiguration whose every `caBundle` is kept current.
    #[arg(long, value_name = "NAME")]
    pub validating_webhook: Option<String>,
    /// The MutatingWebhookConfiguration whose every `caBundle` is kept current.
    #[arg(long, value_name = "NAME")]
    pub mutating_webhook: Option<String>,
    /// Lifetime of a self-managed serving certificate; renewed with a third left.
    #[arg(long, default_value = "2160h", value_parser = parse_duration_arg)]
    pub cert_validity: Duration,
    /// Lifetime of the self-managed CA (at least 3 serving lifetimes); replaced with a
    /// third left, the old CA staying in the bundle until `--cert-retire-after`.
    #[arg(long, default_value = "87600h", value_parser = parse_duration_arg)]
    pub ca_validity: Duration,
    /// How long a newly published CA bundle settles (the API server picks it up) before a
    /// certificate it trusts is served.
    #[arg(long, default_value = "10s", value_parser = parse_duration_arg)]
    pub cert_settle: Duration,
    /// How long after publishing a new bundle the CAs it replaced are dropped from it.
    #[arg(long, default_value = "10m", value_parser = parse_duration_arg)]
    pub cert_retire_after: Duration,
    /// How often every replica looks at the certificate Secret.
    #[arg(long, default_value = "10s", value_parser = parse_duration_arg)]
    pub cert_check_interval: Duration,
    /// Testing: wait this long before publishing a new CA bundle (see
    /// `SelfManagedOptions::publish_delay`).
    #[arg(long, hide = true, default_value = "0s", value_parser = parse_duration_arg)]
    pub cert_publish_delay: Duration,
    /// Testing without pods: a YAML map of `<namespace>/<group>/<site>` to the `host:port`
    /// that stands in for the site's internal Service.
    #[arg(long, hide = true)]
    pub site_endpoints: Option<PathBuf>,
    /// The image backup Jobs and schedule CronJobs run: this binary's own image, pinned by
    /// digest (the chart passes its `image`). Without it, backups wait with a message.
    #[arg(long, env = "BLOODRAVEN_OPERATOR_IMAGE", value_name = "IMAGE")]
    pub job_image: Option<String>,
    /// The ServiceAccount schedule CronJobs run under: it creates the `MysqlBackup` of each
    /// run (the chart passes the operator's).
    #[arg(
        long,
        env = "BLOODRAVEN_OPERATOR_SA",
        value_name = "NAME",
        default_value = "bloodraven"
    )]
    pub job_service_account: String,
    /// TLS listener (the serving certificate of `--cert-dir`) of the sidecars'
    /// active-site endpoint (`/sidecar/v1/namespaces/<ns>/groups/<group>/active-site`,
    /// bearer-authenticated with the group's sidecar token), served by every replica while
    /// the controllers run; the chart passes `0.0.0.0:8082`. Unset: not served.
    #[arg(long, value_name = "ADDR")]
    pub sidecar_listen: Option<SocketAddr>,
    /// The CA bundle that signs the serving certificate, published into each opted-in
    /// group's sidecar token Secret (key `ca.crt`), the one CA its sidecars trust for the
    /// endpoint. Default: `ca.crt` in `--cert-dir` (cert-manager's Secrets and
    /// `certs generate` put it there; `--self-managed-certs` writes its bundle there).
    #[arg(long, value_name = "FILE")]
    pub sidecar_ca_file: Option<PathBuf>,
    /// `host:port` rendered sidecars call for that endpoint: the operator Service's
    /// `sidecar` port (the chart passes `<service>.<namespace>.svc:8082`). A group's
    /// `spec.sidecar.bloodravenAddress` wins over it.
    #[arg(long, value_name = "HOST:PORT")]
    pub sidecar_address: Option<String>,
}

/// See [`ServeArgs::controllers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ControllersMode {
    Auto,
    On,
    Off,
}

/// See [`ServeArgs::cluster_lookups`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterMode {
    Auto,
    Kube,
    Off,
}

fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    crate::api::duration::parse_go_duration(text)
}

/// How long a replica waits for a servable self-managed certificate before giving up.
const SELF_MANAGED_STARTUP: Duration = Duration::from_secs(300);

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Write a CA (unless one is given) and a serving certificate.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[arg(long)]
    pub out: PathBuf,
    /// DNS names of the serving certificate (e.g. bloodraven.bloodraven-system.svc).
    #[arg(long = "dns")]
    pub dns: Vec<String>,
    /// IP addresses of the serving certificate.
    #[arg(long = "ip")]
    pub ips: Vec<IpAddr>,
    /// Sign with this CA instead of creating one.
    #[arg(long, requires = "ca_key")]
    pub ca_cert: Option<PathBuf>,
    #[arg(long, requires = "ca_cert")]
    pub ca_key: Option<PathBuf>,
}

pub fn run_serve(args: &ServeArgs) -> ExitCode {
    let lint_config = match &args.config {
        None => LintConfig::default(),
        Some(path) => {
            let parsed = Catalog::builtin()
                .map_err(|e| e.to_string())
                .and_then(|catalog| {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    LintConfig::parse(&path.display().to_string(), &text, &catalog)
                        .map_err(|e| e.to_string())
                });
            match parsed {
                Ok(c) => c,
                Err(e) => return fail(&e),
            }
        }
    };
    let mut opts = ServeOptions {
        listen: args.listen,
        cert_dir: args.cert_dir.clone(),
        operator_service_account: args.operator_service_account.clone(),
        ratchet: !args.no_ratchet,
        reload_interval: Duration::from_secs(args.reload_interval_secs.max(1)),
        lint_config,
        lint_queue: args.lint_queue,
        lint_timeout: Duration::from_secs(args.lint_timeout_secs.max(1)),
        lint_limits: LintLimits {
            max_documents: args.lint_max_documents,
            max_sites_per_group: args.lint_max_sites_per_group,
            max_findings: args.lint_max_findings,
            max_output_bytes: args.lint_max_output_bytes,
        },
        ..ServeOptions::default()
    };
    if let Some(n) = args.lint_concurrency {
        opts.lint_concurrency = n.max(1);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    let served = runtime.block_on(async {
        opts.cluster = cluster_lookups(args).await?;
        let certs = self_managed_certs(args).await?;
        if let Some(certs) = &certs {
            certs
                .wait_until_servable(SELF_MANAGED_STARTUP)
                .await
                .map_err(|e| e.to_string())?;
        }
        let server = bind(opts).await.map_err(|e| e.to_string())?;
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        if let Some(certs) = certs {
            tokio::spawn(certs.run(stop.clone()));
        }
        let operator = start_operator(args, &server, stop.clone()).await?;
        let outcome = server
            .serve(async move {
                shutdown_signal().await;
                let _ = stop_tx.send(true);
            })
            .await
            .map_err(|e| e.to_string());
        if let Some(operator) = operator {
            // The controllers stop their loops and release the Lease before we exit.
            match tokio::task::spawn_blocking(move || operator.join()).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::error!(error = %e, "operator stopped with an error"),
                _ => tracing::error!("operator thread panicked"),
            }
        }
        outcome
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Starts the controllers when `--controllers` and the environment say so.
async fn start_operator(
    args: &ServeArgs,
    server: &Server,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<std::thread::JoinHandle<Result<(), OperatorError>>>, String> {
    if args.controllers == ControllersMode::Off {
        return Ok(None);
    }
    let config = match (kube::Config::infer().await, args.controllers) {
        (Ok(config), _) => config,
        (Err(e), ControllersMode::On) => {
            return Err(format!(
                "--controllers on: no Kubernetes credentials found ({e})"
            ));
        }
        (Err(e), _) => {
            tracing::info!(error = %e, "no Kubernetes credentials: serving the webhooks without the controllers");
            return Ok(None);
        }
    };
    let lease = Duration::from_secs(args.lease_duration_secs.max(3));
    let mut options = OperatorOptions {
        scope: scope_of(args),
        lease_namespace: args.lease_namespace.clone(),
        lease_name: args.lease_name.clone(),
        election: ElectionTiming {
            lease_duration: lease,
            renew_deadline: lease * 2 / 3,
            retry_period: lease / 7,
        },
        resync: Duration::from_secs(args.resync_secs.max(1)),
        jobs: JobSettings {
            image: args.job_image.clone().filter(|i| !i.is_empty()),
            service_account: args.job_service_account.clone(),
        },
        sidecar_ca_file: Some(
            args.sidecar_ca_file
                .clone()
                .unwrap_or_else(|| args.cert_dir.join(CA_FILE)),
        ),
        ..OperatorOptions::default()
    };
    options
        .render
        .sidecar_operator_address
        .clone_from(&args.sidecar_address);
    let sidecar_listener = args
        .sidecar_listen
        .map(std::net::TcpListener::bind)
        .transpose()
        .map_err(|e| format!("--sidecar-listen: {e}"))?
        .map(|listener| operator::SidecarListener {
            listener,
            tls: server.tls_acceptor(),
        });
    if let Some(path) = &args.site_endpoints {
        options.endpoints = Endpoints::from_file(path).map_err(|e| e.to_string())?;
    }
    tracing::info!(identity = %options.identity, lease = %options.lease_name, "controllers start (they act only while holding the Lease)");
    operator::spawn(
        config,
        options,
        server.metrics(),
        args.controller_threads,
        sidecar_listener,
        stop,
    )
    .map(Some)
    .map_err(|e| format!("starting the controller threads: {e}"))
}

/// The certificate keeper `--self-managed-certs` asks for; it needs Kubernetes
/// credentials.
async fn self_managed_certs(args: &ServeArgs) -> Result<Option<SelfManagedCerts>, String> {
    if !args.self_managed_certs {
        return Ok(None);
    }
    let (Some(secret), Some(validating), Some(mutating)) = (
        &args.cert_secret,
        &args.validating_webhook,
        &args.mutating_webhook,
    ) else {
        return Err(
            "--self-managed-certs needs --cert-secret, --validating-webhook and --mutating-webhook"
                .to_owned(),
        );
    };
    // A replica picks a new serving certificate up within a check and a file reload; the
    // CAs it may still be signed by must outlast that.
    let pickup = args.cert_settle
        + args.cert_check_interval * 2
        + Duration::from_secs(args.reload_interval_secs.max(1));
    if args.cert_retire_after <= pickup {
        return Err(format!(
            "--cert-retire-after ({:?}) must be longer than --cert-settle, two --cert-check-interval and --reload-interval-secs together ({pickup:?})",
            args.cert_retire_after
        ));
    }
    let client = match kube::Config::infer().await {
        Ok(config) => kube::Client::try_from(config).map_err(|e| e.to_string())?,
        Err(e) => {
            return Err(format!(
                "--self-managed-certs: no Kubernetes credentials found ({e})"
            ));
        }
    };
    let options = SelfManagedOptions {
        namespace: args.cert_namespace.clone(),
        secret: secret.clone(),
        dns_names: args.cert_dns.clone(),
        validating_webhook: validating.clone(),
        mutating_webhook: mutating.clone(),
        policy: Policy {
            serving_validity: args.cert_validity,
            ca_validity: args.ca_validity,
            settle: args.cert_settle,
            retire_after: args.cert_retire_after,
        },
        check_interval: args.cert_check_interval.max(Duration::from_millis(100)),
        cert_dir: args.cert_dir.clone(),
        publish_delay: args.cert_publish_delay,
    };
    SelfManagedCerts::new(&client, options)
        .map(Some)
        .map_err(|e| e.to_string())
}

fn scope_of(args: &ServeArgs) -> WatchScope {
    if args.watch_namespaces.is_empty() {
        WatchScope::AllNamespaces
    } else {
        WatchScope::Namespaces(args.watch_namespaces.clone())
    }
}

/// The cluster source `--cluster-lookups` asks for. Needs a tokio runtime (the client
/// spawns its connection tasks).
async fn cluster_lookups(args: &ServeArgs) -> Result<ClusterLookups, String> {
    if args.cluster_lookups == ClusterMode::Off {
        return Ok(ClusterLookups::None);
    }
    let scope = scope_of(args);
    let client = match kube::Config::infer().await {
        Ok(config) => kube::Client::try_from(config).map_err(|e| e.to_string()),
        Err(e) => Err(format!("no Kubernetes credentials found ({e})")),
    };
    match (client, args.cluster_lookups) {
        (Ok(client), _) => Ok(ClusterLookups::Watch { client, scope }),
        (Err(e), ClusterMode::Kube) => Err(format!("--cluster-lookups kube: {e}")),
        (Err(e), _) => {
            tracing::warn!(error = %e, "cross-object rules will stay silent: not reading the cluster");
            Ok(ClusterLookups::None)
        }
    }
}

pub fn run_certs(command: &CertsCommand) -> ExitCode {
    let CertsCommand::Generate(args) = command;
    let ca = args.ca_cert.as_deref().zip(args.ca_key.as_deref());
    match generate_certs(&args.out, &args.dns, &args.ips, ca) {
        Ok(written) => {
            println!("{}", written.tls_cert.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("bloodraven: {message}");
    ExitCode::from(2)
}
