//! The narrow traits every side effect goes through. The engine never sees these; the
//! control loops call them, adapters and shells implement them, and tests and the
//! simulator fake them.
//!
//! - [`mysql`]: the operations on one MySQL server;
//! - [`artifacts`]: where a backup's artifact bytes go and come back from;
//! - [`state`]: where the failover core's state survives a restart (a file in standalone
//!   mode, the custom resource's status in a cluster);
//! - [`hook`]: telling something outside MySQL about a new primary;
//! - [`lease`]: the Lease that elects the one operator replica that acts;
//! - [`objects`]: the Kubernetes objects the operator reads and server-side applies;
//! - [`observer`]: everything that reports a decision (logs, metrics, Events, status);
//! - [`sidecar`]: a site's sidecar, asked for its view when a probe of the site fails.

pub mod artifacts;
pub mod hook;
pub mod lease;
pub mod mysql;
pub mod objects;
pub mod observer;
pub mod sidecar;
pub mod state;
