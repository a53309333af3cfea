//! The hardening rule catalog: rule metadata and conditions loaded from `lint-rules/`,
//! evaluation against manifests, exemptions and safe fixes.
//!
//! One catalog serves three front doors (the `lint` CLI, `POST /lint` and the admission
//! webhooks), so rule IDs, levels, messages and fixes are the same everywhere.

pub mod builtin;
pub mod catalog;
pub mod condition;
pub mod config;
pub mod context;
pub mod docs;
pub mod exempt;
pub mod finding;
pub mod image;
pub mod kinds;
pub mod linter;
pub mod model;
pub mod normalize;
pub mod pointer;
pub mod shapes;

pub use catalog::{Catalog, CatalogError};
pub use config::LintConfig;
pub use context::{BundleContext, EmptyContext, Lookup, ObjectContext, Query};
pub use finding::{Finding, ObjectRef, Suppression, SuppressionSource};
pub use linter::{Linter, ObjectOutcome, Report, Summary};
pub use model::{AdmissionAction, Level, Owner, Rule};
