//! The storage side of backups, over the [`crate::ports::artifacts::BlobStore`] port: the
//! artifact sink and source a dump and a load go through (compression, sealing and digests
//! by [`crate::backup::codec`]), and the catalog that lists, checks and prunes the
//! repository's backups.

mod catalog;
mod repository;

pub use catalog::{BackupEntry, BackupState, Catalog, CatalogError, PruneOutcome};
pub use repository::{RepositorySink, RepositorySource, SinkTotals};
