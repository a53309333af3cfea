//! `kubectl bloodraven`: the kubectl plugin, the same binary run as `kubectl-bloodraven`
//! (by `argv[0]`, an installed symlink) or as `bloodraven kubectl`.
//!
//! It reads and writes only custom resources: the `MysqlFailoverGroup` and its request
//! annotations ([`crate::api::annotations`]), and the `MysqlBackup` and
//! `MysqlBackupVerification` objects it creates; the operator acts on them. It never talks
//! to MySQL. Layout: [`args`] the command line, [`table`] the status summary and table
//! (pure), [`progress`] how a failover's status is read while waiting (pure), [`backups`]
//! the backup and verification objects, verdicts and reports (pure), [`actions`] the API
//! calls.

pub mod actions;
pub mod args;
pub mod backups;
pub mod progress;
pub mod restores;
pub mod table;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

pub use args::{KubectlArgs, PluginCli};

use crate::error::{Categorized, Category};

/// The executable name kubectl looks up for `kubectl bloodraven`.
pub const PLUGIN_NAME: &str = "kubectl-bloodraven";

/// Whether the binary was started under the plugin's name (a symlink or a copy).
pub fn invoked_as_plugin(argv0: Option<&OsString>) -> bool {
    argv0
        .map(Path::new)
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == PLUGIN_NAME || n.strip_suffix(".exe") == Some(PLUGIN_NAME))
}

/// Entry point when run as `kubectl-bloodraven`.
pub fn plugin_main(argv: Vec<OsString>) -> ExitCode {
    let cli = match PluginCli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    crate::telemetry::init_tracing(false, "warn");
    let _ = rustls::crypto::ring::default_provider().install_default();
    run(&cli.args)
}

/// Why a plugin command failed.
#[derive(Debug, thiserror::Error)]
pub enum KubectlError {
    #[error("kubeconfig: {0}")]
    Config(String),
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{kind} {namespace}/{name} not found")]
    NotFound {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("failover to {target} failed: {message}")]
    Failed { target: String, message: String },
    /// A backup or verification the operator reports Failed.
    #[error("{what} failed: {message}")]
    RunFailed { what: String, message: String },
    #[error("no outcome within {timeout}: {last}")]
    Timeout { timeout: String, last: String },
    #[error("writing the output: {0}")]
    Output(String),
}

impl Categorized for KubectlError {
    fn category(&self) -> Category {
        match self {
            Self::Config(_) => Category::Config,
            // A failed run is the operator's Job failing, not a refusal of the request.
            Self::Api { .. } | Self::RunFailed { .. } => Category::Unavailable,
            Self::NotFound { .. } | Self::Invalid(_) => Category::InvalidInput,
            Self::Refused(_) | Self::Failed { .. } => Category::Refused,
            Self::Timeout { .. } => Category::Timeout,
            Self::Output(_) => Category::Internal,
        }
    }
}

/// Exit codes: 0 done, 1 the operation failed or timed out (or the API failed), 2 the
/// request itself is wrong (bad flags, unknown group or site, no kubeconfig), as kubectl
/// uses 1 for failures and clap 2 for usage.
pub fn exit_code(error: &KubectlError) -> ExitCode {
    match error.category() {
        Category::InvalidInput | Category::Config => ExitCode::from(2),
        _ => ExitCode::from(1),
    }
}

/// Runs one plugin command on a runtime of its own.
pub fn run(args: &KubectlArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kubectl bloodraven: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(actions::dispatch(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kubectl bloodraven: {e}");
            exit_code(&e)
        }
    }
}

/// A client and the namespace to work in, from the connection flags as kubectl reads them.
pub async fn connect(
    connection: &args::Connection,
) -> Result<(kube::Client, String), KubectlError> {
    let options = KubeConfigOptions {
        context: connection.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &connection.kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| KubectlError::Config(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| KubectlError::Config(e.to_string()))?
        }
        None if connection.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| KubectlError::Config(e.to_string()))?,
        None => kube::Config::infer()
            .await
            .map_err(|e| KubectlError::Config(e.to_string()))?,
    };
    let namespace = connection
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).map_err(|e| KubectlError::Api {
        what: "building the client".to_owned(),
        source: Box::new(e),
    })?;
    Ok((client, namespace))
}

