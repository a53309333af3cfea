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
//!
//! Beside mysqld runs `bloodraven sidecar` (see `docs/sidecar.md`): it fences its own
//! mysqld when it loses sight of the operator and of every other site's sidecar, or when
//! they name another site as active. Its config is rendered into the container's
//! environment (so a change to it rolls the pod like any template change); its bearer
//! token, and the operator's CA it alone trusts for the operator's endpoint (HTTPS), come
//! from the group's `mysql-<group>-sidecar-token` Secret; with `spec.tls` it serves mTLS
//! with the group's cert-manager certificate.

use std::fmt::Write as _;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, KeyToPath, LocalObjectReference, PersistentVolumeClaimVolumeSource, PodSpec,
    PodTemplateSpec, Probe, SecretKeySelector, SecretVolumeSource, TCPSocketAction, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::mycnf::{CONF_DIR, CONF_FILE, TLS_DIR};
use super::{Owner, names, placement, security, spec};
use crate::api::common::PullPolicy;
use crate::api::failover_group::{SidecarSpec, SiteSpec};

/// The MySQL classic-protocol port.
pub const MYSQL_PORT: i32 = 3306;
/// The name of the MySQL port on containers and Services.
pub const MYSQL_PORT_NAME: &str = "mysql";
/// The Secret key holding the root password used at first boot.
pub const ROOT_PASSWORD_KEY: &str = "MYSQL_ROOT_PASSWORD";

/// The sidecar's API port (HTTPS with `spec.tls`, else HTTP), on the internal Service too.
pub const SIDECAR_PORT: i32 = 8443;
/// The name of the sidecar's port on the container and the internal Service.
pub const SIDECAR_PORT_NAME: &str = "sidecar";
/// The sidecar image when `spec.sidecarImage` is unset: the one released with this operator,
/// so the two never skew.
pub const DEFAULT_SIDECAR_IMAGE: &str =
    concat!("ghcr.io/shipstream/bloodraven:", env!("CARGO_PKG_VERSION"));
/// The environment variable the sidecar reads its config from.
pub const SIDECAR_CONFIG_ENV: &str = "BLOODRAVEN_SIDECAR_CONFIG";
/// Where the sidecar token Secret is mounted.
const SIDECAR_TOKEN_DIR: &str = "/var/run/bloodraven/sidecar";
/// The operator's CA in that mount (a name of its own: with `spec.tls` the group's CA is
/// `ca.crt` in another mount).
const OPERATOR_CA_FILE: &str = "operator-ca.crt";
/// Where the sidecar reads its TLS pair and CA (the group's cert-manager Secret).
const SIDECAR_TLS_DIR: &str = "/etc/bloodraven/sidecar-tls";
/// The operator's sidecar endpoint when neither `spec.sidecar.bloodravenAddress` nor
/// `serve --sidecar-address` says where it is.
pub const DEFAULT_OPERATOR_ADDRESS: &str = "bloodraven:8082";

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
        containers: if owner.sidecar {
            vec![mysql_container(owner, site), sidecar_container(owner, site)]
        } else {
            vec![mysql_container(owner, site)]
        },
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

