//! The `bloodraven` command line.

mod copy_self;
mod crds;
mod inputs;
pub mod lint;
mod rules;
mod serve;
mod simulate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// MySQL failover operator, admission webhooks and manifest linter.
#[derive(Debug, Parser)]
#[command(name = "bloodraven", version, about)]
pub struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lint manifests against the hardening rule catalog.
    Lint(lint::LintArgs),
    /// Print the rule catalog.
    Rules(rules::RulesArgs),
    /// Write (or check) the generated CustomResourceDefinitions.
    Crds(crds::CrdsArgs),
    /// Serve the admission webhooks and the lint endpoint over HTTPS.
    Serve(Box<serve::ServeArgs>),
    /// Run seeded simulation campaigns of the failover core (or replay one seed).
    Simulate(simulate::SimulateArgs),
    /// Certificates for the webhook server.
    #[command(subcommand)]
    Certs(serve::CertsCommand),
    /// Run the failover engine against MySQL hosts without Kubernetes.
    Standalone(crate::shells::standalone::StandaloneArgs),
    /// The per-site agent beside mysqld: fence-first boot, self-fencing, the peer API.
    Sidecar(crate::shells::sidecar::SidecarArgs),
    /// Ask a running `bloodraven standalone` for a planned failover and wait for it.
    Failover(crate::shells::standalone::FailoverArgs),
    /// Take, list, verify, restore and prune backups.
    #[command(subcommand)]
    Backup(crate::shells::backup::BackupCommand),
    /// Archive binary logs for point-in-time recovery.
    #[command(subcommand)]
    Binlog(crate::shells::backup::BinlogCommand),
    /// The kubectl plugin (`kubectl bloodraven`, when installed as `kubectl-bloodraven`).
    Kubectl(crate::shells::kubectl::KubectlArgs),
    /// Copy this binary to a path (mode 0755): how a pod on the MySQL image gets it.
    CopySelf(copy_self::CopySelfArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let command_line: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if crate::shells::kubectl::invoked_as_plugin(command_line.first()) {
        return crate::shells::kubectl::plugin_main(command_line);
    }
    let cli = match Cli::try_parse_from(command_line) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap uses 2 for usage errors and 0 for --help/--version, as we do.
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    // The plugin prints for a person at a terminal: only warnings go to the log.
    let level = if matches!(cli.command, Command::Kubectl(_)) {
        "warn"
    } else {
        "info"
    };
    crate::telemetry::init_tracing(cli.log_json, level);
    // One process-wide rustls provider (ring), before anything opens a TLS connection.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match &cli.command {
        Command::Lint(args) => lint::run(args),
        Command::Rules(args) => rules::run(args),
        Command::Crds(args) => crds::run(args),
        Command::Serve(args) => serve::run_serve(args),
        Command::Simulate(args) => simulate::run_simulate(args),
        Command::Certs(command) => serve::run_certs(command),
        Command::Standalone(args) => crate::shells::standalone::run(args),
        Command::Sidecar(args) => crate::shells::sidecar::run(args),
        Command::Failover(args) => crate::shells::standalone::failover(args),
        Command::Backup(command) => crate::shells::backup::run(command),
        Command::Binlog(command) => crate::shells::backup::run_binlog(command),
        Command::Kubectl(args) => crate::shells::kubectl::run(args),
        Command::CopySelf(args) => copy_self::run(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// clap checks a command's definition (unique argument ids, valid `requires`) only
    /// when the command is built in a debug build: every subcommand is built here, so a
    /// clash fails this test rather than the first run of the command.
    #[test]
    fn every_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
