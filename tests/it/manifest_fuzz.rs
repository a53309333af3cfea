//! The manifest loader never panics, whatever it is given, and never loses a document that
//! parses on its own.

use bloodraven::policy::manifest::parse_stream;
use bloodraven::policy::rules::{Catalog, EmptyContext, LintConfig, Linter};
use proptest::prelude::*;

const SEED: &str = "apiVersion: shipstream.io/v1alpha1\nkind: MysqlFailoverGroup\nmetadata:\n  name: g\nspec:\n  image: mysql:9.7.4\n  sites:\n  - {name: a, role: dr-only}\n  - name: b\n    storage: {size: 1Gi}\n  dns: {hostname: \"h\"}\n  mysqlConf: &c {a: '1'}\n  other: *c\n---\nkind: Secret\nstringData: |\n  multi\n  line\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let s = parse_stream(Some("f"), &text);
        for e in &s.errors {
            prop_assert!(e.location.line >= 1);
        }
    }

    #[test]
    fn mutated_manifests_never_panic_and_lint(cut in 0usize..SEED.len(), insert in "[-:{}\\[\\]&*!|>'\"#\n ]{0,4}") {
        let mut text = SEED.to_owned();
        let at = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.insert_str(at, &insert);
        let s = parse_stream(Some("f"), &text);
        let linter = Linter::new(Catalog::builtin().expect("catalog"), LintConfig::default());
        let report = linter.lint(&s.documents, s.errors, &EmptyContext);
        prop_assert_eq!(report.summary.documents, s.documents.len());
    }
}

