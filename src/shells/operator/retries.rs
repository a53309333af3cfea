//! Retries of failed scheduled backups: the decision is [`crate::backup::retry`]; this
//! creates the next attempt's `MysqlBackup` once its backoff has passed and marks the failed
//! one with a `RetryCreated` condition, so the attempt is handed on exactly once (even if
//! the retry object is later deleted, by a person or by retention).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::PostParams;
use kube::{Api, ResourceExt as _};
use serde_json::json;

use super::OperatorContext;
use super::job_runs::{Events, write_status};
use crate::api::{MysqlBackup, MysqlFailoverGroup};
use crate::backup::retry::{FailedRun, RetryStep, next_retry};
use crate::failover::Timestamp;

/// The condition a Failed backup carries once its next attempt exists.
pub(super) const RETRY_CREATED: &str = "RetryCreated";

/// Moves one Failed backup's retry on, if it has one due; answers when the next attempt
/// falls due when that is still ahead (the caller wakes up then).
pub(super) async fn retry_failed(
    ctx: &OperatorContext,
    group: &MysqlFailoverGroup,
    backup: &MysqlBackup,
    events: &mut Events,
) -> Option<Timestamp> {
    let status = backup.status.clone().unwrap_or_default();
    let retried = status.conditions.iter().any(|c| c.type_ == RETRY_CREATED);
    let run = FailedRun {
        name: &backup.name_any(),
        triggered_by: backup.spec.triggered_by.as_deref(),
        completed: status
            .completion_time
            .as_deref()
            .and_then(Timestamp::parse_rfc3339),
        retried,
    };
    let policy = group.spec.backup.as_ref().and_then(|b| b.retry.as_ref());
    let now = crate::shells::backup::now();
    let (name, triggered_by, attempt) = match next_retry(policy, &run, now) {
        RetryStep::None => return None,
        RetryStep::At(due) => return Some(due),
        RetryStep::Create {
            name,
            triggered_by,
            attempt,
        } => (name, triggered_by, attempt),
    };
    let namespace = backup.namespace().unwrap_or_default();
    let next: MysqlBackup = match serde_json::from_value(json!({
        "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlBackup",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": backup.labels()},
        "spec": {
            "failoverGroupRef": {"name": backup.spec.failover_group_ref.name},
            "profileName": backup.spec.profile_name,
            "sourceSiteOverride": backup.spec.source_site_override,
            "triggeredBy": triggered_by,
        }
    })) {
        Ok(next) => next,
        Err(e) => {
            tracing::warn!(error = %e, "cannot build the retry's MysqlBackup");
            return None;
        }
    };
    let api: Api<MysqlBackup> = Api::namespaced(ctx.client.clone(), &namespace);
    match api.create(&PostParams::default(), &next).await {
        Ok(_) => {}
        // A previous pass created it and then failed to mark the failed backup.
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => {
            tracing::warn!(error = %e, retry = %name, "cannot create the retry; next pass");
            return None;
        }
    }
    let mut conditions = status.conditions.clone();
    conditions.push(Condition {
        type_: RETRY_CREATED.to_owned(),
        status: "True".to_owned(),
        reason: "RetryCreated".to_owned(),
        message: format!("attempt {attempt} is MysqlBackup {name}"),
        last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_millisecond(
                i64::try_from(now.as_millis()).unwrap_or(0),
            )
            .unwrap_or_default(),
        ),
        observed_generation: backup.metadata.generation,
    });
    if write_status(ctx, backup, &json!({"conditions": conditions})).await {
        tracing::info!(retry = %name, attempt, "failed scheduled backup retried");
        let max = policy.map_or(1, |p| p.max_attempts);
        events
            .post(
                ctx,
                backup,
                "BackupRetryScheduled",
                false,
                format!("attempt {attempt} of {max}: MysqlBackup {name}"),
            )
            .await;
    }
    None
}
