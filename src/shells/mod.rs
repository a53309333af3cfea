//! Front doors: the command line, the HTTPS server and standalone mode.

pub mod cli;
pub mod standalone;
