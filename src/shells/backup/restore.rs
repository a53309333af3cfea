//! `bloodraven backup restore` and `bloodraven backup verify`.
//!
//! Nothing reaches the target until every check has passed: the manifest is complete, the
//! passphrase opens the contents, the contents agree with the manifest, every artifact's
//! digest, seal and size check out, and (for a point-in-time restore) the archive reaches
//! the target and its logs are downloaded and checked too. A failed check names itself
//! and leaves the target untouched.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::{StreamExt as _, TryStreamExt as _};

use super::binlog::{Staged, archived_logs, stage};
use super::catalog::ABANDONED_AFTER;
use super::error::BackupError;
use super::inputs::{
    ArchiveFlags, MysqlLogin, S3Flags, SchemaFlags, TerminationLog, ToolFlags, passphrase,
};
use super::physical;
use super::{keys, now};
use crate::adapters::mysql::{
    BackupServer, GtidHistory, LoadOptions, LoadReport, LogicalEndpoint, QueryError,
};
use crate::api::verification::SanityCheckStatus;
use crate::backup::logical::{LogicalDump, SchemaFilter};
use crate::backup::manifest::{Contents, Manifest};
use crate::backup::pitr::{
    BINLOGS_DIR, RecoveryTarget, earliest_stop, parse_stop_datetime, plan_replay,
};
use crate::backup::restore_run::{RestoreRecord, restore_record_key};
use crate::backup::sanity::{
    DEFAULT_LIMIT, RECORD_FORMAT, SanityFailure, VerificationRecord, evaluate,
    is_valid_record_name, record_key, status_of,
};
use crate::control::backup::{Catalog, RepositorySource};
use crate::failover::gtid::GtidSet;
use crate::ports::artifacts::{ArtifactSource as _, BlobStore};

/// Bounds stopping replication and dropping the user schemas of an in-place restore.
const CLEAR_BUDGET: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The repository: s3://bucket/prefix or file:///path.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The backup's id (see `backup list`).
    #[arg(long)]
    pub id: String,
    /// The server to restore a logical backup into, host:port: empty of its schemas.
    #[arg(
        long,
        value_name = "HOST:PORT",
        required_unless_present = "target_datadir"
    )]
    pub target: Option<String>,
    /// Where to unpack a clone backup: an empty directory to start mysqld on.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["target", "until_gtid", "until_time"])]
    pub target_datadir: Option<PathBuf>,
    /// Then replay archived binary logs to a point in time.
    #[command(flatten)]
    pub until: PointInTimeFlags,
    /// When the target's gtid_executed is not empty, reset it (RESET BINARY LOGS AND
    /// GTIDS) instead of refusing.
    #[arg(long)]
    pub reset_gtids: bool,
    /// Restore in place: once every artifact is checked, stop and forget replication and
    /// drop every user schema on the target (not binlogged), then load. Implies
    /// --reset-gtids. Destructive: what the target held is gone.
    ///
    /// With --include-schema/--exclude-schema, a per-schema restore into a live primary:
    /// only the selected schemas are dropped and loaded, both binlogged under the
    /// target's own GTIDs so its replicas follow; replication and the target's GTID
    /// history are left alone.
    #[arg(long, requires = "target")]
    pub replace_schemas: bool,
    /// Also write what was restored and replayed to `restores/NAME.json` in the repository
    /// once the restore succeeded (how the operator learns it without reading logs).
    #[arg(long, value_name = "NAME", requires = "target")]
    pub record_as: Option<String>,
    /// Restore only some schemas of a logical backup (no point-in-time replay: a binary
    /// log cut to some schemas is unsafe for statements that span schemas).
    #[command(flatten)]
    pub schemas: SchemaFlags,
    #[command(flatten)]
    pub archive: ArchiveFlags,
    #[command(flatten)]
    pub read: ReadFlags,
    #[command(flatten)]
    pub login: MysqlLogin,
    #[command(flatten)]
    pub tools: ToolFlags,
    #[command(flatten)]
    pub termination: TerminationLog,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The repository: s3://bucket/prefix or file:///path.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The backup's id (see `backup list`).
    #[arg(long)]
    pub id: String,
    /// Also restore into this scratch server (empty) and check what lands there.
    #[arg(long, value_name = "HOST:PORT")]
    pub target: Option<String>,
    /// With --target: a query run on the restored data. It answers one scalar, the first
    /// column of its first row; without --sanity-min-value it must return a row.
    #[arg(long, value_name = "SQL", requires = "target")]
    pub sanity_query: Option<String>,
    /// The least the query's scalar may be (an integer; an empty result counts as 0).
    #[arg(long, value_name = "N", requires = "sanity_query")]
    pub sanity_min_value: Option<i64>,
    /// The query must finish within this many seconds (default 60); the server stops it
    /// there (`max_execution_time`) and the client kills it shortly after.
    #[arg(long, value_name = "S", requires = "sanity_query",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub sanity_timeout_seconds: Option<u32>,
    /// Also write the outcome, success or failure, to `verifications/NAME.json` in the
    /// repository (how the operator learns it without reading logs).
    #[arg(long, value_name = "NAME")]
    pub record_as: Option<String>,
    #[arg(long)]
    pub reset_gtids: bool,
    /// With --target: after the load, replay archived binary logs up to (not including)
    /// this instant, RFC 3339 or `YYYY-MM-DD HH:MM:SS` UTC; the check then runs on that.
    #[arg(
        long,
        value_name = "RFC3339",
        requires = "target",
        conflicts_with = "until_latest"
    )]
    pub until_time: Option<String>,
    /// With --target: after the load, replay every archived binary log past the backup.
    #[arg(long, requires = "target")]
    pub until_latest: bool,
    #[command(flatten)]
    pub archive: ArchiveFlags,
    #[command(flatten)]
    pub read: ReadFlags,
    #[command(flatten)]
    pub login: MysqlLogin,
    #[command(flatten)]
    pub tools: ToolFlags,
    #[command(flatten)]
    pub termination: TerminationLog,
}

