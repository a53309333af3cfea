//! The logical backup method's pure core: what a dump is made of, how rows are written into
//! chunks, how tables are cut into chunks, and the SQL text that reads and loads them.
//!
//! Nothing here touches MySQL or storage; `crate::adapters::mysql::logical` does the I/O and
//! feeds these functions column lists, key ranges and row values.
//!
//! - [`model`]: [`LogicalDump`], the serializable description of one dump (embedded in the
//!   backup manifest);
//! - [`codec`]: the chunk row format (what `LOAD DATA LOCAL INFILE` reads with its default
//!   field and line options);
//! - [`plan`]: primary-key range splitting and artifact keys;
//! - [`ddl`]: secondary indexes deferred until the data is loaded;
//! - [`filter`]: which user schemas a dump takes;
//! - [`sql`]: identifier quoting, the per-column SELECT expressions and the `LOAD DATA`
//!   statement that undoes them.

pub mod codec;
pub mod ddl;
pub mod filter;
pub mod model;
pub mod plan;
pub mod sql;

pub use filter::SchemaFilter;
pub use model::table_checksum;
pub use model::{
    ChunkDump, ColumnEncoding, ColumnSpec, DdlObject, LOGICAL_FORMAT_VERSION, LogicalDump,
    SchemaDump, TableDump,
};
