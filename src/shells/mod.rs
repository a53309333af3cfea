//! Front doors: the command line, the kubectl plugin, the HTTPS server, the Kubernetes
//! operator and standalone mode.

pub mod backup;
pub mod certs;
pub mod cli;
pub mod kubectl;
pub mod operator;
pub mod serve;
pub mod sidecar;
pub mod standalone;
