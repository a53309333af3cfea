//! The load: into a server that has none of the dump's schemas, in parallel, then the
//! objects that must not exist while the data goes in, then the GTID history.
//!
//! Order and why:
//! 1. checks that write nothing: no schema of the dump exists, `gtid_executed` is empty
//!    (or may be reset), GTIDs are on, the dump description is self-consistent;
//! 2. `local_infile` on (restored afterwards), `RESET BINARY LOGS AND GTIDS` if allowed;
//! 3. schemas and tables, without their secondary indexes (see
//!    [`crate::backup::logical::ddl`]);
//! 4. chunks of all tables through one queue, `LOAD DATA LOCAL INFILE` on N connections
//!    with `sql_log_bin=0` (the restored data must not get GTIDs of its own),
//!    `foreign_key_checks=0` (chunks arrive in any order) and `unique_checks=0`; then the
//!    deferred indexes, one `ALTER TABLE` per table, on N connections;
//! 5. routines, then views (a view may call a function; views are retried until every
//!    view it reads exists), then triggers: after the data, so none fires on it;
//! 6. `SET GLOBAL gtid_purged` to the dump's set, so the target's `gtid_executed` is
//!    exactly what its data contains and it can replicate from the source's successors;
//! 7. events last: an event that fires at once then commits after the history is set.
//!
//! A [`GtidHistory::Own`] load (some schemas restored into a live primary) differs
//! in two steps: the sessions keep `sql_log_bin=1`, so the load replicates under the
//! target's own GTIDs, and the history is left as it is (no check that it is empty, no
//! `gtid_purged`): the target's history still describes its other schemas.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;

use futures_util::future::try_join_all;
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::time::{Instant, timeout};
use tracing::Instrument;

use super::link::Link;
use super::{
    GtidHistory, LoadOptions, LoadReport, LogicalEndpoint, LogicalError, TableLoad, compact_gtids,
};
use crate::backup::logical::ddl::{SplitTable, defer_secondary_indexes, foreign_key_targets};
use crate::backup::logical::plan::round_robin;
use crate::backup::logical::sql::{load_data, qualified, quote_ident};
use crate::backup::logical::{
    ChunkDump, LOGICAL_FORMAT_VERSION, LogicalDump, TableDump, codec, table_checksum,
};
use crate::digest::sha256_hex;
use crate::ports::artifacts::{ArtifactSource, StoredArtifact};

/// Loads `dump` from `source` into the server at `endpoint`, which must have none of the
/// dump's schemas and an empty `gtid_executed` (see [`GtidHistory`]).
///
/// The account needs, besides the object privileges to create everything in the dump:
/// `SYSTEM_VARIABLES_ADMIN` (`gtid_purged`, and `local_infile` when it is OFF),
/// `SESSION_VARIABLES_ADMIN` (`sql_log_bin`), `RELOAD` for `reset_gtids`, and
/// `SET_ANY_DEFINER` for objects defined by other accounts.
pub async fn load(
    endpoint: &LogicalEndpoint,
    source: &dyn ArtifactSource,
    dump: &LogicalDump,
    options: &LoadOptions,
) -> Result<LoadReport, LogicalError> {
    if options.threads == 0 {
        return Err(LogicalError::Options(
            "threads must be at least 1".to_owned(),
        ));
    }
    check_description(dump)?;
    let span =
        tracing::info_span!("logical_load", address = %endpoint.address, threads = options.threads);
    async move {
        let started = Instant::now();
        let mut control = Link::open(endpoint, options.statement_timeout, "load: connect").await?;
        prepare_session(&mut control, options).await?;
        let local_infile_was_on = check_target(&mut control, dump, options).await?;
        if !local_infile_was_on {
            enable_local_infile(&mut control).await?;
        }
        let outcome = load_enabled(endpoint, source, dump, options, &mut control).await;
        if !local_infile_was_on {
            restore_local_infile(endpoint, options, &mut control).await;
        }
        control.close().await;
        let (tables, plain_bytes, gtid_executed) = outcome?;
        let report = LoadReport {
            tables,
            plain_bytes,
            gtid_executed,
            elapsed: started.elapsed(),
        };
        tracing::info!(
            rows = report.rows(),
            elapsed_ms = u64::try_from(report.elapsed.as_millis()).unwrap_or(u64::MAX),
            "load finished"
        );
        Ok(report)
    }
    .instrument(span)
    .await
}

