//! The repository's backups as a list, and retention applied to it.
//!
//! A backup's state is read from the markers [`crate::backup::manifest`] lays out: a
//! manifest means complete, `failed.json` means failed, and only `started.json` means
//! running, or abandoned by a process that died. A run abandoned longer than
//! `abandoned_after` counts as failed, so retention can clear it; a younger one is left
//! alone, since it may still be writing.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::backup::manifest::{
    BACKUPS_DIR, FAILED_FILE, Failed, MANIFEST_FILE, MAX_MANIFEST_BYTES, Manifest, STARTED_FILE,
    Started, backup_key, is_valid_id,
};
use crate::backup::retention::{self, BackupRecord, Outcome, PrunePlan, RetentionPolicy};
use crate::error::{Categorized, Category};
use crate::failover::Timestamp;
use crate::ports::artifacts::{BlobError, BlobStore};

/// Where a backup stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupState {
    Complete,
    Failed,
    Running,
    /// Started long ago and never finished: its process died.
    Abandoned,
    /// A marker or manifest that does not parse: shown with why, and never pruned, since
    /// what cannot be read cannot be judged safe to delete.
    Unreadable,
}

impl BackupState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::Running => "running",
            Self::Abandoned => "abandoned",
            Self::Unreadable => "unreadable",
        }
    }
}

/// One backup as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupEntry {
    pub id: String,
    pub state: BackupState,
    pub started_at: Option<String>,
    /// The manifest's finish time, or the failure's.
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failed>,
}

impl BackupEntry {
    /// When it ended, for retention (its start for one still running).
    fn settled_at(&self) -> Timestamp {
        self.finished_at
            .as_deref()
            .or(self.started_at.as_deref())
            .and_then(Timestamp::parse_rfc3339)
            .unwrap_or_default()
    }
}

/// A listing or prune that could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Store(#[from] BlobError),
    #[error("{key}: not valid JSON for its kind: {message}")]
    Corrupt { key: String, message: String },
}

impl Categorized for CatalogError {
    fn category(&self) -> Category {
        match self {
            Self::Store(e) => e.category(),
            Self::Corrupt { .. } => Category::InvalidInput,
        }
    }
}

/// What a prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneOutcome {
    pub deleted: Vec<String>,
    pub kept: Vec<String>,
    /// Archived binary logs pruned after the backups (`<server uuid>/<name>`): those every
    /// kept complete backup holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned_binlogs: Vec<String>,
}

/// The backups in one repository.
pub struct Catalog {
    store: Arc<dyn BlobStore>,
    abandoned_after: Duration,
}

impl Catalog {
    pub fn new(store: Arc<dyn BlobStore>, abandoned_after: Duration) -> Self {
        Self {
            store,
            abandoned_after,
        }
    }

    /// Every backup, oldest first.
    pub async fn list(&self, now: Timestamp) -> Result<Vec<BackupEntry>, CatalogError> {
        let mut entries = Vec::new();
        for id in self.store.list_dirs(BACKUPS_DIR).await? {
            if !is_valid_id(&id) {
                tracing::warn!(id, "ignoring a directory that is not a backup id");
                continue;
            }
            match self.entry(&id, now).await {
                Ok(Some(entry)) => entries.push(entry),
                Ok(None) => {}
                Err(CatalogError::Corrupt { key, message }) => entries.push(BackupEntry {
                    id: id.clone(),
                    state: BackupState::Unreadable,
                    started_at: None,
                    finished_at: None,
                    manifest: None,
                    failure: Some(Failed {
                        id,
                        failed_at: String::new(),
                        category: "invalid_input".to_owned(),
                        message: format!("{key}: {message}"),
                    }),
                }),
                Err(other) => return Err(other),
            }
        }
        Ok(entries)
    }

    /// The manifest of the complete backup `id`; `None` when it is not complete.
    pub async fn manifest(&self, id: &str) -> Result<Option<Manifest>, CatalogError> {
        self.read_json(&backup_key(id, MANIFEST_FILE)).await
    }

