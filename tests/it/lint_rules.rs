//! Behaviour of individual rules, exemptions, configuration and fixes.

use bloodraven::policy::manifest::{Document, parse_stream};
use bloodraven::policy::rules::{
    BundleContext, Catalog, EmptyContext, Finding, Level, LintConfig, Linter, SuppressionSource,
};
use serde_json::{Value, json};

fn linter(config: &str) -> Linter {
    let catalog = Catalog::builtin().expect("catalog loads");
    let config = LintConfig::parse("test-config", config, &catalog).expect("config parses");
    Linter::new(catalog, config)
}

fn doc(yaml: &str) -> Document {
    let mut s = parse_stream(Some("t.yaml"), yaml);
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    s.documents.remove(0)
}

fn group(spec_extra: &str) -> String {
    format!(
        "apiVersion: shipstream.io/v1alpha1\nkind: MysqlFailoverGroup\nmetadata:\n  name: g\n  namespace: ns\nspec:\n  sites:\n  - {{name: a, lbIP: 1.1.1.1, taintNodeSelector: {{x: a}}}}\n  - {{name: b, lbIP: 1.1.1.2, taintNodeSelector: {{x: b}}}}\n  dns: {{hostname: h}}\n{spec_extra}"
    )
}

fn findings(l: &Linter, yaml: &str) -> Vec<Finding> {
    l.check(&doc(yaml), &EmptyContext).findings
}

fn fired(l: &Linter, yaml: &str, rule: &str) -> Vec<String> {
    findings(l, yaml)
        .into_iter()
        .filter(|f| &*f.rule_id == rule)
        .map(|f| f.path)
        .collect()
}

#[test]
fn image_pinning_accepts_full_versions_and_digests_only() {
    let l = linter("");
    let digest = format!("mysql@sha256:{}", "a".repeat(64));
    for good in [
        "mysql:9.7.4",
        "registry.local:5000/db/mysql:9.7.4-1",
        "mysql:v9.7.4",
        digest.as_str(),
    ] {
        assert!(
            fired(&l, &group(&format!("  image: {good}\n")), "BR-IMG-001").is_empty(),
            "{good}"
        );
    }
    for bad in [
        "mysql:latest",
        "mysql:9",
        "mysql:9.7",
        "mysql:edge",
        "mysql",
        "registry.local:5000/mysql",
    ] {
        assert_eq!(
            fired(&l, &group(&format!("  image: {bad}\n")), "BR-IMG-001"),
            ["/spec/image"],
            "{bad}"
        );
    }
    // Unset means the floating default mysql:9.7.
    assert_eq!(fired(&l, &group(""), "BR-IMG-001"), ["/spec/image"]);
}

#[test]
fn dragonfly_rules_apply_only_when_enabled() {
    let l = linter("");
    let off = group("  dragonfly: {enabled: false, image: 'dragonfly:latest'}\n");
    assert!(fired(&l, &off, "BR-IMG-004").is_empty());
    let on = group("  dragonfly: {enabled: true, image: 'dragonfly:latest'}\n");
    assert_eq!(fired(&l, &on, "BR-IMG-004"), ["/spec/dragonfly/image"]);
    let old = group("  dragonfly: {enabled: true, image: 'dragonfly:v1.37.2'}\n");
    assert_eq!(fired(&l, &old, "BR-IMG-005"), ["/spec/dragonfly/image"]);
    let new = group("  dragonfly: {enabled: true, image: 'dragonfly:v1.38.0'}\n");
    assert!(fired(&l, &new, "BR-IMG-005").is_empty());
}

/// The checklist's own Restricted PSS snippets must pass the security-context rules.
#[test]
fn seed_restricted_snippets_pass_security_context_rules() {
    let l = linter("");
    let spec = "  podSecurityContext:\n    runAsNonRoot: true\n    runAsUser: 999\n    runAsGroup: 999\n    fsGroup: 999\n    fsGroupChangePolicy: OnRootMismatch\n    seccompProfile:\n      type: RuntimeDefault\n  containerSecurityContext:\n    runAsNonRoot: true\n    allowPrivilegeEscalation: false\n    readOnlyRootFilesystem: false\n    capabilities:\n      drop:\n      - ALL\n    seccompProfile:\n      type: RuntimeDefault\n  dragonfly:\n    enabled: true\n    image: dragonfly:v1.38.0\n    podSecurityContext:\n      runAsNonRoot: true\n      runAsUser: 999\n      runAsGroup: 999\n      fsGroup: 999\n      fsGroupChangePolicy: OnRootMismatch\n      seccompProfile:\n        type: RuntimeDefault\n    containerSecurityContext:\n      runAsNonRoot: true\n      allowPrivilegeEscalation: false\n      readOnlyRootFilesystem: true\n      capabilities:\n        drop:\n        - ALL\n      seccompProfile:\n        type: RuntimeDefault\n";
    let pss: Vec<Finding> = findings(&l, &group(spec))
        .into_iter()
        .filter(|f| f.rule_id.starts_with("BR-PSS-"))
        .collect();
    assert!(pss.is_empty(), "{pss:#?}");
}

