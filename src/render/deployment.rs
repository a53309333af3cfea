//! One Deployment per site: a single mysqld pod, replaced (never surged) on change.
//!
//! `replicas: 1` with the `Recreate` strategy: two pods of one site must never run at once,
//! since they would share the site's ReadWriteOnce data volume and server-id. A Deployment
//! rather than a StatefulSet because sites differ in storage class, zone and role.
//!
//! The pod runs mysqld from `spec.image` with the site's my.cnf from the group ConfigMap,
//! which boots it fenced (`super-read-only=ON`): the operator alone decides which site is
//! writable. The pod template carries a checksum of the site's my.cnf, so a change to it
//! rolls that site's pod and no other.
//!
//! mysqld is started directly, not through the image's entrypoint: on a first boot the
//! official entrypoint writes the root account and time zone tables through a temporary
//! server that reads the same my.cnf, and `super-read-only` refuses those writes. Instead
//! the `init-datadir` init container initialises an empty data volume with
//! `mysqld --initialize-insecure` and an `--init-file` that gives `root@localhost` and a new
//! `root@'%'` the operator Secret's `MYSQL_ROOT_PASSWORD`, as the official entrypoint
//! would: statements of an init file run during initialisation even with
//! `super-read-only` set. A data volume that is already initialised is left alone.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    KeyToPath, LocalObjectReference, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec,
    Probe, SecretKeySelector, SecretVolumeSource, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::mycnf::{CONF_DIR, CONF_FILE, TLS_DIR};
use super::{Owner, names, placement, security, spec};
use crate::api::common::PullPolicy;
use crate::api::failover_group::SiteSpec;

/// The MySQL classic-protocol port.
pub const MYSQL_PORT: i32 = 3306;
/// The name of the MySQL port on containers and Services.
pub const MYSQL_PORT_NAME: &str = "mysql";
/// The Secret key holding the root password used at first boot.
pub const ROOT_PASSWORD_KEY: &str = "MYSQL_ROOT_PASSWORD";

/// The first-boot script of the `init-datadir` container (bash: the official image's
/// entrypoint is a bash script, so bash is there). The password is escaped for a SQL string
/// literal (backslash and quote) and never appears on a command line; the SQL file is
/// private to the container user and removed once mysqld exits.
pub const INIT_DATADIR_SCRIPT: &str = r#"set -euo pipefail
if [ -d /var/lib/mysql/mysql ]; then
  echo "init-datadir: /var/lib/mysql is initialised"
  exit 0