/// The dump description must agree with itself before anything is written: each table's
/// rows and checksum follow from its chunk records.
fn check_description(dump: &LogicalDump) -> Result<(), LogicalError> {
    if dump.format_version != LOGICAL_FORMAT_VERSION {
        return Err(LogicalError::Mismatch {
            context: "load".to_owned(),
            message: format!(
                "the dump has format version {}, this build reads version {LOGICAL_FORMAT_VERSION}",
                dump.format_version
            ),
        });
    }
    for (schema, table) in dump.tables() {
        let context = format!("load {}", qualified(schema, &table.name));
        let rows: u64 = table.chunks.iter().map(|c| c.rows).sum();
        if rows != table.rows {
            return Err(LogicalError::Mismatch {
                context,
                message: format!(
                    "chunks hold {rows} rows, the table record says {}",
                    table.rows
                ),
            });
        }
        let checksum = table_checksum(
            table
                .chunks
                .iter()
                .map(|c| (c.plain_sha256.as_str(), c.rows)),
        );
        if checksum != table.checksum {
            return Err(LogicalError::Mismatch {
                context,
                message: "the chunk records do not match the table checksum".to_owned(),
            });
        }
    }
    Ok(())
}

pub(super) async fn prepare_session(
    link: &mut Link,
    options: &LoadOptions,
) -> Result<(), LogicalError> {
    let net = link.statement_timeout().as_secs().max(600);
    let lock_wait = link.statement_timeout().as_secs().max(1);
    let log_bin = u8::from(options.history == GtidHistory::Own);
    let sql = format!(
        "SET NAMES utf8mb4, SESSION time_zone = '+00:00', \
         SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO', SESSION sql_log_bin = {log_bin}, \
         SESSION foreign_key_checks = 0, SESSION unique_checks = 0, \
         SESSION net_read_timeout = {net}, SESSION net_write_timeout = {net}, \
         SESSION lock_wait_timeout = {lock_wait}"
    );
    link.exec(&sql, "load: session settings").await
}

/// Refuses a target the load could damage; returns whether `local_infile` is already on.
async fn check_target(
    control: &mut Link,
    dump: &LogicalDump,
    options: &LoadOptions,
) -> Result<bool, LogicalError> {
    let address = control.address().to_owned();
    let refuse = |reason: String| LogicalError::Refused {
        address: address.clone(),
        reason,
    };
    let existing: Vec<String> = control
        .all(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA",
            "load: list schemas",
        )
        .await?;
    let existing: BTreeSet<String> = existing.into_iter().collect();
    let clash: Vec<String> = dump
        .schemas
        .iter()
        .filter(|s| existing.contains(&s.name))
        .map(|s| quote_ident(&s.name))
        .collect();
    if !clash.is_empty() {
        return Err(refuse(format!(
            "the target already has schema(s) {} of the dump; load into a server without them",
            clash.join(", ")
        )));
    }
    let (gtid_executed, gtid_mode, local_infile): (String, String, i64) = control
        .first(
            "SELECT @@GLOBAL.gtid_executed, @@GLOBAL.gtid_mode, @@GLOBAL.local_infile",
            "load: read gtid_executed",
        )
        .await?
        .unwrap_or_default();
    let reset = match options.history {
        GtidHistory::Own => return Ok(local_infile != 0),
        GtidHistory::FromDump { reset } => reset,
    };
    if !dump.gtid_executed.is_empty() && gtid_mode != "ON" {
        return Err(refuse(format!(
            "gtid_mode is {gtid_mode}; the dump's GTID set can only be restored with gtid_mode=ON"
        )));
    }
    let gtid_executed = compact_gtids(&gtid_executed);
    if !gtid_executed.is_empty() && !reset {
        return Err(refuse(format!(
            "the target's gtid_executed is not empty ({gtid_executed}); its history would not \
             match the restored data (set reset_gtids to run RESET BINARY LOGS AND GTIDS first)"
        )));
    }
    Ok(local_infile != 0)
}

