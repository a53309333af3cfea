//! When a rule fires: a JSON Schema over selected nodes, or a named Rust check.

use std::fmt;

use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use super::builtin::BuiltinCheck;
use super::context::ObjectContext;
use super::pointer::select;
use crate::policy::manifest::escape_pointer_token;

/// One place where a rule is violated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Pointer to the node the rule's `select` matched; fix paths are relative to it.
    pub base: String,
    /// Pointer to the offending field; for a missing field, where it should be.
    pub pointer: String,
    /// The offending value, shortened, for the message's `{value}`.
    pub value: String,
}

/// The decision part of a rule.
pub enum Condition {
    /// Data rule: every node matched by a `select` pattern must satisfy `schema`, for
    /// objects that match `when`.
    Schema {
        when: Option<Validator>,
        select: Vec<String>,
        schema: Validator,
    },
    /// A rule that needs code or other objects, implemented in [`super::builtin`].
    Builtin {
        name: String,
        check: &'static dyn BuiltinCheck,
    },
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Schema { select, .. } => write!(f, "Schema(select={select:?})"),
            Self::Builtin { name, .. } => write!(f, "Builtin({name})"),
        }
    }
}

impl Condition {
    /// Whether this condition looks at other objects through the context.
    pub fn is_cross_object(&self) -> bool {
        match self {
            Self::Schema { .. } => false,
            Self::Builtin { check, .. } => check.cross_object(),
        }
    }

    /// Whether this condition reports how fields are spelled, so it must see the object as
    /// written rather than its canonical form (see [`super::shapes`]).
    pub fn reads_raw_shape(&self) -> bool {
        match self {
            Self::Schema { .. } => false,
            Self::Builtin { check, .. } => check.reads_raw_shape(),
        }
    }

    /// Every violation in `object`; empty when the rule holds or does not apply.
    pub fn evaluate(&self, object: &Value, ctx: &dyn ObjectContext) -> Vec<Violation> {
        match self {
            Self::Schema {
                when,
                select: patterns,
                schema,
            } => {
                if when.as_ref().is_some_and(|w| !w.is_valid(object)) {
                    return Vec::new();
                }
                let mut out: Vec<Violation> = Vec::new();
                let nodes = patterns.iter().flat_map(|p| select(object, p));
                for (base, node) in nodes {
                    if schema.is_valid(node) {
                        continue;
                    }
                    for error in schema.iter_errors(node) {
                        let mut pointer = format!("{base}{}", error.instance_path().as_str());
                        let value = match error.kind() {
                            ValidationErrorKind::Required { property } => {
                                let name = property.as_str().unwrap_or_default();
                                pointer.push('/');
                                pointer.push_str(&escape_pointer_token(name));
                                "<unset>".to_owned()
                            }
                            _ => short(error.instance()),
                        };
                        if !out.iter().any(|v| v.pointer == pointer) {
                            out.push(Violation {
                                base: base.clone(),
                                pointer,
                                value,
                            });
                        }
                    }
                }
                out
            }
            Self::Builtin { check, .. } => check.check(object, ctx),
        }
    }
}

/// A one-line rendering of a value, at most 80 characters.
pub fn short(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}
