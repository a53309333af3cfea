//! The Job of one `MysqlBackupVerification`: a throwaway mysqld in the Job's own pod, the
//! backup restored into it by `bloodraven backup verify --target`, and the sanity query.
//!
//! The pod has three containers:
//! - `datadir` (init, the group's MySQL image): initialises an empty data directory with
//!   one passwordless account, `verify@127.0.0.1`, for the pod's own loopback only;
//! - `mysqld` (a native sidecar: an init container that keeps running, so the Job ends
//!   when the check does): that server, bound to 127.0.0.1, GTIDs on;
//! - `verify` (the operator's image): checks every artifact, restores, runs the query.
//!   With `pointInTime` (mode `latest` or `timestamp`) it also replays archived binary logs
//!   after the load, which needs `mysqlbinlog` and `mysql`: it then runs on the group's
//!   MySQL image with this binary copied in by a `copy-bloodraven` init container
//!   ([`super::tools`]).
//!
//! Nothing is reachable from outside the pod: no Service, no port exposed, and the data
//! lives on a generic ephemeral volume that goes with the pod.

use k8s_openapi::api::batch::v1::Job;
use serde_json::{Value, json};

use super::backup::{JobPurpose, job_volumes_for, repository_url};
use super::names;
use super::pitr::ArchiveAccess;
use super::tools::on_mysql_image;
use super::{Owner, RenderError};
use crate::api::backup::{BackupProfile, BackupSpec};
use crate::api::restore::PointInTimeMode;
use crate::api::{MysqlBackupVerification, MysqlFailoverGroup};
use crate::backup::pitr::parse_stop_datetime;
use crate::backup::sanity::record_name;

/// Labels a verification Job with the verification it runs.
pub const LABEL_VERIFICATION: &str = "shipstream.io/backup-verification";
/// The account the `datadir` container creates (no password; loopback only).
pub const VERIFY_USER: &str = "verify";
const WORK: &str = "/verify";
const MYSQL_UID: i64 = 999;
/// The smallest scratch volume (the reference's 10 Gi floor).
const MIN_VOLUME_GIB: u64 = 10;

/// What one verification's Job is made from.
#[derive(Debug, Clone)]
pub struct VerificationJobInput<'a> {
    pub group: &'a MysqlFailoverGroup,
    pub verification: &'a MysqlBackupVerification,
    pub profile: &'a BackupProfile,
    /// The repository id of the backup to verify, and its stored size.
    pub backup_id: &'a str,
    pub backup_bytes: u64,
    /// The operator's image (runs `bloodraven backup verify`).
    pub image: &'a str,
}

/// The engine's container in a verification Job's pod.
pub const VERIFY_CONTAINER: &str = "verify";

/// The verification Job's name.
pub fn job_name(verification: &str) -> String {
    let stem: String = verification.chars().take(50).collect();
    format!("verify-{}", stem.trim_end_matches('-'))
}

/// The scratch volume's size: the spec's, else 1.5 × the backup rounded up to 10 Gi steps,
/// at least 10 Gi.
pub fn volume_size(spec_size: Option<&str>, backup_bytes: u64) -> String {
    if let Some(size) = spec_size {
        return size.to_owned();
    }
    let gib = (backup_bytes.saturating_mul(3) / 2).div_ceil(1 << 30);
    let steps = gib.div_ceil(MIN_VOLUME_GIB).max(1);
    format!("{}Gi", steps * MIN_VOLUME_GIB)
}

