//! Generated files are committed; these tests fail when they are stale.

use bloodraven::api::crd;
use bloodraven::policy::rules::Catalog;
use bloodraven::policy::rules::docs::markdown;
use serde_json::Value;

fn committed(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn crds_directory_is_current() {
    for (file, definition) in crd::all() {
        let want = crd::to_yaml(&definition).expect("renders");
        assert!(
            committed(&format!("crds/{file}")) == want,
            "crds/{file} is stale: run `cargo run -- crds --out crds`"
        );
    }
}

#[test]
fn rules_markdown_is_current() {
    let catalog = Catalog::builtin().expect("catalog");
    assert!(
        committed("docs/rules.md") == markdown(&catalog),
        "docs/rules.md is stale: run `cargo run -- rules --format markdown > docs/rules.md`"
    );
}

#[test]
fn crds_have_short_names_status_and_printer_columns() {
    let expect = [
        ("MysqlFailoverGroup", "mfg"),
        ("MysqlBackup", "mb"),
        ("MysqlBackupVerification", "mbv"),
    ];
    let all = crd::all();
    for (kind, short) in expect {
        let (_, c) = all
            .iter()
            .find(|(_, c)| c.spec.names.kind == kind)
            .expect("kind");
        assert_eq!(
            c.spec.names.short_names.as_deref(),
            Some(&[short.to_owned()][..])
        );
        let v = &c.spec.versions[0];
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
        assert!(
            v.additional_printer_columns
                .as_ref()
                .is_some_and(|c| !c.is_empty())
        );
    }
    let mfg = serde_json::to_string(&all[0].1).expect("json");
    for rule in [
        "has(self.secretName) != has(self.credentials)",
        "exists_one",
        "primary-candidate').size() >= 2",
    ] {
        assert!(mfg.contains(rule), "missing CEL rule {rule}");
    }
}

/// Walks every property below `node`, calling `f` with its dotted path and schema.
fn walk(path: &str, node: &Value, f: &mut dyn FnMut(&str, &Value)) {
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let here = format!("{path}.{name}");
            f(&here, prop);
            walk(&here, prop, f);
        }
    }
    if let Some(items) = node.get("items") {
        walk(&format!("{path}[]"), items, f);
    }
    if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
        walk(&format!("{path}{{}}"), values, f);
    }
}

fn schemas() -> Vec<(String, Value)> {
    crd::all()
        .into_iter()
        .map(|(_, c)| {
            let json = serde_json::to_value(&c.spec.versions[0]).expect("json");
            (
                c.spec.names.kind.clone(),
                json["schema"]["openAPIV3Schema"].clone(),
            )
        })
        .collect()
}

/// `kubectl explain` shows a description for every field of spec and status, ours and
/// those of embedded Kubernetes types alike.
#[test]
fn every_spec_and_status_field_has_a_description() {
    let mut missing = Vec::new();
    let mut fields = 0;
    for (kind, schema) in schemas() {
        for root in ["spec", "status"] {
            let node = &schema["properties"][root];
            assert!(node.is_object(), "{kind} has no {root}");
            if node.get("description").is_none() {
                missing.push(format!("{kind}.{root}"));
            }
            walk(&format!("{kind}.{root}"), node, &mut |path, prop| {
                fields += 1;
                if prop
                    .get("description")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    missing.push(path.to_owned());
                }
            });
        }
    }
    assert!(fields > 1000, "walked only {fields} fields");
    assert!(
        missing.is_empty(),
        "{} fields without a description:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

/// The API server warns about formats it does not know (`unrecognized format "uint32"`).
#[test]
fn crds_use_only_formats_the_api_server_knows() {
    // The integer and string formats of the OpenAPI schemas Kubernetes validates.
    const KNOWN: [&str; 4] = ["int32", "int64", "date-time", "byte"];
    fn formats(node: &Value, out: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                if let Some(Value::String(f)) = map.get("format") {
                    out.push(f.clone());
                }
                map.values().for_each(|v| formats(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| formats(v, out)),
            _ => {}
        }
    }
    let mut seen = Vec::new();
    for (_, schema) in schemas() {
        formats(&schema, &mut seen);
    }
    assert!(seen.iter().any(|f| f == "int32") && seen.iter().any(|f| f == "date-time"));
    let unknown: Vec<&String> = seen
        .iter()
        .filter(|f| !KNOWN.contains(&f.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "formats the API server does not know: {unknown:?}"
    );
}

/// The columns `kubectl get` shows, as the original prints them.
#[test]
fn printer_columns_match_the_original() {
    let expect = [
        ("MysqlFailoverGroup", "Active Ready Age"),
        (
            "MysqlBackup",
            "Group Profile Phase Started Completed Location Size Age",
        ),
        (
            "MysqlBackupVerification",
            "Group Profile Phase Backup Started Completed Age",
        ),
    ];
    for (kind, columns) in expect {
        let all = crd::all();
        let (_, c) = all
            .iter()
            .find(|(_, c)| c.spec.names.kind == kind)
            .expect("kind");
        let got: Vec<&str> = c.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(got.join(" "), columns, "{kind}");
    }
}

/// The schema of `path` (`spec.sites[].storage.size`) in a CRD's schema.
fn field<'a>(schema: &'a Value, path: &str) -> &'a Value {
    let mut node = schema;
    for part in path.split('.') {
        let (name, items) = part.strip_suffix("[]").map_or((part, false), |n| (n, true));
        node = &node["properties"][name];
        assert!(node.is_object(), "no field {path} (at {name})");
        if items {
            node = &node["items"];
        }
    }
    node
}

