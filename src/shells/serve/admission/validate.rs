//! `/validate`: deny required findings, warn about the rest, ratchet updates, guard status.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::message;
use super::review::{AdmissionRequest, AdmissionResponse, Operation};
use super::{GROUP, Policy, with_namespace};
use crate::policy::manifest::Document;
use crate::policy::rules::pointer::{IdentityStep, identity_path};
use crate::policy::rules::{AdmissionAction, Finding, Level, Linter, ObjectContext};
use crate::shells::serve::metrics::Decision;

/// The answer plus what metrics need.
#[derive(Debug)]
pub struct Validation {
    pub response: AdmissionResponse,
    pub decision: Decision,
    /// Active findings of the new object.
    pub findings: Vec<Finding>,
}

/// Decides one validating admission request.
pub fn validate(
    request: &AdmissionRequest,
    linter: &Linter,
    ctx: &dyn ObjectContext,
    policy: &Policy,
) -> Validation {
    let uid = request.uid.as_str();
    if request.sub_resource.as_deref() == Some("status") {
        return guard_status(request, policy);
    }
    let object = match (request.operation, &request.object) {
        (Operation::Create | Operation::Update, Some(object)) if request.sub_resource.is_none() => {
            object
        }
        // DELETE, CONNECT and other subresources (scale) carry nothing the rules judge.
        _ => return allowed(uid, Vec::new(), Vec::new()),
    };
    let findings = active(linter, with_namespace(object, request), ctx);

    let mut denying: Vec<&Finding> = findings.iter().filter(|f| denies(linter, f)).collect();
    if request.operation == Operation::Update
        && policy.ratchet
        && let Some(old) = &request.old_object
    {
        // Findings are matched by list items' names, not positions, so reordering a list
        // (backup profiles, sites) does not make an existing finding look new.
        let before: BTreeSet<(Arc<str>, Vec<IdentityStep>)> =
            active(linter, with_namespace(old, request), ctx)
                .into_iter()
                .filter(|f| denies(linter, f))
                .map(|f| (f.rule_id, identity_path(old, &f.path)))
                .collect();
        // Only findings the update introduces deny; existing ones become warnings.
        denying.retain(|f| !before.contains(&(f.rule_id.clone(), identity_path(object, &f.path))));
    }
    let mut warned: Vec<&Finding> = findings
        .iter()
        .filter(|f| !denying.iter().any(|d| std::ptr::eq(*d, *f)))
        .collect();
    warned.sort_by_key(|f| std::cmp::Reverse(f.level));
    let warnings = message::warnings(&warned);
    if denying.is_empty() {
        let response = AdmissionResponse::allow(uid, warnings);
        return allowed_with(response, findings);
    }
    Validation {
        response: AdmissionResponse::deny(uid, message::denial(&denying), warnings),
        decision: Decision::Denied,
        findings,
    }
}

/// Whether a finding denies admission: a required level, on a rule that does not depend on
/// apply order (those are `admission: warn`).
fn denies(linter: &Linter, f: &Finding) -> bool {
    f.level == Level::Required
        && linter
            .catalog()
            .get(&f.rule_id)
            .is_none_or(|r| r.admission == AdmissionAction::Deny)
}

fn active(linter: &Linter, object: serde_json::Value, ctx: &dyn ObjectContext) -> Vec<Finding> {
    let doc = Document::in_memory(object);
    let mut findings = linter.check(&doc, ctx).findings;
    findings.retain(Finding::is_active);
    findings
}

/// Status of our resources is the operator's record of what it did; anyone else writing it
/// could fake a promotion, so only the operator's `ServiceAccount` may.
fn guard_status(request: &AdmissionRequest, policy: &Policy) -> Validation {
    let uid = request.uid.as_str();
    let ours = request.resource.group == GROUP;
    if !ours || request.user_info.username == policy.operator_service_account {
        return allowed(uid, Vec::new(), Vec::new());
    }
    let message = message::one_line(&format!(
        "status guard: the status of {}.{} may only be changed by the operator ({}), not by {:?}",
        request.resource.resource,
        GROUP,
        policy.operator_service_account,
        request.user_info.username,
    ));
    Validation {
        response: AdmissionResponse::deny(uid, message, Vec::new()),
        decision: Decision::Denied,
        findings: Vec::new(),
    }
}

fn allowed(uid: &str, warnings: Vec<String>, findings: Vec<Finding>) -> Validation {
    allowed_with(AdmissionResponse::allow(uid, warnings), findings)
}

fn allowed_with(response: AdmissionResponse, findings: Vec<Finding>) -> Validation {
    let decision = if response.warnings.is_empty() {
        Decision::Allowed
    } else {
        Decision::AllowedWithWarnings
    };
    Validation {
        response,
        decision,
        findings,
    }
}
