//! Each group's binary-log archiver (PITR): the Deployment [`crate::render::pitr`] renders
//! while `spec.backup.pitr.enabled`, deleted once it is off; and `status.pitr`, a view of
//! the archive in the PITR profile's repository, refreshed on the backup pass at most once
//! per `archivePollInterval`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt as _};
use serde_json::{Value, json};

use super::OperatorContext;
use super::backups::{MANIFEST_TIMEOUT, open_repository};
use super::job_runs::strip_nulls;
use crate::api::MysqlFailoverGroup;
use crate::failover::Timestamp;
use crate::ports::objects::{ObjectKey, ObjectStore as _};
use crate::render::diff::covers;
use crate::render::names::{LABEL_GROUP, LABEL_MANAGED_BY};
use crate::render::pitr::{LABEL_ARCHIVER, archive_profile, archiver_deployment, poll_seconds};

/// The least time between two reads of a group's archive for its status.
const MIN_REFRESH: Duration = Duration::from_secs(5);

/// When each group's archive was last read for `status.pitr`, and at which generation of
/// its spec (a changed spec is read again at once).
#[derive(Default)]
pub(super) struct Archivers {
    refreshed: BTreeMap<(String, String), (Timestamp, Option<i64>)>,
}

impl Archivers {
    /// Keeps the group's archiver as its spec says, and `status.pitr` current.
    pub(super) async fn reconcile_group(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
    ) {
        if let Err(e) = sync_archiver(ctx, group).await {
            tracing::warn!(error = %e, "cannot bring the binary-log archiver in line");
        }
        let key = (group.namespace().unwrap_or_default(), group.name_any());
        let spec = group.spec.backup.clone().unwrap_or_default();
        let every = spec
            .pitr
            .as_ref()
            .and_then(|p| poll_seconds(&p.archive_poll_interval))
            .map_or(MIN_REFRESH, |s| Duration::from_secs(s).max(MIN_REFRESH));
        let now = crate::shells::backup::now();
        let generation = group.metadata.generation;
        if self
            .refreshed
            .get(&key)
            .is_some_and(|(at, seen)| *seen == generation && !now.has_elapsed(*at, every))
        {
            return;
        }
        self.refreshed.insert(key, (now, generation));
        let Some(pitr) = pitr_status(ctx, group, now).await else {
            return;
        };
        let current = group
            .status
            .as_ref()
            .and_then(|s| s.pitr.as_ref())
            .map(serde_json::to_value)
            .and_then(Result::ok);
        if current.as_ref() == Some(&pitr) {
            return;
        }
        let api: Api<MysqlFailoverGroup> =
            Api::namespaced(ctx.client.clone(), &group.namespace().unwrap_or_default());
        let patch = json!({"status": {"pitr": pitr}});
        if let Err(e) = api
            .patch_status(
                &group.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            tracing::warn!(error = %e, "cannot write status.pitr");
        }
    }
}

/// Applies the archiver Deployment where it differs, or deletes it once PITR is off.
async fn sync_archiver(ctx: &OperatorContext, group: &MysqlFailoverGroup) -> Result<(), String> {
    let namespace = group.namespace().unwrap_or_default();
    let spec = group.spec.backup.clone().unwrap_or_default();
    let wanted = archive_profile(&spec).map_err(|e| e.to_string())?.is_some();
    let desired = match (&ctx.jobs.image, wanted) {
        (Some(image), true) => archiver_deployment(group, image).map_err(|e| e.to_string())?,
        (None, true) => {
            return Err(
                "the operator was started without --job-image: the archiver cannot run".to_owned(),
            );
        }
        (_, false) => None,
    };
    let mut keep = BTreeSet::new();
    if let Some(deployment) = desired {
        let value = serde_json::to_value(&deployment).map_err(|e| e.to_string())?;
        if let Some(key) = ObjectKey::of(&value) {
            keep.insert(key.name.clone());
            let unchanged = ctx
                .objects
                .live(&key)
                .is_some_and(|live| covers(&live, &value));
            if !unchanged {
                ctx.objects.apply(&value).await.map_err(|e| e.to_string())?;
                tracing::info!(deployment = %key.name, "binary-log archiver applied");
            }
        }
    }
    let labels = BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), "bloodraven".to_owned()),
        (LABEL_GROUP.to_owned(), group.name_any()),
        (LABEL_ARCHIVER.to_owned(), "true".to_owned()),
    ]);
    let existing = ctx
        .objects
        .select("apps/v1", "Deployment", &namespace, &labels)
        .unwrap_or_default();
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
    for deployment in existing {
        let Some(stale) = deployment.pointer("/metadata/name").and_then(Value::as_str) else {
            continue;
        };
        if !keep.contains(stale) {
            api.delete(stale, &DeleteParams::background())
                .await
                .map_err(|e| format!("deleting Deployment {stale}: {e}"))?;
            tracing::info!(
                deployment = stale,
                "PITR is off: binary-log archiver deleted"
            );
        }
    }
    Ok(())
}