/// The sidecar's config file, as YAML (see `src/shells/sidecar/config.rs`): local mysqld as
/// root (the account the init container creates), the operator's active-site endpoint, and
/// every other site's sidecar through that site's internal Service.
pub(crate) fn sidecar_config(owner: &Owner<'_>, site: &SiteSpec) -> String {
    let spec = owner.spec;
    let defaults = SidecarSpec {
        lease_timeout: "20s".to_owned(),
        peer_check_interval: "5s".to_owned(),
        bloodraven_address: None,
    };
    let sidecar = spec.sidecar.as_ref().unwrap_or(&defaults);
    let scheme = if spec.tls.is_some() { "https" } else { "http" };
    let address = sidecar
        .bloodraven_address
        .as_deref()
        .or(owner.sidecar_operator_address)
        .unwrap_or(DEFAULT_OPERATOR_ADDRESS);
    let mut text = format!(
        "site: {site_name}\n\
         mysql: {{address: \"127.0.0.1:{MYSQL_PORT}\", credentials: {{user: root, passwordEnv: {ROOT_PASSWORD_KEY}}}}}\n\
         operator: {{url: \"https://{address}{path}\", caFile: {SIDECAR_TOKEN_DIR}/{OPERATOR_CA_FILE}}}\n\
         leaseTimeout: {lease}\n\
         peerCheckInterval: {interval}\n\
         listen: \"0.0.0.0:{SIDECAR_PORT}\"\n\
         auth: {{tokenFile: {SIDECAR_TOKEN_DIR}/{token_key}}}\n",
        site_name = site.name,
        path = names::sidecar_active_site_path(owner.namespace, owner.name),
        lease = sidecar.lease_timeout,
        interval = sidecar.peer_check_interval,
        token_key = names::SIDECAR_TOKEN_KEY,
    );
    let peers: Vec<&SiteSpec> = spec.sites.iter().filter(|s| s.name != site.name).collect();
    if !peers.is_empty() {
        text.push_str("peers:\n");
        for peer in peers {
            let _ = writeln!(
                text,
                "  - {{name: {}, url: \"{scheme}://{}.{}.svc:{SIDECAR_PORT}\"}}",
                peer.name,
                names::internal_service(owner.name, &peer.name),
                owner.namespace,
            );
        }
    }
    if spec.tls.is_some() {
        let _ = writeln!(
            text,
            "tls: {{certDir: {SIDECAR_TLS_DIR}, clientCaFile: {SIDECAR_TLS_DIR}/ca.crt}}"
        );
    }
    text
}

/// `bloodraven sidecar` beside mysqld: the image released with the operator unless
/// `spec.sidecarImage` says otherwise, the same Restricted security context as mysqld.
fn sidecar_container(owner: &Owner<'_>, site: &SiteSpec) -> Container {
    let spec = owner.spec;
    let mut mounts = vec![VolumeMount {
        read_only: Some(true),
        ..mount("sidecar-token", SIDECAR_TOKEN_DIR)
    }];
    if spec.tls.is_some() {
        mounts.push(VolumeMount {
            read_only: Some(true),
            ..mount("tls", SIDECAR_TLS_DIR)
        });
    }
    let mut env = vec![EnvVar {
        name: SIDECAR_CONFIG_ENV.to_owned(),
        value: Some(sidecar_config(owner, site)),
        value_from: None,
    }];
    if let Some(secret) = spec::root_password_secret(spec) {
        env.push(EnvVar {
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
        });
    }
    let scheme = if spec.tls.is_some() { "HTTPS" } else { "HTTP" };
    Container {
        name: "sidecar".to_owned(),
        image: Some(
            spec.sidecar_image
                .clone()
                .unwrap_or_else(|| DEFAULT_SIDECAR_IMAGE.to_owned()),
        ),
        command: Some(vec!["bloodraven".to_owned(), "sidecar".to_owned()]),
        image_pull_policy: spec.image_pull_policy.map(|p| pull_policy(p).to_owned()),
        env: Some(env),
        ports: Some(vec![ContainerPort {
            name: Some(SIDECAR_PORT_NAME.to_owned()),
            container_port: SIDECAR_PORT,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        resources: spec.sidecar_resources.clone(),
        security_context: Some(security::container_security_context(spec)),
        // Liveness only: /health answers while the process does (and is the one path that
        // needs no token). MySQL's own state never restarts the sidecar.
        liveness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/health".to_owned()),
                port: IntOrString::String(SIDECAR_PORT_NAME.to_owned()),
                scheme: Some(scheme.to_owned()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(10),
            timeout_seconds: Some(2),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
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
    if owner.sidecar {
        volumes.push(sidecar_token_volume(owner));
    }
    volumes.extend(SCRATCH_DIRS.iter().map(|(name, _)| Volume {
        name: (*name).to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }));
    volumes
}

fn sidecar_token_volume(owner: &Owner<'_>) -> Volume {
    Volume {
        name: "sidecar-token".to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(names::sidecar_token_secret(owner.name)),
            items: Some(vec![
                KeyToPath {
                    key: names::SIDECAR_TOKEN_KEY.to_owned(),
                    path: names::SIDECAR_TOKEN_KEY.to_owned(),
                    mode: None,
                },
                KeyToPath {
                    key: names::SIDECAR_OPERATOR_CA_KEY.to_owned(),
                    path: OPERATOR_CA_FILE.to_owned(),
                    mode: None,
                },
            ]),
            // A missing Secret must not keep mysqld from starting: the sidecar then
            // refuses to start (visible as a crash loop) while mysqld boots fenced.
            optional: Some(true),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
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