pub fn verification_job(input: &VerificationJobInput<'_>) -> Result<Job, RenderError> {
    let owner = Owner::new(input.group)?;
    let spec = owner.spec.backup.clone().unwrap_or_default();
    let verification = input.verification;
    let name = verification
        .metadata
        .name
        .as_deref()
        .ok_or(RenderError::MissingMetadata("name"))?;
    let url = repository_url(input.profile)?;
    let mut args: Vec<String> = [
        "backup",
        "verify",
        "--from",
        &url,
        "--id",
        input.backup_id,
        "--target",
        "127.0.0.1:3306",
        "--mysql-tls",
        "off",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(sanity_args(verification));
    let (replay, archive) = replay_args(&spec, verification, input.profile)?;
    args.extend(replay.iter().cloned());
    let (mut volumes, mut mounts) =
        job_volumes_for(&owner, &spec, input.profile, &mut args, JobPurpose::Verify)?;
    volumes.extend(archive.volumes);
    mounts.extend(archive.mounts);
    let storage = verification.spec.storage.clone().unwrap_or_default();
    let requested = storage.size.as_ref().map(|q| q.canonical().into_owned());
    let size = volume_size(requested.as_deref(), input.backup_bytes);
    volumes.push(
        json!({"name": "verify", "ephemeral": {"volumeClaimTemplate": {
            "metadata": {"labels": names::group_labels(owner.name)},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": storage.storage_class_name,
                "resources": {"requests": {"storage": size}},
            }
        }}}),
    );
    mounts.push(json!({"name": "verify", "mountPath": WORK}));
    let (datadir, mysqld) = mysql_containers(&owner.spec.image);
    let mut verify = json!({
        "name": VERIFY_CONTAINER,
        "image": input.image,
        "args": args,
        "env": [{"name": "BLOODRAVEN_MYSQL_USER", "value": VERIFY_USER},
                {"name": "RUST_LOG", "value": "info"}],
        "resources": verification.spec.resources,
        "securityContext": super::backup::container_context(&spec),
        "volumeMounts": mounts,
    });
    super::backup::leave_termination_record(&mut verify);
    let mut init_containers = vec![datadir, mysqld];
    if !replay.is_empty() {
        // The replay pipes `mysqlbinlog` into `mysql`: the operator's image has neither.
        let tools = on_mysql_image(&mut verify, input.image, &owner.spec.image, &spec);
        // First: it is quick, and a failed copy then stops the pod before a server starts.
        init_containers.insert(0, tools.init);
        volumes.push(tools.volume);
    }
    let mut labels = names::group_labels(owner.name);
    labels.insert(
        LABEL_VERIFICATION.to_owned(),
        name.chars()
            .take(63)
            .collect::<String>()
            .trim_end_matches('-')
            .to_owned(),
    );
    let metadata = json!({
        "name": job_name(name),
        "namespace": owner.namespace,
        "labels": labels,
        "ownerReferences": [super::controller_ref(verification)?],
    });
    let pod = json!({
        "securityContext": {
            "runAsNonRoot": true, "runAsUser": MYSQL_UID, "runAsGroup": MYSQL_UID,
            "fsGroup": MYSQL_UID, "seccompProfile": {"type": "RuntimeDefault"},
        },
        "imagePullSecrets": super::backup::pull_secrets(&spec),
        "initContainers": init_containers,
        "containers": [verify],
        "volumes": volumes,
    });
    super::backup::run_once_job(&metadata, 0, &spec, pod)
}

/// The sanity query and its expectation as `backup verify` flags, and where the outcome is
/// recorded for the operator: `--record-as <name>.<uid>` (the operator reads no logs).
fn sanity_args(verification: &MysqlBackupVerification) -> Vec<String> {
    let mut args = vec![
        "--record-as".to_owned(),
        record_name(
            verification.metadata.name.as_deref().unwrap_or_default(),
            verification.metadata.uid.as_deref(),
        ),
    ];
    let Some(check) = &verification.spec.sanity_check else {
        return args;
    };
    args.extend(["--sanity-query".to_owned(), check.query.clone()]);
    if let Some(expect) = &check.expect {
        if let Some(min) = expect.min_rows {
            args.extend(["--sanity-min-value".to_owned(), min.to_string()]);
        }
        args.extend([
            "--sanity-timeout-seconds".to_owned(),
            expect.max_duration_seconds.max(1).to_string(),
        ]);
    }
    args
}

