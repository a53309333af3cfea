//! Malformed `lint.shipstream.io/exempt` annotations exempt nothing and are reported.

use serde_json::Value;

use super::{BuiltinCheck, violation};
use crate::policy::manifest::escape_pointer_token;
use crate::policy::rules::condition::Violation;
use crate::policy::rules::context::ObjectContext;
use crate::policy::rules::exempt::{EXEMPT_ANNOTATION, parse};

pub struct ExemptionAnnotation;

impl BuiltinCheck for ExemptionAnnotation {
    fn cross_object(&self) -> bool {
        false
    }

    fn check(&self, object: &Value, _: &dyn ObjectContext) -> Vec<Violation> {
        let pointer = format!(
            "/metadata/annotations/{}",
            escape_pointer_token(EXEMPT_ANNOTATION)
        );
        parse(object)
            .1
            .into_iter()
            .map(|bad| violation(pointer.clone(), format!("{:?} {}", bad.entry, bad.problem)))
            .collect()
    }
}
