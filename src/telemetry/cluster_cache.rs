//! Metrics of the cluster cache the admission webhooks read ([`crate::adapters::kube`]).
//!
//! The only label is the kind, from the fixed list of looked-up kinds, so cardinality is
//! bounded by that list.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// Whether each kind is synced, how many objects are cached, and how often watches failed.
#[derive(Debug, Clone)]
pub struct CacheMetrics {
    synced: Family<KindLabels, Gauge>,
    objects: Family<KindLabels, Gauge>,
    watch_errors: Family<KindLabels, Counter>,
}

impl Default for CacheMetrics {
    /// Every looked-up kind is exported from the start, so "not synced" (or lookups
    /// switched off) is a 0 an alert can see rather than a missing series.
    fn default() -> Self {
        let metrics = Self {
            synced: Family::default(),
            objects: Family::default(),
            watch_errors: Family::default(),
        };
        for kind in crate::policy::rules::builtin::LOOKUP_KINDS {
            metrics.set_synced(kind, false);
            metrics.set_objects(kind, 0);
            drop(metrics.watch_errors.get_or_create(&KindLabels { kind }));
        }
        metrics
    }
}

impl CacheMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "cluster_cache_synced",
            "1 once a watch of the kind has completed its initial list, else 0",
            self.synced.clone(),
        );
        registry.register(
            "cluster_cache_objects",
            "Objects of the kind held for cross-object admission rules",
            self.objects.clone(),
        );
        registry.register(
            "cluster_watch_errors",
            "Watch or list failures of the kind (retried with backoff)",
            self.watch_errors.clone(),
        );
    }

    pub fn set_synced(&self, kind: &'static str, synced: bool) {
        self.synced
            .get_or_create(&KindLabels { kind })
            .set(i64::from(synced));
    }

    pub fn set_objects(&self, kind: &'static str, count: usize) {
        self.objects
            .get_or_create(&KindLabels { kind })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub fn watch_error(&self, kind: &'static str) {
        self.watch_errors.get_or_create(&KindLabels { kind }).inc();
    }
}
