//! Generated manifests that look like what users feed `bloodraven lint`: `helm template`
//! output for many teams, each with its failover groups and the objects around them.
//!
//! Deterministic (no randomness): the same arguments give the same bytes, so runs compare.

use std::fmt::Write as _;

/// Groups per namespace, as a team with a handful of databases would have.
const GROUPS_PER_NAMESPACE: usize = 10;

/// A YAML stream of `groups` `MysqlFailoverGroups` (about 80 lines each; 2 in 5 clean, the
/// rest violating different rules) plus, per namespace, the five credential Secrets and a
/// `NetworkPolicy` (missing in every seventh namespace), and the cluster-wide
/// `StorageClasses`, `PrometheusRule` and operator `PodDisruptionBudget` the bundle rules
/// look for.
pub fn mfg_stream(groups: usize) -> String {
    let mut out = String::with_capacity(groups * 2_600);
    cluster_objects(&mut out);
    let namespaces = groups.div_ceil(GROUPS_PER_NAMESPACE);
    for ns in 0..namespaces {
        let namespace = format!("team-{ns:04}");
        namespace_objects(&mut out, &namespace, ns % 7 != 3);
        let first = ns * GROUPS_PER_NAMESPACE;
        for i in first..groups.min(first + GROUPS_PER_NAMESPACE) {
            failover_group(&mut out, &namespace, i, "mysql");
        }
    }
    out
}

fn cluster_objects(out: &mut String) {
    for (name, reclaim, binding) in [
        ("fast-retain", "Retain", "WaitForFirstConsumer"),
        ("standard", "Delete", "Immediate"),
    ] {
        let _ = write!(
            out,
            "---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: {name}\n\
             provisioner: ebs.csi.aws.com\nreclaimPolicy: {reclaim}\nallowVolumeExpansion: true\n\
             volumeBindingMode: {binding}\nparameters:\n  type: gp3\n"
        );
    }
    out.push_str(
        "---\napiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  \
         name: bloodraven\n  namespace: bloodraven-system\nspec:\n  groups:\n    - name: bloodraven\n      \
         rules:\n        - alert: BloodravenDivergentTransactions\n          \
         expr: bloodraven_divergent_transactions > 0\n          for: 1m\n        \
         - alert: BloodravenFailover\n          expr: increase(bloodraven_failovers_total[10m]) > 0\n\
         ---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: bloodraven\n  \
         namespace: bloodraven-system\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels:\n      \
         app.kubernetes.io/name: bloodraven\n",
    );
}

fn namespace_objects(out: &mut String, namespace: &str, network_policy: bool) {
    secrets(out, namespace, "mysql");
    if network_policy {
        network_policy_object(out, namespace, "mysql");
    }
}

fn secrets(out: &mut String, namespace: &str, prefix: &str) {
    for role in ["operator", "app", "readonly", "monitor", "backup"] {
        let _ = write!(
            out,
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {prefix}-{role}\n  namespace: {namespace}\n  \
             labels:\n    app.kubernetes.io/part-of: bloodraven\ntype: Opaque\nstringData:\n  \
             username: {role}\n  password: not-a-real-password-{role}\n"
        );
    }
}

fn network_policy_object(out: &mut String, namespace: &str, name: &str) {
    let _ = write!(
        out,
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  \
         namespace: {namespace}\nspec:\n  podSelector:\n    matchLabels:\n      \
         app.kubernetes.io/part-of: bloodraven\n  policyTypes: [Ingress]\n  ingress:\n    \
         - from:\n        - podSelector:\n            matchLabels:\n              \
         shipstream.io/db-client: \"true\"\n      ports:\n        - port: 3306\n"
    );
}

/// Where the groups of [`own_context_stream`] live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Every group in one namespace: every lookup searches the same namespace.
    OneNamespace,
    /// Each group in a namespace of its own.
    NamespacePerGroup,
}

/// `groups` groups that each bring their own five credential Secrets, `NetworkPolicy` and
/// `PodDisruptionBudget` (selecting the group's pods, so not the operator's), after the
/// cluster-wide objects; with `context` false the same groups without those objects, the
/// baseline a keyed bundle must stay close to.
pub fn own_context_stream(groups: usize, layout: Layout, context: bool) -> String {
    let mut out = String::with_capacity(groups * if context { 5_200 } else { 2_600 });
    cluster_objects(&mut out);
    for i in 0..groups {
        let namespace = match layout {
            Layout::OneNamespace => "shared".to_owned(),
            Layout::NamespacePerGroup => format!("team-{i:05}"),
        };
        let name = format!("db-{i:05}");
        if context {
            secrets(&mut out, &namespace, &name);
            network_policy_object(&mut out, &namespace, &name);
            let _ = write!(
                out,
                "---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: {name}\n  \
                 namespace: {namespace}\nspec:\n  maxUnavailable: 1\n  selector:\n    matchLabels:\n      \
                 app.kubernetes.io/instance: {name}\n"
            );
        }
        failover_group(&mut out, &namespace, i, &name);
    }
    out
}

