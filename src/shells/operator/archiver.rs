//! Each group's binary-log archiver (PITR): the Deployment [`crate::render::pitr`] renders
//! while `spec.backup.pitr.enabled`, deleted once it is off; and `status.pitr`, a view of
//! the archive in the PITR profile's repository, refreshed on the backup pass at most once
//! per `archivePollInterval`.
//!
//! On S3 the operator reads the archive itself. On a backup volume, which only the
//! archiver mounts, it asks the archiver: its pod serves the summary of its last pass
//! (`binlog archive --status-listen`, plain HTTP: nothing in it is secret) on the container
//! port named [`ARCHIVER_STATUS_PORT_NAME`]. The pod is found by the Deployment's pod
//! labels, as `job_record` finds a Job's pods by its label; no controller reference is
//! required, since what it answers is a view for people, never acted on, and anyone who
//! could forge such a pod could as well write to the volume.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt as _};
use serde_json::{Value, json};
use tracing::Instrument as _;

use super::OperatorContext;
use super::backups::{MANIFEST_TIMEOUT, open_repository};
use super::job_runs::strip_nulls;
use crate::adapters::kube::reactions::selector_string;
use crate::adapters::sidecar::HttpSidecar;
use crate::api::MysqlFailoverGroup;
use crate::api::failover_group_status::PitrStatus;
use crate::failover::Timestamp;
use crate::ports::objects::{ObjectKey, ObjectStore as _};
use crate::render::diff::covers;
use crate::render::names::{LABEL_GROUP, LABEL_MANAGED_BY};
use crate::render::pitr::{
    ARCHIVER_CONTAINER, ARCHIVER_STATUS_PORT_NAME, LABEL_ARCHIVER, archive_profile,
    archiver_deployment, archiver_labels, poll_seconds,
};
use crate::shells::backup::ArchiveSummary;

/// The least time between two reads of a group's archive for its status.
const MIN_REFRESH: Duration = Duration::from_secs(5);
/// One call to an archiver's status endpoint, connection included.
const SUMMARY_CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest summary read: one is about a hundred bytes; far more is not an archiver.
const MAX_SUMMARY_BYTES: usize = 64 * 1024;

