//! The integration test binary. One binary keeps link times down on small machines; each
//! area is a module.

// `bloodraven serve`: admission webhooks, /lint, TLS reload, metrics.
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
mod serve_admission;
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
mod serve_fuzz;
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
mod serve_lint;
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
mod serve_metrics;
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
mod serve_support;
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
mod serve_tls;
