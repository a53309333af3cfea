//! Everything a `bloodraven backup` command can fail with, each with its category (exit
//! code 2 for input and configuration, 1 for the rest).

use crate::adapters::storage::StoreError;
use crate::backup::sanity::SanityFailure;
use crate::backup::seal::SealError;
use crate::control::backup::CatalogError;
use crate::error::{Categorized, Category};
use crate::ports::artifacts::{ArtifactError, BlobError};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A flag, file or environment variable the command needs is missing or wrong.
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error("encryption: {0}")]
    Seal(#[from] SealError),
    #[error("backup {id}: not in the repository")]
    NotFound { id: String },
    #[error("backup {id} is {state}, not complete: it cannot be restored or verified")]
    NotComplete { id: String, state: String },
    /// The manifest and the authenticated contents disagree: the manifest was edited.
    #[error("backup {id}: the manifest does not match its authenticated contents ({what})")]
    Mismatch { id: String, what: &'static str },
    #[error("database: {0}")]
    Database(String),
    /// A verification's sanity check failed.
    #[error("{0}")]
    Sanity(#[from] SanityFailure),
    /// A failure with a report to print on stdout all the same (a failed verification's
    /// JSON).
    #[error("{error}")]
    Reported {
        report: String,
        error: Box<BackupError>,
    },
    #[error("{0}")]
    Runtime(String),
}

impl Categorized for BackupError {
    fn category(&self) -> Category {
        match self {
            Self::Input(_) => Category::Config,
            Self::Store(e) => e.category(),
            Self::Blob(e) => e.category(),
            Self::Catalog(e) => e.category(),
            Self::Artifact(e) => e.category(),
            Self::Seal(_)
            | Self::NotFound { .. }
            | Self::NotComplete { .. }
            | Self::Mismatch { .. } => Category::InvalidInput,
            Self::Database(_) | Self::Runtime(_) => Category::Unavailable,
            Self::Sanity(SanityFailure::TimedOut { .. }) => Category::Timeout,
            Self::Sanity(_) => Category::Refused,
            Self::Reported { error, .. } => error.category(),
        }
    }
}