async fn enable_local_infile(control: &mut Link) -> Result<(), LogicalError> {
    match control
        .exec(
            "SET GLOBAL local_infile = ON",
            "load: SET GLOBAL local_infile = ON",
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(LogicalError::Server {
            address,
            code,
            message,
            ..
        }) => Err(LogicalError::Refused {
            address,
            reason: format!(
                "the load needs local_infile=ON, it is OFF and this account may not set it \
                 (ERROR {code}: {message})"
            ),
        }),
        Err(other) => Err(other),
    }
}

/// Best effort: a failed restore is logged, it does not hide the load's own outcome.
async fn restore_local_infile(
    endpoint: &LogicalEndpoint,
    options: &LoadOptions,
    control: &mut Link,
) {
    const SQL: &str = "SET GLOBAL local_infile = OFF";
    let mut restored = control.exec(SQL, "load: restore local_infile").await;
    if restored.is_err() {
        // The control connection may be the one that broke; try a fresh one.
        restored = match Link::open(
            endpoint,
            options.statement_timeout,
            "load: restore local_infile",
        )
        .await
        {
            Ok(mut link) => link.exec(SQL, "load: restore local_infile").await,
            Err(e) => Err(e),
        };
    }
    if let Err(error) = restored {
        tracing::warn!(%error, "could not turn local_infile back OFF");
    }
}

type Loaded = (Vec<TableLoad>, u64, String);

async fn load_enabled(
    endpoint: &LogicalEndpoint,
    source: &dyn ArtifactSource,
    dump: &LogicalDump,
    options: &LoadOptions,
    control: &mut Link,
) -> Result<Loaded, LogicalError> {
    if options.history == (GtidHistory::FromDump { reset: true }) {
        let gtids: Option<String> = control
            .first("SELECT @@GLOBAL.gtid_executed", "load: read gtid_executed")
            .await?;
        if gtids.is_some_and(|g| !compact_gtids(&g).is_empty()) {
            tracing::warn!("target gtid_executed is not empty: RESET BINARY LOGS AND GTIDS");
            control
                .exec(
                    "RESET BINARY LOGS AND GTIDS",
                    "load: RESET BINARY LOGS AND GTIDS",
                )
                .await?;
        }
    }
    let add_indexes = create_tables(source, dump, options, control).await?;
    let (tables, plain_bytes) = load_chunks(endpoint, source, dump, options).await?;
    build_indexes(endpoint, options, add_indexes).await?;
    super::load_objects::create_objects(control, source, dump, options).await?;
    let gtid_executed: String = control
        .first("SELECT @@GLOBAL.gtid_executed", "load: read gtid_executed")
        .await?
        .unwrap_or_default();
    Ok((tables, plain_bytes, compact_gtids(&gtid_executed)))
}

/// Creates the schemas and tables; returns the deferred index builds (context, statement).
async fn create_tables(
    source: &dyn ArtifactSource,
    dump: &LogicalDump,
    options: &LoadOptions,
    control: &mut Link,
) -> Result<Vec<(String, String)>, LogicalError> {
    // Read concurrently: against an object store each read is a round trip.
    let creates: Vec<(&str, &str, String, String)> = stream::iter(dump.tables())
        .map(|(schema, table)| async move {
            let context = format!("load: create table {}", qualified(schema, &table.name));
            let sql = fetch_text(source, &table.ddl, options, &context).await?;
            Ok::<_, LogicalError>((schema, table.name.as_str(), context, sql))
        })
        .buffered(options.threads)
        .try_collect()
        .await?;
    let referenced: BTreeSet<(String, String)> = creates
        .iter()
        .flat_map(|(schema, _, _, sql)| foreign_key_targets(sql, schema))
        .collect();
    for schema in &dump.schemas {
        let context = format!("load: create schema {}", quote_ident(&schema.name));
        let sql = fetch_text(source, &schema.ddl, options, &context).await?;
        control.exec(&sql, &context).await?;
    }
    let mut add_indexes = Vec::new();
    let mut current_schema = None;
    for (schema, table, context, sql) in creates {
        if current_schema != Some(schema) {
            control
                .exec(&format!("USE {}", quote_ident(schema)), &context)
                .await?;
            current_schema = Some(schema);
        }
        let key = (schema.to_owned(), table.to_owned());
        let split = if options.defer_indexes {
            defer_secondary_indexes(&sql, &qualified(schema, table), referenced.contains(&key))
        } else {
            SplitTable {
                create: sql,
                add_indexes: None,
            }
        };
        control.exec(&split.create, &context).await?;
        if let Some(alter) = split.add_indexes {
            add_indexes.push((
                format!(
                    "load: add secondary indexes to {}",
                    qualified(schema, table)
                ),
                alter,
            ));
        }
    }
    Ok(add_indexes)
}

