//! Backups in standalone mode: a scheduled (and `POST /backup`) backup of the site the
//! failover core says is the best source, retention after each, and the binary-log
//! archiver following the active primary. The same engine as `bloodraven backup`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Mutex, watch};

use super::config::{ArchiveConfig, BackupConfig, SiteConfig};
use crate::adapters::mysql::{BackupServer, ClientTls, Credentials};
use crate::adapters::storage::{ObjectRepository, S3Settings};
use crate::backup::source;
use crate::control::ControlHandle;
use crate::control::backup::Catalog;
use crate::error::Categorized as _;
use crate::ports::artifacts::BlobStore;
use crate::shells::backup::{
    ABANDONED_AFTER, Archiver, BackupError, BackupRequest, PruneSchedule, report, take_backup,
};
use crate::telemetry::backup::{BackupMetrics, RunKind, STANDALONE_PROFILE};

/// Takes the group's backups; one at a time.
pub struct Backups {
    config: BackupConfig,
    store: Arc<dyn BlobStore>,
    sites: Vec<SiteConfig>,
    credentials: Credentials,
    handle: ControlHandle,
    max_lag_seconds: u64,
    metrics: BackupMetrics,
    running: Mutex<()>,
}

impl Backups {
    pub fn new(
        config: BackupConfig,
        sites: Vec<SiteConfig>,
        credentials: Credentials,
        handle: ControlHandle,
        max_lag_seconds: u64,
        metrics: BackupMetrics,
    ) -> Result<Self, BackupError> {
        let store = Arc::new(ObjectRepository::open(
            &config.repository,
            &S3Settings::default(),
        )?);
        Ok(Self {
            config,
            store,
            sites,
            credentials,
            handle,
            max_lag_seconds,
            metrics,
            running: Mutex::new(()),
        })
    }

    /// Takes a backup now, then applies retention. `None` when one is already running.
    pub async fn take(&self) -> Option<Result<Value, BackupError>> {
        let _running = self.running.try_lock().ok()?;
        let started = std::time::Instant::now();
        let outcome = self.take_locked().await;
        match &outcome {
            Ok(value) => self.metrics.succeeded(
                RunKind::Backup,
                STANDALONE_PROFILE,
                crate::shells::backup::now(),
                started.elapsed(),
                value["storedBytes"].as_u64().unwrap_or(0),
            ),
            Err(e) => self
                .metrics
                .failed(RunKind::Backup, STANDALONE_PROFILE, e.category()),
        }
        Some(outcome)
    }

    async fn take_locked(&self) -> Result<Value, BackupError> {
        let status = self
            .handle
            .status()
            .ok_or_else(|| BackupError::Runtime("no poll has completed yet".to_owned()))?;
        let (site, reason) = source::choose(&status, self.max_lag_seconds).ok_or_else(|| {
            BackupError::Runtime(
                "no healthy source: no caught-up replica and no writable primary".to_owned(),
            )
        })?;
        let address = self
            .sites
            .iter()
            .find(|s| s.name == site)
            .map(|s| s.address.clone())
            .ok_or_else(|| BackupError::Runtime(format!("site {site} is not configured")))?;
        tracing::info!(site, reason = reason.as_str(), "backup source chosen");
        let request = BackupRequest {
            id: None,
            source: address,
            credentials: self.credentials.clone(),
            tls: ClientTls::Required { ca: None },
            method: self.config.method,
            threads: self.config.threads,
            chunk_bytes: 8 << 20,
            clone_dir: None,
            schemas: crate::backup::logical::SchemaFilter::default(),
            passphrase: self.config.passphrase.clone(),
        };
        let (manifest, contents) = take_backup(self.store.clone(), request).await?;
        let now = crate::shells::backup::now();
        let pruned = Catalog::new(self.store.clone(), ABANDONED_AFTER)
            .prune(self.config.retention, now)
            .await?;
        let mut value: Value = serde_json::from_str(&report(&manifest, &contents)?)
            .map_err(|e| BackupError::Runtime(e.to_string()))?;
        if let Some(object) = value.as_object_mut() {
            object.insert("sourceSite".to_owned(), Value::String(site));
            object.insert(
                "sourceReason".to_owned(),
                Value::String(reason.as_str().to_owned()),
            );
            object.insert("pruned".to_owned(), serde_json::json!(pruned.deleted));
        }
        Ok(value)
    }

    /// Every backup in the repository, oldest first.
    pub async fn list(&self) -> Result<Value, BackupError> {
        let entries = Catalog::new(self.store.clone(), ABANDONED_AFTER)
            .list(crate::shells::backup::now())
            .await?;
        serde_json::to_value(entries).map_err(|e| BackupError::Runtime(e.to_string()))
    }

