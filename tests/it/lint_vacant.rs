//! Null, empty and missing are the same to every rule, and wrong-typed values do not pass
//! required rules. The cases are generated from the rule files: every field a required
//! rule's schema lists under `required` is set missing, `null`, `{}`, `[]`, `""` and to
//! every wrong JSON type, in a group that is otherwise clean for that rule.

use std::collections::BTreeSet;

use bloodraven::policy::manifest::{Document, parse_stream};
use bloodraven::policy::rules::normalize::normalize;
use bloodraven::policy::rules::pointer::select;
use bloodraven::policy::rules::{Catalog, EmptyContext, Finding, Level, LintConfig, Linter};
use serde_json::{Map, Value, json};

fn linter() -> Linter {
    Linter::new(Catalog::builtin().expect("catalog"), LintConfig::default())
}

/// The production-ready example's group, with every optional part a rule looks at filled
/// in with a compliant value, so every required rule has nodes to judge.
pub fn full_group() -> Value {
    let path = format!(
        "{}/docs/examples/production-ready.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).expect("example");
    let mut group = parse_stream(None, &text).documents.remove(0).value;
    let restricted_pod = json!({"runAsNonRoot": true, "runAsUser": 999, "fsGroup": 999,
        "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}});
    let restricted_container = json!({"runAsNonRoot": true, "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"}});
    let spec = group["spec"].as_object_mut().expect("spec");
    spec["backup"]["podSecurityContext"] = restricted_pod.clone();
    spec["backup"]["containerSecurityContext"] = restricted_container.clone();
    spec.insert(
        "dragonfly".into(),
        json!({"enabled": true, "image": "registry.example.com/mirror/dragonfly:v1.38.0",
            "plannedFailover": {"onSyncTimeout": "fail"},
            "podSecurityContext": restricted_pod, "containerSecurityContext": restricted_container}),
    );
    spec.insert(
        "extraContainers".into(),
        json!([{"name": "exporter", "image": "registry.example.com/mirror/exporter:1.2.3",
            "securityContext": restricted_container}]),
    );
    spec.insert(
        "extraInitContainers".into(),
        json!([{"name": "init", "image": "registry.example.com/mirror/init:1.2.3",
            "securityContext": restricted_container}]),
    );
    group
}

fn operator_deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "bloodraven", "namespace": "bloodraven-system",
            "labels": {"app.kubernetes.io/name": "bloodraven", "app.kubernetes.io/part-of": "bloodraven"}},
        "spec": {"template": {"spec": {
            "containers": [{"name": "bloodraven", "image": "registry.example.com/bloodraven:1.0.0"}],
            "initContainers": [{"name": "init", "image": "registry.example.com/init:1.0.0"}]}}}})
}

/// Lints `object` as YAML text (JSON is YAML), so line numbers are resolved as for a file.
fn lint(l: &Linter, object: &Value) -> (Document, Vec<Finding>) {
    let text = serde_json::to_string_pretty(object).expect("json");
    let mut stream = parse_stream(Some("case.yaml"), &text);
    assert!(stream.errors.is_empty(), "{:?}", stream.errors);
    let doc = stream.documents.remove(0);
    let findings = l.check(&doc, &EmptyContext).findings;
    (doc, findings)
}

fn rule_file(source: &str) -> Value {
    let path = format!("{}/lint-rules/{source}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("rule file");
    parse_stream(None, &text).documents.remove(0).value
}

fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => root
            .pointer(r.trim_start_matches('#'))
            .expect("$ref resolves"),
        None => schema,
    }
}

/// `(pointer, schema)` of every field `schema` requires, at every node of `base` the schema
/// reaches through `properties` and `items` from `at`.
fn required_fields(
    schema: &Value,
    root: &Value,
    base: &Value,
    at: &str,
    out: &mut Vec<(String, Value)>,
) {
    let schema = resolve(schema, root);
    let properties = schema.get("properties").and_then(Value::as_object);
    for name in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = name.as_str().expect("required names are strings");
        let field = properties
            .and_then(|p| p.get(name))
            .map_or(Value::Null, |s| resolve(s, root).clone());
        out.push((format!("{at}/{name}"), field));
    }
    for (name, sub) in properties.into_iter().flatten() {
        let pointer = format!("{at}/{name}");
        if base.pointer(&pointer).is_some() {
            required_fields(sub, root, base, &pointer, out);
        }
    }
    if let (Some(items), Some(list)) = (
        schema.get("items"),
        base.pointer(at).and_then(Value::as_array),
    ) {
        for i in 0..list.len() {
            required_fields(items, root, base, &format!("{at}/{i}"), out);
        }
    }
}

