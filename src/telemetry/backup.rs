//! Backup metrics: the last success, duration and size of each kind of run (`backup`,
//! `restore`, `binlog_archive`), and runs by outcome. The original exported no restore
//! metrics at all; here a restore is measured like a backup.
//!
//! Labels come from fixed vocabularies (the kind, the outcome, the error category) and
//! from configuration (the backup profile's name; standalone mode has one profile,
//! `default`): never from ids, paths or error text. The operator registers one set per
//! group under `namespace` and `group` labels, as it does the failover families.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::error::Category;
use crate::failover::Timestamp;

/// What ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Backup,
    Restore,
    BinlogArchive,
    /// A backup restored into a throwaway server and checked (MysqlBackupVerification).
    Verification,
}

impl RunKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Backup => "backup",
            Self::Restore => "restore",
            Self::BinlogArchive => "binlog_archive",
            Self::Verification => "verification",
        }
    }
}

/// The profile standalone mode reports under: it has one repository.
pub const STANDALONE_PROFILE: &str = "default";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: String,
    profile: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    kind: String,
    profile: String,
    outcome: String,
}

/// The backup families, registered into one [`Registry`].
#[derive(Debug, Clone, Default)]
pub struct BackupMetrics {
    last_success: Family<Kind, Gauge>,
    duration: Family<Kind, Gauge<f64, AtomicU64>>,
    bytes: Family<Kind, Gauge>,
    runs: Family<RunLabels, Counter>,
}

impl BackupMetrics {
    /// Registers every family into `registry` (prefix it with `bloodraven` first).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "backup_last_success_timestamp_seconds",
            "Unix time of the last successful run of each kind (backup, restore, binlog_archive)",
            metrics.last_success.clone(),
        );
        registry.register(
            "backup_last_duration_seconds",
            "Wall time of the last successful run of each kind",
            metrics.duration.clone(),
        );
        registry.register(
            "backup_last_size_bytes",
            "Bytes stored by the last successful backup, loaded by the last restore, archived by the last archive pass",
            metrics.bytes.clone(),
        );
        registry.register(
            "backup_runs",
            "Runs by kind and outcome (succeeded, or the failure's category)",
            metrics.runs.clone(),
        );
        metrics
    }

    /// A run of `profile` that succeeded at `finished`, taking `took`, moving `bytes`.
    pub fn succeeded(
        &self,
        kind: RunKind,
        profile: &str,
        finished: Timestamp,
        took: Duration,
        bytes: u64,
    ) {
        self.record_last_success(kind, profile, finished, took, bytes);
        self.count(kind, profile, "succeeded");
    }

    /// Sets the last-success gauges without counting a run. The operator derives them from
    /// the stored `MysqlBackup` objects on every pass, so a new leader reports the same
    /// values as the old one; only the runs it sees finish are counted.
    pub fn record_last_success(
        &self,
        kind: RunKind,
        profile: &str,
        finished: Timestamp,
        took: Duration,
        bytes: u64,
    ) {
        let label = Kind {
            kind: kind.as_str().to_owned(),
            profile: profile.to_owned(),
        };
        self.last_success
            .get_or_create(&label)
            .set(i64::try_from(finished.as_millis() / 1000).unwrap_or(i64::MAX));
        self.duration.get_or_create(&label).set(took.as_secs_f64());
        self.bytes
            .get_or_create(&label)
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// A run of `profile` that failed with an error of `category`.
    pub fn failed(&self, kind: RunKind, profile: &str, category: Category) {
        self.count(kind, profile, category.as_str());
    }

    /// A run of `profile` that ended with `outcome`, a word from a fixed vocabulary
    /// (`succeeded`, an error category, or the operator's failure reasons).
    pub fn count(&self, kind: RunKind, profile: &str, outcome: &'static str) {
        self.runs
            .get_or_create(&RunLabels {
                kind: kind.as_str().to_owned(),
                profile: profile.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Forgets every series (the group was deleted).
    pub fn clear(&self) {
        self.last_success.clear();
        self.duration.clear();
        self.bytes.clear();
        self.runs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_exposed_with_bounded_labels() {
        let mut registry = Registry::with_prefix("bloodraven");
        let metrics = BackupMetrics::register(&mut registry);
        metrics.succeeded(
            RunKind::Backup,
            "nightly",
            Timestamp::from_millis(1_764_689_400_500),
            Duration::from_millis(2500),
            1234,
        );
        metrics.failed(RunKind::BinlogArchive, "nightly", Category::Unavailable);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(
            text.contains(
                "bloodraven_backup_last_success_timestamp_seconds{kind=\"backup\",profile=\"nightly\"} 1764689400"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "bloodraven_backup_last_duration_seconds{kind=\"backup\",profile=\"nightly\"} 2.5"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "bloodraven_backup_last_size_bytes{kind=\"backup\",profile=\"nightly\"} 1234"
            ),
            "{text}"
        );
        assert!(
            text.contains("bloodraven_backup_runs_total{kind=\"backup\",profile=\"nightly\",outcome=\"succeeded\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "bloodraven_backup_runs_total{kind=\"binlog_archive\",profile=\"nightly\",outcome=\"unavailable\"} 1"
            ),
            "{text}"
        );
    }
}
