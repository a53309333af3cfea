//! Prometheus metrics of the HTTPS server. Every label value comes from a fixed set (routes,
//! status codes, operations, decisions) or from the rule catalog (rule IDs, levels), never
//! from request content, so cardinality stays bounded.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::adapters::kube::requests::RequestMetrics;
use crate::policy::rules::{Finding, Level};
use crate::telemetry::backup::BackupMetrics;
use crate::telemetry::cluster_cache::CacheMetrics;
use crate::telemetry::failover::FailoverMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    source: &'static str,
    rule: String,
    level: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    webhook: &'static str,
    operation: &'static str,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

/// Where findings were produced.
#[derive(Debug, Clone, Copy)]
pub enum FindingSource {
    Admission,
    Lint,
}

/// What an admission webhook answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    AllowedWithWarnings,
    Denied,
    Patched,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::AllowedWithWarnings => "allowed_with_warnings",
            Self::Denied => "denied",
            Self::Patched => "patched",
        }
    }
}

/// The server's metrics and the registry they are exposed from.
pub struct ServeMetrics {
    /// Behind a lock because each failover group registers its families (under its own
    /// `namespace` and `group` labels) when the operator first drives it.
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    findings: Family<FindingLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    cert_reloads: Family<ReloadLabels, Counter>,
    cert_expiry: Gauge,
    lint_slots: Gauge,
    lint_cancelled: Counter,
    cluster_cache: CacheMetrics,
    groups: Mutex<HashMap<(String, String), Arc<FailoverMetrics>>>,
    backups: Mutex<HashMap<(String, String), Arc<BackupMetrics>>>,
    kube_requests: RequestMetrics,
}

impl std::fmt::Debug for ServeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServeMetrics")
    }
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~3.3 s: admission is sub-millisecond, the deadline is seconds.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

