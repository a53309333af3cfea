//! The small fixed set of error categories every error type maps onto.
//!
//! Categories, never error strings or object names, are what metrics labels and exit codes
//! are built from, so their cardinality stays bounded.

use std::fmt;

/// What kind of failure an error is, independent of where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// The caller gave input we cannot accept (bad YAML, unknown site, bad flag).
    InvalidInput,
    /// Configuration on disk or in the environment is wrong or missing.
    Config,
    /// A peer (MySQL, an HTTP client, the filesystem) failed or went away.
    Unavailable,
    /// A bounded wait ran out.
    Timeout,
    /// The peer refused us on purpose (authentication, authorization, a safety gate).
    Refused,
    /// A bug or broken invariant on our side.
    Internal,
}

impl Category {
    /// A stable lower-case name for metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::Config => "config",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Refused => "refused",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by every error type in the crate.
pub trait Categorized {
    fn category(&self) -> Category;
}