/// Where a replay of archived binary logs stops, and what it leaves out.
#[derive(Debug, Clone, Default, Args)]
pub struct PointInTimeFlags {
    /// Replay archived binary logs up to exactly this GTID set.
    #[arg(long, value_name = "SET", conflicts_with = "until_time")]
    pub until_gtid: Option<String>,
    /// Replay archived binary logs up to (not including) this instant: RFC 3339, or
    /// `YYYY-MM-DD HH:MM:SS` in UTC.
    #[arg(long, value_name = "RFC3339")]
    pub until_time: Option<String>,
    /// With --until-time or --until-gtid: skip these transactions in the replay (a bad
    /// statement to leave out), as `mysqlbinlog --exclude-gtids`.
    #[arg(long, value_name = "SET")]
    pub exclude_gtids: Option<String>,
}

impl PointInTimeFlags {
    pub fn is_set(&self) -> bool {
        self.until_gtid.is_some() || self.until_time.is_some()
    }

    /// Where the replay stops; `None` without --until-gtid or --until-time.
    pub fn target(&self) -> Result<Option<RecoveryTarget>, BackupError> {
        recovery_target(self.until_gtid.as_deref(), self.until_time.as_deref())
    }

    /// `--exclude-gtids`, which only a replay takes.
    pub fn exclusions(&self) -> Result<Option<GtidSet>, BackupError> {
        let Some(text) = &self.exclude_gtids else {
            return Ok(None);
        };
        if !self.is_set() {
            return Err(BackupError::Input(
                "--exclude-gtids applies to a replay: give --until-time or --until-gtid too"
                    .to_owned(),
            ));
        }
        GtidSet::parse(text)
            .map(Some)
            .map_err(|e| BackupError::Input(format!("--exclude-gtids {text:?}: {e}")))
    }
}

