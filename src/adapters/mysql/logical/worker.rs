//! A dump worker: one connection inside the shared snapshot, taking work items from the
//! common queue, streaming each one's rows and cutting them into chunks by size.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};
use tokio::time::timeout;
use tracing::Instrument;

use super::LogicalError;
use super::link::Link;
use crate::backup::logical::plan::{KeyRange, chunk_key};
use crate::backup::logical::sql::{qualified, select_rows};
use crate::backup::logical::{ChunkDump, ColumnSpec, codec};
use crate::digest::sha256_hex;
use crate::ports::artifacts::{ArtifactError, ArtifactSink};

/// Rows read between two pushes of the stream's deadline.
const ROWS_PER_DEADLINE: u32 = 64;

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
    link: &mut Link,
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
    Driver(mysql_async::Error),
    Timeout,
    Artifact(String, ArtifactError),
    ArtifactTimeout(String),
    Value(String),
}

async fn dump_item(
    link: &mut Link,
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
    let bound = link.statement_timeout();
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
    let outcome = stream(conn, &sql, bound, &mut chunker).await;
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
                StreamFailure::Timeout => link.timed_out(&context),
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
    conn: &mut Conn,
    sql: &str,
    bound: Duration,
    chunker: &mut Chunker<'_, '_>,
) -> Result<(), StreamFailure> {
    let mut result = timeout(bound, conn.query_iter(sql))
        .await
        .map_err(|_| StreamFailure::Timeout)?
        .map_err(StreamFailure::Driver)?;
    // One timer for the whole stream, pushed back every ROWS_PER_DEADLINE rows: a timeout
    // per row read the clock and built a timer for each of millions of rows. A stall is
    // still caught within `bound` of the last push; a stream slower than that many rows
    // per `bound` (64 rows in 5 minutes by default) counts as stalled.
    let deadline = tokio::time::sleep(bound);
    tokio::pin!(deadline);
    let mut since_push = 0u32;
    loop {
        if since_push == ROWS_PER_DEADLINE {
            deadline.as_mut().reset(tokio::time::Instant::now() + bound);
            since_push = 0;
        }
        since_push += 1;
        let row: Option<Row> = tokio::select! {
            biased;
            row = result.next() => row.map_err(StreamFailure::Driver)?,
            () = &mut deadline => return Err(StreamFailure::Timeout),
        };
        let Some(row) = row else { break };
        chunker.push(row)?;
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
    fn push(&mut self, row: Row) -> Result<(), StreamFailure> {
        let values = row.unwrap_raw();
        // The text protocol sends every value as bytes; checked first so the row goes
        // into the chunk whole or not at all, with no per-row field list.
        if let Some(other) = values
            .iter()
            .find(|value| !matches!(value, Some(Value::NULL | Value::Bytes(_))))
        {
            return Err(StreamFailure::Value(format!(
                "unexpected value {other:?} in a text result"
            )));
        }
        codec::push_row(
            &mut self.buffer,
            values.iter().map(|value| match value {
                Some(Value::Bytes(bytes)) => Some(bytes.as_slice()),
                _ => None,
            }),
        );
        self.rows += 1;
        Ok(())
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
