//! The Job that deletes one backup from a repository on a volume. The operator deletes an
//! S3 backup itself with the credentials it already reads; a volume only Jobs mount.

use k8s_openapi::api::batch::v1::Job;
use serde_json::json;

use super::{
    JobPurpose, backup_id, engine_container, job_labels, job_volumes_for, pod_context,
    pull_secrets, repository_url, run_once_job,
};
use crate::api::backup::BackupProfile;
use crate::api::{MysqlBackup, MysqlFailoverGroup};
use crate::render::{Owner, RenderError};

/// The engine's container in a cleanup Job's pod.
pub const CLEANUP_CONTAINER: &str = "cleanup";

/// A failed deletion is retried this many times within the Job before the Job fails.
const CLEANUP_BACKOFF_LIMIT: i32 = 2;

/// The Job that deletes backup `id`.
pub fn cleanup_job_name(id: &str) -> String {
    format!("cleanup-{id}")
}

/// The Job that deletes `backup`'s artifacts from `profile`'s volume: `bloodraven backup
/// delete`, which refuses an id that is not one path segment of the repository. Owned by
/// the `MysqlBackup`, so it goes with the object once the finalizer lets it go.
pub fn cleanup_job(
    group: &MysqlFailoverGroup,
    backup: &MysqlBackup,
    profile: &BackupProfile,
    image: &str,
) -> Result<Job, RenderError> {
    let owner = Owner::new(group)?;
    let spec = owner.spec.backup.clone().unwrap_or_default();
    let id = backup_id(backup)?;
    let url = repository_url(profile)?;
    let mut args: Vec<String> = ["backup", "delete", "--from", &url, "--id", &id]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let (volumes, mounts) =
        job_volumes_for(&owner, &spec, profile, &mut args, JobPurpose::Cleanup)?;
    let container = engine_container(CLEANUP_CONTAINER, image, &args, &spec, &mounts);
    let metadata = json!({
        "name": cleanup_job_name(&id),
        "namespace": owner.namespace,
        "labels": job_labels(owner.name, &id),
        "ownerReferences": [crate::render::controller_ref(backup)?],
    });
    let pod = json!({
        "securityContext": pod_context(&spec),
        "imagePullSecrets": pull_secrets(&spec),
        "containers": [container],
        "volumes": volumes,
    });
    run_once_job(&metadata, CLEANUP_BACKOFF_LIMIT, &spec, pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::backup::tests::{after, args, backup, group};

    #[test]
    fn the_cleanup_job_deletes_one_backup_from_the_volume_with_no_secret() {
        let group = group();
        let spec = group.spec.backup.as_ref().unwrap();
        let find = |name: &str| spec.profiles.iter().find(|p| p.name == name).unwrap();
        // An encrypted profile on the volume: the delete still needs no passphrase.
        let mut profile = find("local").clone();
        profile.encryption = find("offsite").encryption.clone();
        assert!(profile.encryption.is_some());
        let job = cleanup_job(&group, &backup("b", "u-1"), &profile, "op@sha256:1").unwrap();
        let job = serde_json::to_value(job).unwrap();
        let args = args(&job);
        assert_eq!(&args[..2], ["backup", "delete"]);
        assert_eq!(after(&args, "--from"), Some("file:///backups/orders"));
        assert_eq!(after(&args, "--id"), Some("b-u1"));
        assert_eq!(job["metadata"]["name"], "cleanup-b-u1");
        assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "MysqlBackup");
        let pod = &job["spec"]["template"]["spec"];
        let volumes: Vec<&str> = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["name"].as_str())
            .collect();
        // The volume and scratch space only: a delete needs no database account, no
        // passphrase and no API token.
        assert_eq!(volumes, ["tmp", "backups"]);
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["containers"][0]["name"], CLEANUP_CONTAINER);
    }
}
