//! Drives `bloodraven::shells::serve::run` (and `generate_certs`) until `bloodraven serve`
//! and `bloodraven certs generate` are wired into the CLI; used by
//! `scripts/webhook-apiserver-test.sh` and `scripts/bench-admission.sh`.
//!
//! ```text
//! webhook_server certs OUT_DIR NAME_OR_IP...
//! webhook_server serve --listen ADDR --cert-dir DIR [--rules-dir DIR] [--operator-sa USER]
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use bloodraven::engine::rules::Catalog;
use bloodraven::shells::certs::generate_certs;
use bloodraven::shells::serve::{ServeOptions, run};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("certs") => certs(&args[1..]),
        Some("serve") => serve(&args[1..]),
        _ => Err("usage: webhook_server certs OUT NAME... | serve --listen ADDR --cert-dir DIR [--rules-dir DIR] [--operator-sa USER]".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("webhook_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn certs(args: &[String]) -> Result<(), String> {
    let (out, names) = args.split_first().ok_or("certs needs OUT_DIR")?;
    let (ips, dns): (Vec<&String>, Vec<&String>) =
        names.iter().partition(|n| n.parse::<IpAddr>().is_ok());
    let ips: Vec<IpAddr> = ips.iter().filter_map(|i| i.parse().ok()).collect();
    let dns: Vec<String> = dns.into_iter().cloned().collect();
    let written = generate_certs(Path::new(out), &dns, &ips, None).map_err(|e| e.to_string())?;
    println!("{}", written.tls_cert.display());
    Ok(())
}

fn serve(args: &[String]) -> Result<(), String> {
    let mut opts = ServeOptions::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => opts.listen = value.parse().map_err(|e| format!("--listen: {e}"))?,
            "--cert-dir" => opts.cert_dir = PathBuf::from(value),
            "--operator-sa" => opts.operator_service_account.clone_from(value),
            "--rules-dir" => opts.catalog = Some(load_rules(Path::new(value))?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| "a crypto provider is already installed")?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime
        .block_on(run(opts, async {
            let _ = tokio::signal::ctrl_c().await;
        }))
        .map_err(|e| e.to_string())
}

/// A catalog from a directory of rule files (the pinned test catalog).
fn load_rules(dir: &Path) -> Result<Arc<Catalog>, String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((name, text));
        }
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    Catalog::from_files(&refs)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}