/// `status.pitr` as it should read now; `None` when there is nothing to say (PITR was
/// never set).
async fn pitr_status(
    ctx: &OperatorContext,
    group: &MysqlFailoverGroup,
    now: Timestamp,
) -> Option<Value> {
    let spec = group.spec.backup.clone().unwrap_or_default();
    let previous = group.status.as_ref().and_then(|s| s.pitr.clone());
    let profile = match archive_profile(&spec) {
        Ok(Some(profile)) => profile,
        Ok(None) => {
            // Off: say so once (the counts stay as the last view of the archive).
            let was_on = previous.as_ref().is_some_and(|p| p.enabled != Some(false));
            return was_on.then(|| {
                let mut status = serde_json::to_value(previous.clone().unwrap_or_default())
                    .unwrap_or_else(|_| json!({}));
                status["enabled"] = json!(false);
                status["message"] = json!("archiving is off (spec.backup.pitr.enabled is false)");
                status
            });
        }
        Err(e) => {
            return Some(json!({"enabled": false, "message": e.to_string()}));
        }
    };
    let mut status =
        serde_json::to_value(previous.clone().unwrap_or_default()).unwrap_or_else(|_| json!({}));
    status["enabled"] = json!(true);
    status["profileName"] = json!(profile.name);
    let namespace = group.namespace().unwrap_or_default();
    let store = match open_repository(ctx, &namespace, profile).await {
        Ok(Ok(store)) => store,
        Ok(Err(url)) => {
            status["message"] = json!(format!(
                "archiving to {url}, a backup volume the operator does not mount: `bloodraven backup list` in a pod that mounts it shows the archive"
            ));
            return Some(status);
        }
        Err(e) => {
            status["message"] = json!(format!("cannot open the archive: {e}"));
            return Some(status);
        }
    };
    let read = tokio::time::timeout(
        MANIFEST_TIMEOUT,
        crate::shells::backup::archive_summary(&*store),
    )
    .await;
    let summary = match read {
        Ok(Ok(summary)) => summary,
        Ok(Err(e)) => {
            status["message"] = json!(format!("cannot read the archive: {e}"));
            return Some(status);
        }
        Err(_) => {
            status["message"] = json!(format!(
                "no answer from the archive within {MANIFEST_TIMEOUT:?}"
            ));
            return Some(status);
        }
    };
    let count = i32::try_from(summary.count).unwrap_or(i32::MAX);
    // The repository keeps no upload times: a count that grew since the last view means a
    // log was archived since then.
    let before = previous
        .as_ref()
        .and_then(|p| p.archived_file_count)
        .unwrap_or(0);
    if count > before {
        status["lastArchivedTime"] = json!(now.rfc3339());
    }
    let at = |seconds: Option<u32>| {
        seconds.map(|s| Timestamp::from_millis(u64::from(s) * 1000).rfc3339())
    };
    status["archivedFileCount"] = json!(count);
    status["archivedBytes"] = json!(i64::try_from(summary.bytes).unwrap_or(i64::MAX));
    status["oldestArchivedTime"] = json!(at(summary.oldest_event));
    status["newestArchivedTime"] = json!(at(summary.newest_event));
    status["message"] = json!(if count == 0 {
        "archiving; no binary log is archived yet (a log is archived once the server closes it)"
            .to_owned()
    } else {
        format!("{count} binary logs archived")
    });
    Some(strip_nulls(&status))
}
