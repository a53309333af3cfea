//! Async loops that run observe → decide → act through [`crate::ports`] only, shared by
//! standalone mode and the Kubernetes operator.
//!
//! [`FailoverLoop`] drives one failover group: it probes every site in parallel, calls
//! [`crate::failover::decide`], persists the engine state through the state-store
//! port when it changed, hands the decision to its observers, executes the decided actions
//! through [`crate::ports::mysql::MysqlSite`], and publishes the latest
//! [`crate::failover::GroupStatus`] on a watch channel.

pub mod backup;
mod execute;
mod failover_loop;
pub mod leader;
pub mod reconcile;
mod requests;

pub use failover_loop::{FailoverLoop, LoopConfig, LoopError, LoopParts, SiteHandle};
pub use reconcile::{ReconcileError, ReconcileReport, reconcile_children};
pub use requests::{ControlHandle, Reply, RequestError};

#[cfg(test)]
mod tests;
