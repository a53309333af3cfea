//! `bloodraven backup create`: one consistent backup of a server into a repository.
//!
//! Order matters for what a reader can ever see: `started.json` first, then the artifacts,
//! then `contents.json`, and the manifest last. A run that dies anywhere before the
//! manifest leaves a backup `list` shows as running or abandoned, never as complete; a
//! run that fails cleanly writes `failed.json` with its reason.

use std::path::PathBuf;

use clap::Args;

use super::error::BackupError;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument as _;

use super::inputs::{MysqlLogin, S3Flags, SchemaFlags, Scratch, TerminationLog, passphrase};
use super::physical;
use super::{keys, now};
use crate::adapters::mysql::{BackupServer, ClientTls, Credentials, DumpOptions, LogicalEndpoint};
use crate::backup::logical::SchemaFilter;
use crate::backup::manifest::{
    CONTENTS_FILE, Contents, FAILED_FILE, FORMAT, Failed, MANIFEST_FILE, Manifest, Method,
    PhysicalArchive, STARTED_FILE, Started, backup_key, is_valid_id, new_id,
};
use crate::control::backup::RepositorySink;
use crate::error::Categorized as _;
use crate::failover::Timestamp;
use crate::ports::artifacts::{ArtifactSink as _, BlobError, BlobStore};

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// The server to back up, host:port (the primary, or a replica within its lag budget).
    #[arg(long, value_name = "HOST:PORT")]
    pub source: String,
    /// The repository: s3://bucket/prefix or file:///path.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// `logical`: rows and DDL from one consistent snapshot, restorable into any server.
    /// `clone`: a CLONE of the data directory (the server writes it: this process must
    /// share its filesystem), restorable by starting mysqld on it, with no replay.
    #[arg(long, default_value = "logical")]
    pub method: MethodArg,
    /// For `clone`: where the server writes the copy (must not exist; default: a private
    /// temporary directory). Removed once archived.
    #[arg(long, value_name = "DIR")]
    pub clone_dir: Option<PathBuf>,
    /// Connections reading the snapshot.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Target size of a data chunk, in MiB (memory is about threads × chunk).
    #[arg(long, default_value_t = 8)]
    pub chunk_mib: u64,
    /// File holding the passphrase to encrypt with (default: $BLOODRAVEN_BACKUP_PASSPHRASE;
    /// neither: not encrypted).
    #[arg(long, value_name = "FILE")]
    pub encrypt_passphrase_file: Option<PathBuf>,
    /// The backup's id (default: its start time and a random suffix). The operator names
    /// each `MysqlBackup`'s backup, so it finds the manifest without listing; a Job retry
    /// reuses the id of the attempt it replaces. An id whose backup is complete is refused.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    #[command(flatten)]
    pub schemas: SchemaFlags,
    #[command(flatten)]
    pub login: MysqlLogin,
    #[command(flatten)]
    pub s3: S3Flags,
    #[command(flatten)]
    pub termination: TerminationLog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    Logical,
    Clone,
}

impl MethodArg {
    pub fn method(self) -> Method {
        match self {
            Self::Logical => Method::Logical,
            Self::Clone => Method::Clone,
        }
    }
}

pub(super) async fn create(args: &CreateArgs) -> Result<String, BackupError> {
    let store = args.s3.open(&args.to)?;
    let request = BackupRequest {
        id: args.id.clone(),
        source: args.source.clone(),
        credentials: args.login.credentials()?,
        tls: args.login.tls(),
        method: args.method.method(),
        threads: args.threads.max(1),
        chunk_bytes: args.chunk_mib.max(1) << 20,
        clone_dir: args.clone_dir.clone(),
        schemas: args.schemas.filter(),
        passphrase: passphrase(
            args.encrypt_passphrase_file.as_deref(),
            "--encrypt-passphrase-file",
        )?,
    };
    let (manifest, contents) = take_backup(store, request).await?;
    args.termination.write(&manifest);
    report(&manifest, &contents)
}

/// One backup to take: everything `create` gathers from its flags and the environment.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    /// The id to store it under; `None`: a new one from the start time.
    pub id: Option<String>,
    /// `host:port`.
    pub source: String,
    pub credentials: Credentials,
    pub tls: ClientTls,
    pub method: Method,
    pub threads: usize,
    pub chunk_bytes: u64,
    pub clone_dir: Option<PathBuf>,
    /// The user schemas a logical dump takes (a clone takes the whole instance).
    pub schemas: SchemaFilter,
    /// Encrypts when set.
    pub passphrase: Option<Vec<u8>>,
}

