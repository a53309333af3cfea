//! The integration test binary. One binary keeps link times down on small machines; each
//! area is a module.

mod generated;
mod lint_examples;
mod lint_rules;
mod manifest_fuzz;
