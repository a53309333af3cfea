//! The dump: one consistent snapshot shared by N connections, DDL first, then every
//! table's chunks through one work queue.
//!
//! # The snapshot
//!
//! The control connection takes `LOCK INSTANCE FOR BACKUP` for the whole dump, which blocks
//! DDL (so the catalog read at the start stays true) but not DML. It then takes
//! `FLUSH TABLES WITH READ LOCK`, bounded by `lock_wait_timeout`: once it is granted, no
//! transaction can commit. While no commit can happen, every worker runs
//! `START TRANSACTION WITH CONSISTENT SNAPSHOT` at REPEATABLE READ, so all workers see the
//! same committed state, and the control connection reads `@@GLOBAL.gtid_executed`, which
//! is exactly the set of transactions that state contains. `UNLOCK TABLES` follows at once;
//! writes stall only for the few statements in between. This is what `mysqldump
//! --single-transaction --source-data` does with one connection; N snapshots opened under
//! the same global read lock are identical, so N connections can split the work.
//!
//! The snapshot covers transactional (InnoDB) tables. A non-transactional table written
//! during the dump is read as it is when its rows are read.

use std::collections::VecDeque;
use std::sync::Mutex;

use futures_util::future::try_join_all;
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::time::{Instant, timeout};
use tracing::Instrument;

use super::catalog::{self, SchemaInfo, TableInfo};
use super::link::Link;
use super::row_link::RowLink;
use super::worker::{self, Produced, Shared, TableJob, WorkItem};
use super::{DumpOptions, LogicalEndpoint, LogicalError, compact_gtids};
use crate::backup::logical::plan::{DdlKind, ddl_key, range_count, split_key_range};
use crate::backup::logical::sql::{qualified, quote_ident};
use crate::backup::logical::{
    DdlObject, LOGICAL_FORMAT_VERSION, LogicalDump, SchemaDump, TableDump, table_checksum,
};
use crate::ports::artifacts::{ArtifactSink, StoredArtifact};

/// At most this many key ranges per table.
const MAX_RANGES: u64 = 10_000;

/// Dumps every user schema of the server at `endpoint` into `sink`, from one consistent
/// snapshot, and returns the description of what it wrote.
///
/// The account needs `SELECT`, `SHOW VIEW`, `TRIGGER`, `EVENT` and `SHOW_ROUTINE` on what
/// it dumps, `RELOAD` (`FLUSH TABLES WITH READ LOCK`) and `BACKUP_ADMIN`
/// (`LOCK INSTANCE FOR BACKUP`).
pub async fn dump(
    endpoint: &LogicalEndpoint,
    sink: &dyn ArtifactSink,
    options: &DumpOptions,
) -> Result<LogicalDump, LogicalError> {
    if options.threads == 0 || options.chunk_bytes == 0 {
        return Err(LogicalError::Options(
            "threads and chunk_bytes must be at least 1".to_owned(),
        ));
    }
    let chunk_bytes = usize::try_from(options.chunk_bytes)
        .map_err(|_| LogicalError::Options("chunk_bytes does not fit in memory".to_owned()))?;
    let span =
        tracing::info_span!("logical_dump", address = %endpoint.address, threads = options.threads);
    async move {
        let started = Instant::now();
        let mut control = Link::open(endpoint, options.statement_timeout, "dump: connect").await?;
        control
            .exec(&session_settings(options), "dump: session settings")
            .await?;
        control
            .exec("LOCK INSTANCE FOR BACKUP", "dump: LOCK INSTANCE FOR BACKUP")
            .await?;
        let mut workers = Vec::with_capacity(options.threads);
        for index in 0..options.threads {
            let context = format!("dump: connect worker {index}");
            // The workers stream rows through the wire client: no value per field.
            let mut link = RowLink::open(endpoint, options.statement_timeout, &context).await?;
            link.exec(&session_settings(options), &context).await?;
            link.exec(
                "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                &context,
            )
            .await?;
            workers.push(link);
        }
        let (gtid_executed, server_version) = snapshot(&mut control, &mut workers).await?;
        tracing::info!(gtid_executed = %gtid_executed, "snapshot taken");

        let schemas = catalog::read(&mut control, &options.schemas).await?;
        let mut dumps = write_ddl(sink, &schemas, options).await?;
        let (jobs, items) = plan(&mut control, &schemas, options).await?;
        let shared = Shared {
            tables: &jobs,
            queue: Mutex::new(items),
            sink,
            chunk_bytes,
            artifact_timeout: options.artifact_timeout,
        };
        let produced = try_join_all(workers.iter_mut().map(|link| worker::run(link, &shared)))
            .await?
            .into_iter()
            .flatten()
            .collect();
        assemble(&mut dumps, &schemas, produced);
        for link in workers {
            // Ends the snapshot transactions; the server would do it on disconnect too.
            link.close().await;
        }
        control
            .exec("UNLOCK INSTANCE", "dump: UNLOCK INSTANCE")
            .await?;
        control.close().await;
        let dump = LogicalDump {
            format_version: LOGICAL_FORMAT_VERSION,
            server_version,
            gtid_executed,
            chunk_bytes: options.chunk_bytes,
            schemas: dumps,
        };
        tracing::info!(
            rows = dump.rows(),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "dump finished"
        );
        Ok(dump)
    }
    .instrument(span)
    .await
}

