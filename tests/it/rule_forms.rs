//! Rule by form: every rule gives the same findings whichever accepted spelling a manifest
//! uses. Secret names are strings or (the rejected legacy form) `{name: X}` objects, which
//! must give the same findings plus BR-API-001 at each such field; quantities are strings
//! (`20Gi`) or integers (`21474836480`).
//!
//! The fixtures are every manifest in `docs/examples/`, `tests/compat/` and
//! `tests/fixtures/rule-forms/`; each rule must fire on at least one of them (its positive
//! fixture) and stay silent on at least one object of its kinds (its negative fixture).

use std::collections::BTreeSet;
use std::path::Path;

use bloodraven::policy::manifest::{Document, parse_stream};
use bloodraven::policy::rules::pointer::select;
use bloodraven::policy::rules::shapes::{canonical, legacy_secret_refs, secret_name_fields};
use bloodraven::policy::rules::{BundleContext, Catalog, LintConfig, Linter};
use serde_json::{Value, json};

const FIXTURE_DIRS: [&str; 3] = ["docs/examples", "tests/compat", "tests/fixtures/rule-forms"];

/// Where quantities live, in every kind.
const QUANTITY_FIELDS: [&str; 5] = [
    "/spec/sites/*/storage/size",
    "/spec/backup/stagingVolumeSizeLimit",
    "/spec/backup/profiles/*/storage/pvc/size",
    "/spec/backup/profiles/*/verification/storage/size",
    "/spec/storage/size",
];

type Findings = BTreeSet<(String, String)>;

struct Fixture {
    file: String,
    documents: Vec<Document>,
}

fn fixtures() -> Vec<Fixture> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in FIXTURE_DIRS {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).expect("readable");
            let file = path.display().to_string();
            let stream = parse_stream(Some(&file), &text);
            assert!(stream.errors.is_empty(), "{file}: {:?}", stream.errors);
            out.push(Fixture {
                file,
                documents: stream.documents,
            });
        }
    }
    out
}

fn lint(linter: &Linter, object: &Value, ctx: &BundleContext) -> Findings {
    linter
        .check(&Document::in_memory(object.clone()), ctx)
        .findings
        .into_iter()
        .map(|f| (f.rule_id.to_string(), f.path))
        .collect()
}

/// Bytes of a quantity written as a plain or binary-suffixed integer.
fn quantity_bytes(q: &Value) -> Option<i64> {
    if let Some(i) = q.as_i64() {
        return Some(i);
    }
    let s = q.as_str()?;
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(split);
    let shift = match suffix {
        "" => 0,
        "Ki" => 10,
        "Mi" => 20,
        "Gi" => 30,
        "Ti" => 40,
        _ => return None,
    };
    digits.parse::<i64>().ok().map(|n| n << shift)
}

/// `object` with every quantity rewritten by `f`; also returns how many were rewritten.
fn with_quantities(object: &Value, f: fn(&Value) -> Option<Value>) -> (Value, usize) {
    let mut out = object.clone();
    let mut changed = 0;
    for pattern in QUANTITY_FIELDS {
        let pointers: Vec<(String, Value)> = select(object, pattern)
            .into_iter()
            .map(|(p, v)| (p, v.clone()))
            .collect();
        for (pointer, value) in pointers {
            if let (Some(new), Some(slot)) = (f(&value), out.pointer_mut(&pointer))
                && new != value
            {
                *slot = new;
                changed += 1;
            }
        }
    }
    (out, changed)
}

fn as_integer(q: &Value) -> Option<Value> {
    quantity_bytes(q).map(Value::from)
}

fn as_string(q: &Value) -> Option<Value> {
    q.as_i64().map(|i| Value::from(i.to_string()))
}

/// `object` (canonical) with every Secret name written as `{name: X}`, and those pointers.
fn with_secret_objects(object: &Value) -> (Value, Vec<String>) {
    let mut out = object.clone();
    let mut changed = Vec::new();
    for pointer in secret_name_fields(object) {
        if let Some(slot) = out.pointer_mut(&pointer)
            && let Some(name) = slot.as_str().map(str::to_owned)
        {
            *slot = json!({"name": name});
            changed.push(pointer);
        }
    }
    (out, changed)
}