/// The verification's `pointInTime` as `backup verify` flags (none for mode `none`), with
/// what the pod needs to read the PITR archive, which must be on.
fn replay_args(
    spec: &BackupSpec,
    verification: &MysqlBackupVerification,
    profile: &BackupProfile,
) -> Result<(Vec<String>, ArchiveAccess), RenderError> {
    let wanted = verification.spec.point_in_time.as_ref();
    let Some(wanted) = wanted.filter(|p| p.mode != PointInTimeMode::None) else {
        return Ok((Vec::new(), ArchiveAccess::default()));
    };
    let mut access = super::pitr::archive_access(spec, profile, "verification pointInTime")?;
    let mut args = match wanted.mode {
        PointInTimeMode::Latest => vec!["--until-latest".to_owned()],
        PointInTimeMode::Timestamp => {
            let text = wanted.timestamp.as_deref().unwrap_or_default();
            let at = parse_stop_datetime(text).ok_or_else(|| {
                RenderError::Restore(format!(
                    "verification pointInTime.timestamp {text:?} is neither RFC 3339 nor YYYY-MM-DD HH:MM:SS (UTC)"
                ))
            })?;
            vec!["--until-time".to_owned(), at.rfc3339()]
        }
        PointInTimeMode::None => return Ok((Vec::new(), ArchiveAccess::default())),
    };
    args.append(&mut access.args);
    Ok((args, access))
}

/// The `datadir` init container and the `mysqld` native sidecar, both on the group's image.
fn mysql_containers(image: &str) -> (Value, Value) {
    let mysql_mounts = json!([{"name": "verify", "mountPath": WORK},
                              {"name": "tmp", "mountPath": "/tmp"}]);
    let init_sql = format!(
        "CREATE USER '{VERIFY_USER}'@'127.0.0.1' IDENTIFIED BY ''; \
         GRANT ALL ON *.* TO '{VERIFY_USER}'@'127.0.0.1' WITH GRANT OPTION;"
    );
    let datadir = json!({
        "name": "datadir",
        "image": image,
        "command": ["sh", "-c", format!(
            "rm -rf {WORK}/data && printf '%s\\n' \"{init_sql}\" > {WORK}/init.sql && \
             mysqld --no-defaults --initialize-insecure --datadir={WORK}/data --init-file={WORK}/init.sql"
        )],
        "securityContext": mysql_context(),
        "volumeMounts": mysql_mounts,
    });
    let mysqld = json!({
        "name": "mysqld",
        "image": image,
        "restartPolicy": "Always",
        "command": mysqld_command(),
        "startupProbe": {"tcpSocket": {"port": 3306}, "periodSeconds": 2, "failureThreshold": 150},
        "securityContext": mysql_context(),
        "volumeMounts": mysql_mounts,
    });
    (datadir, mysqld)
}

/// The throwaway server: loopback only, GTIDs on (a restore sets `gtid_purged`), no binary
/// log (nothing replicates from it), `LOAD DATA LOCAL` allowed.
fn mysqld_command() -> Value {
    json!([
        "mysqld",
        "--no-defaults",
        format!("--datadir={WORK}/data"),
        format!("--socket={WORK}/mysqld.sock"),
        format!("--pid-file={WORK}/mysqld.pid"),
        "--bind-address=127.0.0.1",
        "--port=3306",
        "--mysqlx=OFF",
        "--gtid-mode=ON",
        "--enforce-gtid-consistency=ON",
        "--skip-log-bin",
        "--local-infile=ON",
        "--skip-name-resolve",
    ])
}