/// One group. `i % 5` picks the variant: 0 and 1 are clean; 2 has unpinned images and no
/// TLS; 3 uses the legacy secret, no retention and no PITR; 4 runs privileged on a
/// `StorageClass` that deletes volumes.
/// The credential Secrets are `{secrets}-operator`, `{secrets}-app` and so on.
fn failover_group(out: &mut String, namespace: &str, i: usize, secrets: &str) {
    let variant = i % 5;
    let name = format!("db-{i:05}");
    let image = match variant {
        2 => "mysql:latest".to_owned(),
        _ => format!("mysql:9.7.4@sha256:{:064x}", i as u128 * 7_919),
    };
    let sidecar = if variant == 2 {
        "ghcr.io/shipstream/bloodraven-sidecar"
    } else {
        "ghcr.io/shipstream/bloodraven-sidecar:1.4.2"
    };
    let _ = write!(
        out,
        "---\napiVersion: shipstream.io/v1alpha1\nkind: MysqlFailoverGroup\nmetadata:\n  name: {name}\n  \
         namespace: {namespace}\n  labels:\n    app.kubernetes.io/name: {name}\n    \
         app.kubernetes.io/part-of: bloodraven\n    team: {namespace}\nspec:\n  image: {image}\n  \
         sidecarImage: {sidecar}\n  imagePullPolicy: IfNotPresent\n  imagePullSecrets:\n    - name: regcred\n"
    );
    if variant == 3 {
        out.push_str("  secretName: mysql-legacy-dsn\n");
    } else {
        let _ = write!(
            out,
            "  credentials:\n    operatorSecret: {secrets}-operator\n    appSecret: {secrets}-app\n    \
             readOnlySecret: {secrets}-readonly\n    monitorSecret: {secrets}-monitor\n    \
             backupSecret: {secrets}-backup\n",
        );
    }
    if variant != 2 {
        let _ = write!(
            out,
            "  tls:\n    issuerRef: {{name: internal-ca, kind: ClusterIssuer}}\n    secretName: {name}-tls\n"
        );
    }
    let _ = write!(
        out,
        "  dns:\n    hostname: {name}.{namespace}.db.example.internal\n    ttl: 30\n  pollInterval: 2s\n  \
         failureThreshold: 3\n  recoveryThreshold: 2\n  failoverCooldown: 5m\n  replication:\n    \
         maxLagSeconds: 60\n  sites:\n"
    );
    let class = if variant == 4 {
        "standard"
    } else {
        "fast-retain"
    };
    for (site, zone, ip) in [("east", "us-east-1a", 10), ("west", "us-west-2b", 20)] {
        let _ = write!(
            out,
            "    - name: {site}\n      role: primary-candidate\n      zone: {zone}\n      \
             lbIP: 10.0.{ip}.{}\n      taintNodeSelector: {{shipstream.io/db-site: {site}}}\n      \
             storage: {{storageClassName: {class}, size: 200Gi}}\n      resources:\n        \
             requests: {{cpu: \"2\", memory: 8Gi}}\n        limits: {{memory: 8Gi}}\n",
            i % 250
        );
    }
    let (non_root, escalation) = if variant == 4 {
        ("false", "true")
    } else {
        ("true", "false")
    };
    let _ = write!(
        out,
        "  podSecurityContext:\n    runAsNonRoot: {non_root}\n    runAsUser: 999\n    fsGroup: 999\n    \
         seccompProfile: {{type: RuntimeDefault}}\n  containerSecurityContext:\n    \
         allowPrivilegeEscalation: {escalation}\n    readOnlyRootFilesystem: true\n    \
         capabilities: {{drop: [ALL]}}\n  backup:\n    image: ghcr.io/shipstream/bloodraven-backup:1.4.2\n    \
         profiles:\n      - name: nightly\n        storage:\n          type: s3\n          s3:\n            \
         bucket: db-backups-dr\n            prefix: {namespace}/{name}\n            region: us-west-2\n            \
         credentialsSecret: backup-s3\n"
    );
    if variant != 3 {
        out.push_str("        retentionPolicy: {count: 14, maxAgeDays: 30}\n");
    }
    let _ = write!(
        out,
        "    schedules:\n      - name: nightly\n        profileName: nightly\n        \
         schedule: \"{} 2 * * *\"\n        timeZone: Etc/UTC\n    pitr:\n      enabled: {}\n      \
         profileName: nightly\n",
        i % 60,
        variant != 3
    );
}

/// `count` plain Deployments labelled as part of bloodraven (so the workload rules apply),
/// about 60 lines each; odd ones use `:latest` images and no security context.
pub fn deployment(i: usize) -> String {
    let good = i.is_multiple_of(2);
    let name = format!("web-{i:05}");
    let image = if good {
        format!("registry.example.com/shop/web:2.31.{}", i % 17)
    } else {
        "registry.example.com/shop/web:latest".to_owned()
    };
    let pod_security = if good {
        "      securityContext:\n        runAsNonRoot: true\n        runAsUser: 10001\n        \
         seccompProfile:\n          type: RuntimeDefault\n"
    } else {
        ""
    };
    let container_security = if good {
        "          securityContext:\n            allowPrivilegeEscalation: false\n            \
         readOnlyRootFilesystem: true\n            runAsNonRoot: true\n            capabilities:\n              \
         drop: [ALL]\n"
    } else {
        ""
    };
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: shop\n  labels:\n    \
         app.kubernetes.io/name: {name}\n    app.kubernetes.io/part-of: bloodraven\nspec:\n  replicas: 3\n  \
         selector:\n    matchLabels:\n      app.kubernetes.io/name: {name}\n  template:\n    metadata:\n      \
         labels:\n        app.kubernetes.io/name: {name}\n        app.kubernetes.io/part-of: bloodraven\n    \
         spec:\n      automountServiceAccountToken: false\n{pod_security}      containers:\n        \
         - name: web\n          image: {image}\n          imagePullPolicy: Always\n          ports:\n            \
         - containerPort: 8080\n          resources:\n            requests: {{cpu: 100m, memory: 128Mi}}\n            \
         limits: {{cpu: 500m, memory: 256Mi}}\n          livenessProbe:\n            httpGet: {{path: /healthz, port: 8080}}\n          \
         readinessProbe:\n            httpGet: {{path: /ready, port: 8080}}\n{container_security}"
    )
}