/// Takes one backup into `store`; its manifest and contents once the manifest is written.
pub async fn take_backup(
    store: Arc<dyn BlobStore>,
    request: BackupRequest,
) -> Result<(Manifest, Contents), BackupError> {
    if request.method == Method::Clone && !request.schemas.is_everything() {
        return Err(BackupError::Input(
            "--include-schema/--exclude-schema need the logical method: a clone copies the whole instance"
                .to_owned(),
        ));
    }
    let started = now();
    let id = match &request.id {
        Some(id) => claim_id(&*store, id).await?,
        None => new_id(started, random_suffix()?),
    };
    let span = tracing::info_span!(
        "backup_create",
        id = %id,
        source = %request.source,
        method = request.method.as_str()
    );
    run_backup(store, request, id, started)
        .instrument(span)
        .await
}

async fn run_backup(
    store: Arc<dyn BlobStore>,
    request: BackupRequest,
    id: String,
    started: Timestamp,
) -> Result<(Manifest, Contents), BackupError> {
    let (codec, encryption) = keys::sealing(request.passphrase.clone()).await?;
    put_json(
        &*store,
        &backup_key(&id, STARTED_FILE),
        &Started {
            id: id.clone(),
            method: request.method,
            source: request.source.clone(),
            started_at: started.rfc3339(),
        },
    )
    .await?;
    let sink = RepositorySink::new(store.clone(), codec, id.clone());
    let taken = async {
        let server = BackupServer::new(
            &request.source,
            request.credentials.clone(),
            request.tls.clone(),
        )
        .map_err(|e| BackupError::Input(e.to_string()))?;
        let uuid = server
            .inventory()
            .await
            .map_err(|e| BackupError::Database(e.to_string()))?
            .0;
        let contents = match request.method {
            Method::Logical => {
                let endpoint = LogicalEndpoint {
                    tls: request.tls.clone(),
                    ..LogicalEndpoint::new(request.source.clone(), request.credentials.clone())
                };
                let options = DumpOptions {
                    threads: request.threads.max(1),
                    chunk_bytes: request.chunk_bytes.max(1),
                    schemas: request.schemas.clone(),
                    ..DumpOptions::default()
                };
                let dump = crate::adapters::mysql::dump(&endpoint, &sink, &options)
                    .await
                    .map_err(|e| BackupError::Database(e.to_string()))?;
                Contents {
                    id: id.clone(),
                    gtid_executed: dump.gtid_executed.clone(),
                    logical: Some(dump),
                    physical: None,
                }
            }
            Method::Clone => clone(&server, request.clone_dir.clone(), &sink, &id).await?,
        };
        let json =
            serde_json::to_vec(&contents).map_err(|e| BackupError::Runtime(e.to_string()))?;
        let record = sink.put(CONTENTS_FILE.to_owned(), json).await?;
        Ok::<_, BackupError>((uuid, contents, record))
    }
    .await;
    let (uuid, contents, record) = match taken {
        Ok(taken) => taken,
        Err(error) => {
            record_failure(&*store, &id, &error).await;
            return Err(error);
        }
    };
    let totals = sink.totals();
    let server_version = match (&contents.logical, &contents.physical) {
        (Some(dump), _) => dump.server_version.clone(),
        (None, Some(archive)) => archive.server_version.clone(),
        (None, None) => String::new(),
    };
    let manifest = Manifest {
        format: FORMAT,
        id: id.clone(),
        method: request.method,
        source: request.source.clone(),
        source_uuid: uuid,
        server_version,
        gtid_executed: contents.gtid_executed.clone(),
        started_at: started.rfc3339(),
        finished_at: now().rfc3339(),
        plain_bytes: totals.plain_bytes,
        stored_bytes: totals.stored_bytes,
        artifacts: totals.artifacts,
        compression: "zstd".to_owned(),
        encryption,
        contents: record,
    };
    put_json(&*store, &backup_key(&id, MANIFEST_FILE), &manifest).await?;
    tracing::info!(bytes = manifest.stored_bytes, gtids = %manifest.gtid_executed, "backup complete");
    Ok((manifest, contents))
}