fi
: "${MYSQL_ROOT_PASSWORD:?is not set: the operator Secret needs a MYSQL_ROOT_PASSWORD key}"
pw=${MYSQL_ROOT_PASSWORD//'\'/'\\'}
pw=${pw//"'"/"''"}
umask 077
printf "ALTER USER 'root'@'localhost' IDENTIFIED BY '%s';\nCREATE USER 'root'@'%%' IDENTIFIED BY '%s';\nGRANT ALL ON *.* TO 'root'@'%%' WITH GRANT OPTION;\n" "$pw" "$pw" > /tmp/bloodraven-init.sql
rc=0
mysqld --initialize-insecure --init-file=/tmp/bloodraven-init.sql || rc=$?
rm -f /tmp/bloodraven-init.sql
exit "$rc"
"#;

/// Directories mysqld writes outside its datadir, as emptyDirs under a read-only root:
/// (volume name, mount path).
const SCRATCH_DIRS: [(&str, &str); 3] = [
    ("tmp", "/tmp"),
    ("run", "/var/run/mysqld"),
    ("mysql-files", "/var/lib/mysql-files"),
];

/// The site's Deployment, with `config_checksum` the SHA-256 of the site's my.cnf.
pub(crate) fn site_deployment(
    owner: &Owner<'_>,
    site: &SiteSpec,
    config_checksum: &str,
) -> Deployment {
    let name = names::site(owner.name, &site.name);
    let labels = names::site_labels(owner.name, &site.name);

    // Operator keys win over the user's on conflict.
    let mut pod_labels = owner.spec.pod_labels.clone();
    pod_labels.extend(labels.clone());
    let mut pod_annotations = owner.spec.pod_annotations.clone();
    pod_annotations.insert(
        names::ANNOTATION_CONFIG_CHECKSUM.to_owned(),
        config_checksum.to_owned(),
    );

    Deployment {
        metadata: owner.meta(name, labels),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(names::site_selector(owner.name, &site.name)),
                match_expressions: None,
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".to_owned()),
                rolling_update: None,
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(owner, site)),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

fn pod_spec(owner: &Owner<'_>, site: &SiteSpec) -> PodSpec {
    let spec = owner.spec;
    PodSpec {
        // mysqld never calls the Kubernetes API, and a namespace full of Services would
        // otherwise fill its environment.
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(spec.termination_grace_period_seconds),
        image_pull_secrets: (!spec.image_pull_secrets.is_empty()).then(|| {
            spec.image_pull_secrets
                .iter()
                .map(|s| LocalObjectReference {
                    name: s.name.clone(),
                })
                .collect()
        }),
        security_context: Some(security::pod_security_context(spec)),
        node_selector: placement::node_selector(site),
        affinity: placement::affinity(site),
        tolerations: Some(placement::tolerations(owner.name)),
        init_containers: Some(vec![init_container(owner, site)]),
        containers: vec![mysql_container(owner, site)],
        volumes: Some(volumes(owner, site)),
        ..PodSpec::default()
    }
}

/// Initialises an empty data volume; see the module comment.
fn init_container(owner: &Owner<'_>, site: &SiteSpec) -> Container {
    let mysql = mysql_container(owner, site);
    Container {
        name: "init-datadir".to_owned(),
        command: Some(vec![
            "bash".to_owned(),
            "-c".to_owned(),
            INIT_DATADIR_SCRIPT.to_owned(),
        ]),
        ports: None,
        startup_probe: None,
        liveness_probe: None,
        readiness_probe: None,
        ..mysql
    }
}

fn mysql_container(owner: &Owner<'_>, site: &SiteSpec) -> Container {
    let spec = owner.spec;
    let mut mounts = vec![
        mount("data", "/var/lib/mysql"),
        VolumeMount {
            read_only: Some(true),
            ..mount("config", CONF_DIR)
        },
    ];
    if spec.tls.is_some() {
        mounts.push(VolumeMount {
            read_only: Some(true),
            ..mount("tls", TLS_DIR)
        });
    }
    mounts.extend(SCRATCH_DIRS.iter().map(|(name, path)| mount(name, path)));

    let env = spec::root_password_secret(spec).map(|secret| {
        vec![EnvVar {
            name: ROOT_PASSWORD_KEY.to_owned(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.to_owned(),
                    key: ROOT_PASSWORD_KEY.to_owned(),
                    optional: None,
                }),
                ..EnvVarSource::default()
            }),
            value: None,
        }]
    });

    Container {
        name: "mysql".to_owned(),
        image: Some(spec.image.clone()),
        command: Some(vec!["mysqld".to_owned()]),
        image_pull_policy: spec.image_pull_policy.map(|p| pull_policy(p).to_owned()),
        env,
        ports: Some(vec![ContainerPort {
            name: Some(MYSQL_PORT_NAME.to_owned()),
            container_port: MYSQL_PORT,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        resources: site.resources.clone(),
        security_context: Some(security::container_security_context(spec)),
        // First start, crash recovery and a clone can each take long; the startup probe
        // holds liveness off for up to an hour (the default cloneTimeout).
        startup_probe: Some(tcp_probe(10, 360)),
        liveness_probe: Some(tcp_probe(10, 6)),
        readiness_probe: Some(tcp_probe(5, 3)),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

fn volumes(owner: &Owner<'_>, site: &SiteSpec) -> Vec<Volume> {
    let mut volumes = vec![
        Volume {
            name: "data".to_owned(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: names::data_pvc(owner.name, &site.name),
                read_only: None,
            }),
            ..Volume::default()
        },
        Volume {
            name: "config".to_owned(),
            // Only this site's key: another site's my.cnf changing is no change here.
            config_map: Some(ConfigMapVolumeSource {
                name: names::config_map(owner.name),
                items: Some(vec![KeyToPath {
                    key: names::config_key(&site.name),
                    path: CONF_FILE.to_owned(),
                    mode: None,
                }]),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    if let Some(tls) = &owner.spec.tls {
        volumes.push(Volume {
            name: "tls".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(
                    tls.secret_name
                        .clone()
                        .unwrap_or_else(|| names::default_tls_secret(owner.name)),
                ),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    volumes.extend(SCRATCH_DIRS.iter().map(|(name, _)| Volume {
        name: (*name).to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }));
    volumes
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        ..VolumeMount::default()
    }
}

fn tcp_probe(period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String(MYSQL_PORT_NAME.to_owned()),
            host: None,
        }),
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(5),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

fn pull_policy(policy: PullPolicy) -> &'static str {
    match policy {
        PullPolicy::Always => "Always",
        PullPolicy::IfNotPresent => "IfNotPresent",
        PullPolicy::Never => "Never",
    }
}