/// How to read a backup.
#[derive(Debug, Clone, Args)]
pub struct ReadFlags {
    /// File holding the passphrase (default: $BLOODRAVEN_BACKUP_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Parallel downloads and loading connections.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    #[command(flatten)]
    pub s3: S3Flags,
}

/// A complete backup, opened and checked.
pub(super) struct Opened {
    pub(super) store: Arc<dyn BlobStore>,
    pub(super) manifest: Manifest,
    pub(super) contents: Contents,
    pub(super) source: RepositorySource,
}

pub(super) async fn open(read: &ReadFlags, from: &str, id: &str) -> Result<Opened, BackupError> {
    let store = read.s3.open(from)?;
    let catalog = Catalog::new(store.clone(), ABANDONED_AFTER);
    let Some(manifest) = catalog.manifest(id).await? else {
        let state = catalog
            .list(now())
            .await?
            .into_iter()
            .find(|e| e.id == id)
            .map(|e| e.state);
        return Err(match state {
            None => BackupError::NotFound { id: id.to_owned() },
            Some(state) => BackupError::NotComplete {
                id: id.to_owned(),
                state: state.as_str().to_owned(),
            },
        });
    };
    let secret = passphrase(read.passphrase_file.as_deref(), "--passphrase-file")?;
    let codec = keys::opening(manifest.encryption.as_ref(), secret).await?;
    let source = RepositorySource::new(store.clone(), codec, id.to_owned());
    let bytes = source.get(&manifest.contents).await?;
    let contents: Contents = serde_json::from_slice(&bytes)
        .map_err(|e| BackupError::Input(format!("backup {id}: contents.json: {e}")))?;
    if contents.id != manifest.id {
        return Err(BackupError::Mismatch {
            id: id.to_owned(),
            what: "id",
        });
    }
    if contents.gtid_executed != manifest.gtid_executed {
        return Err(BackupError::Mismatch {
            id: id.to_owned(),
            what: "GTID set",
        });
    }
    Ok(Opened {
        store,
        manifest,
        contents,
        source,
    })
}

/// Reads and checks every artifact, `threads` at a time; plain bytes checked.
async fn check_all(opened: &Opened, threads: usize) -> Result<u64, BackupError> {
    let artifacts = opened.contents.artifacts();
    futures_util::stream::iter(artifacts)
        .map(|artifact| async move { opened.source.get(artifact).await.map(|b| b.len() as u64) })
        .buffer_unordered(threads.max(1))
        .map_err(BackupError::from)
        .try_fold(0u64, |total, n| async move { Ok(total + n) })
        .await
}

/// Loads the checked backup into the server at `target`; a failure's message starts
/// with `context`.
async fn load_into(
    target: &str,
    login: &MysqlLogin,
    opened: &Opened,
    dump: &LogicalDump,
    read: &ReadFlags,
    history: GtidHistory,
    context: &str,
) -> Result<LoadReport, BackupError> {
    let options = LoadOptions {
        threads: read.threads.max(1),
        history,
        ..LoadOptions::default()
    };
    let endpoint = endpoint(target, login)?;
    crate::adapters::mysql::load(&endpoint, &opened.source, dump, &options)
        .await
        .map_err(|e| BackupError::Database(format!("{context}{e}")))
}

fn endpoint(address: &str, login: &MysqlLogin) -> Result<LogicalEndpoint, BackupError> {
    Ok(LogicalEndpoint {
        tls: login.tls(),
        ..LogicalEndpoint::new(address.to_owned(), login.credentials()?)
    })
}

