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

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::api::duration::parse_go_duration(text)
}
