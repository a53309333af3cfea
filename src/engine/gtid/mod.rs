//! MySQL GTID sets: parsing, printing and set algebra, in pure Rust.

/// Placeholder replaced by the gtid module implementation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet;