    /// `None` for a directory that holds nothing: what a delete leaves on a filesystem, or
    /// on an S3 server that keeps directory entries, is no backup at all.
    async fn entry(&self, id: &str, now: Timestamp) -> Result<Option<BackupEntry>, CatalogError> {
        let started: Option<Started> = self.read_json(&backup_key(id, STARTED_FILE)).await?;
        let started_at = started.map(|s| s.started_at);
        if let Some(manifest) = self.manifest(id).await? {
            return Ok(Some(BackupEntry {
                id: id.to_owned(),
                state: BackupState::Complete,
                started_at: Some(manifest.started_at.clone()),
                finished_at: Some(manifest.finished_at.clone()),
                manifest: Some(manifest),
                failure: None,
            }));
        }
        let failure: Option<Failed> = self.read_json(&backup_key(id, FAILED_FILE)).await?;
        if started_at.is_none()
            && failure.is_none()
            && self
                .store
                .list(&format!("{BACKUPS_DIR}/{id}"))
                .await?
                .is_empty()
        {
            return Ok(None);
        }
        let state = match (
            &failure,
            started_at.as_deref().and_then(Timestamp::parse_rfc3339),
        ) {
            (Some(_), _) => BackupState::Failed,
            (None, Some(start)) if !now.has_elapsed(start, self.abandoned_after) => {
                BackupState::Running
            }
            (None, _) => BackupState::Abandoned,
        };
        Ok(Some(BackupEntry {
            id: id.to_owned(),
            state,
            started_at,
            finished_at: failure.as_ref().map(|f| f.failed_at.clone()),
            manifest: None,
            failure,
        }))
    }

    /// The prune `policy` calls for at `now`, without deleting anything.
    pub async fn plan_prune(
        &self,
        policy: RetentionPolicy,
        now: Timestamp,
    ) -> Result<PrunePlan, CatalogError> {
        let records: Vec<BackupRecord> = self
            .list(now)
            .await?
            .iter()
            .map(|entry| BackupRecord {
                id: entry.id.clone(),
                finished_at: entry.settled_at(),
                outcome: match entry.state {
                    BackupState::Complete => Outcome::Succeeded,
                    BackupState::Failed | BackupState::Abandoned => Outcome::Failed,
                    BackupState::Running | BackupState::Unreadable => Outcome::InProgress,
                },
            })
            .collect();
        Ok(retention::plan(&records, &policy, now))
    }

    /// Applies retention: plans, then deletes what the plan names. Repeating it deletes
    /// nothing more, since the plan keeps a newest-first prefix.
    pub async fn prune(
        &self,
        policy: RetentionPolicy,
        now: Timestamp,
    ) -> Result<PruneOutcome, CatalogError> {
        let plan = self.plan_prune(policy, now).await?;
        let kept = plan.keep.into_iter().map(|k| k.id).collect();
        let mut deleted = Vec::with_capacity(plan.delete.len());
        // Owned values across the awaits: a borrow held over them makes the future's Send
        // bound higher-ranked, which the compiler cannot prove when it is spawned.
        for deletion in plan.delete {
            tracing::info!(id = %deletion.id, reason = %deletion.reason, "pruning backup");
            self.delete(&deletion.id).await?;
            deleted.push(deletion.id);
        }
        Ok(PruneOutcome {
            deleted,
            kept,
            pruned_binlogs: Vec::new(),
        })
    }

    /// Deletes backup `id`: the manifest first, so a delete cut short leaves a backup
    /// that no longer lists as complete, never a complete-looking one with holes.
    pub async fn delete(&self, id: &str) -> Result<(), CatalogError> {
        self.store.delete(&backup_key(id, MANIFEST_FILE)).await?;
        for object in self.store.list(&format!("{BACKUPS_DIR}/{id}")).await? {
            self.store.delete(&object.key).await?;
        }
        Ok(())
    }

    async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, CatalogError> {
        match self.store.get(key, MAX_MANIFEST_BYTES).await {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| CatalogError::Corrupt {
                        key: key.to_owned(),
                        message: e.to_string(),
                    })
            }
            Err(BlobError::Missing { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
