//! `bloodraven serve`: one HTTPS server for the admission webhooks (`/validate`,
//! `/mutate`), the CI lint endpoint (`/lint`), the rule catalog (`/rules`), health probes
//! and metrics.
//!
//! Layout: [`admission`] decides (pure, synchronous), [`app`] maps routes to it with the
//! body limit, deadlines, concurrency bounds and metrics, [`workers`] are the threads that
//! evaluate (admission and lint apart), [`lint`] bounds and cancels lint work, [`stream`]
//! sends lint reports with backpressure, [`server`] accepts TLS connections, [`tls`] holds
//! and reloads the serving certificate.

pub mod admission;
pub mod app;
pub mod error;
pub mod lint;
pub mod metrics;
pub mod options;
pub mod self_managed;
pub mod server;
pub mod stream;
pub mod tls;
pub mod workers;

pub use error::ServeError;
pub use lint::LintLimits;
pub use options::{
    ClusterLookups, DEFAULT_MAX_BODY_BYTES, DEFAULT_OPERATOR_SERVICE_ACCOUNT, ServeOptions,
};
pub use server::{Server, bind, build_app, run};
