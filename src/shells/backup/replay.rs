//! `bloodraven backup replay`: the point-in-time half of a restore on its own. It replays
//! the archived binary logs past a backup into a running server that already holds that
//! backup, up to a GTID set or a time.
//!
//! This is how a clone backup reaches a point in time: `backup restore --target-datadir`
//! unpacks it, mysqld starts on it, and this replays the rest. The replay is planned, and
//! its logs are downloaded and checked, before the target is touched. A target that does
//! not hold the backup is refused, since the replay would leave a gap in its history.

use clap::Args;

use super::error::BackupError;
use super::inputs::{ArchiveFlags, MysqlLogin, ToolFlags};
use super::restore::{PointInTimeFlags, ReadFlags, open, stage_replay};
use crate::adapters::mysql::BackupServer;
use crate::failover::gtid::GtidSet;

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// The repository of the backup: s3://bucket/prefix or file:///path.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The backup the target was restored from (see `backup list`).
    #[arg(long)]
    pub id: String,
    /// The running server restored from that backup, host:port.
    #[arg(long, value_name = "HOST:PORT")]
    pub target: String,
    /// Where the replay stops (--until-gtid or --until-time, one of them required).
    #[command(flatten)]
    pub until: PointInTimeFlags,
    #[command(flatten)]
    pub archive: ArchiveFlags,
    #[command(flatten)]
    pub read: ReadFlags,
    #[command(flatten)]
    pub login: MysqlLogin,
    #[command(flatten)]
    pub tools: ToolFlags,
}

pub(super) async fn replay(args: &ReplayArgs) -> Result<String, BackupError> {
    let started = std::time::Instant::now();
    let exclude = args.until.exclusions()?;
    let Some(target) = args.until.target()? else {
        return Err(BackupError::Input(
            "give --until-gtid or --until-time".to_owned(),
        ));
    };
    let opened = open(&args.read, &args.from, &args.id).await?;
    let server = BackupServer::new(&args.target, args.login.credentials()?, args.login.tls())
        .map_err(|e| BackupError::Input(e.to_string()))?;
    let base = GtidSet::parse(&opened.manifest.gtid_executed)
        .map_err(|e| BackupError::Input(format!("backup {}: GTID set: {e}", args.id)))?;
    let holds = server
        .gtid_executed()
        .await
        .map_err(|e| BackupError::Database(e.to_string()))?;
    if !holds.contains(&base) {
        return Err(BackupError::Input(format!(
            "{} does not hold backup {} (its gtid_executed {holds} lacks part of {base}): \
             restore the backup into it first",
            args.target, args.id
        )));
    }
    let staged = stage_replay(&opened, &target, &args.archive, &args.read).await?;
    super::binlog::apply(&staged, &server, &args.tools.tools(), exclude.as_ref()).await?;
    let gtid_executed = server
        .gtid_executed()
        .await
        .map_err(|e| BackupError::Database(e.to_string()))?;
    serde_json::to_string_pretty(&serde_json::json!({
        "id": opened.manifest.id,
        "target": args.target,
        "replayedBinlogs": staged.names(),
        "gtidExecuted": gtid_executed.to_string(),
        "seconds": started.elapsed().as_secs_f64(),
    }))
    .map_err(|e| BackupError::Runtime(e.to_string()))
}
