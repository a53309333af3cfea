//! Front doors: the command line, the HTTPS server and standalone mode.

pub mod certs;
pub mod cli;
pub mod serve;
pub mod standalone;