/// The session every dump connection runs in.
fn session_settings(options: &DumpOptions) -> String {
    // The server must wait for us while a worker writes a chunk to the sink between rows.
    let net = options
        .statement_timeout
        .max(options.artifact_timeout)
        .as_secs()
        .max(600);
    // Bounds the backup lock and the global read lock server-side too.
    let lock_wait = options.lock_wait_timeout.as_secs().max(1);
    format!(
        "SET NAMES utf8mb4, SESSION time_zone = '+00:00', SESSION sql_mode = '', \
         SESSION net_read_timeout = {net}, SESSION net_write_timeout = {net}, \
         SESSION max_execution_time = 0, SESSION information_schema_stats_expiry = 0, \
         SESSION lock_wait_timeout = {lock_wait}"
    )
}

/// Opens the workers' snapshots under the global read lock and reads the GTID set they
/// contain. The lock is released whatever happens.
async fn snapshot(
    control: &mut Link,
    workers: &mut [RowLink],
) -> Result<(String, String), LogicalError> {
    control
        .exec(
            "FLUSH TABLES WITH READ LOCK",
            "dump: FLUSH TABLES WITH READ LOCK",
        )
        .await?;
    let taken = async {
        for (index, link) in workers.iter_mut().enumerate() {
            link.exec(
                "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
                &format!("dump: snapshot of worker {index}"),
            )
            .await?;
        }
        control
            .first::<(String, String)>(
                "SELECT @@GLOBAL.gtid_executed, @@version",
                "dump: read gtid_executed",
            )
            .await
    }
    .await;
    let unlocked = control.exec("UNLOCK TABLES", "dump: UNLOCK TABLES").await;
    let (gtids, version) = taken?.ok_or_else(|| LogicalError::Server {
        address: control.address().to_owned(),
        context: "dump: read gtid_executed".to_owned(),
        code: 0,
        message: "no row".to_owned(),
    })?;
    unlocked?;
    Ok((compact_gtids(&gtids), version))
}

async fn put(
    sink: &dyn ArtifactSink,
    key: String,
    text: String,
    options: &DumpOptions,
) -> Result<StoredArtifact, LogicalError> {
    let context = format!("dump: write {key}");
    match timeout(options.artifact_timeout, sink.put(key, text.into_bytes())).await {
        Ok(Ok(artifact)) => Ok(artifact),
        Ok(Err(source)) => Err(LogicalError::Artifact { context, source }),
        Err(_) => Err(LogicalError::ArtifactTimeout {
            context,
            after: options.artifact_timeout,
        }),
    }
}

/// Writes every DDL artifact; the tables get their chunks later. The writes run
/// concurrently (`threads` at a time): against an object store each is a round trip, and a
/// schema can have thousands of objects.
async fn write_ddl(
    sink: &dyn ArtifactSink,
    schemas: &[SchemaInfo],
    options: &DumpOptions,
) -> Result<Vec<SchemaDump>, LogicalError> {
    // A fixed order (per schema: itself, its tables, its objects) that the records are
    // taken back in below.
    // Owned texts: a stream of futures borrowing them makes the dump's Send bound
    // higher-ranked, and a spawned dump (standalone's schedule) would not compile.
    let mut puts: Vec<(String, String)> = Vec::new();
    for schema in schemas {
        puts.push((
            ddl_key(DdlKind::Schema, &schema.name, ""),
            schema.create.clone(),
        ));
        for table in &schema.tables {
            puts.push((
                ddl_key(DdlKind::Table, &schema.name, &table.name),
                table.create.clone(),
            ));
        }
        for object in &schema.objects {
            puts.push((
                ddl_key(object.kind, &schema.name, &object.name),
                object.create.clone(),
            ));
        }
    }
    let stored: Vec<StoredArtifact> = stream::iter(puts)
        .map(|(key, text)| put(sink, key, text, options))
        .buffered(options.threads)
        .try_collect()
        .await?;
    let mut stored = stored.into_iter();
    let mut next = || {
        stored.next().ok_or_else(|| LogicalError::Mismatch {
            context: "dump: write DDL".to_owned(),
            message: "fewer DDL records than DDL artifacts".to_owned(),
        })
    };
    let mut dumps = Vec::with_capacity(schemas.len());
    for schema in schemas {
        let ddl = next()?;
        let mut tables = Vec::with_capacity(schema.tables.len());
        for table in &schema.tables {
            tables.push(TableDump {
                name: table.name.clone(),
                ddl: next()?,
                columns: table.columns.clone(),
                rows: 0,
                checksum: String::new(),
                chunks: Vec::new(),
            });
        }
        let mut dump = SchemaDump {
            name: schema.name.clone(),
            ddl,
            tables,
            views: Vec::new(),
            routines: Vec::new(),
            triggers: Vec::new(),
            events: Vec::new(),
        };
        for object in &schema.objects {
            let record = DdlObject {
                name: object.name.clone(),
                sql_mode: object.sql_mode.clone(),
                time_zone: object.time_zone.clone(),
                artifact: next()?,
            };
            match object.kind {
                DdlKind::View => dump.views.push(record),
                DdlKind::Procedure | DdlKind::Function => dump.routines.push(record),
                DdlKind::Trigger => dump.triggers.push(record),
                DdlKind::Event => dump.events.push(record),
                DdlKind::Schema | DdlKind::Table => {}
            }
        }
        dumps.push(dump);
    }
    Ok(dumps)
}

