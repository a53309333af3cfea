//! Regression tests for issue 9's smaller policy defects: the backup Job's and extra
//! containers' security contexts, immutable tags, API groups, and the cooldown message.

use bloodraven::policy::manifest::parse_stream;
use bloodraven::policy::rules::{
    BundleContext, Catalog, EmptyContext, Finding, Level, LintConfig, Linter,
};
use serde_json::{Value, json};

use crate::lint_vacant::full_group;

fn linter() -> Linter {
    Linter::new(Catalog::builtin().expect("catalog"), LintConfig::default())
}

fn check(object: &Value) -> Vec<Finding> {
    let text = serde_json::to_string_pretty(object).expect("json");
    let stream = parse_stream(Some("t.yaml"), &text);
    linter().check(&stream.documents[0], &EmptyContext).findings
}

fn paths(findings: &[Finding], rule: &str) -> Vec<String> {
    findings
        .iter()
        .filter(|f| &*f.rule_id == rule)
        .map(|f| f.path.clone())
        .collect()
}

#[test]
fn every_rendered_container_is_held_to_the_restricted_profile() {
    let hostile = json!({"privileged": true, "allowPrivilegeEscalation": true, "runAsUser": 0});
    let mut group = full_group();
    group["spec"]["backup"]["containerSecurityContext"] = hostile.clone();
    let found = check(&group);
    for field in ["privileged", "allowPrivilegeEscalation", "runAsUser"] {
        let pointer = format!("/spec/backup/containerSecurityContext/{field}");
        assert!(
            found.iter().any(|f| &*f.rule_id == "BR-PSS-004"
                && f.path == pointer
                && f.level == Level::Required),
            "{pointer}: {found:#?}"
        );
    }
    for list in ["extraContainers", "extraInitContainers"] {
        let mut group = full_group();
        group["spec"][list][0]["securityContext"] = hostile.clone();
        assert!(
            paths(&check(&group), "BR-PSS-004")
                .contains(&format!("/spec/{list}/0/securityContext/privileged")),
            "{list}"
        );
    }
    let mut group = full_group();
    group["spec"]["backup"]["podSecurityContext"] = json!({"runAsUser": 0});
    let pod = paths(&check(&group), "BR-PSS-002");
    assert!(
        pod.contains(&"/spec/backup/podSecurityContext/runAsUser".to_owned()),
        "{pod:?}"
    );
    // The clean group has no security-context finding at all.
    assert!(
        check(&full_group())
            .iter()
            .all(|f| !f.rule_id.starts_with("BR-PSS-")),
        "{:#?}",
        check(&full_group())
    );
}

#[test]
fn the_bad_example_shows_the_backup_and_merged_extra_container_findings() {
    let path = format!("{}/docs/examples/bad.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("example");
    let stream = parse_stream(Some("bad.yaml"), &text);
    let doc = stream
        .documents
        .iter()
        .find(|d| d.value["metadata"]["name"] == "privileged-backup")
        .expect("document");
    let found = linter().check(doc, &EmptyContext).findings;
    let pss = paths(&found, "BR-PSS-004");
    for pointer in [
        "/spec/backup/containerSecurityContext/privileged",
        "/spec/extraContainers/0/securityContext/privileged",
    ] {
        assert!(pss.contains(&pointer.to_owned()), "{pointer}: {pss:?}");
    }
    assert_eq!(paths(&found, "BR-IMG-001"), ["/spec/image"]);
}

#[test]
fn image_rules_use_the_immutable_tag_definition() {
    let digest = format!("mysql@sha256:{}", "a".repeat(64));
    for (image, pinned) in [
        ("mysql:9.7.4", true),
        ("mysql:9.7.4-oraclelinux9", true),
        ("reg:5000/mysql:9.7.4", true),
        (digest.as_str(), true),
        ("mysql:9.7", false),
        ("mysql:9", false),
        ("mysql:latest", false),
        ("mysql:lts", false),
        ("mysql:9.7.4-latest", false),
        ("reg:5000/mysql", false),
    ] {
        let mut group = full_group();
        group["spec"]["image"] = json!(image);
        group["spec"]["backup"]["image"] = json!(image);
        let found = check(&group);
        let fired = !paths(&found, "BR-IMG-001").is_empty();
        assert_eq!(fired, !pinned, "BR-IMG-001 {image}");
        assert_eq!(
            !paths(&found, "BR-IMG-003").is_empty(),
            !pinned,
            "BR-IMG-003 {image}"
        );
    }
}

#[test]
fn objects_of_our_kinds_in_other_groups_are_skipped() {
    let l = linter();
    let text = "apiVersion: evil.example.com/v1\nkind: MysqlFailoverGroup\nmetadata: {name: g, namespace: ns}\nspec: {image: 'mysql:latest'}\n";
    let stream = parse_stream(Some("evil.yaml"), text);
    let report = l.lint(&stream.documents, Vec::new(), &EmptyContext);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.summary.objects_skipped, 1);
    assert_eq!(report.summary.objects_checked, 0);
    // The same object in our group is judged.
    let ours = text.replace("evil.example.com/v1", "shipstream.io/v1alpha1");
    let stream = parse_stream(Some("ours.yaml"), &ours);
    assert!(
        !l.lint(&stream.documents, Vec::new(), &EmptyContext)
            .findings
            .is_empty()
    );
    // A Deployment in another group is not an operator workload either.
    let deploy = "apiVersion: evil.example.com/v1\nkind: Deployment\nmetadata:\n  name: bloodraven\n  labels: {app.kubernetes.io/part-of: bloodraven}\nspec: {template: {spec: {containers: [{name: x, image: 'x:latest'}]}}}\n";
    let stream = parse_stream(Some("d.yaml"), deploy);
    assert!(
        l.lint(&stream.documents, Vec::new(), &EmptyContext)
            .findings
            .is_empty()
    );
}

