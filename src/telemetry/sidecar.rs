//! Sidecar metrics: the fence state and why, self-fences by reason, contact outcomes with
//! the operator and the peers, authentication refusals and requests per route; and the
//! operator's endpoint for the sidecars ([`EndpointMetrics`]).
//!
//! Every label comes from a fixed vocabulary ([`FenceReason`], `operator`/`peer`, the
//! route table, a status class): never a peer's address, a path as requested or error text.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::failover::guard::FenceReason;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContactLabels {
    source: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    handler: &'static str,
    status: &'static str,
}

/// The sidecar's families, registered into one [`Registry`].
#[derive(Debug, Clone, Default)]
pub struct SidecarMetrics {
    fenced: Family<Reason, Gauge>,
    self_fences: Family<Reason, Counter>,
    contacts: Family<ContactLabels, Counter>,
    auth_refused: Family<Reason, Counter>,
    requests: Family<RequestLabels, Counter>,
    cleared: Gauge,
    last_contact_age_ms: Gauge,
}

impl SidecarMetrics {
    /// Registers every family into `registry` (prefix it with `bloodraven` first).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "sidecar_fenced",
            "1 for the reason this sidecar holds its MySQL fenced, 0 for the others",
            m.fenced.clone(),
        );
        registry.register(
            "sidecar_self_fences",
            "Times this sidecar fenced its MySQL (super_read_only and killed sessions), by reason",
            m.self_fences.clone(),
        );
        registry.register(
            "sidecar_contacts",
            "Polls of the operator's active-site endpoint and of the peers, by outcome",
            m.contacts.clone(),
        );
        registry.register(
            "sidecar_auth_refused",
            "Requests refused for missing or wrong credentials, by reason",
            m.auth_refused.clone(),
        );
        registry.register(
            "sidecar_http_requests",
            "HTTP requests served, by route and status class",
            m.requests.clone(),
        );
        registry.register(
            "sidecar_cleared",
            "1 while a fresh confirmation names this site as active",
            m.cleared.clone(),
        );
        registry.register(
            "sidecar_last_contact_age_milliseconds",
            "How long ago the operator or a peer last answered",
            m.last_contact_age_ms.clone(),
        );
        for reason in FenceReason::ALL {
            m.fenced
                .get_or_create(&Reason {
                    reason: reason.as_str(),
                })
                .set(0);
            let _ = m.self_fences.get_or_create(&Reason {
                reason: reason.as_str(),
            });
        }
        m
    }

    /// The reason the fence is held for now (`None`: not held by the sidecar).
    pub fn set_fenced(&self, held: Option<FenceReason>) {
        for reason in FenceReason::ALL {
            self.fenced
                .get_or_create(&Reason {
                    reason: reason.as_str(),
                })
                .set(i64::from(held == Some(reason)));
        }
    }

    pub fn observe_self_fence(&self, reason: FenceReason) {
        self.self_fences
            .get_or_create(&Reason {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// `peer` false: the operator.
    pub fn observe_contact(&self, peer: bool, ok: bool) {
        self.contacts
            .get_or_create(&ContactLabels {
                source: if peer { "peer" } else { "operator" },
                outcome: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// `reason` is one of a fixed set (`no_token`, `bad_token`, `no_client_certificate`).
    pub fn observe_auth_refused(&self, reason: &'static str) {
        self.auth_refused.get_or_create(&Reason { reason }).inc();
    }

    pub fn observe_request(&self, handler: &'static str, status: u16) {
        let status = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests
            .get_or_create(&RequestLabels { handler, status })
            .inc();
    }

    pub fn set_cleared(&self, cleared: bool) {
        self.cleared.set(i64::from(cleared));
    }

    pub fn set_last_contact_age(&self, age: std::time::Duration) {
        self.last_contact_age_ms
            .set(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnswerLabels {
    answer: &'static str,
}

/// The operator's endpoint for the sidecars (`serve --sidecar-listen`), RED style: requests
/// and their duration by answer. The answer is one of a fixed set ([`EndpointMetrics::ANSWERS`]),
/// never the namespace or group as requested: anyone can ask for any path, and a label per
/// guess would grow without bound.
#[derive(Debug, Clone)]
pub struct EndpointMetrics {
    requests: Family<AnswerLabels, Counter>,
    duration: Family<AnswerLabels, Histogram, fn() -> Histogram>,
}

/// From 1 ms (a cached token) to the 2 s request deadline (a slow Secret read).
fn endpoint_duration_histogram() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0])
}

impl Default for EndpointMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(endpoint_duration_histogram),
        }
    }
}

impl EndpointMetrics {
    /// `active_site` (200), `unauthorized` (401), `not_found` (404: no such group or
    /// route), `unavailable` (503: not listed yet, no status, token unreadable, saturated
    /// or past the deadline), `other`.
    pub const ANSWERS: [&'static str; 5] = [
        "active_site",
        "unauthorized",
        "not_found",
        "unavailable",
        "other",
    ];

    /// Registers both families into `registry` (prefix it with `bloodraven` first), every
    /// answer at zero so a rate is defined before the first request.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sidecar_endpoint_requests",
            "Requests to the operator's sidecar endpoint, by answer (errors: every answer but active_site)",
            self.requests.clone(),
        );
        registry.register(
            "sidecar_endpoint_request_duration_seconds",
            "Time to answer a request to the operator's sidecar endpoint, by answer",
            self.duration.clone(),
        );
        for answer in Self::ANSWERS {
            let _ = self.requests.get_or_create(&AnswerLabels { answer });
            let _ = self.duration.get_or_create(&AnswerLabels { answer });
        }
    }

    /// One answered request: its HTTP status and how long it took.
    pub fn observe(&self, status: u16, elapsed: std::time::Duration) {
        let answer = match status {
            200 => "active_site",
            401 => "unauthorized",
            404 => "not_found",
            503 => "unavailable",
            _ => "other",
        };
        let labels = AnswerLabels { answer };
        self.requests.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_answers_map_to_a_fixed_label_set() {
        let metrics = EndpointMetrics::default();
        let mut registry = Registry::with_prefix("bloodraven");
        metrics.register(&mut registry);
        metrics.observe(200, std::time::Duration::from_millis(3));
        metrics.observe(401, std::time::Duration::from_millis(1));
        metrics.observe(418, std::time::Duration::from_millis(1));
        let text = crate::telemetry::exposition::prometheus_text(&registry);
        assert!(
            text.contains("bloodraven_sidecar_endpoint_requests_total{answer=\"active_site\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("bloodraven_sidecar_endpoint_requests_total{answer=\"unauthorized\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("bloodraven_sidecar_endpoint_requests_total{answer=\"other\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("bloodraven_sidecar_endpoint_requests_total{answer=\"unavailable\"} 0"),
            "{text}"
        );
        assert!(
            text.contains(
                "bloodraven_sidecar_endpoint_request_duration_seconds_bucket{le=\"0.005\",answer=\"active_site\"} 1"
            ),
            "{text}"
        );
    }
}