#[test]
fn a_broken_document_does_not_hide_its_neighbours() {
    let text = "kind: A\n---\nkind: [B\n---\nkind: C\n";
    let s = parse_stream(Some("f"), text);
    let kinds: Vec<&str> = s
        .documents
        .iter()
        .filter_map(|d| d.value["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["A", "C"]);
    assert_eq!(s.errors.len(), 1);
    assert!(s.errors[0].to_string().starts_with("f:"), "{}", s.errors[0]);
}

/// Structure-aware mutations of a valid group, and the invariant that `bloodraven lint`
/// over the YAML text reaches the verdict the validating webhook reaches on the object the
/// API server stores for that text. The stored object is built independently of our parser,
/// from the mutations' meaning, so the parser's handling of nulls, merge keys and anchors
/// is checked too.
mod structured {
    use std::collections::BTreeSet;
    use std::fmt::Write as _;

    use bloodraven::policy::manifest::parse_stream;
    use bloodraven::policy::rules::{
        AdmissionAction, Catalog, EmptyContext, Finding, Level, LintConfig, Linter,
    };
    use bloodraven::shells::serve::admission::Policy;
    use bloodraven::shells::serve::admission::review::AdmissionRequest;
    use bloodraven::shells::serve::admission::validate::validate;
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use crate::lint_vacant::full_group;

    /// A change to the object's content.
    #[derive(Debug, Clone)]
    enum Edit {
        /// A member becomes null, spelled `null`, `~` or nothing.
        Null(usize, u8),
        /// A member becomes `{}`, `[]` or `""`.
        Empty(usize, u8),
        /// A member gets a value of another type.
        Swap(usize, u8),
        /// A list gets a copy of one of its items (duplicate names included).
        Duplicate(usize),
    }

    /// How the YAML text spells the (edited) object.
    #[derive(Debug, Clone)]
    enum Shape {
        Plain,
        /// Mapping `a` gets an anchor, and a later mapping `b` becomes its alias.
        Alias(usize, usize),
        /// Mapping `at` spells (part of) its members through a merge key.
        Merge(usize, u8),
        /// Mapping `at` merges an earlier anchored mapping `from` under its own members.
        MergeAnchor(usize, usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (any::<usize>(), 0u8..3).prop_map(|(i, s)| Edit::Null(i, s)),
            (any::<usize>(), 0u8..3).prop_map(|(i, s)| Edit::Empty(i, s)),
            (any::<usize>(), 0u8..5).prop_map(|(i, s)| Edit::Swap(i, s)),
            any::<usize>().prop_map(Edit::Duplicate),
        ]
    }

    fn shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            Just(Shape::Plain),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Shape::Alias(a, b)),
            (any::<usize>(), 0u8..2).prop_map(|(a, v)| Shape::Merge(a, v)),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Shape::MergeAnchor(a, b)),
        ]
    }

    fn escape(token: &str) -> String {
        token.replace('~', "~0").replace('/', "~1")
    }

    /// Every node's pointer in the order the emitter writes them.
    fn nodes(value: &Value, at: &str, out: &mut Vec<String>) {
        out.push(at.to_owned());
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    nodes(v, &format!("{at}/{}", escape(k)), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    nodes(v, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    /// Pointers of object members the mutations may touch: not the identity of the object.
    fn members(value: &Value) -> Vec<String> {
        let mut all = Vec::new();
        nodes(value, "", &mut all);
        all.into_iter()
            .filter(|p| {
                p.matches('/').count() >= 2
                    && p.starts_with("/spec/")
                    && value
                        .pointer(&p[..p.rfind('/').unwrap_or(0)])
                        .is_some_and(Value::is_object)
            })
            .collect()
    }

    fn pick<T: Clone>(items: &[T], i: usize) -> Option<T> {
        (!items.is_empty()).then(|| items[i % items.len()].clone())
    }

    fn is_under(p: &str, ancestor: &str) -> bool {
        p == ancestor || p.starts_with(&format!("{ancestor}/"))
    }

    /// Applies the edits; returns the stored object and how nulls are spelled.
    fn apply(mut object: Value, edits: &[Edit]) -> (Value, Vec<(String, u8)>) {
        let mut spellings = Vec::new();
        for e in edits {
            let targets = members(&object);
            let (i, new) = match e {
                Edit::Null(i, s) => {
                    let Some(p) = pick(&targets, *i) else {
                        continue;
                    };
                    spellings.push((p, *s));
                    (*i, Value::Null)
                }
                Edit::Empty(i, s) => (*i, [json!({}), json!([]), json!("")][*s as usize].clone()),
                Edit::Swap(i, s) => (
                    *i,
                    [
                        json!("yes"),
                        json!(7),
                        json!(true),
                        json!(["x"]),
                        json!({"x": 1}),
                    ][*s as usize]
                        .clone(),
                ),
                Edit::Duplicate(i) => {
                    let mut all = Vec::new();
                    nodes(&object, "", &mut all);
                    let lists: Vec<String> = all
                        .into_iter()
                        .filter(|p| {
                            object
                                .pointer(p)
                                .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()))
                        })
                        .collect();
                    let Some(p) = pick(&lists, *i) else { continue };
                    let list = object
                        .pointer_mut(&p)
                        .and_then(Value::as_array_mut)
                        .expect("list");
                    let copy = list[*i % list.len()].clone();
                    list.push(copy);
                    continue;
                }
            };
            let Some(p) = pick(&targets, i) else { continue };
            if let Some(slot) = object.pointer_mut(&p) {
                *slot = new;
            }
        }
        // A later edit may have replaced a nulled member or its parent.
        spellings.retain(|(p, _)| object.pointer(p).is_some_and(Value::is_null));
        (object, spellings)
    }

    /// What the emitter writes specially.
    #[derive(Default)]
    struct Marks {
        nulls: Vec<(String, u8)>,
        anchor: Option<String>,
        alias: Option<String>,
        /// At this mapping: `<<:` text, and the members still written explicitly.
        merge: Option<(String, String, Map<String, Value>)>,
    }

    fn mappings(object: &Value) -> Vec<String> {
        let mut all = Vec::new();
        nodes(object, "", &mut all);
        all.into_iter()
            .filter(|p| {
                p.starts_with("/spec/")
                    && object
                        .pointer(p)
                        .and_then(Value::as_object)
                        .is_some_and(|m| !m.is_empty())
            })
            .collect()
    }

    /// Chooses how to spell the object; returns the marks and the object the text means.
    fn shape_text(object: &Value, shape: &Shape) -> (Marks, Value) {
        let mut marks = Marks::default();
        let mut stored = object.clone();
        let maps = mappings(object);
        match shape {
            Shape::Plain => {}
            Shape::Alias(a, b) | Shape::MergeAnchor(a, b) => {
                let Some(from) = pick(&maps, *a) else {
                    return (marks, stored);
                };
                let later: Vec<String> = maps
                    .iter()
                    .skip_while(|p| **p != from)
                    .filter(|p| !is_under(p, &from) && !is_under(&from, p))
                    .cloned()
                    .collect();
                let Some(to) = pick(&later, *b) else {
                    return (marks, stored);
                };
                let source = object.pointer(&from).cloned().unwrap_or(Value::Null);
                marks.anchor = Some(from);
                if matches!(shape, Shape::Alias(..)) {
                    *stored.pointer_mut(&to).expect("target") = source;
                    marks.alias = Some(to);
                } else {
                    let own = object
                        .pointer(&to)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    let mut merged = source.as_object().cloned().unwrap_or_default();
                    for (k, v) in &own {
                        merged.insert(k.clone(), v.clone());
                    }
                    *stored.pointer_mut(&to).expect("target") = Value::Object(merged);
                    marks.merge = Some((to, "*a".to_owned(), own));
                }
            }
            Shape::Merge(at, variant) => {
                let Some(at) = pick(&maps, *at) else {
                    return (marks, stored);
                };
                let own = object
                    .pointer(&at)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let keys: Vec<&String> = own.keys().collect();
                let first = keys[0].clone();
                let mut decoyed = own.clone();
                decoyed.insert(first.clone(), json!("decoy"));
                let (text, explicit) = if *variant == 0 {
                    // The merged mapping holds every member; the explicit first member wins.
                    let explicit: Map<String, Value> = own
                        .iter()
                        .filter(|(k, _)| **k == first)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    (Value::Object(decoyed).to_string(), explicit)
                } else {
                    // Two merged mappings; the first wins over the decoy in the second.
                    let half = keys.len().div_ceil(2);
                    let a: Map<String, Value> = own
                        .iter()
                        .take(half)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    let mut b: Map<String, Value> = own
                        .iter()
                        .skip(half)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    b.insert(first.clone(), json!("decoy"));
                    (
                        format!("[{}, {}]", Value::Object(a), Value::Object(b)),
                        Map::new(),
                    )
                };
                marks.merge = Some((at, text, explicit));
            }
        }
        (marks, stored)
    }

    fn scalar(value: &Value, pointer: &str, marks: &Marks) -> String {
        if value.is_null()
            && let Some((_, s)) = marks.nulls.iter().find(|(p, _)| p == pointer)
        {
            return ["null", "~", ""][*s as usize].to_owned();
        }
        value.to_string()
    }

    fn emit(value: &Value, pointer: &str, indent: usize, marks: &Marks, out: &mut String) {
        let pad = " ".repeat(indent);
        let merge = marks.merge.as_ref().filter(|(p, _, _)| p == pointer);
        let entries = match (value, merge) {
            (_, Some((_, text, explicit))) => {
                let _ = writeln!(out, "{pad}<<: {text}");
                explicit.clone()
            }
            (Value::Object(map), None) => map.clone(),
            (Value::Array(items), _) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{pointer}/{i}");
                    let _ = write!(out, "{pad}-{}", node_head(item, &p, marks));
                    if needs_block(item, &p, marks) {
                        out.push('\n');
                        emit(item, &p, indent + 2, marks, out);
                    }
                }
                return;
            }
            _ => return,
        };
        for (k, v) in &entries {
            let p = format!("{pointer}/{}", escape(k));
            let _ = write!(
                out,
                "{pad}{}:{}",
                Value::String(k.clone()),
                node_head(v, &p, marks)
            );
            if needs_block(v, &p, marks) {
                out.push('\n');
                emit(v, &p, indent + 2, marks, out);
            }
        }
    }

    fn needs_block(value: &Value, pointer: &str, marks: &Marks) -> bool {
        if marks.alias.as_deref() == Some(pointer) {
            return false;
        }
        let merging = marks.merge.as_ref().is_some_and(|(p, _, _)| p == pointer);
        merging
            || value.as_object().is_some_and(|m| !m.is_empty())
            || value.as_array().is_some_and(|a| !a.is_empty())
    }

    /// What follows the key's colon or the item's dash on its own line.
    fn node_head(value: &Value, pointer: &str, marks: &Marks) -> String {
        if marks.alias.as_deref() == Some(pointer) {
            return " *a\n".to_owned();
        }
        let anchor = if marks.anchor.as_deref() == Some(pointer) {
            " &a"
        } else {
            ""
        };
        if needs_block(value, pointer, marks) {
            return anchor.to_owned();
        }
        format!("{anchor} {}\n", scalar(value, pointer, marks))
    }

    /// Required findings that deny admission, by rule and pointer.
    fn denying(linter: &Linter, findings: &[Finding]) -> BTreeSet<(String, String)> {
        findings
            .iter()
            .filter(|f| f.is_active() && f.level == Level::Required)
            .filter(|f| {
                linter
                    .catalog()
                    .get(&f.rule_id)
                    .is_some_and(|r| r.admission == AdmissionAction::Deny)
            })
            .map(|f| (f.rule_id.to_string(), f.path.clone()))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

        #[test]
        fn lint_and_admission_agree_on_mutated_groups(
            edits in prop::collection::vec(edit(), 0..4),
            spelled in shape(),
        ) {
            let linter = Linter::new(Catalog::builtin().expect("catalog"), LintConfig::default());
            let (object, nulls) = apply(full_group(), &edits);
            let (mut marks, stored) = shape_text(&object, &spelled);
            marks.nulls = nulls;
            let mut text = String::new();
            emit(&object, "", 0, &marks, &mut text);

            let stream = parse_stream(Some("fuzz.yaml"), &text);
            prop_assert!(stream.errors.is_empty(), "{:?}\n{text}", stream.errors);
            prop_assert_eq!(&stream.documents[0].value, &stored, "{}", text);
            let lint = denying(&linter, &linter.check(&stream.documents[0], &EmptyContext).findings);

            let request: AdmissionRequest = serde_json::from_value(json!({
                "uid": "fuzz", "operation": "CREATE", "namespace": "orders",
                "resource": {"group": "shipstream.io", "version": "v1alpha1", "resource": "mysqlfailovergroups"},
                "userInfo": {"username": "alice"}, "object": stored,
            })).expect("admission request");
            let policy = Policy { operator_service_account: "system:serviceaccount:x:y".into(), ratchet: true };
            let webhook = validate(&request, &linter, &EmptyContext, &policy);
            prop_assert_eq!(&denying(&linter, &webhook.findings), &lint, "{}", text);
            prop_assert_eq!(webhook.response.allowed, lint.is_empty(), "{}", text);
        }
    }
}
