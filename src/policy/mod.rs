//! The policy engine: the production-hardening rule catalog and everything it is judged
//! on. Pure code: no I/O, no clock reads.
//!
//! - [`manifest`]: YAML/JSON documents as the API server would store them (merge keys
//!   expanded, locations kept for every value);
//! - [`rules`]: the catalog (data under `lint-rules/`), its evaluation and exemptions;
//! - [`report`]: findings rendered as text, JSON, SARIF and JUnit.
//!
//! The `lint` CLI, the `/lint` endpoint and the admission webhooks are shells around it.

pub mod manifest;
pub mod report;
pub mod rules;
