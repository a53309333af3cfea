//! The Job of one restore of a group (`initFromBackup` or `restoreInPlace`): `bloodraven
//! backup restore` from the repository into the group's primary.
//!
//! The backup is named one of three ways, each resolved here to a repository and an id:
//! - `mysqlBackupRef`: a Succeeded `MysqlBackup` in the namespace. Its repository is the
//!   group's backup profile of the same name; the backup's recorded location must lie in
//!   it, so a restore never reads a repository other than the one the backup went to.
//! - `s3` / `pvc`: the path (`prefix` / `subPath`) names one backup directory,
//!   `<repository>/backups/<id>`, as a `MysqlBackup`'s `status.location` shows it.
//!
//! Like the backup Job, the pod runs the operator's image with no ServiceAccount token and
//! reads its secrets as read-only files; it logs in with the operator's account, since the
//! load creates schemas and sets the GTID history.
//!
//! `loadOptions.includeSchemas`/`excludeSchemas` select the backup's schemas
//! (`--include-schema`/`--exclude-schema`). `initFromBackup` takes any selection. In place,
//! a selection is the reference's per-schema mode: exactly one included schema, dropped and
//! loaded binary-logged (`--replace-schemas` with the filter) so the peers follow by
//! replication ([`scope`]).
//!
//! A `pointInTime` restore also replays archived binary logs (`--until-time`) with
//! `mysqlbinlog | mysql`, which the operator's image lacks: its container runs on the
//! group's MySQL image instead, with this binary copied in ([`super::tools`]).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use serde_json::json;

use super::backup::{
    JobPurpose, engine_container, job_volumes_for, leave_termination_record, pod_context, profile,
    pull_secrets, repository_url, run_once_job,
};
use super::pitr::ArchiveAccess;
use super::tools::on_mysql_image;
use super::{Owner, RenderError, names};
use crate::api::backup::{
    BackupProfile, BackupSpec, BackupStorage, EncryptionAlgorithm, EncryptionSpec, PvcStorage,
    StorageType,
};
use crate::api::restore::RestoreInputs;
use crate::api::{MysqlBackup, MysqlFailoverGroup};
use crate::backup::pitr::parse_stop_datetime;
use crate::backup::restore_run::{RestoreKind, RestoreScope};
use crate::failover::gtid::GtidSet;

/// Labels a restore Job with the kind of restore it runs.
pub const LABEL_RESTORE: &str = "shipstream.io/restore";
/// The `profile` metric label of a restore read from an `s3` or `pvc` source.
pub const EXTERNAL_PROFILE: &str = "external";

/// A restore's source, resolved: the repository (as a profile the Job helpers take) and
/// the backup in it.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreSource {
    pub repository: BackupProfile,
    pub id: String,
    /// The backup profile for metric labels: the MysqlBackup's, else [`EXTERNAL_PROFILE`].
    pub profile_label: String,
}