/// The JSON type a field schema states: `type`, or the type of its `const` or `enum`.
fn stated_type(field: &Value) -> Option<&'static str> {
    let of = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if let Some(t) = field.get("type").and_then(Value::as_str) {
        return Some(match t {
            "object" => "object",
            "array" => "array",
            "string" => "string",
            "boolean" => "boolean",
            "integer" | "number" => "number",
            other => panic!("unexpected type {other}"),
        });
    }
    if let Some(c) = field.get("const") {
        return Some(of(c));
    }
    field
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
        .map(of)
}

fn set(object: &mut Value, pointer: &str, value: Option<Value>) {
    let cut = pointer.rfind('/').expect("member pointer");
    let parent = object
        .pointer_mut(&pointer[..cut])
        .and_then(Value::as_object_mut)
        .expect("parent is a mapping");
    let key = pointer[cut + 1..].to_owned();
    match value {
        Some(v) => {
            parent.insert(key, v);
        }
        None => {
            parent.remove(&key);
        }
    }
}

/// Missing, every vacant spelling, and every value of another type than `stated`.
fn mutations(stated: &str) -> Vec<(String, Option<Value>)> {
    let mut values: Vec<(String, Option<Value>)> = vec![
        ("missing".into(), None),
        ("null".into(), Some(Value::Null)),
        ("{}".into(), Some(json!({}))),
        ("[]".into(), Some(json!([]))),
        ("\"\"".into(), Some(json!(""))),
    ];
    for wrong in [
        json!("yes"),
        json!(7),
        json!(true),
        json!(["x"]),
        json!({"x": 1}),
    ] {
        let same = match stated {
            "string" => wrong.is_string(),
            "number" => wrong.is_number(),
            "boolean" => wrong.is_boolean(),
            "array" => wrong.is_array(),
            "object" => wrong.is_object(),
            _ => false,
        };
        if !same {
            values.push((format!("wrong type {wrong}"), Some(wrong)));
        }
    }
    values
}

fn at_or_under(f: &Finding, pointer: &str) -> bool {
    f.path == pointer || f.path.starts_with(&format!("{pointer}/"))
}

#[test]
fn every_required_rule_fires_on_missing_null_empty_and_wrong_typed_fields() {
    let l = linter();
    let catalog = Catalog::builtin().expect("catalog");
    let mut checked = BTreeSet::new();
    let mut cases = 0;
    for rule in catalog
        .rules()
        .iter()
        .filter(|r| r.level == Level::Required)
    {
        let file = rule_file(&rule.source);
        let Some(schema) = file.pointer("/check/schema") else {
            continue; // builtin checks judge other objects, not field presence
        };
        let base = if rule.kinds.iter().any(|k| k == "MysqlFailoverGroup") {
            full_group()
        } else {
            operator_deployment()
        };
        let (_, found) = lint(&l, &base);
        assert!(
            !found.iter().any(|f| f.rule_id == rule.id),
            "{} fires on its clean base: {found:#?}",
            rule.id
        );
        let selects: Vec<String> = match file.pointer("/check/select") {
            None => vec![String::new()],
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(many)) => many
                .iter()
                .map(|s| s.as_str().expect("select").to_owned())
                .collect(),
            Some(other) => panic!("select {other}"),
        };
        let mut fields = Vec::new();
        for pattern in &selects {
            for (at, _) in select(&base, pattern) {
                required_fields(schema, schema, &base, &at, &mut fields);
            }
        }
        for (pointer, field) in fields {
            let stated = stated_type(&field).unwrap_or_else(|| {
                panic!(
                    "{}: required field {pointer} states no type, so a wrong-typed value would pass",
                    rule.id
                )
            });
            for (what, value) in mutations(stated) {
                let mut object = base.clone();
                set(&mut object, &pointer, value.clone());
                let (doc, found) = lint(&l, &object);
                // Emptying a mapping's only required member may leave the mapping itself
                // vacant: the finding is then about that mapping, which reads as missing.
                let seen = normalize(&object);
                let hit = found.iter().find(|f| {
                    f.rule_id == rule.id
                        && (at_or_under(f, &pointer)
                            || (pointer.starts_with(&format!("{}/", f.path))
                                && seen.pointer(&f.path).is_none()))
                });
                let hit =
                    hit.unwrap_or_else(|| panic!("{} did not fire with {pointer} {what}", rule.id));
                assert!(hit.level == Level::Required);
                // The finding's line is its field's own line when the key is in the text.
                if let Some(position) = doc.position(&hit.path) {
                    assert_eq!(
                        hit.line,
                        Some(position.line),
                        "{} {pointer} {what}",
                        rule.id
                    );
                }
                cases += 1;
            }
        }
        checked.insert(rule.id.to_string());
    }
    for id in [
        "BR-BAK-001",
        "BR-BAK-003",
        "BR-CRED-001",
        "BR-CRED-002",
        "BR-IMG-001",
        "BR-IMG-003",
        "BR-IMG-004",
        "BR-PSS-002",
        "BR-PSS-004",
        "BR-TLS-001",
        "BR-WL-001",
    ] {
        assert!(checked.contains(id), "{id} was not exercised");
    }
    assert!(cases > 300, "{cases}");
}

