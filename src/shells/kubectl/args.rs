//! The command line of `kubectl bloodraven` (and `bloodraven kubectl`).
//!
//! The connection options are kubectl's own (`--kubeconfig`, `--context`,
//! `-n/--namespace`), global so they go before or after the subcommand, as with kubectl.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The plugin's own parser, used when the binary runs as `kubectl-bloodraven`.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl bloodraven",
    bin_name = "kubectl bloodraven",
    version,
    about = "Inspect and steer bloodraven MysqlFailoverGroups (reads and writes only the custom resources)"
)]
pub struct PluginCli {
    #[command(flatten)]
    pub args: KubectlArgs,
}

/// `bloodraven kubectl ...` and `kubectl bloodraven ...`.
#[derive(Debug, Args)]
pub struct KubectlArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: KubectlCommand,
}

/// How to reach the API server, as kubectl takes it.
#[derive(Debug, Clone, Default, Args)]
pub struct Connection {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the
    /// in-cluster ServiceAccount).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KubectlCommand {
    /// Groups, their sites, roles, lag, GTID divergence and the last failover.
    Status(StatusArgs),
    /// Ask the operator for a planned (zero-loss) failover to SITE, then wait for it.
    Failover(FailoverArgs),
    /// Ask the operator to discard SITE's data and clone it again from the primary.
    Reclone(RecloneArgs),
    /// Ask the operator for a backup of GROUP with one of its profiles (a MysqlBackup).
    Backup(BackupArgs),
    /// Ask the operator to restore a backup into a throwaway mysqld and check it (a
    /// MysqlBackupVerification).
    VerifyBackup(VerifyBackupArgs),
    /// The group's backups (its MysqlBackups), newest first.
    Backups(BackupsArgs),
    /// Restore GROUP in place from one of its backups (spec.restoreInPlace with a fresh
    /// confirm token): every user schema on the primary is replaced, the other sites are
    /// recloned.
    Restore(RestoreArgs),
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The MysqlFailoverGroup.
    pub group: String,
    /// The Succeeded MysqlBackup to restore.
    #[arg(long, value_name = "NAME")]
    pub backup: String,
    /// Required: what the primary holds now is replaced by the backup, and what was written
    /// since the backup is gone.
    #[arg(long)]
    pub confirm: bool,
    /// Restore only this schema (`loadOptions.includeSchemas`): it alone is dropped and
    /// loaded, the group keeps serving, and the change replicates to the other sites.
    /// Default: every user schema (the primary is fenced, the other sites recloned).
    #[arg(long, value_name = "NAME")]
    pub schema: Option<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One group (default: every group in the namespace).
    pub group: Option<String>,
    /// Every namespace.
    #[arg(short = 'A', long, conflicts_with = "group")]
    pub all_namespaces: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct FailoverArgs {
    /// The MysqlFailoverGroup.
    pub group: String,
    /// The primary-candidate site to promote.
    #[arg(long = "to", value_name = "SITE")]
    pub to: String,
    /// How long to wait for the outcome (Go duration: 90s, 5m, 1h).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How long the operator may wait for the target to catch up (overrides the group's
    /// spec.plannedFailover.maxLagWait).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_lag_wait: Option<Duration>,
    /// Annotate and return at once, without waiting.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct RecloneArgs {
    /// The MysqlFailoverGroup.
    pub group: String,
    /// The site whose data is discarded and cloned again.
    pub site: String,
    /// Required: a reclone throws away every transaction only SITE has.
    #[arg(long)]
    pub confirm: bool,
}

/// How long `--wait` follows a backup or a verification by default: the backup Job's own
/// deadline is 2 h (`spec.backup.activeDeadlineSeconds`), and a backup may first stay
/// Pending up to 30 min for a healthy source.
const RUN_TIMEOUT: &str = "3h";

/// `--wait` and `--timeout` of the commands that create a run (a backup, a verification).
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Follow the run until it Succeeded or Failed (exit 1 when it Failed).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: how long to follow it (Go duration: 90s, 5m, 1h); the run goes on in
    /// the cluster after a timeout.
    #[arg(long, default_value = RUN_TIMEOUT, value_parser = parse_duration, requires = "wait")]
    pub timeout: Duration,
    /// Output format of the report.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The MysqlFailoverGroup.
    pub group: String,
    /// The backup profile (one of the group's spec.backup.profiles).
    #[arg(long, value_name = "PROFILE")]
    pub profile: String,
    /// Back up from this site instead of the one the operator picks (never a read-only
    /// reader).
    #[arg(long, value_name = "SITE")]
    pub source_site: Option<String>,
    /// Who asked, recorded as spec.triggeredBy (default: kubectl/<kubeconfig user>); the
    /// schedules' CronJobs pass schedule/<name>.
    #[arg(long, value_name = "TEXT")]
    pub triggered_by: Option<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct VerifyBackupArgs {
    /// The MysqlFailoverGroup.
    pub group: String,
    /// The backup profile (one of the group's spec.backup.profiles).
    #[arg(long, value_name = "PROFILE")]
    pub profile: String,
    /// The MysqlBackup to verify (default: the operator picks the profile's latest
    /// Succeeded backup).
    #[arg(long, value_name = "NAME")]
    pub backup: Option<String>,
    /// SQL returning one scalar, run against the restored data.
    #[arg(long, value_name = "SQL")]
    pub sanity_query: Option<String>,
    /// With --sanity-query: the least the scalar may be.
    #[arg(long, value_name = "N", requires = "sanity_query")]
    pub min_rows: Option<u32>,
    /// Who asked, recorded as spec.triggeredBy (default: kubectl/<kubeconfig user>).
    #[arg(long, value_name = "TEXT")]
    pub triggered_by: Option<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct BackupsArgs {
    /// The MysqlFailoverGroup.
    pub group: String,
    /// Only this profile's backups.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::api::duration::parse_go_duration(text)
}