/// Resolves `inputs.source`. `backup` is the object `mysqlBackupRef` names, when it exists.
pub fn resolve_source(
    group: &MysqlFailoverGroup,
    inputs: &RestoreInputs,
    backup: Option<&MysqlBackup>,
) -> Result<RestoreSource, RenderError> {
    let refuse = |why: String| Err(RenderError::Restore(why));
    let source = &inputs.source;
    let mut resolved = if let Some(reference) = &source.mysql_backup_ref {
        let name = reference.name.as_str();
        let Some(backup) = backup else {
            return refuse(format!(
                "mysqlBackupRef: no MysqlBackup {name:?} in the namespace"
            ));
        };
        let status = backup.status.clone().unwrap_or_default();
        if status.phase.as_deref() != Some("Succeeded") {
            return refuse(format!(
                "mysqlBackupRef: MysqlBackup {name:?} is {}, not Succeeded",
                status.phase.as_deref().unwrap_or("new")
            ));
        }
        let profile_name = &backup.spec.profile_name;
        let spec = group.spec.backup.clone().unwrap_or_default();
        let Some(found) = profile(&spec, profile_name).cloned() else {
            return refuse(format!(
                "mysqlBackupRef: MysqlBackup {name:?} was taken with profile {profile_name:?}, which is not in this group's spec.backup.profiles (its storage says where to read)"
            ));
        };
        let url = repository_url(&found)?;
        let id = super::backup::backup_id(backup)?;
        let expected = format!("{url}/backups/{id}/");
        if let Some(location) = status.location.as_deref()
            && location != expected
        {
            return refuse(format!(
                "mysqlBackupRef: MysqlBackup {name:?} is stored at {location}, but profile {profile_name:?} reads {expected}"
            ));
        }
        RestoreSource {
            repository: found,
            id,
            profile_label: profile_name.clone(),
        }
    } else if let Some(s3) = &source.s3 {
        let (prefix, id) = split_backup_path(s3.prefix.as_deref().unwrap_or_default())
            .ok_or_else(|| {
                RenderError::Restore(
                    "s3.prefix must name one backup, <repository prefix>/backups/<id>, as a MysqlBackup's status.location shows it".to_owned(),
                )
            })?;
        let mut storage = s3.clone();
        storage.prefix = (!prefix.is_empty()).then_some(prefix);
        RestoreSource {
            repository: repository(BackupStorage {
                storage_type: StorageType::S3,
                s3: Some(storage),
                pvc: None,
            }),
            id,
            profile_label: EXTERNAL_PROFILE.to_owned(),
        }
    } else if let Some(pvc) = &source.pvc {
        let (sub_path, id) = split_backup_path(pvc.sub_path.as_deref().unwrap_or_default())
            .ok_or_else(|| {
                RenderError::Restore(
                    "pvc.subPath must name one backup directory, <repository>/backups/<id>"
                        .to_owned(),
                )
            })?;
        RestoreSource {
            repository: repository(BackupStorage {
                storage_type: StorageType::Pvc,
                s3: None,
                pvc: Some(PvcStorage {
                    claim_name: Some(pvc.claim_name.clone()),
                    sub_path: (!sub_path.is_empty()).then_some(sub_path),
                    ..PvcStorage::default()
                }),
            }),
            id,
            profile_label: EXTERNAL_PROFILE.to_owned(),
        }
    } else {
        return refuse("source needs one of mysqlBackupRef, s3 and pvc".to_owned());
    };
    // The inputs' decryption wins over the profile's: a backup restored into another
    // group may have been sealed with a passphrase this group's profile does not name.
    if let Some(decryption) = &inputs.decryption {
        resolved.repository.encryption = Some(EncryptionSpec {
            algorithm: EncryptionAlgorithm::default(),
            passphrase_secret: decryption.passphrase_secret.clone(),
        });
    }
    Ok(resolved)
}

fn repository(storage: BackupStorage) -> BackupProfile {
    BackupProfile {
        name: "restore".to_owned(),
        storage,
        dump: None,
        retention: 0,
        retention_policy: None,
        verification: None,
        encryption: None,
    }
}

/// `…/backups/<id>` → (`…`, `<id>`).
fn split_backup_path(path: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let [rest @ .., "backups", id] = parts.as_slice() else {
        return None;
    };
    if rest.contains(&"..") || *id == ".." {
        return None;
    }
    Some((rest.join("/"), (*id).to_owned()))
}

/// What a restore's Job is made from.
#[derive(Debug, Clone)]
pub struct RestoreJobInput<'a> {
    pub group: &'a MysqlFailoverGroup,
    pub kind: RestoreKind,
    pub inputs: &'a RestoreInputs,
    pub source: &'a RestoreSource,
    /// The primary restored into, and where its MySQL is reached (`host:port`).
    pub target_site: &'a str,
    pub target_address: &'a str,
    /// Names the run: `init` once, or the in-place `confirm` token.
    pub run: &'a str,
    /// The operator's own image.
    pub image: &'a str,
}

/// The engine's container in a restore Job's pod.
pub const RESTORE_CONTAINER: &str = "restore";

/// The record a point-in-time restore Job writes (`restores/<name>.json` in the backup's
/// repository): its namespace and Job name, unique per group and run.
pub fn record_name(namespace: &str, job_name: &str) -> String {
    format!("{namespace}.{job_name}")
}

/// The restore Job's name: one per group and run, so a new `confirm` token is a new Job.
pub fn job_name(group: &str, kind: RestoreKind, run: &str) -> String {
    let suffix = match kind {
        RestoreKind::InitFromBackup => "init".to_owned(),
        RestoreKind::InPlace => crate::digest::sha256_hex(run.as_bytes())[..10].to_owned(),
    };
    let stem: String = group
        .chars()
        .take(63 - "restore--".len() - suffix.len())
        .collect();
    format!("restore-{}-{suffix}", stem.trim_end_matches('-'))
}