pub(super) async fn restore(args: &RestoreArgs) -> Result<String, BackupError> {
    if let Some(name) = &args.record_as
        && !is_valid_record_name(name)
    {
        return Err(BackupError::Input(format!(
            "--record-as {name:?}: lower-case letters, digits, '-' and '.', starting with a letter or digit"
        )));
    }
    let started = Instant::now();
    let filter = args.schemas.filter();
    let mut opened = open(&args.read, &args.from, &args.id).await?;
    if !filter.is_everything() {
        select_schemas(&mut opened, &filter, args)?;
    }
    if let Some(archive) = &opened.contents.physical {
        let Some(dir) = &args.target_datadir else {
            return Err(BackupError::Input(format!(
                "backup {} is a clone of a data directory: restore it with --target-datadir DIR, then start mysqld on DIR",
                args.id
            )));
        };
        let checked = check_all(&opened, args.read.threads).await?;
        physical::unpack_into(&archive.parts, &opened.source, dir).await?;
        return serde_json::to_string_pretty(&serde_json::json!({
            "id": opened.manifest.id,
            "targetDatadir": dir,
            "checkedBytes": checked,
            "gtidExecuted": opened.manifest.gtid_executed,
            "seconds": started.elapsed().as_secs_f64(),
        }))
        .map_err(|e| BackupError::Runtime(e.to_string()));
    }
    let (Some(dump), Some(target)) = (&opened.contents.logical, &args.target) else {
        return Err(BackupError::Input(format!(
            "backup {} is a logical backup: restore it into a server with --target HOST:PORT",
            args.id
        )));
    };
    let target_server = BackupServer::new(target, args.login.credentials()?, args.login.tls())
        .map_err(|e| BackupError::Input(e.to_string()))?;
    // Plan and fetch the point-in-time part first: a target the archive cannot reach is
    // refused before anything is written.
    let exclude = args.until.exclusions()?;
    let staged = match args.until.target()? {
        None => None,
        Some(target) => Some(stage_replay(&opened, &target, &args.archive, &args.read).await?),
    };
    let checked = check_all(&opened, args.read.threads).await?;
    // Only now, with every artifact read and checked, is anything on the target touched.
    let restored: Vec<String> = dump.schemas.iter().map(|s| s.name.clone()).collect();
    let per_schema = args.replace_schemas && !filter.is_everything();
    let dropped = if args.replace_schemas {
        clear(&target_server, per_schema.then_some(restored.as_slice())).await?
    } else {
        Vec::new()
    };
    let history = if per_schema {
        GtidHistory::Own
    } else {
        GtidHistory::FromDump {
            reset: args.reset_gtids || args.replace_schemas,
        }
    };
    let report = load_into(target, &args.login, &opened, dump, &args.read, history, "").await?;
    let loaded_at = started.elapsed();
    let mut replayed = Vec::new();
    if let Some(staged) = &staged {
        super::binlog::apply(
            staged,
            &target_server,
            &args.tools.tools(),
            exclude.as_ref(),
        )
        .await?;
        replayed = staged.names();
    }
    let gtid_executed = target_server
        .gtid_executed()
        .await
        .map_err(|e| BackupError::Database(e.to_string()))?;
    if let Some(name) = &args.record_as {
        let record = write_restore_record(&opened, name, &replayed, &gtid_executed).await?;
        args.termination.write(&record);
    }
    serde_json::to_string_pretty(&serde_json::json!({
        "id": opened.manifest.id,
        "target": target,
        "checkedBytes": checked,
        "tables": report.tables.len(),
        "rows": report.rows(),
        "plainBytes": report.plain_bytes,
        "loadSeconds": loaded_at.as_secs_f64(),
        "replayedBinlogs": replayed,
        "schemas": restored,
        "droppedSchemas": dropped,
        "gtidExecuted": gtid_executed.to_string(),
        "seconds": started.elapsed().as_secs_f64(),
    }))
    .map_err(|e| BackupError::Runtime(e.to_string()))
}

