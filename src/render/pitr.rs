//! Point-in-time recovery in a cluster: the binary-log archiver of a group, and the check
//! every pod that replays makes that the archive is where it will read it.
//!
//! The archiver is one Deployment per group with `spec.backup.pitr.enabled`: `bloodraven
//! binlog archive` against the group's writer Service, so it follows a failover by itself
//! (the next pass connects to the new primary and archives its logs under its own
//! `server_uuid`). It reads the logs over the replication protocol (`mysqlbinlog
//! --read-from-remote-server`), not from the data volume as the reference's sidecar does: a
//! ReadWriteOnce volume cannot be shared, and the Deployment needs no place beside mysqld.
//! So it runs on the group's MySQL image with this binary copied in ([`super::tools`]).
//!
//! The logs land in the PITR profile's repository under `binlogs/<server_uuid>/`; a
//! replay reads them there, beside the backup or (`--binlogs-from`) in an S3 repository
//! of their own ([`archive_access`]).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Value, json};

use super::backup::{
    JobPurpose, engine_container, from_json, job_volumes_for, pod_context, profile, pull_secrets,
    repository_url, secret_volume,
};
use super::names::{
    LABEL_GROUP, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME, LABEL_PART_OF, primary_service,
};
use super::tools::on_mysql_image;
use super::{Owner, RenderError};
use crate::api::MysqlFailoverGroup;
use crate::api::backup::{BackupProfile, BackupSpec, StorageType};

/// Marks the archiver Deployment (how the operator finds one to delete).
pub const LABEL_ARCHIVER: &str = "shipstream.io/binlog-archiver";
/// The archiver pods' `app.kubernetes.io/name`: not `mysql`, so no Service, the
/// PodDisruptionBudget or a site selector ever picks them.
pub const ARCHIVER_APP: &str = "bloodraven-binlog-archiver";
/// The MySQL port of the writer Service.
const MYSQL_PORT: u16 = 3306;
/// Where an archiver on a volume serves its summary (`binlog archive --status-listen`).
pub const ARCHIVER_STATUS_PORT: u16 = 8085;
/// The archiver container's port of that endpoint, by name: the operator reads the number
/// from the live pod, so the name is the contract.
pub const ARCHIVER_STATUS_PORT_NAME: &str = "archive-status";
/// The archiver's container.
pub const ARCHIVER_CONTAINER: &str = "archiver";

/// The archiver Deployment's name.
pub fn archiver_name(group: &str) -> String {
    format!("mysql-{group}-binlog-archiver")
}

/// The PITR profile when archiving is on; an error when it is on but names no profile.
pub fn archive_profile(spec: &BackupSpec) -> Result<Option<&BackupProfile>, RenderError> {
    let Some(pitr) = spec.pitr.as_ref().filter(|p| p.enabled) else {
        return Ok(None);
    };
    let name = pitr.profile_name.as_deref().ok_or_else(|| {
        RenderError::Pitr(
            "enabled needs a profileName: the profile binary logs are archived to".to_owned(),
        )
    })?;
    profile(spec, name).map(Some).ok_or_else(|| {
        RenderError::Pitr(format!(
            "profileName {name:?} names no profile in spec.backup.profiles"
        ))
    })
}

/// Where a replay reads the archived binary logs beside the backup's own repository
/// settings: the extra `backup restore`/`backup verify` flags, and the volumes and mounts
/// they name. Empty when the archive is in the backup's repository.
#[derive(Debug, Default)]
pub(super) struct ArchiveAccess {
    pub args: Vec<String>,
    pub volumes: Vec<Value>,
    pub mounts: Vec<Value>,
}

/// Where the archive's S3 credentials and passphrase are mounted, apart from the backup's.
const ARCHIVE_S3_CREDS: &str = "/run/bloodraven/binlogs-aws-creds";
const ARCHIVE_PASSPHRASE: &str = "/run/bloodraven/binlogs-key";

/// How a replay from a backup in `repository` (`what` says whose: `pointInTime`, a
/// verification's `pointInTime`) reaches the binary-log archive, or why it cannot:
/// archiving is off, or the archive is on a volume the pod does not mount. An archive in
/// another S3 repository (a PITR profile that is not the backup's, as the reference
/// allows) is read there with that profile's endpoint, credentials and passphrase.
pub(super) fn archive_access(
    spec: &BackupSpec,
    repository: &BackupProfile,
    what: &str,
) -> Result<ArchiveAccess, RenderError> {
    let refuse = |why: String| Err(RenderError::Restore(why));
    let archive = match archive_profile(spec) {
        Ok(Some(archive)) => archive,
        Ok(None) => {
            return refuse(format!(
                "{what} needs spec.backup.pitr.enabled (with a profileName): without the binary-log archive there is nothing to replay"
            ));
        }
        Err(e) => return refuse(format!("{what}: {e}")),
    };
    let (archive_url, source_url) = (repository_url(archive)?, repository_url(repository)?);
    if archive_url == source_url {
        return Ok(ArchiveAccess::default());
    }
    let Some(s3) = archive
        .storage
        .s3
        .as_ref()
        .filter(|_| archive.storage.storage_type == StorageType::S3)
    else {
        return refuse(format!(
            "{what}: spec.backup.pitr archives to a volume ({archive_url}) that is not the backup's ({source_url}); the replay mounts the backup's volume only: archive to S3 or to the backup's profile, or use a backup of the PITR profile"
        ));
    };
    let mut access = ArchiveAccess {
        args: vec!["--binlogs-from".to_owned(), archive_url],
        ..ArchiveAccess::default()
    };
    if let Some(endpoint) = &s3.endpoint_url {
        access
            .args
            .extend(["--binlogs-s3-endpoint".to_owned(), endpoint.clone()]);
    }
    if let Some(region) = &s3.region {
        access
            .args
            .extend(["--binlogs-s3-region".to_owned(), region.clone()]);
    }
    access.args.extend([
        "--binlogs-s3-credentials-dir".to_owned(),
        ARCHIVE_S3_CREDS.to_owned(),
    ]);
    access
        .volumes
        .push(json!({"name": "binlogs-aws-creds", "secret": {
        "secretName": s3.credentials_secret, "defaultMode": 0o400}}));
    access.mounts.push(
        json!({"name": "binlogs-aws-creds", "mountPath": ARCHIVE_S3_CREDS, "readOnly": true}),
    );
    if let Some(encryption) = &archive.encryption {
        let secret = &encryption.passphrase_secret;
        access.volumes.push(secret_volume(
            "binlogs-key",
            &secret.name,
            &[(&secret.key, "passphrase")],
        ));
        access.mounts.push(
            json!({"name": "binlogs-key", "mountPath": ARCHIVE_PASSPHRASE, "readOnly": true}),
        );
        access.args.extend([
            "--binlogs-passphrase-file".to_owned(),
            format!("{ARCHIVE_PASSPHRASE}/passphrase"),
        ]);
    }
    Ok(access)
}

