//! Shared test support: real peers the integration tests run against.

// Shared by test modules that each use part of it.
#[allow(dead_code)]
pub mod fake_apiserver;
#[allow(dead_code)]
pub mod kube;
#[allow(dead_code)]
pub mod mysql;
#[allow(dead_code)]
pub mod relay;
#[allow(dead_code)]
pub mod s3;
#[allow(dead_code)]
pub mod tools;