/// Drops what an in-place restore replaces: `only` those schemas, binlogged (a
/// per-schema restore), or else every user schema after stopping replication; returns
/// the schemas dropped.
async fn clear(server: &BackupServer, only: Option<&[String]>) -> Result<Vec<String>, BackupError> {
    let target = server.address();
    let Some(schemas) = only else {
        let dropped = server
            .clear_user_schemas(CLEAR_BUDGET)
            .await
            .map_err(|e| BackupError::Database(format!("clearing {target}: {e}")))?;
        tracing::warn!(target = %target, schemas = ?dropped, "in-place restore: user schemas dropped");
        return Ok(dropped);
    };
    let dropped = server
        .drop_schemas(schemas, CLEAR_BUDGET)
        .await
        .map_err(|e| BackupError::Database(format!("dropping schemas on {target}: {e}")))?;
    tracing::warn!(target = %target, schemas = ?dropped, "per-schema restore: schemas dropped (binlogged)");
    Ok(dropped)
}

/// Cuts the opened backup down to the schemas `filter` selects, refusing what a restore
/// of some schemas cannot do. Only the selected schemas' artifacts are then read.
fn select_schemas(
    opened: &mut Opened,
    filter: &SchemaFilter,
    args: &RestoreArgs,
) -> Result<(), BackupError> {
    let id = &args.id;
    let Some(dump) = &opened.contents.logical else {
        return Err(BackupError::Input(format!(
            "backup {id} is a clone of a whole data directory: --include-schema and \
             --exclude-schema apply to logical backups"
        )));
    };
    if args.until.is_set() {
        return Err(BackupError::Input(
            "a point-in-time replay cannot be cut to some schemas: a binary log filtered by \
             schema is unsafe for statements that span schemas; restore every schema, or \
             restore without --until-gtid/--until-time"
                .to_owned(),
        ));
    }
    if args.replace_schemas && args.reset_gtids {
        return Err(BackupError::Input(
            "--replace-schemas with --include-schema/--exclude-schema loads binlogged and \
             keeps the target's GTID history: --reset-gtids does not apply"
                .to_owned(),
        ));
    }
    let selected = filter
        .select(dump)
        .map_err(|e| BackupError::Input(format!("backup {id}: {e}")))?;
    opened.contents.logical = Some(selected);
    Ok(())
}

/// Writes `restores/NAME.json` (a store's write of one key is atomic); answers the record.
async fn write_restore_record(
    opened: &Opened,
    name: &str,
    replayed: &[String],
    gtid_executed: &GtidSet,
) -> Result<RestoreRecord, BackupError> {
    let record = RestoreRecord {
        format: RECORD_FORMAT,
        name: name.to_owned(),
        backup_id: opened.manifest.id.clone(),
        finished_at: now().rfc3339(),
        replayed_binlogs: replayed.to_vec(),
        gtid_executed: gtid_executed.to_string(),
    };
    let bytes =
        serde_json::to_vec_pretty(&record).map_err(|e| BackupError::Runtime(e.to_string()))?;
    opened.store.put(&restore_record_key(name), bytes).await?;
    Ok(record)
}

fn recovery_target(
    until_gtid: Option<&str>,
    until_time: Option<&str>,
) -> Result<Option<RecoveryTarget>, BackupError> {
    if let Some(text) = until_gtid {
        let set = GtidSet::parse(text)
            .map_err(|e| BackupError::Input(format!("--until-gtid {text:?}: {e}")))?;
        return Ok(Some(RecoveryTarget::Gtids(set)));
    }
    if let Some(text) = until_time {
        let at = parse_stop_datetime(text).ok_or_else(|| {
            BackupError::Input(format!(
                "--until-time {text:?}: neither RFC 3339 nor YYYY-MM-DD HH:MM:SS"
            ))
        })?;
        return Ok(Some(RecoveryTarget::Time(at)));
    }
    Ok(None)
}