/// `archivePollInterval` in seconds: `90`, `90s`, `5m` or `1h` (at least 1).
pub fn poll_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = digits.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        _ => return None,
    };
    value.checked_mul(scale).filter(|s| *s > 0)
}

/// The labels of the archiver and its pods (how the operator finds its pod).
pub fn archiver_labels(group: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_owned(), ARCHIVER_APP.to_owned()),
        (LABEL_INSTANCE.to_owned(), group.to_owned()),
        (LABEL_MANAGED_BY.to_owned(), "bloodraven".to_owned()),
        (LABEL_PART_OF.to_owned(), "bloodraven".to_owned()),
        (LABEL_GROUP.to_owned(), group.to_owned()),
        (LABEL_ARCHIVER.to_owned(), "true".to_owned()),
    ])
}

/// The group's archiver Deployment, or `None` when PITR is off. `image` is the operator's
/// (the init container copies this binary from it).
pub fn archiver_deployment(
    group: &MysqlFailoverGroup,
    image: &str,
) -> Result<Option<Deployment>, RenderError> {
    let owner = Owner::new(group)?;
    let Some(spec) = owner.spec.backup.as_ref() else {
        return Ok(None);
    };
    let Some(archive) = archive_profile(spec)? else {
        return Ok(None);
    };
    let interval = spec
        .pitr
        .as_ref()
        .map_or(Some(60), |p| poll_seconds(&p.archive_poll_interval))
        .ok_or_else(|| {
            RenderError::Pitr(
                "archivePollInterval is not a duration such as 60s, 5m or 1h".to_owned(),
            )
        })?;
    let url = repository_url(archive)?;
    let creds = super::backup::MYSQL_CREDS;
    let source = format!(
        "{}.{}.svc:{MYSQL_PORT}",
        primary_service(owner.name),
        owner.namespace
    );
    let mut args: Vec<String> = [
        "binlog",
        "archive",
        "--source",
        &source,
        "--to",
        &url,
        "--interval",
        &interval.to_string(),
        // Close the current log every interval it holds writes: the archive is then at
        // most one interval behind (the reference waited for max_binlog_size).
        "--rotate",
        // Hourly, delete the archived logs every complete backup in the repository holds.
        "--prune",
        "--user-file",
        &format!("{creds}/username"),
        "--password-file",
        &format!("{creds}/password"),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // On a volume the operator cannot read the archive: the archiver tells it what the
    // archive holds (plain HTTP, nothing secret in it). On S3 the operator reads the
    // repository itself, so nothing listens.
    let on_volume = archive.storage.storage_type == StorageType::Pvc;
    if on_volume {
        args.extend([
            "--status-listen".to_owned(),
            format!("0.0.0.0:{ARCHIVER_STATUS_PORT}"),
        ]);
    }
    let (mut volumes, mounts) =
        job_volumes_for(&owner, spec, archive, &mut args, JobPurpose::Archive)?;
    let mut container = engine_container(ARCHIVER_CONTAINER, image, &args, spec, &mounts);
    if on_volume {
        container["ports"] = json!([{"name": ARCHIVER_STATUS_PORT_NAME,
            "containerPort": ARCHIVER_STATUS_PORT, "protocol": "TCP"}]);
    }
    let tools = on_mysql_image(&mut container, image, &owner.spec.image, spec);
    volumes.push(tools.volume);
    let labels = archiver_labels(owner.name);
    let selector: BTreeMap<&str, &str> =
        [(LABEL_NAME, ARCHIVER_APP), (LABEL_INSTANCE, owner.name)].into();
    let metadata = owner.meta(archiver_name(owner.name), labels.clone());
    from_json(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": 1,
            // Never two at once: harmless (an archived log is skipped by name), but wasted.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "securityContext": pod_context(spec),
                    "imagePullSecrets": pull_secrets(spec),
                    "initContainers": [tools.init],
                    "containers": [container],
                    "volumes": volumes,
                }
            }
        }
    }))
    .map(Some)
}

#[cfg(test)]
mod tests;
