//! What `bloodraven serve` is told on the command line.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::lint::LintLimits;
use crate::adapters::kube::WatchScope;
use crate::policy::rules::{Catalog, LintConfig, ObjectContext};

/// The `ServiceAccount` the operator runs as; only it may write the status of our resources.
pub const DEFAULT_OPERATOR_SERVICE_ACCOUNT: &str =
    "system:serviceaccount:bloodraven-system:bloodraven";
/// The largest request body accepted (the API server's own limit for objects is 3 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Everything the HTTPS server needs.
#[derive(Clone)]
pub struct ServeOptions {
    /// Where to listen (`0.0.0.0:8443`).
    pub listen: SocketAddr,
    /// Directory with `tls.crt` and `tls.key` (a mounted Secret or `certs generate` output).
    pub cert_dir: PathBuf,
    /// The only user allowed to change the `status` subresource of our resources.
    pub operator_service_account: String,
    /// Allow an UPDATE that adds no new required finding (existing objects never brick).
    pub ratchet: bool,
    /// Larger bodies get 413.
    pub max_body_bytes: usize,
    /// Deadline of admission (and every other non-lint) request; the webhook
    /// configurations allow 5 s, so stay well below.
    pub request_timeout: Duration,
    /// Admission evaluations running at once, on threads of their own that `/lint` never
    /// uses; the rest wait, within the deadline.
    pub max_concurrency: usize,
    /// `/lint` evaluations running at once, on their own threads.
    pub lint_concurrency: usize,
    /// `/lint` requests that may wait for a thread; beyond them the answer is 429 at once,
    /// before the body is read.
    pub lint_queue: usize,
    /// Deadline of a `/lint` request, from its head to the last byte of its response;
    /// work past it is cancelled.
    pub lint_timeout: Duration,
    /// Per-request bounds of `/lint`: documents, sites per group, findings, output bytes.
    pub lint_limits: LintLimits,
    /// How often the certificate files are checked for changes.
    pub reload_interval: Duration,
    /// The user's lint configuration (levels, disabled rules, exemptions).
    pub lint_config: LintConfig,
    /// The rule catalog; `None` means the one compiled into the binary.
    pub catalog: Option<Arc<Catalog>>,
    /// Where cross-object rules look up Secrets, `StorageClasses` and the rest.
    pub cluster: ClusterLookups,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8443)),
            cert_dir: PathBuf::from("/etc/bloodraven/tls"),
            operator_service_account: DEFAULT_OPERATOR_SERVICE_ACCOUNT.to_owned(),
            ratchet: true,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_timeout: Duration::from_secs(4),
            max_concurrency: cores() * 2,
            // Lint is CPU-bound for seconds at a time: leave cores to admission.
            lint_concurrency: (cores() / 2).max(1),
            lint_queue: 2,
            lint_timeout: Duration::from_secs(20),
            lint_limits: LintLimits::default(),
            reload_interval: Duration::from_secs(5),
            lint_config: LintConfig::default(),
            catalog: None,
            cluster: ClusterLookups::None,
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("listen", &self.listen)
            .field("cert_dir", &self.cert_dir)
            .field("operator_service_account", &self.operator_service_account)
            .field("ratchet", &self.ratchet)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("max_concurrency", &self.max_concurrency)
            .field("lint_concurrency", &self.lint_concurrency)
            .field("lint_queue", &self.lint_queue)
            .field("lint_timeout", &self.lint_timeout)
            .field("lint_limits", &self.lint_limits)
            .field("reload_interval", &self.reload_interval)
            .field("custom_catalog", &self.catalog.is_some())
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

/// Where cross-object rules read the cluster from.
#[derive(Clone, Default)]
pub enum ClusterLookups {
    /// Nowhere: those rules stay silent rather than guess.
    #[default]
    None,
    /// A context the caller keeps current (tests, embedders).
    Context(Arc<dyn ObjectContext>),
    /// A cache the server fills by watching the API server with this client.
    Watch {
        client: kube::Client,
        scope: WatchScope,
    },
}

impl std::fmt::Debug for ClusterLookups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Context(_) => f.write_str("Context"),
            Self::Watch { scope, .. } => f.debug_struct("Watch").field("scope", scope).finish(),
        }
    }
}
