//! What every controller that runs a Job for an object shares (backups, verifications, and
//! restores next): the watched objects, the Job's state, status writes, Events, and the
//! recording of a run's end.
//!
//! A run's end is written once: the status patch carries the resourceVersion the decision
//! was made on, and only the replica whose write lands counts the run and posts its Event,
//! so after a leader change two replicas never both record the same ending.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event as KubeEvent, ObjectReference};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt as _};
use serde_json::{Value, json};

use super::OperatorContext;
use crate::adapters::kube::reactions::{EventNote, object_event};
use crate::api::{API_VERSION, MysqlBackup, MysqlBackupVerification, MysqlFailoverGroup};
use crate::backup::run::JobState;
use crate::failover::Timestamp;
use crate::render::backup::profile;
use crate::telemetry::backup::RunKind;

/// An object that names its group in `spec.failoverGroupRef`.
pub(super) trait OfGroup {
    fn group(&self) -> &str;
}

impl OfGroup for MysqlBackup {
    fn group(&self) -> &str {
        &self.spec.failover_group_ref.name
    }
}

impl OfGroup for MysqlBackupVerification {
    fn group(&self) -> &str {
        &self.spec.failover_group_ref.name
    }
}

/// Watched objects by namespace and name.
pub(super) struct Watched<K> {
    objects: BTreeMap<(String, String), Arc<K>>,
}

impl<K> Default for Watched<K> {
    fn default() -> Self {
        Self {
            objects: BTreeMap::new(),
        }
    }
}

impl<K: kube::Resource + OfGroup> Watched<K> {
    /// Records a watched object; answers the (namespace, group) it belongs to.
    pub(super) fn seen(&mut self, object: K) -> (String, String) {
        let namespace = object.namespace().unwrap_or_default();
        let group = (namespace.clone(), object.group().to_owned());
        self.objects
            .insert((namespace, object.name_any()), Arc::new(object));
        group
    }

    pub(super) fn gone(&mut self, object: &K) {
        self.objects
            .remove(&(object.namespace().unwrap_or_default(), object.name_any()));
    }

    /// The objects of `group` in `namespace`.
    pub(super) fn of_group(&self, namespace: &str, group: &str) -> Vec<Arc<K>> {
        self.objects
            .iter()
            .filter(|((ns, _), o)| ns == namespace && o.group() == group)
            .map(|(_, o)| Arc::clone(o))
            .collect()
    }

    pub(super) fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.objects
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Every object.
    pub(super) fn all(&self) -> Vec<Arc<K>> {
        self.objects.values().cloned().collect()
    }

    /// Every object in `namespace`.
    pub(super) fn in_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        self.objects
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, o)| Arc::clone(o))
            .collect()
    }
}

/// How a run ended, as its object's status and an Event tell it.
pub(super) struct Ending<'a> {
    /// The terminal status fields.
    pub status: Value,
    /// The Event's reason (a Warning when `warning`).
    pub reason: &'a str,
    pub warning: bool,
    pub message: String,
}

impl<'a> Ending<'a> {
    /// A failure: `Failed` now, with `message` both in the status and in a Warning Event.
    pub(super) fn failed(reason: &'a str, message: &str) -> Self {
        Self {
            status: json!({
                "phase": "Failed",
                "completionTime": crate::shells::backup::now().rfc3339(),
                "message": message,
            }),
            reason,
            warning: true,
            message: message.to_owned(),
        }
    }

    /// Adds a status field the kind's failures carry beyond the common ones.
    pub(super) fn with(mut self, field: &str, value: Value) -> Self {
        if let Value::Object(status) = &mut self.status {
            status.insert(field.to_owned(), value);
        }
        self
    }
}

/// The Events one controller posts: each carries its `action`, and a sequence number that
/// keeps their names unique within this process.
pub(super) struct Events {
    action: &'static str,
    seq: u64,
}

impl Events {
    pub(super) const fn new(action: &'static str) -> Self {
        Self { action, seq: 0 }
    }

    /// Posts an Event about `object`.
    pub(super) async fn post<K>(
        &mut self,
        ctx: &OperatorContext,
        object: &K,
        reason: &str,
        warning: bool,
        message: String,
    ) where
        K: kube::Resource<DynamicType = ()>,
    {
        self.seq = self.seq.wrapping_add(1);
        let note = EventNote {
            reason: reason.to_owned(),
            warning,
            message,
            action: self.action,
        };
        post_event(ctx, object, note, self.seq).await;
    }

    /// Records how `object`'s run ended: writes the terminal status and, only when this
    /// replica's write landed, counts the run with `count` and posts the Event. True when
    /// written.
    pub(super) async fn record_ending<K>(
        &mut self,
        ctx: &OperatorContext,
        object: &K,
        ending: Ending<'_>,
        count: impl FnOnce(),
    ) -> bool
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        if !write_status(ctx, object, &ending.status).await {
            return false;
        }
        count();
        self.post(ctx, object, ending.reason, ending.warning, ending.message)
            .await;
        true
    }
}

