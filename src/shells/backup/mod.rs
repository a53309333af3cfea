//! `bloodraven backup …` and `bloodraven binlog …`: the backup engine as a command line,
//! used on its own, by standalone mode and inside the operator's Jobs.
//!
//! Each command is a thin shell: it gathers inputs ([`inputs`]), opens the repository
//! through the storage adapter, and runs the engine's pieces: the MySQL dump and load
//! adapters, and the sink, source and catalog of [`crate::control::backup`].

mod archive_status;
mod binlog;
mod catalog;
mod create;
mod error;
mod inputs;
mod keys;
mod physical;
mod replay;
mod restore;

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Subcommand;

pub use binlog::{
    ArchiveSummary, Archiver, BinlogCommand, PruneSchedule, archive_summary, prune_covered,
};
pub use catalog::ABANDONED_AFTER;
pub use create::{BackupRequest, report, take_backup};
pub use error::BackupError;

use crate::error::{Categorized, Category};
use crate::failover::Timestamp;

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Take a consistent backup of a server and print its manifest as JSON.
    Create(Box<create::CreateArgs>),
    /// Restore a backup into an empty server, optionally to a point in time.
    Restore(Box<restore::RestoreArgs>),
    /// Replay the archived binary logs past a backup into a server restored from it, up to
    /// a GTID set or a time (how a clone backup reaches a point in time).
    Replay(Box<replay::ReplayArgs>),
    /// Check every artifact of a backup (and optionally restore it into a scratch server).
    Verify(Box<restore::VerifyArgs>),
    /// List the backups in a repository, oldest first.
    List(catalog::ListArgs),
    /// Delete the backups retention no longer keeps (the newest good one never goes).
    Prune(catalog::PruneArgs),
    /// Delete one backup, its manifest first (so a cut-short delete never leaves a
    /// complete-looking backup); one that is not there counts as deleted.
    Delete(catalog::DeleteArgs),
}

pub fn run(command: &BackupCommand) -> ExitCode {
    let now = now();
    execute(async {
        match command {
            BackupCommand::Create(args) => create::create(args).await,
            BackupCommand::Restore(args) => restore::restore(args).await,
            BackupCommand::Verify(args) => restore::verify(args).await,
            BackupCommand::Replay(args) => replay::replay(args).await,
            BackupCommand::List(args) => catalog::list(args, now).await,
            BackupCommand::Prune(args) => catalog::prune(args, now).await,
            BackupCommand::Delete(args) => catalog::delete(args).await,
        }
    })
}

pub fn run_binlog(command: &BinlogCommand) -> ExitCode {
    execute(async {
        match command {
            BinlogCommand::Archive(args) => binlog::archive(args).await,
        }
    })
}

/// Runs one command on a fresh runtime and prints its result (JSON or a table).
fn execute(command: impl std::future::Future<Output = Result<String, BackupError>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&BackupError::Runtime(e.to_string())),
    };
    match runtime.block_on(command) {
        Ok(text) => {
            println!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(error: &BackupError) -> ExitCode {
    if let BackupError::Reported { report, .. } = error {
        println!("{}", report.trim_end());
    }
    eprintln!("bloodraven backup: {error}");
    ExitCode::from(match error.category() {
        Category::InvalidInput | Category::Config => 2,
        _ => 1,
    })
}

/// The wall clock, read once per command at the shell: the engine's pieces take it as an
/// argument.
pub(crate) fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_millis(millis)
}
