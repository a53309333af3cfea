//! `bloodraven binlog archive`: uploads each closed binary log of a server, once, with the
//! GTIDs and the time span it holds; and the replay half of a point-in-time restore.
//!
//! A log's index object is written after all its parts, so a log is archived or not,
//! never half. A failed pass (the store or the server away) is retried on the next tick;
//! the server keeps its logs meanwhile, so an outage delays uploads and loses none unless
//! it outlasts `binlog_expire_logs_seconds`; a log purged before it was archived is
//! reported as an error (a gap no point-in-time restore can cross).

use std::collections::HashSet;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::error::BackupError;
use super::inputs::{MysqlLogin, S3Flags, Scratch, ToolFlags, passphrase};
use super::keys;
use crate::adapters::mysql::{BackupServer, BinaryLog, MysqlTools};
use crate::backup::codec::Codec;
use crate::backup::manifest::{EncryptionParams, MAX_MANIFEST_BYTES};
use crate::backup::pitr::{ArchivedBinlog, BINLOGS_DIR, ReplayPlan, prunable, scan_events};
use crate::ports::artifacts::{BlobStore, StoredArtifact};

/// Each archived log is stored in parts of this size, so memory stays bounded whatever
/// `max_binlog_size` is.
const PART_BYTES: usize = 8 << 20;

