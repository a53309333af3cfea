//! Shared test support: real peers the integration tests run against.

pub mod mysql;
