//! Sidecar metrics: the fence state and why, self-fences by reason, contact outcomes with
//! the operator and the peers, authentication refusals and requests per route.
//!
//! Every label comes from a fixed vocabulary ([`FenceReason`], `operator`/`peer`, the
//! route table, a status class): never a peer's address, a path as requested or error text.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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
