//! Front doors: the command line, the HTTPS server, the Kubernetes operator and standalone
//! mode.

pub mod backup;
pub mod certs;
pub mod cli;
pub mod operator;
pub mod serve;
pub mod standalone;
