//! The failover decision core: per-site debounce, the cross-site matrix, candidate ranking,
//! cooldown, planned failover, old-primary recovery and source convergence.
//!
//! It only *returns* actions; [`crate::control`] executes them through [`crate::ports`].

pub mod observe;