fn plus_api_001(base: &Findings, pointers: &[String]) -> Findings {
    let mut want = base.clone();
    want.extend(
        pointers
            .iter()
            .map(|p| ("BR-API-001".to_owned(), p.clone())),
    );
    want
}

#[test]
fn every_rule_gives_the_same_findings_in_every_form() {
    let catalog = Catalog::builtin().expect("catalog");
    let linter = Linter::new(catalog.clone(), LintConfig::default());
    let mut positive: BTreeSet<String> = BTreeSet::new();
    let mut negative: BTreeSet<String> = BTreeSet::new();
    let (mut secret_variants, mut quantity_variants) = (0, 0);
    let mut failures = Vec::new();
    for fixture in fixtures() {
        let ctx = BundleContext::of_documents(&fixture.documents);
        for doc in &fixture.documents {
            let kind = doc.value.get("kind").and_then(Value::as_str).unwrap_or("");
            let name = format!("{} {kind}", fixture.file);
            let canon = canonical(&doc.value).into_owned();
            let base = lint(&linter, &canon, &ctx);
            let as_written = plus_api_001(&base, &legacy_secret_refs(&doc.value));
            for rule in catalog.rules().iter().filter(|r| r.applies_to(kind)) {
                if as_written.iter().any(|(id, _)| **id == *rule.id) {
                    positive.insert(rule.id.to_string());
                } else {
                    negative.insert(rule.id.to_string());
                }
            }
            let mut check = |form: &str, object: &Value, want: &Findings| {
                let got = lint(&linter, object, &ctx);
                if &got != want {
                    failures.push(format!(
                        "{name} ({form}):\n  only in this form: {:?}\n  missing: {:?}",
                        got.difference(want).collect::<Vec<_>>(),
                        want.difference(&got).collect::<Vec<_>>()
                    ));
                }
            };
            check("as written", &doc.value, &as_written);
            let (objects, pointers) = with_secret_objects(&canon);
            if !pointers.is_empty() {
                secret_variants += 1;
                check(
                    "Secret names as objects",
                    &objects,
                    &plus_api_001(&base, &pointers),
                );
            }
            for (form, f) in [
                (
                    "quantities as integers",
                    as_integer as fn(&Value) -> Option<Value>,
                ),
                ("quantities as strings", as_string),
            ] {
                let (variant, changed) = with_quantities(&canon, f);
                if changed > 0 {
                    quantity_variants += 1;
                    check(form, &variant, &base);
                    let (both, pointers) = with_secret_objects(&variant);
                    check(
                        &format!("{form}, Secret names as objects"),
                        &both,
                        &plus_api_001(&base, &pointers),
                    );
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        secret_variants >= 5 && quantity_variants >= 5,
        "the fixtures must exercise both forms: {secret_variants} Secret and {quantity_variants} quantity variants"
    );
    let ids: BTreeSet<String> = catalog.rules().iter().map(|r| r.id.to_string()).collect();
    let no_positive: Vec<&String> = ids.difference(&positive).collect();
    let no_negative: Vec<&String> = ids.difference(&negative).collect();
    assert!(
        no_positive.is_empty() && no_negative.is_empty(),
        "rules without a positive fixture: {no_positive:?}; without a negative one: {no_negative:?} \
         (add a manifest under tests/fixtures/rule-forms/)"
    );
}

#[test]
fn quantity_forms_convert_both_ways() {
    assert_eq!(quantity_bytes(&json!("20Gi")), Some(21_474_836_480));
    assert_eq!(quantity_bytes(&json!("100")), Some(100));
    assert_eq!(quantity_bytes(&json!(5)), Some(5));
    assert_eq!(quantity_bytes(&json!("1.5Gi")), None);
    assert_eq!(as_string(&json!(100)), Some(json!("100")));
    let group =
        json!({"spec": {"sites": [{"storage": {"size": "1Ki"}}, {"storage": {"size": 7}}]}});
    let (ints, n) = with_quantities(&group, as_integer);
    assert_eq!(
        (ints["spec"]["sites"][0]["storage"]["size"].clone(), n),
        (json!(1024), 1)
    );
    let (strings, n) = with_quantities(&group, as_string);
    assert_eq!(
        (strings["spec"]["sites"][1]["storage"]["size"].clone(), n),
        (json!("7"), 1)
    );
}