/// The sort buffer of one deferred index build (`innodb_ddl_buffer_size`, a session
/// variable that needs no privilege). The server's 1 MiB default makes a build of millions
/// of keys merge in many passes: on the benchmark's backup 64 MiB took the index phase from
/// 9.5-10.5 s to 6.5-7.1 s, and 256 MiB did no better (docs/performance.md). The memory is
/// the server's, held only while a build runs, once per index connection.
const INDEX_BUILD_BUFFER_BYTES: u64 = 64 << 20;

/// Runs the deferred index builds, one table per connection at a time.
async fn build_indexes(
    endpoint: &LogicalEndpoint,
    options: &LoadOptions,
    statements: Vec<(String, String)>,
) -> Result<(), LogicalError> {
    if statements.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let count = statements.len();
    let queue = Mutex::new(VecDeque::from(statements));
    let mut links = Vec::new();
    for index in 0..options.threads.min(count) {
        let context = format!("load: connect index worker {index}");
        let mut link = Link::open(endpoint, options.statement_timeout, &context).await?;
        prepare_session(&mut link, options).await?;
        link.exec(
            &format!("SET SESSION innodb_ddl_buffer_size = {INDEX_BUILD_BUFFER_BYTES}"),
            "load: index build buffer",
        )
        .await?;
        links.push(link);
    }
    try_join_all(links.iter_mut().map(|link| async {
        loop {
            let next = queue.lock().ok().and_then(|mut q| q.pop_front());
            let Some((context, sql)) = next else {
                return Ok::<(), LogicalError>(());
            };
            link.exec(&sql, &context).await?;
        }
    }))
    .await?;
    for link in links {
        link.close().await;
    }
    tracing::info!(
        tables = count,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "secondary indexes built"
    );
    Ok(())
}

/// The plain bytes of an artifact, bounded.
pub(super) async fn fetch(
    source: &dyn ArtifactSource,
    artifact: &StoredArtifact,
    options: &LoadOptions,
    context: &str,
) -> Result<Vec<u8>, LogicalError> {
    let context = format!("{context}: read {}", artifact.key);
    match timeout(options.artifact_timeout, source.get(artifact)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(source)) => Err(LogicalError::Artifact { context, source }),
        Err(_) => Err(LogicalError::ArtifactTimeout {
            context,
            after: options.artifact_timeout,
        }),
    }
}

pub(super) async fn fetch_text(
    source: &dyn ArtifactSource,
    artifact: &StoredArtifact,
    options: &LoadOptions,
    context: &str,
) -> Result<String, LogicalError> {
    let bytes = fetch(source, artifact, options, context).await?;
    String::from_utf8(bytes).map_err(|_| LogicalError::Mismatch {
        context: format!("{context}: read {}", artifact.key),
        message: "the DDL is not UTF-8".to_owned(),
    })
}

struct ChunkItem<'d> {
    schema: &'d str,
    table_index: usize,
    table: &'d TableDump,
    chunk: &'d ChunkDump,
}

struct ChunkQueue<'d> {
    items: Mutex<VecDeque<ChunkItem<'d>>>,
}

