//! What can go wrong in a logical dump or load. Every message names the server and what was
//! being done (`dump `shop`.`orders` chunk 00002-0000`), so a failure can be placed
//! without the logs.

use std::time::Duration;

use crate::error::{Categorized, Category};
use crate::ports::artifacts::ArtifactError;

/// A failed logical dump or load.
#[derive(Debug, thiserror::Error)]
pub enum LogicalError {
    /// The options or the address cannot work.
    #[error("invalid logical backup options: {0}")]
    Options(String),
    /// No connection could be made.
    #[error("{address}: {context}: cannot connect: {message}")]
    Connect {
        address: String,
        context: String,
        message: String,
    },
    /// The server refused a statement.
    #[error("{address}: {context}: ERROR {code}: {message}")]
    Server {
        address: String,
        context: String,
        code: u16,
        message: String,
    },
    /// The connection broke (the server died, the network failed).
    #[error("{address}: {context}: connection lost: {message}")]
    ConnectionLost {
        address: String,
        context: String,
        message: String,
    },
    /// A statement (or one row of a streamed result) did not come back in time.
    #[error("{address}: {context}: no answer within {after:?}")]
    Timeout {
        address: String,
        context: String,
        after: Duration,
    },
    /// Writing or reading an artifact failed; the store's own message is kept.
    #[error("{context}: {source}")]
    Artifact {
        context: String,
        #[source]
        source: ArtifactError,
    },
    /// The artifact store did not answer in time.
    #[error("{context}: the artifact store did not answer within {after:?}")]
    ArtifactTimeout { context: String, after: Duration },
    /// The load will not run against this target (nothing was written).
    #[error("{address}: refused: {reason}")]
    Refused { address: String, reason: String },
    /// A chunk or the dump description does not match what the dump recorded.
    #[error("{context}: {message}")]
    Mismatch { context: String, message: String },
}

impl Categorized for LogicalError {
    fn category(&self) -> Category {
        match self {
            Self::Options(_) => Category::Config,
            // Access denied and its kin are the server refusing us on purpose.
            Self::Server {
                code: 1044 | 1045 | 1142 | 1227 | 1370,
                ..
            }
            | Self::Refused { .. } => Category::Refused,
            Self::Connect { .. } | Self::ConnectionLost { .. } | Self::Server { .. } => {
                Category::Unavailable
            }
            Self::Timeout { .. } | Self::ArtifactTimeout { .. } => Category::Timeout,
            Self::Artifact { source, .. } => source.category(),
            Self::Mismatch { .. } => Category::InvalidInput,
        }
    }
}

impl LogicalError {
    /// The server's error code, when the server failed a statement.
    pub fn server_code(&self) -> Option<u16> {
        match self {
            Self::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_errors_keep_their_message_and_category() {
        let error = LogicalError::Artifact {
            context: "load `s`.`t` chunk data/s/t/00000-0000.tsv".into(),
            source: ArtifactError::Integrity {
                key: "data/s/t/00000-0000.tsv".into(),
                check: "sha256",
                message: "digest differs".into(),
            },
        };
        let text = error.to_string();
        assert!(
            text.contains("sha256 check failed: digest differs"),
            "{text}"
        );
        assert_eq!(error.category(), Category::InvalidInput);
    }

    #[test]
    fn access_denied_is_refused() {
        let error = LogicalError::Server {
            address: "a:1".into(),
            context: "x".into(),
            code: 1227,
            message: "denied".into(),
        };
        assert_eq!(error.category(), Category::Refused);
        assert_eq!(error.server_code(), Some(1227));
    }
}