#[derive(Debug, Subcommand)]
pub enum BinlogCommand {
    /// Archive closed binary logs for point-in-time recovery (once, or every --interval).
    Archive(ArchiveArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ArchiveArgs {
    /// The server whose binary logs to archive, host:port.
    #[arg(long, value_name = "HOST:PORT")]
    pub source: String,
    /// The repository: s3://bucket/prefix or file:///path.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// One pass, then exit (non-zero if it failed).
    #[arg(long)]
    pub once: bool,
    /// Seconds between passes.
    #[arg(long, default_value_t = 60)]
    pub interval: u64,
    /// On every pass, close the current log first (FLUSH BINARY LOGS) when it holds
    /// transactions: the archive is then at most one interval behind, at the cost of one
    /// log per interval. Without it a log is archived once the server closes it
    /// (max_binlog_size, a restart).
    #[arg(long)]
    pub rotate: bool,
    /// After a pass, at most every --prune-interval seconds, delete the archived logs that
    /// every complete backup in the repository holds (no restore from a kept backup needs
    /// them; see `docs/backup.md`). With --once, after the one pass.
    #[arg(long)]
    pub prune: bool,
    /// Seconds between two prunes.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub prune_interval: u64,
    /// Serve `GET /summary` here over plain HTTP: what the archive holds after the last
    /// pass (log count, bytes, oldest and newest event), as `status.pitr` shows it; 503
    /// until the first pass completed. Not secret (no credential, no data). How the
    /// operator sees an archive on a volume it does not mount.
    #[arg(long, value_name = "ADDR:PORT", conflicts_with = "once")]
    pub status_listen: Option<std::net::SocketAddr>,
    /// File holding the passphrase to encrypt with (default: $BLOODRAVEN_BACKUP_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    pub encrypt_passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    pub login: MysqlLogin,
    #[command(flatten)]
    pub s3: S3Flags,
    #[command(flatten)]
    pub tools: ToolFlags,
}

pub(super) async fn archive(args: &ArchiveArgs) -> Result<String, BackupError> {
    let store = args.s3.open(&args.to)?;
    let server = BackupServer::new(&args.source, args.login.credentials()?, args.login.tls())
        .map_err(|e| BackupError::Input(e.to_string()))?;
    let secret = passphrase(
        args.encrypt_passphrase_file.as_deref(),
        "--encrypt-passphrase-file",
    )?;
    let archiver = Archiver::new(Arc::clone(&store), server, args.tools.tools(), secret).await?;
    if args.once {
        let names: Vec<String> = archiver
            .pass(args.rotate)
            .await?
            .into_iter()
            .map(|log| log.name)
            .collect();
        if args.prune {
            prune_covered(store, super::now()).await?;
        }
        return serde_json::to_string_pretty(&names)
            .map_err(|e| BackupError::Runtime(e.to_string()));
    }
    let status = match args.status_listen {
        Some(listen) => Some(StatusEndpoint::start(listen).await?),
        None => None,
    };
    let outcome = archive_forever(args, &archiver, &store, status.as_ref().map(|s| &s.last)).await;
    if let Some(status) = status {
        status.stop().await;
    }
    outcome
}

/// The `--status-listen` endpoint while the archiver runs.
struct StatusEndpoint {
    last: super::archive_status::LastSummary,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl StatusEndpoint {
    /// Binds before the first pass: a bad address or a taken port stops the archiver at
    /// once, naming the flag.
    async fn start(listen: std::net::SocketAddr) -> Result<Self, BackupError> {
        let (listener, bound) = super::archive_status::bind(listen).await?;
        tracing::info!(listen = %bound, "serving the archive summary (GET /summary, plain HTTP)");
        let last = super::archive_status::LastSummary::default();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(super::archive_status::serve(
            listener,
            last.clone(),
            stopped,
        ));
        Ok(Self { last, stop, task })
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The archive loop: a pass every `--interval` until interrupted, then the summary for
/// `--status-listen` when set, then a prune when due.
async fn archive_forever(
    args: &ArchiveArgs,
    archiver: &Archiver,
    store: &Arc<dyn BlobStore>,
    last: Option<&super::archive_status::LastSummary>,
) -> Result<String, BackupError> {
    let mut tick = tokio::time::interval(Duration::from_secs(args.interval.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prunes = args
        .prune
        .then(|| PruneSchedule::every(Duration::from_secs(args.prune_interval.max(1))));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(String::new()),
        }
        match archiver.pass(args.rotate).await {
            Ok(logs) if !logs.is_empty() => {
                tracing::info!(count = logs.len(), last = %logs[logs.len() - 1].name, "archived binary logs");
            }
            Ok(_) => {}
            // Retried on the next tick: the server still has the logs.
            Err(e) => tracing::warn!(error = %e, "binary log archive pass failed; retrying"),
        }
        // After a failed pass too: the archive is what it is, and a summary that only
        // moved on success would hide that an outage is the archive standing still.
        if let Some(last) = last {
            refresh_summary(&**store, last).await;
        }
        if let Some(prunes) = prunes.as_mut() {
            prunes.prune_if_due(store).await;
        }
    }
}

/// Bounds one summary of the archive (a listing and two reads per server).
const SUMMARY_TIMEOUT: Duration = Duration::from_secs(30);

/// Recomputes the summary the status endpoint answers; a failure keeps the last one (it
/// is retried after the next pass).
async fn refresh_summary(store: &dyn BlobStore, last: &super::archive_status::LastSummary) {
    match tokio::time::timeout(SUMMARY_TIMEOUT, archive_summary(store)).await {
        Ok(Ok(summary)) => last.set(summary),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot summarise the archive; the status keeps the last summary");
        }
        Err(_) => tracing::warn!(
            timeout = ?SUMMARY_TIMEOUT,
            "no summary of the archive in time; the status keeps the last summary"
        ),
    }
}

/// When an archiver loop prunes: at its first pass, then at most once per interval.
#[derive(Debug)]
pub struct PruneSchedule {
    every: Duration,
    last: Option<tokio::time::Instant>,
}

impl PruneSchedule {
    pub fn every(every: Duration) -> Self {
        Self { every, last: None }
    }

    /// [`prune_covered`] when due; a failure is logged and retried at the next prune
    /// (nothing is lost by pruning late).
    pub async fn prune_if_due(&mut self, store: &Arc<dyn BlobStore>) {
        if self.last.is_some_and(|at| at.elapsed() < self.every) {
            return;
        }
        self.last = Some(tokio::time::Instant::now());
        if let Err(e) = prune_covered(Arc::clone(store), super::now()).await {
            tracing::warn!(error = %e, "pruning the binary-log archive failed; retrying later");
        }
    }
}

/// Prunes the archive against the complete backups the repository holds now
/// ([`prune_archive`]); the pruned logs as `<server uuid>/<name>`.
pub async fn prune_covered(
    store: Arc<dyn BlobStore>,
    now: crate::failover::Timestamp,
) -> Result<Vec<String>, BackupError> {
    use crate::control::backup::{BackupState, Catalog};
    let entries = Catalog::new(Arc::clone(&store), super::ABANDONED_AFTER)
        .list(now)
        .await?;
    let mut kept = Vec::new();
    for entry in entries.iter().filter(|e| e.state == BackupState::Complete) {
        let Some(manifest) = &entry.manifest else {
            continue;
        };
        let set = crate::failover::gtid::GtidSet::parse(&manifest.gtid_executed).map_err(|e| {
            BackupError::Input(format!(
                "backup {}: its manifest's GTID set does not parse ({e}): not pruning the archive",
                entry.id
            ))
        })?;
        kept.push(set);
    }
    prune_archive(&*store, &kept).await
}

/// Archives one server's closed binary logs into one repository.
pub struct Archiver {
    store: Arc<dyn BlobStore>,
    server: BackupServer,
    tools: MysqlTools,
    codec: Codec,
    encryption: Option<EncryptionParams>,
}

impl Archiver {
    /// An archiver that encrypts when `passphrase` is set (deriving the key once).
    pub async fn new(
        store: Arc<dyn BlobStore>,
        server: BackupServer,
        tools: MysqlTools,
        passphrase: Option<Vec<u8>>,
    ) -> Result<Self, BackupError> {
        let (codec, encryption) = keys::sealing(passphrase).await?;
        Ok(Self {
            store,
            server,
            tools,
            codec,
            encryption,
        })
    }

    /// The same archiver, reading another server (the primary moved).
    #[must_use]
    pub fn with_server(mut self, server: BackupServer) -> Self {
        self.server = server;
        self
    }

    pub fn server(&self) -> &BackupServer {
        &self.server
    }

    /// Archives every closed log not archived yet (closing the current one first when
    /// `rotate` and it holds transactions); their index records.
    pub async fn pass(&self, rotate: bool) -> Result<Vec<ArchivedBinlog>, BackupError> {
        let db = |e: &dyn std::fmt::Display| BackupError::Database(e.to_string());
        if rotate {
            self.rotate_if_written().await?;
        }
        let (uuid, logs) = self.server.inventory().await.map_err(|e| db(&e))?;
        if uuid.is_empty() {
            return Err(BackupError::Database(
                "the server reports no server_uuid".to_owned(),
            ));
        }
        let dir = format!("{BINLOGS_DIR}/{uuid}");
        let archived: HashSet<String> = self
            .store
            .list(&dir)
            .await?
            .into_iter()
            .filter_map(|b| {
                b.key
                    .strip_suffix(".json")
                    .and_then(|k| k.rsplit('/').next())
                    .map(str::to_owned)
            })
            .collect();
        if let Some((last_archived, oldest_kept)) = purged_gap(&archived, &logs) {
            // The restore refuses a replay across the gap (its chain check); say so now,
            // while someone can still lengthen binlog_expire_logs_seconds.
            tracing::error!(
                last_archived,
                oldest_kept,
                "binary logs were purged before they were archived: point-in-time restores cannot cross this gap; take a new backup and keep logs longer than the archive interval"
            );
        }
        // Logs are archived in order, so everything up to the newest archived log is done
        // (or pruned since: see `prune_archive`, which always keeps the newest).
        let newest_archived = archived.iter().filter_map(|name| log_sequence(name)).max();
        let done_already = |name: &str| match (log_sequence(name), newest_archived) {
            (Some(sequence), Some(newest)) => sequence <= newest,
            _ => archived.contains(name),
        };
        let mut done = Vec::new();
        // Every log but the newest is closed; the next log's Previous_gtids bounds it.
        for pair in logs.windows(2) {
            let (log, next) = (&pair[0], &pair[1]);
            if done_already(&log.name) {
                continue;
            }
            let previous = self
                .server
                .previous_gtids(&log.name)
                .await
                .map_err(|e| db(&e))?;
            let until = self
                .server
                .previous_gtids(&next.name)
                .await
                .map_err(|e| db(&e))?;
            let scratch = Scratch::new("binlog")?;
            let path = self
                .tools
                .fetch(&self.server, &log.name, scratch.path())
                .await
                .map_err(|e| db(&e))?;
            let entry = self
                .upload(
                    &dir,
                    &uuid,
                    &log.name,
                    &path,
                    previous.clone(),
                    until.subtract(&previous),
                )
                .await?;
            tracing::info!(name = %log.name, gtids = %entry.gtids, bytes = entry.bytes, "archived binary log");
            done.push(entry);
        }
        Ok(done)
    }

    /// FLUSH BINARY LOGS when the current log holds a transaction, so an idle server does
    /// not fill the archive with empty logs.
    async fn rotate_if_written(&self) -> Result<(), BackupError> {
        let db = |e: &dyn std::fmt::Display| BackupError::Database(e.to_string());
        let (_, logs) = self.server.inventory().await.map_err(|e| db(&e))?;
        let Some(current) = logs.last() else {
            return Ok(());
        };
        let before = self
            .server
            .previous_gtids(&current.name)
            .await
            .map_err(|e| db(&e))?;
        let now = self.server.gtid_executed().await.map_err(|e| db(&e))?;
        if now.subtract(&before).is_empty() {
            return Ok(());
        }
        self.server.rotate().await.map_err(|e| db(&e))
    }

    async fn upload(
        &self,
        dir: &str,
        uuid: &str,
        name: &str,
        path: &std::path::Path,
        previous_gtids: crate::failover::gtid::GtidSet,
        gtids: crate::failover::gtid::GtidSet,
    ) -> Result<ArchivedBinlog, BackupError> {
        let io = |e: std::io::Error| BackupError::Runtime(format!("{}: {e}", path.display()));
        let scan_path = path.to_owned();
        let scan = tokio::task::spawn_blocking(move || {
            std::fs::File::open(&scan_path)
                .map(std::io::BufReader::new)
                .map(scan_events)
        })
        .await
        .map_err(|e| BackupError::Runtime(e.to_string()))?
        .map_err(io)?
        .map_err(|e| BackupError::Runtime(format!("{name}: {e}")))?;
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut parts = Vec::new();
        let mut bytes = 0u64;
        loop {
            let mut part = Vec::with_capacity(PART_BYTES);
            (&mut file)
                .take(PART_BYTES as u64)
                .read_to_end(&mut part)
                .map_err(io)?;
            if part.is_empty() && !parts.is_empty() {
                break;
            }
            let last = part.len() < PART_BYTES;
            bytes += part.len() as u64;
            let key = format!("{dir}/{name}/part-{:05}", parts.len());
            let record = self.put(&key, part).await?;
            parts.push(record);
            if last {
                break;
            }
        }
        let entry = ArchivedBinlog {
            name: name.to_owned(),
            server_uuid: uuid.to_owned(),
            gtids,
            previous_gtids,
            first_event: scan.first_event,
            last_event: scan.last_event,
            bytes,
            parts,
            encryption: self.encryption.clone(),
        };
        let index =
            serde_json::to_vec_pretty(&entry).map_err(|e| BackupError::Runtime(e.to_string()))?;
        self.store.put(&format!("{dir}/{name}.json"), index).await?;
        Ok(entry)
    }

    async fn put(&self, key: &str, plain: Vec<u8>) -> Result<StoredArtifact, BackupError> {
        let codec = self.codec.clone();
        let encode_key = key.to_owned();
        let (stored, record) =
            tokio::task::spawn_blocking(move || codec.encode(&encode_key, &plain))
                .await
                .map_err(|e| BackupError::Runtime(e.to_string()))??;
        self.store.put(key, stored).await?;
        Ok(record)
    }
}

/// A log's sequence number, from its name's numeric extension (`binlog.000042`: 42).
fn log_sequence(name: &str) -> Option<u64> {
    name.rsplit_once('.')?.1.parse().ok()
}

/// The newest archived log and the server's oldest kept log when logs between them are
/// gone: purged by the server before the archiver took them.
fn purged_gap(archived: &HashSet<String>, logs: &[BinaryLog]) -> Option<(String, String)> {
    let newest = archived
        .iter()
        .filter_map(|name| Some((log_sequence(name)?, name)))
        .max()?;
    let oldest = logs.first()?;
    let oldest_sequence = log_sequence(&oldest.name)?;
    (newest.0 + 1 < oldest_sequence).then(|| (newest.1.clone(), oldest.name.clone()))
}

/// Deletes the archived logs no kept backup needs ([`prunable`]: every GTID of the log in
/// every one of `kept`, the kept complete backups' GTID sets), over every server's archive;
/// their names. Each log's parts go first and its index last, so a prune cut short leaves
/// an index the next prune deletes again, never parts nobody lists.
pub async fn prune_archive(
    store: &dyn BlobStore,
    kept: &[crate::failover::gtid::GtidSet],
) -> Result<Vec<String>, BackupError> {
    let mut pruned = Vec::new();
    if kept.is_empty() {
        return Ok(pruned);
    }
    for uuid in store.list_dirs(BINLOGS_DIR).await? {
        let archive = archived_logs(store, &uuid).await?;
        for log in prunable(&archive, kept) {
            for part in &log.parts {
                store.delete(&part.key).await?;
            }
            store
                .delete(&format!("{BINLOGS_DIR}/{uuid}/{}.json", log.name))
                .await?;
            tracing::info!(name = %log.name, server = %uuid, gtids = %log.gtids, "pruned archived binary log: every kept backup holds it");
            pruned.push(format!("{uuid}/{}", log.name));
        }
    }
    Ok(pruned)
}

/// Every archived log of server `uuid`.
pub(super) async fn archived_logs(
    store: &dyn BlobStore,
    uuid: &str,
) -> Result<Vec<ArchivedBinlog>, BackupError> {
    let dir = format!("{BINLOGS_DIR}/{uuid}");
    let mut logs = Vec::new();
    for object in store.list(&dir).await? {
        if std::path::Path::new(&object.key)
            .extension()
            .is_none_or(|e| e != "json")
        {
            continue;
        }
        let bytes = store.get(&object.key, MAX_MANIFEST_BYTES).await?;
        let log: ArchivedBinlog = serde_json::from_slice(&bytes).map_err(|e| {
            BackupError::Input(format!(
                "{}: not an archived binary log index: {e}",
                object.key
            ))
        })?;
        logs.push(log);
    }
    Ok(logs)
}

/// What the archive of a repository holds, for `status.pitr`; also what `binlog archive
/// --status-listen` answers (JSON, camelCase), so the operator reads it the same way from
/// S3 and from an archiver on a volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveSummary {
    /// Archived logs, over every server.
    pub count: usize,
    /// Their stored bytes (parts as stored, encrypted or not).
    pub bytes: u64,
    /// Unix seconds of the oldest archived event and of the newest.
    pub oldest_event: Option<u32>,
    pub newest_event: Option<u32>,
}

/// Summarises the archive under [`BINLOGS_DIR`] from the listing, reading only the first
/// and last index of each server (bounded: two reads per server, however long the archive).
pub async fn archive_summary(store: &dyn BlobStore) -> Result<ArchiveSummary, BackupError> {
    let mut summary = ArchiveSummary::default();
    for uuid in store.list_dirs(BINLOGS_DIR).await? {
        let dir = format!("{BINLOGS_DIR}/{uuid}");
        let mut indexes = Vec::new();
        for object in store.list(&dir).await? {
            // The archiver writes `.json` itself: the same test as `archived_logs`.
            if std::path::Path::new(&object.key)
                .extension()
                .is_some_and(|e| e == "json")
            {
                indexes.push(object.key);
            } else {
                summary.bytes += object.size;
            }
        }
        summary.count += indexes.len();
        // Names sort in log order: the sequence is zero-padded to a fixed width.
        indexes.sort();
        let ends = [indexes.first(), indexes.last()];
        for (at, key) in ends.into_iter().enumerate() {
            let Some(key) = key else { continue };
            let bytes = store.get(key, MAX_MANIFEST_BYTES).await?;
            let log: ArchivedBinlog = serde_json::from_slice(&bytes).map_err(|e| {
                BackupError::Input(format!("{key}: not an archived binary log index: {e}"))
            })?;
            if at == 0 && log.first_event > 0 {
                let oldest = summary.oldest_event.get_or_insert(log.first_event);
                *oldest = (*oldest).min(log.first_event);
            }
            if at == 1 && log.last_event > 0 {
                let newest = summary.newest_event.get_or_insert(log.last_event);
                *newest = (*newest).max(log.last_event);
            }
        }
    }
    Ok(summary)
}

/// Archived logs downloaded and checked, ready to replay.
pub(super) struct Staged {
    scratch: Scratch,
    files: Vec<PathBuf>,
    plan: ReplayPlan,
}

impl Staged {
    pub fn names(&self) -> Vec<String> {
        self.plan.binlogs.iter().map(|l| l.name.clone()).collect()
    }
}

/// Downloads each planned log's parts, checking every one, into a scratch file; nothing
/// is replayed yet, so a damaged archive stops a restore before it writes.
pub(super) async fn stage(
    store: &dyn BlobStore,
    plan: ReplayPlan,
    secret: Option<Vec<u8>>,
) -> Result<Staged, BackupError> {
    use std::io::Write as _;
    let scratch = Scratch::new("pitr")?;
    let mut files = Vec::new();
    let mut codecs: Vec<(Option<EncryptionParams>, Codec)> = Vec::new();
    for log in &plan.binlogs {
        // One key derivation per distinct salt, not per log: Argon2id is slow on purpose.
        let known = codecs.iter().find(|(params, _)| *params == log.encryption);
        let codec = if let Some((_, codec)) = known {
            codec.clone()
        } else {
            let codec = keys::opening(log.encryption.as_ref(), secret.clone()).await?;
            codecs.push((log.encryption.clone(), codec.clone()));
            codec
        };
        let path = scratch.path().join(&log.name);
        let io = |e: std::io::Error| BackupError::Runtime(format!("{}: {e}", path.display()));
        let mut file = std::fs::File::create(&path).map_err(io)?;
        for part in &log.parts {
            let stored = store
                .get(&part.key, part.stored_bytes)
                .await
                .map_err(|e| e.into_artifact(&part.key))?;
            let codec = codec.clone();
            let record = part.clone();
            let bytes = tokio::task::spawn_blocking(move || codec.decode(&record, &stored))
                .await
                .map_err(|e| BackupError::Runtime(e.to_string()))??;
            file.write_all(&bytes).map_err(io)?;
        }
        file.sync_all().map_err(io)?;
        files.push(path);
    }
    Ok(Staged {
        scratch,
        files,
        plan,
    })
}

/// Replays staged logs into `target` in one `mysqlbinlog | mysql`, skipping
/// `exclude_gtids` (a bad transaction to leave out, `--exclude-gtids`).
pub(super) async fn apply(
    staged: &Staged,
    target: &BackupServer,
    tools: &MysqlTools,
    exclude_gtids: Option<&crate::failover::gtid::GtidSet>,
) -> Result<(), BackupError> {
    tools
        .replay(
            target,
            &staged.files,
            staged.plan.include_gtids.as_ref(),
            exclude_gtids,
            staged.plan.stop_at,
            staged.scratch.path(),
        )
        .await
        .map_err(|e| BackupError::Database(format!("binary log replay: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(names: &[&str]) -> Vec<BinaryLog> {
        names
            .iter()
            .map(|n| BinaryLog {
                name: (*n).to_owned(),
                size: 1,
            })
            .collect()
    }

    #[tokio::test]
    async fn the_summary_counts_every_server_and_reads_only_the_ends() {
        use crate::adapters::storage::{ObjectRepository, S3Settings};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let store = ObjectRepository::open(&url, &S3Settings::default()).unwrap();
        assert_eq!(
            archive_summary(&store).await.unwrap(),
            ArchiveSummary::default()
        );
        let index = |uuid: &str, seq: u32, first: u32, last: u32| ArchivedBinlog {
            name: format!("binlog.{seq:06}"),
            server_uuid: uuid.to_owned(),
            gtids: crate::failover::gtid::GtidSet::new(),
            previous_gtids: crate::failover::gtid::GtidSet::new(),
            first_event: first,
            last_event: last,
            bytes: 10,
            parts: Vec::new(),
            encryption: None,
        };
        for (uuid, seq, first, last) in [
            ("a", 1, 100, 150),
            ("a", 2, 160, 170),
            ("a", 3, 180, 190),
            ("b", 7, 90, 200),
        ] {
            let key = format!("{BINLOGS_DIR}/{uuid}/binlog.{seq:06}");
            store
                .put(&format!("{key}/part-00000"), vec![0; 10])
                .await
                .unwrap();
            let bytes = serde_json::to_vec(&index(uuid, seq, first, last)).unwrap();
            store.put(&format!("{key}.json"), bytes).await.unwrap();
        }
        // A middle index that does not parse is never read.
        store
            .put(
                &format!("{BINLOGS_DIR}/a/binlog.000002.json"),
                b"{".to_vec(),
            )
            .await
            .unwrap();
        let summary = archive_summary(&store).await.unwrap();
        assert_eq!(
            summary,
            ArchiveSummary {
                count: 4,
                bytes: 40,
                oldest_event: Some(90),
                newest_event: Some(200)
            }
        );
    }

    #[test]
    fn a_log_purged_before_archiving_is_a_gap() {
        let archived: HashSet<String> =
            ["binlog.000003".to_owned(), "binlog.000004".to_owned()].into();
        assert_eq!(
            purged_gap(&archived, &logs(&["binlog.000007", "binlog.000008"])),
            Some(("binlog.000004".to_owned(), "binlog.000007".to_owned()))
        );
        assert_eq!(
            purged_gap(&archived, &logs(&["binlog.000005", "binlog.000006"])),
            None
        );
        assert_eq!(
            purged_gap(&archived, &logs(&["binlog.000004", "binlog.000005"])),
            None
        );
        assert_eq!(purged_gap(&HashSet::new(), &logs(&["binlog.000009"])), None);
    }
}
