//! Stand-in rules, used only while the built-in catalog has no rule for a benchmarked kind.
//!
//! They mirror the shape of the real catalog (schema rules over selected nodes, `when`
//! filters, and every cross-object builtin), so the figures stay meaningful before
//! `lint-rules/` is complete. The benchmark prints which catalog it measured.

pub const MFG_RULES: &[(&str, &str)] = &[
    (
        "img1.yaml",
        r#"
id: BR-BENCH-IMG-001
title: MySQL image is pinned
level: required
owner: app
section: Image supply chain
kinds: [MysqlFailoverGroup]
message: "image {value} is not pinned"
remediation: Use a full version or a digest.
check:
  select: /spec/image
  schema: {type: string, pattern: '(@sha256:[0-9a-f]{64}$)|(:[0-9]+\.[0-9]+\.[0-9]+[^:/]*$)'}
"#,
    ),
    (
        "img2.yaml",
        r#"
id: BR-BENCH-IMG-002
title: Sidecar image is pinned
level: required
owner: app
section: Image supply chain
kinds: [MysqlFailoverGroup]
message: "image {value} is not pinned"
remediation: Use a full version or a digest.
check:
  select: /spec/sidecarImage
  schema: {type: string, pattern: '(@sha256:[0-9a-f]{64}$)|(:[0-9]+\.[0-9]+\.[0-9]+[^:/]*$)'}
"#,
    ),
    (
        "img3.yaml",
        r#"
id: BR-BENCH-IMG-003
title: Backup image is pinned
level: required
owner: app
section: Image supply chain
kinds: [MysqlFailoverGroup]
message: "image {value} is not pinned"
remediation: Use a full version or a digest.
check:
  select: /spec/backup/image
  schema: {type: string, pattern: '(@sha256:[0-9a-f]{64}$)|(:[0-9]+\.[0-9]+\.[0-9]+[^:/]*$)'}
"#,
    ),
    (
        "tls.yaml",
        r"
id: BR-BENCH-TLS-001
title: TLS is enabled
level: required
owner: security
section: TLS
kinds: [MysqlFailoverGroup]
message: TLS is not configured
remediation: Set spec.tls.issuerRef.
check:
  select: /spec
  schema: {required: [tls], properties: {tls: {required: [issuerRef]}}}
",
    ),
    (
        "cred1.yaml",
        r"
id: BR-BENCH-CRED-001
title: Per-role credentials
level: required
owner: security
section: Credentials
kinds: [MysqlFailoverGroup]
message: the group uses the legacy single secret
remediation: Set spec.credentials with one Secret per role.
check:
  select: /spec
  schema:
    required: [credentials]
    properties:
      credentials: {required: [operatorSecret, appSecret, readOnlySecret, monitorSecret, backupSecret]}
",
    ),
    (
        "cred2.yaml",
        r#"
id: BR-BENCH-CRED-002
title: Credential Secrets exist and are distinct
level: required
owner: security
section: Credentials
kinds: [MysqlFailoverGroup]
message: "{value}"
remediation: Create the Secrets with username and password keys.
check: {builtin: credential-secrets}
"#,
    ),
    (
        "bak1.yaml",
        r"
id: BR-BENCH-BAK-001
title: Backups are scheduled
level: required
owner: database
section: Backups
kinds: [MysqlFailoverGroup]
message: no backup schedule
remediation: Add spec.backup.schedules.
check:
  select: /spec
  schema:
    required: [backup]
    properties: {backup: {required: [schedules], properties: {schedules: {minItems: 1}}}}
",
    ),
    (
        "bak2.yaml",
        r"
id: BR-BENCH-BAK-002
title: Every backup profile has a retention policy
level: required
owner: database
section: Backups
kinds: [MysqlFailoverGroup]
message: the profile has no retentionPolicy
remediation: Set retentionPolicy on the profile.
check:
  select: /spec/backup/profiles/*
  schema: {required: [retentionPolicy]}
",
    ),
    (
        "pitr.yaml",
        r"
id: BR-BENCH-PITR-001
title: PITR is enabled
level: environment-specific
owner: database
section: Backups
kinds: [MysqlFailoverGroup]
message: PITR is off
remediation: Enable spec.backup.pitr.
check:
  select: /spec/backup
  schema: {required: [pitr], properties: {pitr: {required: [enabled], properties: {enabled: {const: true}}}}}
",
    ),
    (
        "sec1.yaml",
        r#"
id: BR-BENCH-SEC-001
title: Pod security context meets Restricted when set
level: required
owner: security
section: Pod security
kinds: [MysqlFailoverGroup]
message: "{value} is not allowed by the Restricted profile"
remediation: Set runAsNonRoot true and a RuntimeDefault seccomp profile.
check:
  select: /spec/podSecurityContext
  schema:
    properties:
      runAsNonRoot: {const: true}
      runAsUser: {minimum: 1}
      seccompProfile: {properties: {type: {enum: [RuntimeDefault, Localhost]}}}
"#,
    ),
    (
        "sec2.yaml",
        r#"
id: BR-BENCH-SEC-002
title: Container security context meets Restricted when set
level: required
owner: security
section: Pod security
kinds: [MysqlFailoverGroup]
message: "{value} is not allowed by the Restricted profile"
remediation: Disallow privilege escalation and drop all capabilities.
check:
  select: /spec/containerSecurityContext
  schema:
    required: [allowPrivilegeEscalation, capabilities]
    properties:
      allowPrivilegeEscalation: {const: false}
      privileged: {const: false}
      capabilities: {required: [drop], properties: {drop: {contains: {const: ALL}}}}
"#,
    ),
    (
        "sec3.yaml",
        r"
id: BR-BENCH-SEC-003
title: Security contexts are set
level: recommended
owner: security
section: Pod security
kinds: [MysqlFailoverGroup]
message: no security context
remediation: Set podSecurityContext and containerSecurityContext.
check:
  select: /spec
  schema: {required: [podSecurityContext, containerSecurityContext]}
",
    ),
    (
        "plc.yaml",
        r"
id: BR-BENCH-PLC-001
title: Every site names its zone and resources
level: recommended
owner: platform
section: Placement
kinds: [MysqlFailoverGroup]
message: the site has no zone or memory limit
remediation: Set zone and resources.limits.memory.
check:
  select: /spec/sites/*
  schema:
    required: [zone, resources]
    properties: {resources: {required: [limits], properties: {limits: {required: [memory]}}}}
",
    ),
    (
        "net.yaml",
        r#"
id: BR-BENCH-NET-001
title: A NetworkPolicy ships with the group
level: required
owner: platform
section: Network
kinds: [MysqlFailoverGroup]
message: "{value}"
remediation: Add a NetworkPolicy.
admission: warn
check: {builtin: bundle-network-policy}
"#,
    ),
    (
        "obs.yaml",
        r#"
id: BR-BENCH-OBS-001
title: Alerts ship with the operator
level: recommended
owner: platform
section: Observability
kinds: [MysqlFailoverGroup]
message: "{value}"
remediation: Install the PrometheusRule.
admission: warn
check: {builtin: bundle-prometheus-rule}
"#,
    ),
    (
        "pdb.yaml",
        r#"
id: BR-BENCH-HA-001
title: The operator has a PodDisruptionBudget
level: recommended
owner: platform
section: Control plane
kinds: [MysqlFailoverGroup]
message: "{value}"
remediation: Install the operator PDB.
admission: warn
check: {builtin: bundle-operator-pdb}
"#,
    ),
    (
        "sto.yaml",
        r#"
id: BR-BENCH-STO-001
title: Data StorageClasses retain, expand and bind late
level: required
owner: platform
section: Storage
kinds: [MysqlFailoverGroup]
message: "{value}"
remediation: Use a StorageClass with Retain, expansion and WaitForFirstConsumer.
admission: warn
check: {builtin: storage-class}
"#,
    ),
    (
        "exempt.yaml",
        r#"
id: BR-BENCH-EXEMPT-001
title: Exemptions are well-formed
level: recommended
owner: platform
section: Exemptions
kinds: [MysqlFailoverGroup]
message: "{value}"
remediation: "Write exemptions as <ruleId>: <reason>."
check: {builtin: exemption-annotation}
"#,
    ),
];

/// Workload rules: the same questions checkov's image and securityContext checks answer.
pub const DEPLOYMENT_RULES: &[(&str, &str)] = &[
    (
        "wl1.yaml",
        r#"
id: BR-BENCH-WL-001
title: Workload images are pinned
level: required
owner: app
section: Workloads
kinds: [Deployment]
message: "image {value} is not pinned"
remediation: Use a full version or a digest.
check:
  when:
    required: [metadata]
    properties:
      metadata:
        required: [labels]
        properties: {labels: {required: [app.kubernetes.io/part-of], properties: {app.kubernetes.io/part-of: {const: bloodraven}}}}
  select: /spec/template/spec/containers/*/image
  schema: {type: string, pattern: '(@sha256:[0-9a-f]{64}$)|(:[0-9]+\.[0-9]+\.[0-9]+[^:/]*$)'}
"#,
    ),
    (
        "wl2.yaml",
        r#"
id: BR-BENCH-WL-002
title: Workload containers meet Restricted
level: required
owner: security
section: Workloads
kinds: [Deployment]
message: "{value} is not allowed by the Restricted profile"
remediation: Disallow privilege escalation, run as non-root, drop all capabilities.
check:
  when:
    required: [metadata]
    properties:
      metadata:
        required: [labels]
        properties: {labels: {required: [app.kubernetes.io/part-of], properties: {app.kubernetes.io/part-of: {const: bloodraven}}}}
  select: /spec/template/spec/containers/*
  schema:
    required: [securityContext]
    properties:
      securityContext:
        required: [allowPrivilegeEscalation, capabilities]
        properties:
          allowPrivilegeEscalation: {const: false}
          privileged: {const: false}
          runAsNonRoot: {const: true}
          capabilities: {required: [drop], properties: {drop: {contains: {const: ALL}}}}
"#,
    ),
    (
        "wl3.yaml",
        r"
id: BR-BENCH-WL-003
title: Workload pods use a seccomp profile
level: required
owner: security
section: Workloads
kinds: [Deployment]
message: the pod has no seccomp profile
remediation: Set securityContext.seccompProfile.type RuntimeDefault.
check:
  when:
    required: [metadata]
    properties:
      metadata:
        required: [labels]
        properties: {labels: {required: [app.kubernetes.io/part-of], properties: {app.kubernetes.io/part-of: {const: bloodraven}}}}
  select: /spec/template/spec
  schema:
    required: [securityContext]
    properties:
      securityContext:
        required: [seccompProfile]
        properties: {seccompProfile: {properties: {type: {enum: [RuntimeDefault, Localhost]}}}}
",
    ),
];