#[test]
fn absent_security_context_is_only_recommended() {
    let l = linter("");
    let f: Vec<Finding> = findings(&l, &group(""))
        .into_iter()
        .filter(|f| f.rule_id.starts_with("BR-PSS-"))
        .collect();
    assert!(!f.is_empty());
    assert!(f.iter().all(|f| f.level == Level::Recommended), "{f:#?}");
}

#[test]
fn annotation_exemptions_suppress_but_keep_findings() {
    let l = linter("");
    let yaml = group("").replace(
        "  namespace: ns\n",
        "  namespace: ns\n  annotations:\n    lint.shipstream.io/exempt: 'BR-TLS-001: lab cluster without cert-manager; BR-IMG-001'\n",
    );
    let all = findings(&l, &yaml);
    let tls = all
        .iter()
        .find(|f| &*f.rule_id == "BR-TLS-001")
        .expect("still reported");
    let s = tls.suppressed.as_ref().expect("suppressed");
    assert_eq!(s.source, SuppressionSource::Annotation);
    assert_eq!(s.reason, "lab cluster without cert-manager");
    // The entry without a reason exempts nothing and is itself reported.
    let img = all
        .iter()
        .find(|f| &*f.rule_id == "BR-IMG-001")
        .expect("reported");
    assert!(img.is_active());
    let meta = all
        .iter()
        .find(|f| &*f.rule_id == "BR-META-001")
        .expect("malformed entry reported");
    assert!(meta.message.contains("has no reason"), "{}", meta.message);
    assert_eq!(
        meta.path,
        "/metadata/annotations/lint.shipstream.io~1exempt"
    );

    // Configuration can refuse annotation exemptions altogether.
    let strict = linter("annotationExemptions: {allowed: false}\n");
    let tls = findings(&strict, &yaml)
        .into_iter()
        .find(|f| &*f.rule_id == "BR-TLS-001")
        .expect("reported");
    assert!(tls.is_active());
}

#[test]
fn config_disables_overrides_and_exempts() {
    let config = "rules:\n  BR-TLS-001: {enabled: false}\n  BR-PITR-001: {level: required}\nexemptions:\n  - {rule: BR-IMG-001, namespace: ns, name: g, reason: pinned by the deploy pipeline}\n";
    let l = linter(config);
    let all = findings(&l, &group(""));
    assert!(all.iter().all(|f| &*f.rule_id != "BR-TLS-001"));
    let pitr = all
        .iter()
        .find(|f| &*f.rule_id == "BR-PITR-001")
        .expect("fires");
    assert_eq!(pitr.level, Level::Required);
    let img = all
        .iter()
        .find(|f| &*f.rule_id == "BR-IMG-001")
        .expect("still reported");
    assert_eq!(
        img.suppressed.as_ref().map(|s| s.source),
        Some(SuppressionSource::Config)
    );

    let catalog = Catalog::builtin().expect("catalog");
    let typo =
        LintConfig::parse("c", "rules:\n  BR-TLS-01: {enabled: false}\n", &catalog).unwrap_err();
    assert!(typo.message.contains("unknown rule id"), "{typo}");
    let no_reason = LintConfig::parse(
        "c",
        "exemptions:\n  - {rule: BR-TLS-001, reason: ' '}\n",
        &catalog,
    )
    .unwrap_err();
    assert!(no_reason.message.contains("empty reason"), "{no_reason}");
}

