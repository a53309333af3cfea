//! Implementations of [`crate::ports`] against the real world.

pub mod kube;
pub mod mysql;
pub mod sidecar;
pub mod storage;
