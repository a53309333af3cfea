//! Tracing set-up and Prometheus metrics with bounded labels.

pub mod backup;
pub mod cluster_cache;
pub mod event_log;
pub mod exposition;
pub mod failover;
pub mod sidecar;

use tracing_subscriber::EnvFilter;

/// Logs go to stderr (stdout belongs to reports); `RUST_LOG` overrides the default level.
pub fn init_tracing(json: bool, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in a log file or pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    // A second initialisation (tests) is harmless; ignore it.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
