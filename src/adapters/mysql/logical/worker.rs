//! A dump worker: one connection inside the shared snapshot, taking work items from the
//! common queue, streaming each one's rows and cutting them into chunks by size.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::timeout;
use tracing::Instrument;

use super::super::wire::{Row, WireConn, WireError};
use super::LogicalError;
use super::row_link::RowLink;
use crate::backup::logical::plan::{KeyRange, chunk_key};
use crate::backup::logical::sql::{qualified, select_rows};
use crate::backup::logical::{ChunkDump, ColumnSpec, codec};
use crate::digest::sha256_hex;
use crate::ports::artifacts::{ArtifactError, ArtifactSink};

/// One unit of work: a key range of a table, or a whole table.
pub(super) struct WorkItem {
    /// Index of the table in the dump's flat table list.
    pub table: usize,
    pub range_index: usize,
    /// `None` reads the whole table.
    pub range: Option<KeyRange>,
    /// For ordering the queue: the biggest items go first so no worker is left with a
    /// large one at the end.
    pub estimated_bytes: u64,
}

/// What workers need to know about a table.
pub(super) struct TableJob {
    pub schema: String,
    pub table: String,
    pub columns: Vec<ColumnSpec>,
    pub primary_key: Vec<String>,
}

/// A chunk written by a worker, with its place in the table.
pub(super) struct Produced {
    pub table: usize,
    pub range_index: usize,
    pub part: usize,
    pub chunk: ChunkDump,
}

pub(super) struct Shared<'a> {
    pub tables: &'a [TableJob],
    pub queue: Mutex<VecDeque<WorkItem>>,
    pub sink: &'a dyn ArtifactSink,
    pub chunk_bytes: usize,
    pub artifact_timeout: Duration,
}

impl Shared<'_> {
    fn next_item(&self) -> Option<WorkItem> {
        // A poisoned lock means another worker panicked; the dump fails through it anyway.
        self.queue.lock().ok()?.pop_front()
    }
}

/// Takes items until the queue is empty.
pub(super) async fn run(
    link: &mut RowLink,
    shared: &Shared<'_>,
) -> Result<Vec<Produced>, LogicalError> {
    let mut produced = Vec::new();
    while let Some(item) = shared.next_item() {
        let Some(job) = shared.tables.get(item.table) else {
            continue;
        };
        let span = tracing::info_span!(
            "dump_range",
            schema = %job.schema,
            table = %job.table,
            range = item.range_index
        );
        produced.extend(dump_item(link, shared, job, &item).instrument(span).await?);
    }
    Ok(produced)
}

/// Why streaming a range stopped, before it is put in the dump's terms.
enum StreamFailure {
    Driver(WireError),
    Artifact(String, ArtifactError),
    ArtifactTimeout(String),
    Value(String),
}

async fn dump_item(
    link: &mut RowLink,
    shared: &Shared<'_>,
    job: &TableJob,
    item: &WorkItem,
) -> Result<Vec<Produced>, LogicalError> {
    let sql = select_rows(
        &job.schema,
        &job.table,
        &job.columns,
        &job.primary_key,
        item.range,
    );
    let name = qualified(&job.schema, &job.table);
    let mut chunker = Chunker {
        shared,
        job,
        item,
        buffer: Vec::with_capacity(shared.chunk_bytes.min(64 << 20) + 4096),
        rows: 0,
        produced: Vec::new(),
    };
    let context = format!("dump {name} range {:05}", item.range_index);
    let conn = link.conn(&context)?;
    let outcome = stream(conn, &sql, job.columns.len(), &mut chunker).await;
    match outcome {
        Ok(()) => Ok(chunker.produced),
        Err(failure) => {
            // Name the chunk the failure hit: the one being filled.
            let context = format!(
                "dump {name} chunk {}",
                chunk_key(
                    &job.schema,
                    &job.table,
                    item.range_index,
                    chunker.produced.len()
                )
            );
            Err(match failure {
                StreamFailure::Driver(e) => link.fail(&e, &context),
                StreamFailure::Artifact(key, source) => LogicalError::Artifact {
                    context: format!("dump {name}: write {key}"),
                    source,
                },
                StreamFailure::ArtifactTimeout(key) => LogicalError::ArtifactTimeout {
                    context: format!("dump {name}: write {key}"),
                    after: shared.artifact_timeout,
                },
                StreamFailure::Value(message) => LogicalError::Mismatch { context, message },
            })
        }
    }
}

async fn stream(
    conn: &mut WireConn,
    sql: &str,
    columns: usize,
    chunker: &mut Chunker<'_, '_>,
) -> Result<(), StreamFailure> {
    // Each socket read is bounded by the connection (the statement timeout), so the
    // stream fails when it stalls, however long it runs.
    let returned = conn.query(sql).await.map_err(StreamFailure::Driver)?;
    if returned != columns {
        return Err(StreamFailure::Value(format!(
            "the server returned {returned} columns for the {columns} the catalog lists"
        )));
    }
    while let Some(row) = conn.next_row().await.map_err(StreamFailure::Driver)? {
        chunker.push(&row);
        if chunker.full() {
            chunker.flush().await?;
        }
    }
    chunker.flush().await
}

struct Chunker<'s, 'a> {
    shared: &'s Shared<'a>,
    job: &'s TableJob,
    item: &'s WorkItem,
    buffer: Vec<u8>,
    rows: u64,
    produced: Vec<Produced>,
}

impl Chunker<'_, '_> {
    fn push(&mut self, row: &Row<'_>) {
        codec::push_row(&mut self.buffer, row.fields());
        self.rows += 1;
    }

    fn full(&self) -> bool {
        self.buffer.len() >= self.shared.chunk_bytes
    }

    async fn flush(&mut self) -> Result<(), StreamFailure> {
        if self.rows == 0 {
            return Ok(());
        }
        let part = self.produced.len();
        let key = chunk_key(
            &self.job.schema,
            &self.job.table,
            self.item.range_index,
            part,
        );
        let plain = std::mem::take(&mut self.buffer);
        let plain_sha256 = sha256_hex(&plain);
        let capacity = plain.capacity();
        let artifact = timeout(
            self.shared.artifact_timeout,
            self.shared.sink.put(key.clone(), plain),
        )
        .await
        .map_err(|_| StreamFailure::ArtifactTimeout(key.clone()))?
        .map_err(|e| StreamFailure::Artifact(key.clone(), e))?;
        tracing::debug!(chunk = %key, rows = self.rows, bytes = artifact.plain_bytes, "chunk written");
        self.produced.push(Produced {
            table: self.item.table,
            range_index: self.item.range_index,
            part,
            chunk: ChunkDump {
                artifact,
                rows: self.rows,
                plain_sha256,
            },
        });
        self.rows = 0;
        self.buffer = Vec::with_capacity(capacity);
        Ok(())
    }
}