async fn load_chunks(
    endpoint: &LogicalEndpoint,
    source: &dyn ArtifactSource,
    dump: &LogicalDump,
    options: &LoadOptions,
) -> Result<(Vec<TableLoad>, u64), LogicalError> {
    let per_table = dump
        .tables()
        .enumerate()
        .map(|(table_index, (schema, table))| {
            table
                .chunks
                .iter()
                .map(|chunk| ChunkItem {
                    schema,
                    table_index,
                    table,
                    chunk,
                })
                .collect()
        })
        .collect();
    let queue = ChunkQueue {
        items: Mutex::new(VecDeque::from(round_robin(per_table))),
    };
    let workers = options.threads.min(queue_len(&queue)).max(1);
    let mut links = Vec::with_capacity(workers);
    for index in 0..workers {
        let context = format!("load: connect worker {index}");
        let mut link = Link::open(endpoint, options.statement_timeout, &context).await?;
        prepare_session(&mut link, options).await?;
        link.exec(
            &format!("SET SESSION innodb_ddl_buffer_size = {INDEX_BUILD_BUFFER_BYTES}"),
            "load: index build buffer",
        )
        .await?;
        links.push(link);
    }
    let loaded = try_join_all(
        links
            .iter_mut()
            .map(|link| load_worker(link, source, &queue, options)),
    )
    .await?;
    for link in links {
        link.close().await;
    }
    let mut rows: BTreeMap<usize, u64> = BTreeMap::new();
    let mut bytes = 0;
    for (table_index, chunk_rows, chunk_bytes) in loaded.into_iter().flatten() {
        *rows.entry(table_index).or_default() += chunk_rows;
        bytes += chunk_bytes;
    }
    let tables = dump
        .tables()
        .enumerate()
        .map(|(index, (schema, table))| TableLoad {
            schema: schema.to_owned(),
            table: table.name.clone(),
            rows: rows.get(&index).copied().unwrap_or(0),
            chunks: table.chunks.len(),
        })
        .collect();
    Ok((tables, bytes))
}

fn queue_len(queue: &ChunkQueue<'_>) -> usize {
    queue.items.lock().map_or(0, |q| q.len())
}

async fn load_worker(
    link: &mut Link,
    source: &dyn ArtifactSource,
    queue: &ChunkQueue<'_>,
    options: &LoadOptions,
) -> Result<Vec<(usize, u64, u64)>, LogicalError> {
    let mut loaded = Vec::new();
    loop {
        let item = queue.items.lock().ok().and_then(|mut q| q.pop_front());
        let Some(item) = item else { break };
        let span = tracing::info_span!(
            "load_chunk",
            schema = %item.schema,
            table = %item.table.name,
            chunk = %item.chunk.artifact.key
        );
        let rows = load_chunk(link, source, &item, options)
            .instrument(span)
            .await?;
        loaded.push((item.table_index, rows, item.chunk.artifact.plain_bytes));
    }
    Ok(loaded)
}

async fn load_chunk(
    link: &mut Link,
    source: &dyn ArtifactSource,
    item: &ChunkItem<'_>,
    options: &LoadOptions,
) -> Result<u64, LogicalError> {
    let name = qualified(item.schema, &item.table.name);
    let context = format!("load {name} chunk {}", item.chunk.artifact.key);
    let mismatch = |message: String| LogicalError::Mismatch {
        context: context.clone(),
        message,
    };
    let data = fetch(
        source,
        &item.chunk.artifact,
        options,
        &format!("load {name}"),
    )
    .await?;
    let sha = sha256_hex(&data);
    if sha != item.chunk.plain_sha256 {
        return Err(mismatch(format!(
            "plain SHA-256 is {sha}, the dump recorded {}",
            item.chunk.plain_sha256
        )));
    }
    let rows = codec::count_rows(&data).map_err(|e| mismatch(format!("not a chunk: {e}")))?;
    if rows != item.chunk.rows {
        return Err(mismatch(format!(
            "the chunk holds {rows} rows, the dump recorded {}; nothing of it was loaded",
            item.chunk.rows
        )));
    }
    let sql = load_data(item.schema, &item.table.name, &item.table.columns);
    let (affected, warnings) = link.load_infile(&sql, data, &context).await?;
    if warnings > 0 {
        let shown: Vec<(String, u32, String)> = link
            .all("SHOW WARNINGS LIMIT 3", &context)
            .await
            .unwrap_or_default();
        let shown: Vec<String> = shown
            .into_iter()
            .map(|(level, code, message)| format!("{level} {code}: {message}"))
            .collect();
        return Err(mismatch(format!(
            "LOAD DATA raised {warnings} warning(s), so a value did not load exactly: {}",
            shown.join("; ")
        )));
    }
    if affected != item.chunk.rows {
        return Err(mismatch(format!(
            "LOAD DATA stored {affected} rows, the dump recorded {}",
            item.chunk.rows
        )));
    }
    Ok(affected)
}
