//! Objects that must ship alongside a group: a NetworkPolicy, a PrometheusRule with the
//! minimum alerts, and a PodDisruptionBudget for the operator.

use serde_json::Value;

use super::{BuiltinCheck, namespace_of, violation};
use crate::policy::rules::condition::Violation;
use crate::policy::rules::context::{Lookup, ObjectContext, Query};

/// Passes when the context lists at least one object of `kind` for which `accept` holds.
pub struct BundleObject {
    kind: &'static str,
    /// Search every namespace rather than the group's (the operator runs elsewhere).
    any_namespace: bool,
    accept: fn(&Value) -> bool,
    describe: &'static str,
}

pub static NETWORK_POLICY: BundleObject = BundleObject {
    kind: "NetworkPolicy",
    any_namespace: false,
    accept: |_| true,
    describe: "no NetworkPolicy in the group's namespace",
};

pub static PROMETHEUS_RULE: BundleObject = BundleObject {
    kind: "PrometheusRule",
    any_namespace: true,
    accept: |rule| {
        let text = rule.to_string();
        [
            "bloodraven_divergent_transactions",
            "bloodraven_failovers_total",
        ]
        .iter()
        .all(|m| text.contains(m))
    },
    describe: "no PrometheusRule alerting on bloodraven_divergent_transactions and bloodraven_failovers_total",
};

pub static OPERATOR_PDB: BundleObject = BundleObject {
    kind: "PodDisruptionBudget",
    any_namespace: true,
    accept: |pdb| {
        pdb.pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
            .is_some_and(|labels| labels.values().any(|v| v == "bloodraven"))
    },
    describe: "no PodDisruptionBudget selecting the bloodraven operator",
};

impl BuiltinCheck for BundleObject {
    fn cross_object(&self) -> bool {
        true
    }

    fn check(&self, object: &Value, ctx: &dyn ObjectContext) -> Vec<Violation> {
        let namespace = if self.any_namespace {
            "*"
        } else {
            namespace_of(object)
        };
        // `describe` is unique per check, so it names the query. Contexts answer `any`
        // only from objects in the kind's own API group.
        let query = Query {
            name: self.describe,
            test: self.accept,
        };
        match ctx.any(self.kind, namespace, &query) {
            Lookup::Found(false) => vec![violation("", self.describe)],
            _ => Vec::new(),
        }
    }
}