impl Default for ServeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ServeMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("bloodraven");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let findings = Family::<FindingLabels, Counter>::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        let cert_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTPS requests served, by route and status code",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request head to response, by route",
            latency.clone(),
        );
        registry.register(
            "findings",
            "Active rule findings reported by admission and /lint, by rule and level",
            findings.clone(),
        );
        registry.register(
            "admission_decisions",
            "Admission answers by webhook, operation and decision",
            decisions.clone(),
        );
        registry.register(
            "tls_certificate_reloads",
            "Serving certificate reload attempts after the files changed, by result",
            cert_reloads.clone(),
        );
        let cert_expiry = Gauge::default();
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When the serving certificate in use expires (its notAfter, Unix seconds)",
            cert_expiry.clone(),
        );
        let lint_slots = Gauge::default();
        registry.register(
            "lint_slots_in_use",
            "/lint requests holding a slot: evaluating, streaming or waiting for a thread",
            lint_slots.clone(),
        );
        let lint_cancelled = Counter::default();
        registry.register(
            "lint_cancelled",
            "/lint evaluations stopped early because the deadline passed or the client went away",
            lint_cancelled.clone(),
        );
        let cluster_cache = CacheMetrics::default();
        cluster_cache.register(&mut registry);
        let kube_requests = RequestMetrics::default();
        kube_requests.register(&mut registry);
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
            findings,
            decisions,
            cert_reloads,
            cert_expiry,
            lint_slots,
            lint_cancelled,
            cluster_cache,
            groups: Mutex::new(HashMap::new()),
            backups: Mutex::new(HashMap::new()),
            kube_requests,
        }
    }

    /// The metrics of the cluster cache behind cross-object rules.
    pub fn cluster_cache(&self) -> &CacheMetrics {
        &self.cluster_cache
    }

    /// Registers more families into the exposed registry (the operator's, once it starts).
    pub fn register_with(&self, register: impl FnOnce(&mut Registry)) {
        register(&mut self.registry.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// What counts the operator's requests to the Kubernetes API.
    pub fn kube_requests(&self) -> RequestMetrics {
        self.kube_requests.clone()
    }

    /// The failover metrics of one group, labelled `namespace` and `group` (registered on
    /// first use; a group's loop rebuilt later reports into the same series). One /metrics
    /// serves admission and every group's failover alike.
    pub fn group_failover(&self, namespace: &str, group: &str) -> Arc<FailoverMetrics> {
        self.per_group(&self.groups, namespace, group, FailoverMetrics::register)
    }

    /// The backup metrics of one group, labelled `namespace` and `group` like
    /// [`Self::group_failover`]'s (registered on first use).
    pub fn group_backups(&self, namespace: &str, group: &str) -> Arc<BackupMetrics> {
        self.per_group(&self.backups, namespace, group, BackupMetrics::register)
    }

    /// One group's set of `T` from `sets`, registered on first use under the group's
    /// `namespace` and `group` labels.
    fn per_group<T>(
        &self,
        sets: &Mutex<HashMap<(String, String), Arc<T>>>,
        namespace: &str,
        group: &str,
        register: impl FnOnce(&mut Registry) -> T,
    ) -> Arc<T> {
        let mut sets = sets.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (namespace.to_owned(), group.to_owned());
        if let Some(metrics) = sets.get(&key) {
            return Arc::clone(metrics);
        }
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let labelled = registry.sub_registry_with_labels(
            [
                (Cow::Borrowed("namespace"), Cow::Owned(key.0.clone())),
                (Cow::Borrowed("group"), Cow::Owned(key.1.clone())),
            ]
            .into_iter(),
        );
        let metrics = Arc::new(register(labelled));
        sets.insert(key, Arc::clone(&metrics));
        metrics
    }

    /// A group was deleted: its per-site and backup series go (see
    /// [`FailoverMetrics::clear`]).
    pub fn forget_group(&self, namespace: &str, group: &str) {
        let key = (namespace.to_owned(), group.to_owned());
        let groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(metrics) = groups.get(&key) {
            metrics.clear();
        }
        drop(groups);
        let backups = self.backups.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(metrics) = backups.get(&key) {
            metrics.clear();
        }
    }

    pub fn observe_request(&self, route: &'static str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                code: status_label(status),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(elapsed.as_secs_f64());
    }

    pub fn observe_findings<'a>(
        &self,
        source: FindingSource,
        findings: impl IntoIterator<Item = &'a Finding>,
    ) {
        let source = match source {
            FindingSource::Admission => "admission",
            FindingSource::Lint => "lint",
        };
        for f in findings.into_iter().filter(|f| f.is_active()) {
            self.findings
                .get_or_create(&FindingLabels {
                    source,
                    rule: f.rule_id.to_string(),
                    level: level_label(f.level),
                })
                .inc();
        }
    }

    pub fn observe_decision(
        &self,
        webhook: &'static str,
        operation: &'static str,
        decision: Decision,
    ) {
        self.decisions
            .get_or_create(&DecisionLabels {
                webhook,
                operation,
                decision: decision.as_str(),
            })
            .inc();
    }

    pub fn observe_cert_reload(&self, ok: bool) {
        self.cert_reloads
            .get_or_create(&ReloadLabels {
                result: if ok { "success" } else { "failure" },
            })
            .inc();
    }

    /// The certificate now served expires at `not_after` (Unix seconds).
    pub fn observe_cert_expiry(&self, not_after: i64) {
        self.cert_expiry.set(not_after);
    }

    /// A `/lint` request took (`true`) or gave back (`false`) a slot.
    pub fn observe_lint_slot(&self, taken: bool) {
        if taken {
            self.lint_slots.inc();
        } else {
            self.lint_slots.dec();
        }
    }

    pub fn observe_lint_cancelled(&self) {
        self.lint_cancelled.inc();
    }

    /// The `OpenMetrics` text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(crate::telemetry::exposition::openmetrics(&registry))
    }

    /// The Prometheus text format 0.0.4, for scrapers and tools that do not ask for
    /// `OpenMetrics` (promtool, curl).
    pub fn encode_prometheus_text(&self) -> Result<String, std::fmt::Error> {
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(crate::telemetry::exposition::prometheus_text(&registry))
    }
}

fn level_label(level: Level) -> &'static str {
    level.as_str()
}

/// Status codes the server produces, as static strings; anything else is folded by class.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        400 => "400",
        404 => "404",
        405 => "405",
        406 => "406",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        other => match other / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::ServeMetrics;

    #[test]
    fn a_forgotten_group_leaves_no_series_and_others_keep_theirs() {
        let metrics = ServeMetrics::new();
        for group in ["orders", "billing"] {
            let failover = metrics.group_failover("db", group);
            failover.observe_poll("iad", Duration::from_millis(3));
            failover.dns_flip("iad");
        }
        let series = |text: &str, group: &str| {
            text.lines()
                .filter(|l| !l.starts_with('#') && l.contains(&format!("group=\"{group}\"")))
                // Per-site series; the group's one unlabelled counter (hook failures)
                // cannot be unregistered and stays.
                .filter(|l| l.contains("site=\""))
                .count()
        };
        let before = metrics.encode().unwrap();
        assert!(series(&before, "orders") > 0, "{before}");
        metrics.forget_group("db", "orders");
        let after = metrics.encode().unwrap();
        assert_eq!(series(&after, "orders"), 0, "{after}");
        assert_eq!(series(&after, "billing"), series(&before, "billing"));
        // Created again under the same name: it reports into the same families.
        metrics.group_failover("db", "orders").dns_flip("pdx");
        assert!(series(&metrics.encode().unwrap(), "orders") > 0);
    }
}