/// When each group's archive was last read for `status.pitr`, and at which generation of
/// its spec (a changed spec is read again at once); and the one HTTP client that asks
/// archivers on volumes, built on first use.
#[derive(Default)]
pub(super) struct Archivers {
    refreshed: BTreeMap<(String, String), (Timestamp, Option<i64>)>,
    http: tokio::sync::OnceCell<reqwest::Client>,
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
        let Some(pitr) = pitr_status(ctx, &self.http, group, now).await else {
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
    http: &tokio::sync::OnceCell<reqwest::Client>,
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
            // On a volume only the archiver mounts: its own summary, or why there is none
            // (the counts stay as last seen).
            return Some(
                match from_archiver(ctx, http, &namespace, &group.name_any()).await {
                    Ok(summary) => {
                        apply_summary(&mut status, previous.as_ref(), &summary, now);
                        strip_nulls(&status)
                    }
                    Err(why) => {
                        status["message"] = json!(format!(
                            "archiving to {url}, a backup volume the operator does not mount: {why}"
                        ));
                        status
                    }
                },
            );
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
    apply_summary(&mut status, previous.as_ref(), &summary, now);
    Some(strip_nulls(&status))
}

/// Fills `status` (`status.pitr` as JSON) from a summary of the archive, read from the
/// repository or answered by the archiver: the same fields either way.
fn apply_summary(
    status: &mut Value,
    previous: Option<&PitrStatus>,
    summary: &ArchiveSummary,
    now: Timestamp,
) {
    let count = i32::try_from(summary.count).unwrap_or(i32::MAX);
    // The repository keeps no upload times: a count that grew since the last view means a
    // log was archived since then.
    let before = previous.and_then(|p| p.archived_file_count).unwrap_or(0);
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
}

/// The summary the group's archiver pod serves, or why there is none (said in
/// `status.pitr.message`).
async fn from_archiver(
    ctx: &OperatorContext,
    http: &tokio::sync::OnceCell<reqwest::Client>,
    namespace: &str,
    group: &str,
) -> Result<ArchiveSummary, String> {
    let labels = archiver_labels(group);
    // The objects cache holds every pod's labels (not its spec or status): no archiver pod
    // there needs no LIST.
    if ctx
        .objects
        .select("v1", "Pod", namespace, &labels)
        .is_some_and(|pods| pods.is_empty())
    {
        return Err(NOT_RUNNING.to_owned());
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let params = ListParams::default().labels(&selector_string(labels.iter()));
    let pods = match tokio::time::timeout(MANIFEST_TIMEOUT, api.list(&params)).await {
        Ok(Ok(list)) => list.items,
        Ok(Err(e)) => return Err(format!("cannot list the archiver's pods: {e}")),
        Err(_) => {
            return Err(format!(
                "cannot list the archiver's pods: no answer within {MANIFEST_TIMEOUT:?}"
            ));
        }
    };
    let Some(endpoint) = status_endpoint(&pods) else {
        return Err(NOT_RUNNING.to_owned());
    };
    let url = format!("http://{}:{}/summary", endpoint.ip, endpoint.port);
    let client = http
        .get_or_try_init(|| async { HttpSidecar::client(SUMMARY_CALL_TIMEOUT, None) })
        .await
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    fetch_summary(client, &url)
        .instrument(tracing::debug_span!("archiver_summary", pod = %endpoint.pod, %url))
        .await
        .map_err(|e| format!("cannot reach the archiver's status endpoint at {url}: {e}"))
}

/// Said while no archiver pod can answer.
const NOT_RUNNING: &str = "the archiver pod is not running (no Running pod with a pod IP and the archive-status port); the counts are as last seen";

/// `GET url` for a summary, within [`SUMMARY_CALL_TIMEOUT`] (the client's) and
/// [`MAX_SUMMARY_BYTES`].
async fn fetch_summary(client: &reqwest::Client, url: &str) -> Result<ArchiveSummary, String> {
    let mut response = client.get(url).send().await.map_err(|e| e.to_string())?;
    let code = response.status();
    if code == reqwest::StatusCode::SERVICE_UNAVAILABLE {
        return Err("503: no archive pass has completed yet".to_owned());
    }
    if !code.is_success() {
        return Err(format!("HTTP {code}"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_SUMMARY_BYTES {
            return Err(format!("an answer over {MAX_SUMMARY_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("not an archive summary: {e}"))
}

/// Where an archiver pod serves its summary.
#[derive(Debug, PartialEq, Eq)]
struct StatusEndpoint {
    pod: String,
    ip: String,
    port: i32,
}

/// The endpoint of the newest Running archiver pod with a pod IP whose archiver container
/// declares the [`ARCHIVER_STATUS_PORT_NAME`] port (the number as the live pod has it).
/// Pure: the pods are what was listed. During a rollout the newest pod is the one that
/// archives (the Deployment recreates, so two at once is brief).
fn status_endpoint(pods: &[Pod]) -> Option<StatusEndpoint> {
    pods.iter()
        .filter_map(|pod| {
            let status = pod.status.as_ref()?;
            if status.phase.as_deref() != Some("Running") {
                return None;
            }
            let ip = status.pod_ip.as_deref().filter(|ip| !ip.is_empty())?;
            let port = pod
                .spec
                .as_ref()?
                .containers
                .iter()
                .find(|c| c.name == ARCHIVER_CONTAINER)?
                .ports
                .as_ref()?
                .iter()
                .find(|p| p.name.as_deref() == Some(ARCHIVER_STATUS_PORT_NAME))?
                .container_port;
            let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
            Some((created, pod.name_any(), ip, port))
        })
        .max_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)))
        .map(|(_, pod, ip, port)| StatusEndpoint {
            pod,
            ip: ip.to_owned(),
            port,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, created: &str, phase: &str, ip: Option<&str>, port: Option<&str>) -> Pod {
        let ports: Vec<Value> = port
            .map(|p| json!({"name": p, "containerPort": 18085}))
            .into_iter()
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"containers": [
                {"name": "other", "ports": [{"name": ARCHIVER_STATUS_PORT_NAME, "containerPort": 1}]},
                {"name": ARCHIVER_CONTAINER, "ports": ports}]},
            "status": {"phase": phase, "podIP": ip}
        }))
        .unwrap()
    }

    #[test]
    fn the_newest_running_pod_with_an_ip_and_the_port_answers() {
        let pods = [
            pod(
                "old",
                "2026-12-03T10:00:00Z",
                "Running",
                Some("10.0.0.1"),
                Some(ARCHIVER_STATUS_PORT_NAME),
            ),
            pod(
                "new",
                "2026-12-03T10:05:00Z",
                "Running",
                Some("10.0.0.2"),
                Some(ARCHIVER_STATUS_PORT_NAME),
            ),
            pod(
                "newer-pending",
                "2026-12-03T10:09:00Z",
                "Pending",
                Some("10.0.0.3"),
                Some(ARCHIVER_STATUS_PORT_NAME),
            ),
            pod(
                "newer-no-ip",
                "2026-12-03T10:09:00Z",
                "Running",
                None,
                Some(ARCHIVER_STATUS_PORT_NAME),
            ),
            pod(
                "newer-other-port",
                "2026-12-03T10:09:00Z",
                "Running",
                Some("10.0.0.4"),
                Some("metrics"),
            ),
            pod(
                "newer-no-port",
                "2026-12-03T10:09:00Z",
                "Running",
                Some("10.0.0.5"),
                None,
            ),
        ];
        assert_eq!(
            status_endpoint(&pods),
            Some(StatusEndpoint {
                pod: "new".to_owned(),
                ip: "10.0.0.2".to_owned(),
                port: 18085
            })
        );
    }

    #[test]
    fn no_running_pod_with_the_port_is_no_endpoint() {
        let pods = [
            pod(
                "failed",
                "2026-12-03T10:00:00Z",
                "Failed",
                Some("10.0.0.1"),
                Some(ARCHIVER_STATUS_PORT_NAME),
            ),
            // The port on another container does not count.
            pod(
                "no-port",
                "2026-12-03T10:00:00Z",
                "Running",
                Some("10.0.0.2"),
                None,
            ),
        ];
        assert_eq!(status_endpoint(&pods), None);
        assert_eq!(status_endpoint(&[]), None);
    }

    #[test]
    fn a_summary_fills_the_status_and_a_grown_count_stamps_the_archive_time() {
        let now = Timestamp::from_millis(1_800_000_000_000);
        let summary = ArchiveSummary {
            count: 3,
            bytes: 4096,
            oldest_event: Some(1_700_000_000),
            newest_event: Some(1_700_000_600),
        };
        let mut status = json!({"enabled": true});
        apply_summary(&mut status, None, &summary, now);
        assert_eq!(status["archivedFileCount"], 3);
        assert_eq!(status["archivedBytes"], 4096);
        assert_eq!(status["oldestArchivedTime"], "2023-11-14T22:13:20Z");
        assert_eq!(status["newestArchivedTime"], "2023-11-14T22:23:20Z");
        assert_eq!(status["lastArchivedTime"], now.rfc3339());
        assert_eq!(status["message"], "3 binary logs archived");
        let seen = PitrStatus {
            archived_file_count: Some(3),
            ..PitrStatus::default()
        };
        let mut again = json!({});
        apply_summary(&mut again, Some(&seen), &summary, now);
        assert!(again.get("lastArchivedTime").is_none(), "{again}");
    }
}
