//! Each group's backup schedules as CronJobs that create `MysqlBackup` objects; the backup
//! controller ([`super::backups`]) takes it from there. And `status.backupSchedules`, each
//! schedule's last run, last success and pending retry, projected from those objects.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt as _};
use serde_json::{Value, json};

use super::OperatorContext;
use super::{artifacts, job_runs, retries};
use crate::api::{MysqlBackup, MysqlFailoverGroup};
use crate::failover::Timestamp;
use crate::ports::objects::{ObjectKey, ObjectStore as _};
use crate::render::backup::{self as render, LABEL_SCHEDULE};
use crate::render::diff::covers;
use crate::render::names::{LABEL_GROUP, LABEL_MANAGED_BY};
use crate::render::status::schedules::{ScheduledRun, backup_schedules};

/// Applies each schedule's CronJob where it differs, and deletes the group's CronJobs whose
/// schedule is gone.
pub(super) async fn sync_schedules(
    ctx: &OperatorContext,
    group: &MysqlFailoverGroup,
) -> Result<(), String> {
    let namespace = group.namespace().unwrap_or_default();
    let name = group.name_any();
    let desired = match &ctx.jobs.image {
        Some(image) => render::schedule_cron_jobs(group, image, &ctx.jobs.service_account)
            .map_err(|e| e.to_string())?,
        None if group
            .spec
            .backup
            .as_ref()
            .is_some_and(|b| !b.schedules.is_empty()) =>
        {
            return Err(
                "the operator was started without --job-image: schedules cannot run".to_owned(),
            );
        }
        None => Vec::new(),
    };
    let mut wanted = BTreeSet::new();
    for cron in desired {
        let value = serde_json::to_value(&cron).map_err(|e| e.to_string())?;
        let Some(key) = ObjectKey::of(&value) else {
            continue;
        };
        wanted.insert(key.name.clone());
        let unchanged = ctx
            .objects
            .live(&key)
            .is_some_and(|live| covers(&live, &value));
        if !unchanged {
            ctx.objects.apply(&value).await.map_err(|e| e.to_string())?;
            tracing::info!(cron_job = %key.name, "backup schedule applied");
        }
    }
    let labels = BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), "bloodraven".to_owned()),
        (LABEL_GROUP.to_owned(), name),
    ]);
    let existing = ctx
        .objects
        .select("batch/v1", "CronJob", &namespace, &labels)
        .unwrap_or_default();
    let api: Api<k8s_openapi::api::batch::v1::CronJob> =
        Api::namespaced(ctx.client.clone(), &namespace);
    for cron in existing {
        let Some(stale) = cron.pointer("/metadata/name").and_then(Value::as_str) else {
            continue;
        };
        let ours = cron
            .pointer("/metadata/labels")
            .and_then(|l| l.get(LABEL_SCHEDULE))
            .is_some();
        if ours && !wanted.contains(stale) {
            api.delete(stale, &DeleteParams::background())
                .await
                .map_err(|e| format!("deleting CronJob {stale}: {e}"))?;
            tracing::info!(cron_job = stale, "backup schedule removed: CronJob deleted");
        }
    }
    Ok(())
}

/// Writes `status.backupSchedules` when its projection from the group's backups differs
/// from what is stored (a merge patch of that one field: the list is replaced whole, and
/// no other writer owns it).
pub(super) async fn publish_status(
    ctx: &OperatorContext,
    group: &MysqlFailoverGroup,
    backups: &[Arc<MysqlBackup>],
) {
    let Some(spec) = group.spec.backup.as_ref() else {
        return;
    };
    let stored = group
        .status
        .as_ref()
        .map(|s| s.backup_schedules.as_slice())
        .unwrap_or_default();
    let runs: Vec<ScheduledRun<'_>> = backups
        .iter()
        .filter(|b| !artifacts::deleting(b))
        .map(|b| scheduled_run(b))
        .collect();
    let next = backup_schedules(&group.name_any(), spec, &runs, crate::shells::backup::now());
    if next == stored {
        return;
    }
    let api: Api<MysqlFailoverGroup> =
        Api::namespaced(ctx.client.clone(), &group.namespace().unwrap_or_default());
    let patch = json!({"status": {"backupSchedules": next}});
    match api
        .patch_status(
            &group.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => tracing::debug!(schedules = next.len(), "status.backupSchedules written"),
        Err(e) => tracing::warn!(error = %e, "cannot write status.backupSchedules; next pass"),
    }
}

fn scheduled_run(backup: &MysqlBackup) -> ScheduledRun<'_> {
    let status = backup.status.as_ref();
    let time = |t: Option<&String>| t.and_then(|t| Timestamp::parse_rfc3339(t));
    ScheduledRun {
        name: backup.metadata.name.as_deref().unwrap_or_default(),
        triggered_by: backup.spec.triggered_by.as_deref(),
        phase: status.and_then(|s| s.phase.as_deref()),
        created: job_runs::created(backup),
        completed: time(status.and_then(|s| s.completion_time.as_ref())),
        retried: status.is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == retries::RETRY_CREATED)
        }),
    }
}