pub(super) async fn stage_replay(
    opened: &Opened,
    target: &RecoveryTarget,
    archive: &ArchiveFlags,
    read: &ReadFlags,
) -> Result<Staged, BackupError> {
    let super::inputs::Archive { store, secret } =
        archive.open(&opened.store, &read.s3, read.passphrase_file.as_deref())?;
    let manifest = &opened.manifest;
    let base = GtidSet::parse(&manifest.gtid_executed)
        .map_err(|e| BackupError::Input(format!("backup {}: GTID set: {e}", manifest.id)))?;
    let finished = earliest_stop(&manifest.finished_at).ok_or_else(|| {
        BackupError::Input(format!(
            "backup {}: finishedAt {:?} is not a time, so no replay can be placed after it",
            manifest.id, manifest.finished_at
        ))
    })?;
    // The archive of the backup's own source first; then any other server's: a backup
    // taken from a replica continues in the primary's logs, and after a failover in the
    // new primary's (which log what they replicated too).
    let mut servers = store.list_dirs(BINLOGS_DIR).await?;
    servers.sort_by_key(|uuid| *uuid != manifest.source_uuid);
    let mut refusal = None;
    let mut chosen = None;
    for uuid in &servers {
        let logs = archived_logs(&*store, uuid).await?;
        match plan_replay(&base, &logs, target, finished) {
            Ok(plan) => {
                chosen = Some(plan);
                break;
            }
            Err(e) => {
                refusal.get_or_insert(e);
            }
        }
    }
    let plan = chosen.ok_or_else(|| {
        BackupError::Input(format!(
            "point-in-time target: {}",
            refusal.map_or_else(
                || match &archive.from {
                    Some(url) => format!("{url} holds no binary-log archive"),
                    None => "the backup's repository holds no binary-log archive (is it elsewhere? --binlogs-from)".to_owned(),
                },
                |e| e.to_string()
            )
        ))
    })?;
    stage(&*store, plan, secret).await
}

/// What a verification found so far; reported whether it passed or not.
#[derive(Default)]
struct Findings {
    artifacts: usize,
    checked: u64,
    restored: serde_json::Value,
    restored_rows: Option<u64>,
    sanity: Option<SanityCheckStatus>,
}

/// Why a verification failed.
enum VerifyFailure {
    Backup(BackupError),
    Sanity(SanityFailure),
}

impl From<BackupError> for VerifyFailure {
    fn from(error: BackupError) -> Self {
        Self::Backup(error)
    }
}

pub(super) async fn verify(args: &VerifyArgs) -> Result<String, BackupError> {
    if let Some(name) = &args.record_as
        && !is_valid_record_name(name)
    {
        return Err(BackupError::Input(format!(
            "--record-as {name:?}: lower-case letters, digits, '-' and '.', starting with a letter or digit"
        )));
    }
    let started = Instant::now();
    let mut findings = Findings::default();
    if args.sanity_query.is_some() {
        findings.sanity = Some(SanityCheckStatus {
            ran: Some(false),
            ..SanityCheckStatus::default()
        });
    }
    let outcome = verify_steps(args, &mut findings).await;
    let (reason, error) = match &outcome {
        Ok(()) => (None, None),
        Err(VerifyFailure::Sanity(failure)) => (Some(failure.reason()), Some(failure.to_string())),
        Err(VerifyFailure::Backup(e)) => (Some("VerificationFailed"), Some(e.to_string())),
    };
    let report = serde_json::to_string_pretty(&serde_json::json!({
        "id": args.id,
        "verified": outcome.is_ok(),
        "artifacts": findings.artifacts,
        "checkedBytes": findings.checked,
        "restore": findings.restored,
        "sanityCheck": findings.sanity,
        "reason": reason,
        "error": error,
        "seconds": started.elapsed().as_secs_f64(),
    }))
    .map_err(|e| BackupError::Runtime(e.to_string()))?;
    if let Some(name) = &args.record_as {
        let record = VerificationRecord {
            format: RECORD_FORMAT,
            name: name.clone(),
            backup_id: args.id.clone(),
            finished_at: now().rfc3339(),
            verified: outcome.is_ok(),
            reason: reason.map(str::to_owned),
            error: error.clone(),
            restored_rows: findings.restored_rows,
            sanity_check: findings.sanity.clone(),
        };
        args.termination.write(&record);
        if let Err(e) = write_record(args, &record).await {
            // Without the record the operator cannot tell what happened: a failure.
            return Err(match outcome {
                Ok(()) => e,
                Err(_) => BackupError::Reported {
                    report,
                    error: Box::new(BackupError::Runtime(format!(
                        "{}; and writing the record failed: {e}",
                        error.unwrap_or_default()
                    ))),
                },
            });
        }
    }
    match outcome {
        Ok(()) => Ok(report),
        Err(VerifyFailure::Backup(e)) => Err(BackupError::Reported {
            report,
            error: Box::new(e),
        }),
        Err(VerifyFailure::Sanity(failure)) => Err(BackupError::Reported {
            report,
            error: Box::new(BackupError::Sanity(failure)),
        }),
    }
}