#[test]
fn fixes_fill_missing_fields_only_and_are_idempotent() {
    let l = linter("");
    let yaml = group(
        "  image: mysql:9.7.4\n  sidecarImage: s:1.0.0\n  updateStrategy: Recreate\n  podSecurityContext: {fsGroup: 999, runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n  backup:\n    image: b:1.2.3\n    profiles: []\n    schedules: []\n    pitr: {profileName: p}\n",
    );
    let mut value: Value = doc(&yaml).value;
    let ops = l.fixes(&value, &EmptyContext);
    let patch: json_patch::Patch = serde_json::from_value(json!(ops)).expect("patch");
    json_patch::patch(&mut value, &patch).expect("applies");
    assert_eq!(value["spec"]["failoverCooldown"], "5m");
    assert_eq!(
        value["spec"]["updateStrategy"], "Recreate",
        "never overwrites a user's value"
    );
    assert_eq!(value["spec"]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        value["spec"]["podSecurityContext"]["fsGroupChangePolicy"],
        "OnRootMismatch"
    );
    assert_eq!(value["spec"]["backup"]["pitr"]["maxBinlogSize"], "100M");
    assert_eq!(value["spec"]["image"], "mysql:9.7.4");
    assert!(
        l.fixes(&value, &EmptyContext).is_empty(),
        "second pass must be empty"
    );
}

#[test]
fn cross_object_rules_answer_from_the_bundle() {
    let l = linter("");
    let yaml = group("  credentials:\n    operatorSecret: op\n    appSecret: app\n    readOnlySecret: ro\n    monitorSecret: mon\n    backupSecret: bak\n  sites:\n  - {name: a, lbIP: 1.1.1.1, taintNodeSelector: {x: a}, storage: {storageClassName: local}}\n  - {name: b, lbIP: 1.1.1.2, taintNodeSelector: {x: b}, storage: {storageClassName: local}}\n")
        .replacen("  sites:\n  - {name: a, lbIP: 1.1.1.1, taintNodeSelector: {x: a}}\n  - {name: b, lbIP: 1.1.1.2, taintNodeSelector: {x: b}}\n", "", 1);
    let group_doc = doc(&yaml);
    let secret = |name: &str, user: &str| json!({"kind": "Secret", "metadata": {"name": name, "namespace": "ns"}, "stringData": {"username": user, "password": "p"}});
    let bundle = BundleContext::new(vec![
        group_doc.value.clone(),
        secret("op", "operator"),
        secret("app", "app"),
        secret("ro", "app"),
        json!({"kind": "Secret", "metadata": {"name": "mon", "namespace": "ns"}, "data": {"username": "bW9u"}}),
        json!({"kind": "StorageClass", "metadata": {"name": "local"}, "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete"}),
    ]);
    let out = l.check(&group_doc, &bundle).findings;
    let msgs = |rule: &str| -> Vec<String> {
        out.iter()
            .filter(|f| &*f.rule_id == rule)
            .map(|f| f.message.clone())
            .collect()
    };
    let cred = msgs("BR-CRED-004");
    assert!(
        cred.iter().any(|m| m.contains("Secret bak does not exist")),
        "{cred:?}"
    );
    assert!(
        cred.iter()
            .any(|m| m.contains("Secret mon has no password key")),
        "{cred:?}"
    );
    assert!(
        cred.iter()
            .any(|m| m.contains("Secret ro uses the same username as app")),
        "{cred:?}"
    );
    let sc = msgs("BR-STO-002");
    assert!(
        sc.iter().any(|m| m.contains("reclaimPolicy is not Retain")),
        "{sc:?}"
    );
    assert!(
        sc.iter()
            .any(|m| m.contains("does not allow volume expansion")),
        "{sc:?}"
    );
    assert!(!msgs("BR-NET-001").is_empty());
    // Without a bundle, cross-object rules stay silent rather than guess.
    let alone = l.check(&group_doc, &EmptyContext).findings;
    assert!(
        alone
            .iter()
            .all(|f| !["BR-CRED-004", "BR-STO-002", "BR-NET-001"].contains(&&*f.rule_id))
    );
}

#[test]
fn objects_of_unknown_kinds_are_skipped_and_counted() {
    let l = linter("");
    let s = parse_stream(
        Some("x.yaml"),
        "kind: ConfigMap\nmetadata: {name: a}\n---\nkind: Widget\n---\nfoo: bar\n",
    );
    let report = l.lint(&s.documents, s.errors, &EmptyContext);
    assert_eq!(report.summary.objects_checked, 0);
    assert_eq!(report.summary.objects_skipped, 3);
    assert_eq!(report.summary.skipped_kinds.get("ConfigMap"), Some(&1));
    assert_eq!(report.summary.skipped_kinds.get("<no kind>"), Some(&1));
}