/// Counts one ending of a `kind` run of `profile_name` in `group`'s metrics.
pub(super) fn count_run(
    ctx: &OperatorContext,
    group: &MysqlFailoverGroup,
    kind: RunKind,
    profile_name: &str,
    outcome: &'static str,
) {
    // A profile the group does not have is labelled `unknown`: labels come from the
    // group's spec, never from what any object names.
    let known = group
        .spec
        .backup
        .as_ref()
        .and_then(|spec| profile(spec, profile_name))
        .is_some();
    let label = if known { profile_name } else { "unknown" };
    ctx.metrics
        .group_backups(&group.namespace().unwrap_or_default(), &group.name_any())
        .count(kind, label, outcome);
}

/// Writes status fields with a merge patch that carries the resourceVersion the decision was
/// made on: a concurrent writer makes it fail (409) rather than both acting. True when
/// written.
pub(super) async fn write_status<K>(ctx: &OperatorContext, object: &K, fields: &Value) -> bool
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let patch = json!({
        "metadata": {"resourceVersion": object.meta().resource_version},
        "status": strip_nulls(fields),
    });
    match api
        .patch_status(
            &object.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => true,
        Err(kube::Error::Api(status)) if status.code == 409 => {
            tracing::debug!("the object changed since it was read; the next pass decides again");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot write the status");
            false
        }
    }
}

/// Posts an Event about `object` (failures are logged: an Event is never worth a retry).
pub(super) async fn post_event<K>(ctx: &OperatorContext, object: &K, note: EventNote, seq: u64)
where
    K: kube::Resource<DynamicType = ()>,
{
    let namespace = object.namespace().unwrap_or_default();
    let event = object_event(
        ObjectReference {
            api_version: Some(API_VERSION.to_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: object.meta().name.clone(),
            namespace: Some(namespace.clone()),
            uid: object.meta().uid.clone(),
            ..ObjectReference::default()
        },
        &note,
        &ctx.identity,
        crate::shells::backup::now(),
        seq,
    );
    let api: Api<KubeEvent> = Api::namespaced(ctx.client.clone(), &namespace);
    if let Err(e) = api.create(&PostParams::default(), &event).await {
        tracing::warn!(error = %e, reason = %note.reason, "cannot post the Event");
    }
}

/// A merge patch's null deletes the field: fields the caller has no value for are left out
/// instead, so they keep what an earlier write put there.
pub(super) fn strip_nulls(fields: &Value) -> Value {
    match fields {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The Job's state from its cached copy.
pub(super) fn job_state(job: Option<&Value>) -> JobState {
    let Some(job) = job else {
        return JobState::Absent;
    };
    let conditions = job
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let holds = |kind: &str| {
        conditions.iter().find(|c| {
            c.get("type").and_then(Value::as_str) == Some(kind)
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
    };
    if holds("Complete").is_some() {
        return JobState::Succeeded;
    }
    if let Some(failed) = holds("Failed").or_else(|| holds("FailureTarget")) {
        let text = |key: &str| failed.get(key).and_then(Value::as_str).unwrap_or("");
        return JobState::Failed(format!("{}: {}", text("reason"), text("message")));
    }
    JobState::Active
}

/// `metadata.creationTimestamp`.
pub(super) fn created<K: kube::Resource>(object: &K) -> Option<Timestamp> {
    let time = object.meta().creation_timestamp.as_ref()?;
    u64::try_from(time.0.as_millisecond())
        .ok()
        .map(Timestamp::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_conditions_map_to_states() {
        assert_eq!(job_state(None), JobState::Absent);
        assert_eq!(
            job_state(Some(&json!({"status": {"active": 1}}))),
            JobState::Active
        );
        let done = json!({"status": {"conditions": [
            {"type": "SuccessCriteriaMet", "status": "True"},
            {"type": "Complete", "status": "True"}]}});
        assert_eq!(job_state(Some(&done)), JobState::Succeeded);
        let failed = json!({"status": {"conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit"}]}});
        assert!(
            matches!(job_state(Some(&failed)), JobState::Failed(m) if m.contains("BackoffLimitExceeded"))
        );
        let not_yet = json!({"status": {"conditions": [{"type": "Complete", "status": "False"}]}});
        assert_eq!(job_state(Some(&not_yet)), JobState::Active);
    }

    #[test]
    fn a_failure_is_failed_now_with_its_message_and_a_warning() {
        let ending = Ending::failed("BackupFailed", "the Job failed").with("extra", json!(1));
        assert_eq!(ending.status["phase"], "Failed");
        assert_eq!(ending.status["message"], "the Job failed");
        assert_eq!(ending.status["extra"], 1);
        assert!(ending.status["completionTime"].is_string());
        assert!(ending.warning);
        assert_eq!(ending.reason, "BackupFailed");
        assert_eq!(ending.message, "the Job failed");
    }

    #[test]
    fn nulls_are_left_out_of_status_patches() {
        let stripped = strip_nulls(&json!({"phase": "Running", "encryptionAlgorithm": null}));
        assert_eq!(stripped, json!({"phase": "Running"}));
    }
}