fn mysql_context() -> Value {
    json!({
        "allowPrivilegeEscalation": false, "privileged": false, "runAsNonRoot": true,
        "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scratch_volume_fits_the_backup_with_room_to_spare() {
        assert_eq!(volume_size(None, 0), "10Gi");
        assert_eq!(volume_size(None, 6 << 30), "10Gi");
        assert_eq!(volume_size(None, 7 << 30), "20Gi");
        assert_eq!(volume_size(None, 100 << 30), "150Gi");
        assert_eq!(volume_size(Some("3Ti"), 100 << 30), "3Ti");
    }

    #[test]
    fn the_expectation_becomes_flags_and_the_outcome_is_recorded() {
        use crate::api::verification::{SanityCheck, SanityExpectation};
        let mut v = MysqlBackupVerification::new(
            "orders-verify-1",
            crate::api::verification::MysqlBackupVerificationSpec::default(),
        );
        v.metadata.uid = Some("ABC-123".into());
        assert_eq!(sanity_args(&v), ["--record-as", "orders-verify-1.abc-123"]);
        v.spec.sanity_check = Some(SanityCheck {
            query: "SELECT COUNT(*) FROM shop.orders".into(),
            expect: Some(SanityExpectation {
                min_rows: Some(10),
                max_duration_seconds: 5,
            }),
        });
        let args = sanity_args(&v);
        let after = |flag: &str| {
            let i = args.iter().position(|a| a == flag).unwrap();
            args[i + 1].as_str()
        };
        assert_eq!(after("--sanity-query"), "SELECT COUNT(*) FROM shop.orders");
        assert_eq!(after("--sanity-min-value"), "10");
        assert_eq!(after("--sanity-timeout-seconds"), "5");
        v.spec.sanity_check.as_mut().unwrap().expect = None;
        assert!(
            !sanity_args(&v)
                .iter()
                .any(|a| a.starts_with("--sanity-min"))
        );
    }

    fn pitr_job(pitr_on: bool, point_in_time: &serde_json::Value) -> Result<Value, RenderError> {
        let mut group = crate::render::backup::tests::group();
        if pitr_on {
            group.spec.backup.as_mut().unwrap().pitr = Some(
                serde_json::from_value(json!({"enabled": true, "profileName": "offsite"})).unwrap(),
            );
        }
        let mut v: MysqlBackupVerification = serde_json::from_value(json!({
            "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlBackupVerification",
            "metadata": {"name": "orders-verify", "namespace": "db", "uid": "99cc"},
            "spec": {"failoverGroupRef": {"name": "orders"}, "profileName": "offsite"}
        }))
        .unwrap();
        v.spec.point_in_time = Some(serde_json::from_value(point_in_time.clone()).unwrap());
        let spec = group.spec.backup.clone().unwrap();
        let profile = crate::render::backup::profile(&spec, "offsite").unwrap();
        verification_job(&VerificationJobInput {
            group: &group,
            verification: &v,
            profile,
            backup_id: "b-1",
            backup_bytes: 1,
            image: "op@sha256:1",
        })
        .map(|job| serde_json::to_value(job).unwrap())
    }

    #[test]
    fn a_replaying_verification_runs_verify_on_the_mysql_image() {
        use crate::render::backup::tests::{after, args};
        let latest = pitr_job(true, &json!({"mode": "latest"})).unwrap();
        let a = args(&latest);
        assert!(a.contains(&"--until-latest".to_owned()), "{a:?}");
        assert_eq!(after(&a, "--mysql"), Some(crate::render::tools::MYSQL));
        let pod = latest.pointer("/spec/template/spec").unwrap();
        assert_eq!(pod["containers"][0]["image"], "mysql:9.7.4");
        let inits: Vec<&str> = pod["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(inits, ["copy-bloodraven", "datadir", "mysqld"]);
        let at = pitr_job(
            true,
            &json!({"mode": "timestamp", "timestamp": "2026-12-01 10:00:00"}),
        )
        .unwrap();
        assert_eq!(
            after(&args(&at), "--until-time"),
            Some("2026-12-01T10:00:00Z")
        );
        // Mode none: as before, on the operator's image.
        let none = pitr_job(false, &json!({"mode": "none"})).unwrap();
        assert_eq!(
            none.pointer("/spec/template/spec/containers/0/image"),
            Some(&json!("op@sha256:1"))
        );
        // A replay without the archive, or with a timestamp that does not parse: refused.
        let e = pitr_job(false, &json!({"mode": "latest"})).unwrap_err();
        assert!(e.to_string().contains("spec.backup.pitr.enabled"), "{e}");
        let e = pitr_job(true, &json!({"mode": "timestamp"})).unwrap_err();
        assert!(e.to_string().contains("timestamp"), "{e}");
    }

    #[test]
    fn the_throwaway_server_listens_on_loopback_only() {
        let command = mysqld_command();
        let args: Vec<&str> = command
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(args.contains(&"--bind-address=127.0.0.1"));
        assert!(args.contains(&"--gtid-mode=ON"));
        assert!(args.contains(&"--skip-log-bin"));
        assert!(job_name(&"v".repeat(80)).len() <= 63);
    }
}
