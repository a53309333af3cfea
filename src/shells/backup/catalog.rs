//! `bloodraven backup list`, `bloodraven backup prune` and `bloodraven backup delete`.

use std::fmt::Write as _;
use std::time::Duration;

use clap::Args;

use super::error::BackupError;
use super::inputs::S3Flags;
use crate::backup::manifest::is_valid_id;
use crate::backup::retention::RetentionPolicy;
use crate::control::backup::{BackupEntry, Catalog, PruneOutcome};
use crate::failover::Timestamp;

/// A backup that started this long ago and never finished is counted as failed: no
/// logical or clone backup of a database this tool is meant for runs a day.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// The repository: s3://bucket/prefix or file:///path.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    pub format: ListFormat,
    #[command(flatten)]
    pub s3: S3Flags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// The repository: s3://bucket/prefix or file:///path.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// Keep the newest N successful backups (0: no count rule).
    #[arg(long, default_value_t = 0)]
    pub count: u32,
    /// Keep successful backups younger than D days (0: no age rule).
    #[arg(long, default_value_t = 0)]
    pub max_age_days: u32,
    /// Always keep the newest K successful backups, whatever the other rules say.
    #[arg(long, default_value_t = 1)]
    pub min_keep: u32,
    /// Keep the newest F failed backups.
    #[arg(long, default_value_t = 10)]
    pub max_failed_keep: u32,
    /// Print what would be deleted and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub s3: S3Flags,
}

#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    /// The repository: s3://bucket/prefix or file:///path.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The backup's id (see `backup list`).
    #[arg(long)]
    pub id: String,
    #[command(flatten)]
    pub s3: S3Flags,
}

pub(super) async fn delete(args: &DeleteArgs) -> Result<String, BackupError> {
    // An id is one path segment of the repository: nothing outside `backups/<id>` is named.
    if !is_valid_id(&args.id) {
        return Err(BackupError::Input(format!(
            "--id {:?}: an id is 1 to 64 letters, digits, '-' or '_'",
            args.id
        )));
    }
    let catalog = Catalog::new(args.s3.open(&args.from)?, ABANDONED_AFTER);
    catalog.delete(&args.id).await?;
    serde_json::to_string_pretty(&serde_json::json!({"deleted": args.id, "from": args.from}))
        .map_err(|e| BackupError::Runtime(e.to_string()))
}

pub(super) async fn list(args: &ListArgs, now: Timestamp) -> Result<String, BackupError> {
    let catalog = Catalog::new(args.s3.open(&args.from)?, ABANDONED_AFTER);
    let entries = catalog.list(now).await?;
    Ok(match args.format {
        ListFormat::Json => serde_json::to_string_pretty(&entries)
            .map_err(|e| BackupError::Runtime(e.to_string()))?,
        ListFormat::Table => table(&entries),
    })
}

pub(super) async fn prune(args: &PruneArgs, now: Timestamp) -> Result<String, BackupError> {
    let catalog = Catalog::new(args.s3.open(&args.from)?, ABANDONED_AFTER);
    let policy = RetentionPolicy {
        count: args.count,
        max_age_days: args.max_age_days,
        min_keep: args.min_keep,
        max_failed_keep: args.max_failed_keep,
    };
    let outcome = if args.dry_run {
        let plan = catalog.plan_prune(policy, now).await?;
        PruneOutcome {
            deleted: plan.delete.iter().map(|d| d.id.clone()).collect(),
            kept: plan.keep.iter().map(|k| k.id.clone()).collect(),
            pruned_binlogs: Vec::new(),
        }
    } else {
        let mut outcome = catalog.prune(policy, now).await?;
        // Then the archive, against the backups that are left.
        outcome.pruned_binlogs =
            super::binlog::prune_covered(args.s3.open(&args.from)?, now).await?;
        outcome
    };
    serde_json::to_string_pretty(&outcome).map_err(|e| BackupError::Runtime(e.to_string()))
}

fn table(entries: &[BackupEntry]) -> String {
    let mut out = format!(
        "{:<22} {:<9} {:<7} {:<20} {:>12}  {}\n",
        "ID", "STATE", "METHOD", "FINISHED", "BYTES", "GTID SET"
    );
    for entry in entries {
        let state = entry.state.as_str();
        let (method, bytes, gtid) =
            entry
                .manifest
                .as_ref()
                .map_or(("-", String::from("-"), "-"), |m| {
                    (
                        m.method.as_str(),
                        m.stored_bytes.to_string(),
                        m.gtid_executed.as_str(),
                    )
                });
        let _ = writeln!(
            out,
            "{:<22} {:<9} {:<7} {:<20} {:>12}  {}",
            entry.id,
            state,
            method,
            entry.finished_at.as_deref().unwrap_or("-"),
            bytes,
            gtid
        );
    }
    out
}
