//! Each group's backup schedules as CronJobs that create `MysqlBackup` objects; the backup
//! controller ([`super::backups`]) takes it from there.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::DeleteParams;
use kube::{Api, ResourceExt as _};
use serde_json::Value;

use super::OperatorContext;
use crate::api::MysqlFailoverGroup;
use crate::ports::objects::{ObjectKey, ObjectStore as _};
use crate::render::backup::{self as render, LABEL_SCHEDULE};
use crate::render::diff::covers;
use crate::render::names::{LABEL_GROUP, LABEL_MANAGED_BY};

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