/// Shapes an original manifest relies on; the compatibility corpus applies whole manifests.
#[test]
fn crd_shapes_follow_the_original() {
    let all: Vec<(String, Value)> = schemas();
    let schema = |kind: &str| &all.iter().find(|(k, _)| k == kind).expect("kind").1;
    let mfg = schema("MysqlFailoverGroup");
    for secret in [
        "spec.credentials.operatorSecret",
        "spec.credentials.appSecret",
        "spec.credentials.readOnlySecret",
        "spec.credentials.monitorSecret",
        "spec.credentials.backupSecret",
        "spec.backup.profiles[].storage.s3.credentialsSecret",
        "spec.initFromBackup.source.s3.credentialsSecret",
        "spec.restoreInPlace.source.s3.credentialsSecret",
    ] {
        assert_eq!(field(mfg, secret)["type"], "string", "{secret}");
    }
    let quantities = [
        ("MysqlFailoverGroup", "spec.sites[].storage.size"),
        ("MysqlFailoverGroup", "spec.backup.stagingVolumeSizeLimit"),
        (
            "MysqlFailoverGroup",
            "spec.backup.profiles[].storage.pvc.size",
        ),
        (
            "MysqlFailoverGroup",
            "spec.backup.profiles[].verification.storage.size",
        ),
        ("MysqlBackupVerification", "spec.storage.size"),
    ];
    for (kind, path) in quantities {
        let q = field(schema(kind), path);
        assert_eq!(q["x-kubernetes-int-or-string"], true, "{path}");
        assert!(q.get("type").is_none(), "{path}: int-or-string has no type");
        assert!(
            q["pattern"]
                .as_str()
                .is_some_and(|p| p.contains("[KMGTPE]i")),
            "{path}"
        );
    }
    for restore in ["initFromBackup", "restoreInPlace"] {
        let pit = field(mfg, &format!("spec.{restore}.pointInTime"));
        assert_eq!(
            pit["required"],
            serde_json::json!(["stopDatetime"]),
            "{restore}"
        );
        assert!(pit["properties"]["excludeGtids"].is_object(), "{restore}");
    }
}

/// Enums, defaults and optional fields as in the original.
#[test]
fn crd_enums_and_defaults_follow_the_original() {
    let all: Vec<(String, Value)> = schemas();
    let mfg = &all
        .iter()
        .find(|(k, _)| k == "MysqlFailoverGroup")
        .expect("kind")
        .1;
    let enums = [
        (
            "spec.backup.schedules[].concurrencyPolicy",
            serde_json::json!(["Allow", "Forbid", "Replace"]),
        ),
        (
            "spec.backup.profiles[].verification.concurrencyPolicy",
            serde_json::json!(["Forbid", "Replace"]),
        ),
        (
            "spec.sites[].role",
            serde_json::json!(["primary-candidate", "dr-only", "read-only"]),
        ),
    ];
    for (path, values) in enums {
        assert_eq!(field(mfg, path)["enum"], values, "{path}");
    }
    let defaults = [
        ("spec.backup.backoffLimit", serde_json::json!(2)),
        ("spec.backup.profiles[].retention", serde_json::json!(7)),
        ("spec.backup.profiles[].dump.threads", serde_json::json!(4)),
        (
            "spec.backup.retry.initialBackoffSeconds",
            serde_json::json!(60),
        ),
        (
            "spec.backup.profiles[].verification.successfulJobsHistoryLimit",
            serde_json::json!(3),
        ),
        (
            "spec.backup.profiles[].verification.retentionPolicy.keepSuccessful",
            serde_json::json!(30),
        ),
        (
            "spec.backup.profiles[].verification.sanityCheck.expect.maxDurationSeconds",
            serde_json::json!(60),
        ),
        (
            "spec.backup.profiles[].verification.pointInTime.mode",
            serde_json::json!("none"),
        ),
        (
            "spec.initFromBackup.loadOptions.threads",
            serde_json::json!(4),
        ),
        ("spec.dns.ttl", serde_json::json!(60)),
        ("spec.dragonfly.adminPort", serde_json::json!(9999)),
    ];
    for (path, value) in defaults {
        assert_eq!(field(mfg, path)["default"], value, "{path}");
    }
    // Optional in the original; an empty reference name is allowed there too.
    assert_eq!(
        field(mfg, "spec.initFromBackup.source.mysqlBackupRef.name")["default"],
        ""
    );
    assert!(field(mfg, "spec.backup.pitr").get("required").is_none());
    assert!(
        field(mfg, "spec.dragonfly.snapshot")
            .get("required")
            .is_none()
    );
    for extra in ["spec.extraContainers", "spec.extraInitContainers"] {
        assert_eq!(
            field(mfg, extra)["items"]["required"],
            serde_json::json!(["name"]),
            "{extra}"
        );
    }
    // The backup cross-references are lint findings (BR-API-003), not schema rejections.
    assert!(
        field(mfg, "spec.backup")
            .get("x-kubernetes-validations")
            .is_none()
    );
}
