//! A Job's record from its pod's termination message: how the operator learns what a run
//! wrote to a repository it cannot read, a backup volume only Jobs mount.
//!
//! The engine in the pod writes its record (a backup's manifest, a restore's or a
//! verification's record) to `/dev/termination-log` (`--termination-log`); the kubelet
//! copies it into the pod's status. Only a pod the Job controls counts (its controller
//! reference names the Job, and its uid when the Job's is known), so another pod carrying
//! the Job's label cannot speak for it. With S3 the repository stays the source.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use serde::de::DeserializeOwned;

use super::OperatorContext;
use super::backups::MANIFEST_TIMEOUT;
use crate::ports::objects::{ObjectKey, ObjectStore as _};

/// The label the Job controller puts on its pods.
const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// The Job whose record is wanted, and the container that runs the engine.
pub(super) struct JobRef<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub container: &'a str,
}

/// The Job as its pods' controller reference names it: its name, and its uid when the
/// operator's cache holds the Job.
struct Controller<'a> {
    name: &'a str,
    uid: Option<String>,
    container: &'a str,
}

/// The record of `job`, parsed as `T`. `Ok(None)` when no pod of the Job left one (gone,
/// or not written because it was too long); `Err` for a list that may work next time.
pub(super) async fn read<T: DeserializeOwned>(
    ctx: &OperatorContext,
    job: &JobRef<'_>,
) -> Result<Option<T>, String> {
    let live = ctx.objects.live(&ObjectKey::job(job.namespace, job.name));
    let controller = Controller {
        name: job.name,
        uid: live
            .as_ref()
            .and_then(|job| job.pointer("/metadata/uid"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
        container: job.container,
    };
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), job.namespace);
    let params = ListParams::default().labels(&format!("{JOB_NAME_LABEL}={}", job.name));
    let pods = match tokio::time::timeout(MANIFEST_TIMEOUT, api.list(&params)).await {
        Ok(Ok(list)) => list.items,
        Ok(Err(e)) => return Err(format!("listing the pods of Job {}: {e}", job.name)),
        Err(_) => {
            return Err(format!(
                "listing the pods of Job {}: no answer within {MANIFEST_TIMEOUT:?}",
                job.name
            ));
        }
    };
    let Some(message) = newest_message(&pods, &controller) else {
        return Ok(None);
    };
    match serde_json::from_str(message) {
        Ok(record) => Ok(Some(record)),
        Err(e) => {
            tracing::warn!(job = job.name, error = %e, "the Job's termination message is not its record");
            Ok(None)
        }
    }
}

/// The termination message of the engine container that finished last, among the pods the
/// Job controls. Pure: the pods are what was observed.
fn newest_message<'p>(pods: &'p [Pod], job: &Controller<'_>) -> Option<&'p str> {
    pods.iter()
        .filter(|pod| controlled_by(pod, job))
        .filter_map(|pod| {
            let status = pod.status.as_ref()?;
            let container = status
                .container_statuses
                .as_ref()?
                .iter()
                .find(|c| c.name == job.container)?;
            let terminated = container.state.as_ref()?.terminated.as_ref()?;
            let message = terminated.message.as_deref().filter(|m| !m.is_empty())?;
            Some((terminated.finished_at.as_ref().map(|t| t.0), message))
        })
        .max_by_key(|(finished, _)| *finished)
        .map(|(_, message)| message)
}

fn controlled_by(pod: &Pod, job: &Controller<'_>) -> bool {
    pod.metadata
        .owner_references
        .as_ref()
        .is_some_and(|owners| {
            owners.iter().any(|owner| {
                owner.controller == Some(true)
                    && owner.kind == "Job"
                    && owner.api_version == "batch/v1"
                    && owner.name == job.name
                    && job.uid.as_ref().is_none_or(|uid| &owner.uid == uid)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(owner: &str, uid: &str, container: &str, message: &str, finished: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": format!("{owner}-x"), "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": owner, "uid": uid,
                "controller": true}]},
            "status": {"containerStatuses": [{
                "name": container, "image": "i", "imageID": "", "ready": false,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "message": message,
                                         "finishedAt": finished}}}]}
        }))
        .unwrap()
    }

    fn job() -> Controller<'static> {
        Controller {
            name: "mysql-backup-b1",
            uid: Some("u1".to_owned()),
            container: "backup",
        }
    }

    #[test]
    fn the_newest_message_of_a_pod_the_job_controls_is_the_record() {
        let pods = [
            pod(
                "mysql-backup-b1",
                "u1",
                "backup",
                "first",
                "2026-12-03T10:00:00Z",
            ),
            pod(
                "mysql-backup-b1",
                "u1",
                "backup",
                "retry",
                "2026-12-03T10:05:00Z",
            ),
        ];
        assert_eq!(newest_message(&pods, &job()), Some("retry"));
    }

    #[test]
    fn pods_of_other_jobs_other_uids_or_other_containers_do_not_count() {
        let pods = [
            pod(
                "mysql-backup-b2",
                "u1",
                "backup",
                "other job",
                "2026-12-03T10:09:00Z",
            ),
            pod(
                "mysql-backup-b1",
                "old",
                "backup",
                "earlier Job",
                "2026-12-03T10:09:00Z",
            ),
            pod(
                "mysql-backup-b1",
                "u1",
                "mysqld",
                "sidecar",
                "2026-12-03T10:09:00Z",
            ),
            pod(
                "mysql-backup-b1",
                "u1",
                "backup",
                "",
                "2026-12-03T10:09:00Z",
            ),
        ];
        assert_eq!(newest_message(&pods, &job()), None);
        let unknown_uid = Controller { uid: None, ..job() };
        assert_eq!(
            newest_message(&pods[1..], &unknown_uid),
            Some("earlier Job")
        );
    }

    #[test]
    fn a_pod_that_only_carries_the_label_does_not_count() {
        let mut forged = pod(
            "mysql-backup-b1",
            "u1",
            "backup",
            "forged",
            "2026-12-03T10:00:00Z",
        );
        if let Some(owners) = forged.metadata.owner_references.as_mut() {
            owners[0].controller = None;
        }
        assert_eq!(newest_message(&[forged], &job()), None);
    }
}