/// Checks a given id and takes it over: refused when it is not a valid id or its backup
/// is complete; a failed attempt's record is removed, so the listing shows the new attempt
/// as running rather than the old one as failed.
async fn claim_id(store: &dyn BlobStore, id: &str) -> Result<String, BackupError> {
    if !is_valid_id(id) {
        return Err(BackupError::Input(format!(
            "--id {id:?}: an id is 1 to 64 letters, digits, '-' or '_'"
        )));
    }
    // A one-byte read: a manifest answers "too large", which says it exists.
    match store.get(&backup_key(id, MANIFEST_FILE), 1).await {
        Ok(_) | Err(BlobError::TooLarge { .. }) => {
            return Err(BackupError::Input(format!(
                "--id {id}: that backup is complete already; ids are never reused"
            )));
        }
        Err(BlobError::Missing { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    match store.delete(&backup_key(id, FAILED_FILE)).await {
        Ok(()) | Err(BlobError::Missing { .. }) => Ok(id.to_owned()),
        Err(e) => Err(e.into()),
    }
}

/// How long a CLONE of the source may take.
const CLONE_BUDGET: Duration = Duration::from_secs(6 * 3600);

async fn clone(
    server: &BackupServer,
    clone_dir: Option<PathBuf>,
    sink: &RepositorySink,
    id: &str,
) -> Result<Contents, BackupError> {
    // The scratch directory holds the clone when no directory is given; either way the
    // copy is removed once archived (the scratch on drop, a given directory explicitly).
    let scratch = Scratch::new("clone")?;
    let dir = clone_dir
        .clone()
        .unwrap_or_else(|| scratch.path().join("data"));
    let snapshot = server
        .clone_local(&dir, CLONE_BUDGET)
        .await
        .map_err(|e| BackupError::Database(e.to_string()))?;
    let parts = physical::archive_dir(dir.clone(), sink).await;
    if clone_dir.is_some() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(Contents {
        id: id.to_owned(),
        gtid_executed: snapshot.gtid_executed.to_string(),
        logical: None,
        physical: Some(PhysicalArchive {
            server_version: snapshot.server_version,
            parts: parts?,
        }),
    })
}

/// The manifest with per-table row counts and checksums, as `create` prints it.
pub fn report(manifest: &Manifest, contents: &Contents) -> Result<String, BackupError> {
    let mut value =
        serde_json::to_value(manifest).map_err(|e| BackupError::Runtime(e.to_string()))?;
    let tables: Vec<serde_json::Value> = contents
        .logical
        .iter()
        .flat_map(crate::backup::logical::LogicalDump::tables)
        .map(|(schema, table)| {
            serde_json::json!({
                "schema": schema,
                "table": table.name,
                "rows": table.rows,
                "checksum": table.checksum,
            })
        })
        .collect();
    if let Some(object) = value.as_object_mut() {
        object.insert("tables".to_owned(), serde_json::Value::Array(tables));
    }
    serde_json::to_string_pretty(&value).map_err(|e| BackupError::Runtime(e.to_string()))
}

async fn put_json<T: serde::Serialize>(
    store: &dyn BlobStore,
    key: &str,
    value: &T,
) -> Result<(), BackupError> {
    let bytes =
        serde_json::to_vec_pretty(value).map_err(|e| BackupError::Runtime(e.to_string()))?;
    store.put(key, bytes).await?;
    Ok(())
}

/// Best effort: the failure is reported to the caller whatever happens here, and a
/// missing marker only means `list` shows the run as abandoned a day later.
async fn record_failure(store: &dyn BlobStore, id: &str, error: &BackupError) {
    let failed = Failed {
        id: id.to_owned(),
        failed_at: now().rfc3339(),
        category: error.category().as_str().to_owned(),
        message: error.to_string(),
    };
    if let Err(e) = put_json(store, &backup_key(id, FAILED_FILE), &failed).await {
        tracing::warn!(error = %e, "could not record the failure in the repository");
    }
}

fn random_suffix() -> Result<u16, BackupError> {
    let mut bytes = [0u8; 2];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| BackupError::Runtime("the system random source failed".to_owned()))?;
    Ok(u16::from_be_bytes(bytes))
}

/// Compile-time check, not a test: standalone mode spawns backups, so the whole backup
/// future must be `Send` for every lifetime, which a borrow held across an await inside a
/// combinator silently breaks. This stops compiling if it does.
#[cfg(test)]
#[allow(dead_code)]
fn backups_can_be_spawned(store: Arc<dyn BlobStore>, request: BackupRequest) {
    fn spawnable<T: Send + 'static>(_: T) {}
    spawnable(take_backup(store, request));
}