/// Writes the record, whole or not at all (a store's write of one key is atomic).
async fn write_record(args: &VerifyArgs, record: &VerificationRecord) -> Result<(), BackupError> {
    let store = args.read.s3.open(&args.from)?;
    let bytes =
        serde_json::to_vec_pretty(record).map_err(|e| BackupError::Runtime(e.to_string()))?;
    store.put(&record_key(&record.name), bytes).await?;
    Ok(())
}

async fn verify_steps(args: &VerifyArgs, findings: &mut Findings) -> Result<(), VerifyFailure> {
    let opened = open(&args.read, &args.from, &args.id).await?;
    findings.artifacts = opened.contents.artifacts().len();
    findings.checked = check_all(&opened, args.read.threads).await?;
    let (Some(target), Some(dump)) = (&args.target, &opened.contents.logical) else {
        return Ok(());
    };
    // As for a restore: the archive is planned and fetched before the load, so a target
    // it cannot reach fails the verification without loading first.
    let replay = if args.until_latest {
        Some(RecoveryTarget::Latest)
    } else {
        recovery_target(None, args.until_time.as_deref())?
    };
    let staged = match &replay {
        Some(replay) => Some(stage_replay(&opened, replay, &args.archive, &args.read).await?),
        None => None,
    };
    let report = load_into(
        target,
        &args.login,
        &opened,
        dump,
        &args.read,
        GtidHistory::FromDump {
            reset: args.reset_gtids,
        },
        "verification restore: ",
    )
    .await?;
    findings.restored_rows = Some(report.rows());
    findings.restored = serde_json::json!({
        "target": target,
        "rows": report.rows(),
        "tables": report.tables.len(),
    });
    if let Some(staged) = &staged {
        let server = BackupServer::new(target, args.login.credentials()?, args.login.tls())
            .map_err(|e| BackupError::Input(e.to_string()))?;
        super::binlog::apply(staged, &server, &args.tools.tools(), None).await?;
        findings.restored["replayedBinlogs"] = serde_json::json!(staged.names());
    }
    let Some(sql) = &args.sanity_query else {
        return Ok(());
    };
    let limit = args
        .sanity_timeout_seconds
        .map_or(DEFAULT_LIMIT, |s| Duration::from_secs(u64::from(s)));
    let server = BackupServer::new(target, args.login.credentials()?, args.login.tls())
        .map_err(|e| BackupError::Input(e.to_string()))?;
    let asked = Instant::now();
    let (first_row, took, failure) = match server.sanity_query(sql, limit).await {
        Ok(answer) => {
            let failure = evaluate(answer.first_row.as_deref(), args.sanity_min_value).err();
            (answer.first_row, answer.took, failure)
        }
        Err(QueryError::TimedOut { took, .. }) => {
            (None, took, Some(SanityFailure::TimedOut { limit }))
        }
        Err(QueryError::Db(e)) => (
            None,
            asked.elapsed(),
            Some(SanityFailure::Query(e.to_string())),
        ),
    };
    findings.sanity = Some(status_of(first_row.as_deref(), took, failure.as_ref()));
    match failure {
        Some(failure) => Err(VerifyFailure::Sanity(failure)),
        None => Ok(()),
    }
}
