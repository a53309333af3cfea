//! Why the server could not start or stopped.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::error::{Categorized, Category};
use crate::policy::rules::CatalogError;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("serving certificate in {dir}: {message}")]
    Certificate { dir: PathBuf, message: String },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("metrics registry: {0}")]
    Metrics(String),
    #[error("accepting connections: {0}")]
    Accept(#[source] io::Error),
    #[error("client certificate roots: {0}")]
    ClientRoots(String),
    #[error("starting the evaluation threads: {0}")]
    Workers(#[source] io::Error),
}

impl Categorized for ServeError {
    fn category(&self) -> Category {
        match self {
            Self::Bind { .. } | Self::Accept(_) => Category::Unavailable,
            Self::Certificate { .. } | Self::Catalog(_) | Self::ClientRoots(_) => Category::Config,
            Self::Tls(_) | Self::Metrics(_) | Self::Workers(_) => Category::Internal,
        }
    }
}