    /// Takes a backup every `every` until `stop`.
    pub async fn run_schedule(self: Arc<Self>, every: Duration, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is now: wait one period first
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            match self.take().await {
                Some(Ok(value)) => tracing::info!(id = %value["id"], "scheduled backup complete"),
                Some(Err(e)) => tracing::warn!(error = %e, "scheduled backup failed"),
                None => tracing::info!("scheduled backup skipped: one is still running"),
            }
        }
    }

    pub fn every(&self) -> Option<Duration> {
        self.config.every
    }
}

/// Archives the active primary's closed binary logs every `interval` until `stop`,
/// following the primary across failovers.
pub async fn run_archiver(
    config: ArchiveConfig,
    sites: Vec<SiteConfig>,
    credentials: Credentials,
    passphrase: Option<Vec<u8>>,
    handle: ControlHandle,
    metrics: BackupMetrics,
    mut stop: watch::Receiver<bool>,
) {
    let store: Arc<dyn BlobStore> =
        match ObjectRepository::open(&config.repository, &S3Settings::default()) {
            Ok(store) => Arc::new(store),
            Err(e) => {
                tracing::error!(error = %e, "binlog archiver: cannot open the repository");
                return;
            }
        };
    let mut archiver: Option<Archiver> = None;
    let mut prunes = config
        .prune
        .then(|| PruneSchedule::every(Duration::from_secs(3600)));
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let Some(active) = handle.status().and_then(|s| s.active_site) else {
            continue;
        };
        let Some(address) = sites
            .iter()
            .find(|s| s.name == active)
            .map(|s| s.address.clone())
        else {
            continue;
        };
        let server = match BackupServer::new(
            &address,
            credentials.clone(),
            ClientTls::Required { ca: None },
        ) {
            Ok(server) => server,
            Err(e) => {
                tracing::warn!(error = %e, "binlog archiver: bad address");
                continue;
            }
        };
        let current = match archiver.take() {
            Some(existing) => existing.with_server(server),
            None => match Archiver::new(
                store.clone(),
                server,
                config.tools.clone(),
                passphrase.clone(),
            )
            .await
            {
                Ok(created) => created,
                Err(e) => {
                    tracing::warn!(error = %e, "binlog archiver: cannot start");
                    continue;
                }
            },
        };
        let started = std::time::Instant::now();
        match current.pass(config.rotate).await {
            Ok(logs) => {
                // A pass with nothing new still succeeded: the archive is current.
                let bytes = logs.iter().map(|log| log.bytes).sum();
                metrics.succeeded(
                    RunKind::BinlogArchive,
                    STANDALONE_PROFILE,
                    crate::shells::backup::now(),
                    started.elapsed(),
                    bytes,
                );
                if !logs.is_empty() {
                    tracing::info!(site = %active, count = logs.len(), "archived binary logs");
                }
            }
            Err(e) => {
                metrics.failed(RunKind::BinlogArchive, STANDALONE_PROFILE, e.category());
                tracing::warn!(site = %active, error = %e, "binlog archive pass failed; retrying");
            }
        }
        archiver = Some(current);
        if let Some(prunes) = prunes.as_mut() {
            prunes.prune_if_due(&store).await;
        }
    }
}

/// Starts what the config's `backup` and `binlogArchive` sections ask for: the backup
/// schedule and the archiver, each until `stop`. The [`Backups`] serve `POST /backup`.
pub fn start(
    config: &super::config::StandaloneConfig,
    handle: &ControlHandle,
    registry: &mut prometheus_client::registry::Registry,
    stop: &watch::Receiver<bool>,
) -> Result<Option<Arc<Backups>>, super::StandaloneError> {
    let metrics = BackupMetrics::register(registry);
    let backups = match &config.backup {
        None => None,
        Some(backup) => Some(Arc::new(
            Backups::new(
                backup.clone(),
                config.sites.clone(),
                config.operator.clone(),
                handle.clone(),
                config.max_lag_seconds,
                metrics.clone(),
            )
            .map_err(|e| super::StandaloneError::Runtime(format!("backup repository: {e}")))?,
        )),
    };
    if let Some(backups) = &backups
        && let Some(every) = backups.every()
    {
        tokio::spawn(backups.clone().run_schedule(every, stop.clone()));
    }
    if let Some(archive) = &config.binlog_archive {
        tokio::spawn(run_archiver(
            archive.clone(),
            config.sites.clone(),
            config.operator.clone(),
            config.backup.as_ref().and_then(|b| b.passphrase.clone()),
            handle.clone(),
            metrics,
            stop.clone(),
        ));
    }
    Ok(backups)
}