/// Every member of a clean group, set to `null`, `{}`, `[]` or `""`, produces exactly the
/// findings its removal produces, under every rule of every level.
#[test]
fn vacant_members_read_exactly_as_missing_for_every_rule() {
    let l = linter();
    let base = full_group();
    let mut pointers = Vec::new();
    members(&base, "", &mut pointers);
    assert!(pointers.len() > 100, "{}", pointers.len());
    let key = |f: &Finding| (f.rule_id.to_string(), f.path.clone(), f.level);
    for pointer in &pointers {
        let mut missing = base.clone();
        set(&mut missing, pointer, None);
        let want: BTreeSet<_> = lint(&l, &missing).1.iter().map(key).collect();
        for vacant in [Value::Null, json!({}), json!([]), json!("")] {
            let mut object = base.clone();
            set(&mut object, pointer, Some(vacant.clone()));
            let got: BTreeSet<_> = lint(&l, &object).1.iter().map(key).collect();
            assert_eq!(got, want, "{pointer} = {vacant}");
        }
    }
}

fn members(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                if p != "/kind" && p != "/apiVersion" {
                    out.push(p.clone());
                }
                members(v, &p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                members(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A change to a group's `spec`.
type Mutate = fn(&mut Map<String, Value>);

/// The issue's reproductions, as YAML a user writes.
#[test]
fn explicit_nulls_from_the_issue_are_required_findings() {
    let l = linter();
    let base = full_group();
    let cases: [(&str, Mutate, &str, &str); 5] = [
        (
            "tls",
            |s| {
                s.insert("tls".into(), Value::Null);
            },
            "BR-TLS-001",
            "/spec/tls",
        ),
        (
            "backup",
            |s| {
                s.insert("backup".into(), Value::Null);
            },
            "BR-BAK-001",
            "/spec/backup",
        ),
        (
            "credentials beside secretName",
            |s| {
                s.insert("credentials".into(), Value::Null);
                s.insert("secretName".into(), json!("orders-dsn"));
            },
            "BR-CRED-001",
            "/spec/credentials",
        ),
        (
            "retentionPolicy",
            |s| {
                s["backup"]["profiles"][0]
                    .as_object_mut()
                    .expect("profile")
                    .insert("retentionPolicy".into(), Value::Null);
            },
            "BR-BAK-003",
            "/spec/backup/profiles/0/retentionPolicy",
        ),
        (
            "backup containerSecurityContext as a string",
            |s| {
                s["backup"]
                    .as_object_mut()
                    .expect("backup")
                    .insert("containerSecurityContext".into(), json!("privileged"));
            },
            "BR-PSS-004",
            "/spec/backup/containerSecurityContext",
        ),
    ];
    for (what, mutate, rule, pointer) in cases {
        let mut object = base.clone();
        mutate(object["spec"].as_object_mut().expect("spec"));
        let (_, found) = lint(&l, &object);
        assert!(
            found
                .iter()
                .any(|f| &*f.rule_id == rule && f.path == pointer && f.level == Level::Required),
            "{what}: {found:#?}"
        );
    }
}