/// The kubeconfig user of the context in use, for `triggeredBy`: who asked, as far as the
/// client knows without another call (a SelfSubjectReview would name the authenticated
/// user, but not every API server serves it). None in-cluster or without a kubeconfig.
pub fn kubeconfig_user(connection: &args::Connection) -> Option<String> {
    let file = match &connection.kubeconfig {
        Some(path) => Kubeconfig::read_from(path).ok()?,
        None => Kubeconfig::read().ok()?,
    };
    let context = connection
        .context
        .clone()
        .or_else(|| file.current_context.clone())?;
    file.contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .user
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_name_is_recognised_by_basename() {
        for yes in [
            "kubectl-bloodraven",
            "/usr/local/bin/kubectl-bloodraven",
            "./kubectl-bloodraven.exe",
        ] {
            assert!(invoked_as_plugin(Some(&OsString::from(yes))), "{yes}");
        }
        for no in ["bloodraven", "/bin/kubectl-bloodraven-x", "kubectl"] {
            assert!(!invoked_as_plugin(Some(&OsString::from(no))), "{no}");
        }
        assert!(!invoked_as_plugin(None));
    }

    #[test]
    fn the_plugin_parses_kubectl_style_flags_anywhere() {
        let cli = PluginCli::try_parse_from([
            "kubectl-bloodraven",
            "-n",
            "shop",
            "failover",
            "orders",
            "--to",
            "pdx",
            "--context",
            "prod",
            "--timeout",
            "90s",
        ])
        .expect("parses");
        assert_eq!(cli.args.connection.namespace.as_deref(), Some("shop"));
        assert_eq!(cli.args.connection.context.as_deref(), Some("prod"));
        let args::KubectlCommand::Failover(f) = cli.args.command else {
            panic!("failover");
        };
        assert_eq!(f.timeout, std::time::Duration::from_secs(90));
        assert_eq!(f.to, "pdx");
    }

    #[test]
    fn backup_waits_only_when_asked_and_timeout_needs_wait() {
        let parse = |extra: &[&str]| {
            let mut argv = vec![
                "kubectl-bloodraven",
                "backup",
                "orders",
                "--profile",
                "nightly",
            ];
            argv.extend_from_slice(extra);
            PluginCli::try_parse_from(argv)
        };
        let cli = parse(&[]).expect("parses");
        let args::KubectlCommand::Backup(b) = cli.args.command else {
            panic!("backup");
        };
        assert!(!b.wait.wait);
        assert_eq!(b.wait.timeout, std::time::Duration::from_secs(3 * 3600));
        assert_eq!(b.wait.output, args::OutputFormat::Table);
        assert!(
            parse(&["--timeout", "5m"]).is_err(),
            "--timeout without --wait"
        );
        let cli = parse(&[
            "--wait",
            "--timeout",
            "5m",
            "-o",
            "json",
            "--source-site",
            "pdx",
        ])
        .expect("parses");
        let args::KubectlCommand::Backup(b) = cli.args.command else {
            panic!("backup");
        };
        assert_eq!(b.wait.timeout, std::time::Duration::from_secs(300));
        assert_eq!(b.source_site.as_deref(), Some("pdx"));
        assert!(
            PluginCli::try_parse_from(["kubectl-bloodraven", "backup", "orders"]).is_err(),
            "--profile is required"
        );
        // What a schedule's CronJob runs (src/render/backup.rs), as `bloodraven kubectl`.
        let cli = crate::shells::cli::Cli::try_parse_from([
            "bloodraven",
            "kubectl",
            "backup",
            "orders",
            "--namespace",
            "db",
            "--profile",
            "offsite",
            "--triggered-by",
            "schedule/nightly",
        ])
        .expect("parses");
        let crate::shells::cli::Command::Kubectl(k) = cli.command else {
            panic!("kubectl");
        };
        assert_eq!(k.connection.namespace.as_deref(), Some("db"));
        let args::KubectlCommand::Backup(b) = k.command else {
            panic!("backup");
        };
        assert_eq!(b.triggered_by.as_deref(), Some("schedule/nightly"));
        assert!(!b.wait.wait);
        let cli = PluginCli::try_parse_from([
            "kubectl-bloodraven",
            "verify-backup",
            "orders",
            "--profile",
            "nightly",
            "--sanity-query",
            "SELECT 1",
            "--min-rows",
            "1",
        ])
        .expect("parses");
        let args::KubectlCommand::VerifyBackup(v) = cli.args.command else {
            panic!("verify-backup");
        };
        assert_eq!(v.min_rows, Some(1));
        assert_eq!(v.backup, None);
        assert!(
            PluginCli::try_parse_from([
                "kubectl-bloodraven",
                "verify-backup",
                "orders",
                "--profile",
                "nightly",
                "--min-rows",
                "1",
            ])
            .is_err(),
            "--min-rows without --sanity-query"
        );
    }
}