/// The Job that loads `input.source` into the target, owned by the group.
pub fn restore_job(input: &RestoreJobInput<'_>) -> Result<Job, RenderError> {
    let owner = Owner::new(input.group)?;
    let spec = owner.spec.backup.clone().unwrap_or_default();
    scope(input.kind, input.inputs)?;
    let url = repository_url(&input.source.repository)?;
    let creds = super::backup::MYSQL_CREDS;
    let threads = input
        .inputs
        .load_options
        .as_ref()
        .map_or(4, |o| o.threads.max(1));
    let mut args: Vec<String> = [
        "backup",
        "restore",
        "--from",
        &url,
        "--id",
        &input.source.id,
        "--target",
        input.target_address,
        "--threads",
        &threads.to_string(),
        "--user-file",
        &format!("{creds}/username"),
        "--password-file",
        &format!("{creds}/password"),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if let Some(options) = &input.inputs.load_options {
        for (flag, names) in [
            ("--include-schema", &options.include_schemas),
            ("--exclude-schema", &options.exclude_schemas),
        ] {
            // Each name once: a repeated one selects nothing more.
            let mut seen = std::collections::BTreeSet::new();
            for schema in names.iter().filter(|s| seen.insert(s.as_str())) {
                args.extend([flag.to_owned(), schema.clone()]);
            }
        }
    }
    args.push(
        match input.kind {
            // A new primary holds only the operator's own account writes; their GTIDs
            // give way to the backup's history.
            RestoreKind::InitFromBackup => "--reset-gtids",
            // With a filter the engine drops and loads only that schema, binary-logged,
            // and keeps the target's GTID history: the peers replicate the change.
            RestoreKind::InPlace => "--replace-schemas",
        }
        .to_owned(),
    );
    let (replay, archive) = point_in_time_args(&spec, input.inputs, &input.source.repository)?;
    args.extend(replay.iter().cloned());
    let name = job_name(owner.name, input.kind, input.run);
    if !replay.is_empty() {
        // What was replayed reaches the status through this record, not the pod's log.
        args.extend([
            "--record-as".to_owned(),
            record_name(owner.namespace, &name),
        ]);
    }
    let (mut volumes, mut mounts) = job_volumes_for(
        &owner,
        &spec,
        &input.source.repository,
        &mut args,
        JobPurpose::Restore,
    )?;
    volumes.extend(archive.volumes);
    mounts.extend(archive.mounts);
    let mut labels: BTreeMap<String, String> = names::group_labels(owner.name);
    labels.insert(
        LABEL_RESTORE.to_owned(),
        input.kind.as_str().replace('_', "-"),
    );
    let mut container = engine_container(RESTORE_CONTAINER, input.image, &args, &spec, &mounts);
    if !replay.is_empty() {
        leave_termination_record(&mut container);
    }
    let mut init_containers = Vec::new();
    if !replay.is_empty() {
        // The replay pipes `mysqlbinlog` into `mysql`: the operator's image has neither.
        let tools = on_mysql_image(&mut container, input.image, &owner.spec.image, &spec);
        init_containers.push(tools.init);
        volumes.push(tools.volume);
    }
    let metadata = json!({
        "name": name,
        "namespace": owner.namespace,
        "labels": labels,
        "annotations": {"shipstream.io/target-site": input.target_site},
        "ownerReferences": [super::controller_ref(input.group)?],
    });
    let pod = json!({
        "securityContext": pod_context(&spec),
        "imagePullSecrets": pull_secrets(&spec),
        "initContainers": (!init_containers.is_empty()).then_some(init_containers),
        "containers": [container],
        "volumes": volumes,
    });
    // Never retried by Kubernetes: the reconciler records a failure, and a new `confirm`
    // token runs it again, on purpose.
    run_once_job(&metadata, 0, &spec, pod)
}

/// What a run of `inputs` replaces, or why they cannot make a Job (checked before the
/// run begins, so a refusal touches nothing):
/// - a schema name must not be empty;
/// - a schema selection cannot go with `pointInTime`: a replay filtered by schema
///   (`mysqlbinlog --database`) drops or misapplies statements that cross schemas;
/// - in place, a selection is one schema in `includeSchemas` and nothing in
///   `excludeSchemas`: the reference's per-schema mode is one schema, and `excludeSchemas`
///   belongs to its full-instance mode, which drops every user schema: the excluded ones
///   would be dropped and never loaded back.
///
/// `initFromBackup` is always [`RestoreScope::Full`]: whatever it loads goes into a new
/// primary, unlogged, and the peers are recloned.
pub fn scope(kind: RestoreKind, inputs: &RestoreInputs) -> Result<RestoreScope, RenderError> {
    let refuse = |why: &str| Err(RenderError::Restore(why.to_owned()));
    let Some(options) = inputs
        .load_options
        .as_ref()
        .filter(|o| !o.include_schemas.is_empty() || !o.exclude_schemas.is_empty())
    else {
        return Ok(RestoreScope::Full);
    };
    if options
        .include_schemas
        .iter()
        .chain(&options.exclude_schemas)
        .any(|s| s.trim().is_empty())
    {
        return refuse("loadOptions.includeSchemas/excludeSchemas: a schema name is empty");
    }
    if inputs.point_in_time.is_some() {
        return refuse(
            "loadOptions.includeSchemas/excludeSchemas cannot go with pointInTime: a replay filtered by schema (mysqlbinlog --database) skips or misapplies statements that cross schemas; restore the whole instance to a point in time, or one schema without pointInTime",
        );
    }
    if kind == RestoreKind::InitFromBackup {
        return Ok(RestoreScope::Full);
    }
    if !options.exclude_schemas.is_empty() {
        return refuse(
            "restoreInPlace: loadOptions.excludeSchemas is refused: a full in-place restore drops every user schema, so the excluded ones would be dropped and never loaded back; to restore one schema, name it alone in includeSchemas",
        );
    }
    let mut named: Vec<&str> = options.include_schemas.iter().map(String::as_str).collect();
    named.sort_unstable();
    named.dedup();
    match named.as_slice() {
        [one] => Ok(RestoreScope::Schema((*one).to_owned())),
        _ => Err(RenderError::Restore(format!(
            "restoreInPlace: loadOptions.includeSchemas names {} schemas ({}); an in-place restore of schemas restores exactly one (restore them one run at a time, or the whole instance with no includeSchemas)",
            named.len(),
            named.join(", ")
        ))),
    }
}

/// `pointInTime` as `backup restore` flags (none without it), with what the pod needs to
/// read the binary logs where the archiver writes them (`<archive>/binlogs/<server_uuid>/`,
/// the PITR profile's repository): so PITR must be on.
fn point_in_time_args(
    spec: &BackupSpec,
    inputs: &RestoreInputs,
    repository: &BackupProfile,
) -> Result<(Vec<String>, ArchiveAccess), RenderError> {
    let Some(pit) = &inputs.point_in_time else {
        return Ok((Vec::new(), ArchiveAccess::default()));
    };
    let refuse = |why: String| Err(RenderError::Restore(why));
    let mut archive = super::pitr::archive_access(spec, repository, "pointInTime")?;
    let Some(at) = parse_stop_datetime(&pit.stop_datetime) else {
        return refuse(format!(
            "pointInTime.stopDatetime {:?} is neither RFC 3339 nor YYYY-MM-DD HH:MM:SS (UTC)",
            pit.stop_datetime
        ));
    };
    let mut args = vec!["--until-time".to_owned(), at.rfc3339()];
    if let Some(exclude) = pit
        .exclude_gtids
        .as_deref()
        .filter(|g| !g.trim().is_empty())
    {
        if let Err(e) = GtidSet::parse(exclude) {
            return refuse(format!("pointInTime.excludeGtids {exclude:?}: {e}"));
        }
        args.extend(["--exclude-gtids".to_owned(), exclude.trim().to_owned()]);
    }
    args.append(&mut archive.args);
    Ok((args, archive))
}

/// The normalised `stopDatetime` of a point-in-time restore (RFC 3339, UTC), for
/// `status.*.pitrStopDatetime`; `None` without `pointInTime` or for one that does not parse.
pub fn stop_datetime(inputs: &RestoreInputs) -> Option<String> {
    let pit = inputs.point_in_time.as_ref()?;
    parse_stop_datetime(&pit.stop_datetime).map(crate::failover::Timestamp::rfc3339)
}

#[cfg(test)]
mod tests;