/// The work queue: integer-keyed tables cut into key ranges, other tables whole; biggest
/// first.
async fn plan(
    control: &mut Link,
    schemas: &[SchemaInfo],
    options: &DumpOptions,
) -> Result<(Vec<TableJob>, VecDeque<WorkItem>), LogicalError> {
    let mut jobs = Vec::new();
    let mut items = Vec::new();
    for schema in schemas {
        for table in &schema.tables {
            let index = jobs.len();
            let ranges = table_ranges(control, &schema.name, table, options).await?;
            let pieces = u64::try_from(ranges.len()).unwrap_or(1).max(1);
            for (range_index, range) in ranges.into_iter().enumerate() {
                items.push(WorkItem {
                    table: index,
                    range_index,
                    range,
                    estimated_bytes: table.estimated_bytes / pieces,
                });
            }
            jobs.push(TableJob {
                schema: schema.name.clone(),
                table: table.name.clone(),
                columns: table.columns.clone(),
                primary_key: table.primary_key.clone(),
            });
        }
    }
    items.sort_by_key(|item| std::cmp::Reverse(item.estimated_bytes));
    Ok((jobs, items.into()))
}

async fn table_ranges(
    control: &mut Link,
    schema: &str,
    table: &TableInfo,
    options: &DumpOptions,
) -> Result<Vec<Option<crate::backup::logical::plan::KeyRange>>, LogicalError> {
    let [key] = table.primary_key.as_slice() else {
        return Ok(vec![None]);
    };
    if !table.integer_key {
        return Ok(vec![None]);
    }
    let name = qualified(schema, &table.name);
    let key = quote_ident(key);
    // Read outside the snapshot: the outer ranges are unbounded, so this only spreads the
    // work (see `split_key_range`).
    let bounds: Option<(Option<String>, Option<String>)> = control
        .first(
            &format!("SELECT CAST(MIN({key}) AS CHAR), CAST(MAX({key}) AS CHAR) FROM {name}"),
            &format!("dump: key bounds of {name}"),
        )
        .await?;
    let parsed = bounds
        .and_then(|(min, max)| Some((min?.parse::<i128>().ok()?, max?.parse::<i128>().ok()?)));
    let Some((min, max)) = parsed else {
        return Ok(vec![None]);
    };
    let span = u128::try_from(max - min).unwrap_or(0) + 1;
    let pieces = range_count(
        table.estimated_bytes,
        options.chunk_bytes,
        options.threads,
        span,
        MAX_RANGES,
    );
    Ok(split_key_range(min, max, pieces)
        .into_iter()
        .map(Some)
        .collect())
}

/// Puts each table's chunks in key order and computes its totals.
fn assemble(dumps: &mut [SchemaDump], schemas: &[SchemaInfo], mut produced: Vec<Produced>) {
    produced.sort_by_key(|p| (p.table, p.range_index, p.part));
    let mut by_table = produced.into_iter().peekable();
    let mut index = 0;
    for (dump, schema) in dumps.iter_mut().zip(schemas) {
        for table in dump.tables.iter_mut().take(schema.tables.len()) {
            while let Some(p) = by_table.next_if(|p| p.table == index) {
                table.chunks.push(p.chunk);
            }
            table.rows = table.chunks.iter().map(|c| c.rows).sum();
            table.checksum = table_checksum(
                table
                    .chunks
                    .iter()
                    .map(|c| (c.plain_sha256.as_str(), c.rows)),
            );
            index += 1;
        }
    }
}
