//! `bloodraven serve` and `bloodraven certs generate`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::engine::rules::{Catalog, LintConfig};
use crate::shells::certs::generate_certs;
use crate::shells::serve::{DEFAULT_OPERATOR_SERVICE_ACCOUNT, ServeOptions, run as serve};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the HTTPS listener.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Directory with tls.crt and tls.key (reloaded when they change).
    #[arg(long)]
    pub cert_dir: PathBuf,
    /// The only user allowed to write the status of our resources.
    #[arg(long, default_value = DEFAULT_OPERATOR_SERVICE_ACCOUNT)]
    pub operator_service_account: String,
    /// Deny updates of objects that already violate required rules, even when the update
    /// adds no new violation.
    #[arg(long)]
    pub no_ratchet: bool,
    /// Lint configuration (rules, levels, exemptions) for /validate and /lint.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// How often to check the certificate files for changes, in seconds.
    #[arg(long, default_value_t = 5)]
    pub reload_interval_secs: u64,
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Write a CA (unless one is given) and a serving certificate.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[arg(long)]
    pub out: PathBuf,
    /// DNS names of the serving certificate (e.g. bloodraven.bloodraven-system.svc).
    #[arg(long = "dns")]
    pub dns: Vec<String>,
    /// IP addresses of the serving certificate.
    #[arg(long = "ip")]
    pub ips: Vec<IpAddr>,
    /// Sign with this CA instead of creating one.
    #[arg(long, requires = "ca_key")]
    pub ca_cert: Option<PathBuf>,
    #[arg(long, requires = "ca_cert")]
    pub ca_key: Option<PathBuf>,
}

pub fn run_serve(args: &ServeArgs) -> ExitCode {
    let lint_config = match &args.config {
        None => LintConfig::default(),
        Some(path) => {
            let parsed = Catalog::builtin()
                .map_err(|e| e.to_string())
                .and_then(|catalog| {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    LintConfig::parse(&path.display().to_string(), &text, &catalog)
                        .map_err(|e| e.to_string())
                });
            match parsed {
                Ok(c) => c,
                Err(e) => return fail(&e),
            }
        }
    };
    let opts = ServeOptions {
        listen: args.listen,
        cert_dir: args.cert_dir.clone(),
        operator_service_account: args.operator_service_account.clone(),
        ratchet: !args.no_ratchet,
        reload_interval: Duration::from_secs(args.reload_interval_secs.max(1)),
        lint_config,
        ..ServeOptions::default()
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    match runtime.block_on(serve(opts, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

pub fn run_certs(command: &CertsCommand) -> ExitCode {
    let CertsCommand::Generate(args) = command;
    let ca = args.ca_cert.as_deref().zip(args.ca_key.as_deref());
    match generate_certs(&args.out, &args.dns, &args.ips, ca) {
        Ok(written) => {
            println!("{}", written.tls_cert.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("bloodraven: {message}");
    ExitCode::from(2)
}