#[test]
fn cross_object_lookups_ignore_look_alikes_from_other_groups() {
    let l = linter();
    let group = full_group();
    let secret = |api: &str, name: &str, user: &str| {
        json!({"apiVersion": api, "kind": "Secret",
            "metadata": {"name": name, "namespace": "orders"},
            "stringData": {"username": user, "password": "p"}})
    };
    let roles = [
        ("orders-operator", "op"),
        ("orders-app", "app"),
        ("orders-readonly", "ro"),
        ("orders-monitor", "mon"),
        ("orders-backup", "bak"),
    ];
    // Only look-alike Secrets: to the rules, the real ones do not exist.
    let fakes: Vec<Value> = roles
        .iter()
        .map(|(n, u)| secret("evil.example.com/v1", n, u))
        .collect();
    let doc = parse_stream(None, &group.to_string()).documents.remove(0);
    let findings = l.check(&doc, &BundleContext::new(fakes.clone())).findings;
    let missing: Vec<&Finding> = findings
        .iter()
        .filter(|f| &*f.rule_id == "BR-CRED-004" && f.message.contains("does not exist"))
        .collect();
    assert_eq!(missing.len(), 5, "{findings:#?}");
    // A look-alike first and the real Secret second: the real one is found.
    let mut both = fakes;
    both.extend(roles.iter().map(|(n, u)| secret("v1", n, u)));
    let findings = l.check(&doc, &BundleContext::new(both)).findings;
    assert!(
        findings.iter().all(|f| &*f.rule_id != "BR-CRED-004"),
        "{findings:#?}"
    );
    // A NetworkPolicy from another group does not count as the group's policy.
    let policy = json!({"apiVersion": "evil.example.com/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "np", "namespace": "orders"}});
    let findings = l.check(&doc, &BundleContext::new([policy])).findings;
    assert!(
        findings.iter().any(|f| &*f.rule_id == "BR-NET-001"),
        "{findings:#?}"
    );
}

#[test]
fn a_cooldown_that_is_not_a_duration_is_a_format_error() {
    for bad in ["1e999999", "soon", "5 minutes"] {
        let mut group = full_group();
        group["spec"]["failoverCooldown"] = json!(bad);
        let found = check(&group);
        assert!(
            paths(&found, "BR-FO-001").is_empty(),
            "{bad}: no 'below 5m'"
        );
        let f = found
            .iter()
            .find(|f| &*f.rule_id == "BR-FO-005")
            .unwrap_or_else(|| panic!("{bad}: {found:#?}"));
        assert!(f.message.contains("is not a duration"), "{}", f.message);
        assert_eq!(f.path, "/spec/failoverCooldown");
    }
    // YAML's overflowing float stays the string kubectl sends, and gets the same message.
    let text = "apiVersion: shipstream.io/v1alpha1\nkind: MysqlFailoverGroup\nmetadata: {name: g}\nspec:\n  failoverCooldown: 1e999999\n";
    let stream = parse_stream(Some("t.yaml"), text);
    assert_eq!(
        stream.documents[0].value["spec"]["failoverCooldown"],
        "1e999999"
    );
    let found = linter().check(&stream.documents[0], &EmptyContext).findings;
    assert!(paths(&found, "BR-FO-001").is_empty());
    assert_eq!(paths(&found, "BR-FO-005"), ["/spec/failoverCooldown"]);
    // Numbers are type errors too; durations below 5m keep the old message.
    let mut group = full_group();
    group["spec"]["failoverCooldown"] = json!(300);
    assert_eq!(
        paths(&check(&group), "BR-FO-005"),
        ["/spec/failoverCooldown"]
    );
    group["spec"]["failoverCooldown"] = json!("30s");
    let found = check(&group);
    assert!(paths(&found, "BR-FO-005").is_empty());
    assert_eq!(paths(&found, "BR-FO-001"), ["/spec/failoverCooldown"]);
}
