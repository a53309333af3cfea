//! YAML merge keys (`<<`) are expanded as kubectl's YAML decoder (go-yaml) expands them, so
//! lint sees exactly the object the API server stores.

use bloodraven::policy::manifest::parse_stream;
use bloodraven::policy::rules::{Catalog, EmptyContext, LintConfig, Linter};
use serde_json::{Value, json};

fn parse(text: &str) -> Value {
    let mut s = parse_stream(Some("m.yaml"), text);
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    s.documents.remove(0).value
}

fn error(text: &str) -> String {
    let s = parse_stream(Some("m.yaml"), text);
    assert_eq!(s.errors.len(), 1, "{:?}", s.documents);
    s.errors[0].message.clone()
}

#[test]
fn merges_a_mapping_and_explicit_keys_win() {
    assert_eq!(
        parse("x: &x {privileged: true, a: 1}\ny: {<<: *x}\n")["y"],
        json!({"privileged": true, "a": 1})
    );
    // An explicit key wins whether it comes before or after the merge key.
    assert_eq!(
        parse("x: &x {a: 1, b: 1}\ny: {a: 2, <<: *x}\nz: {<<: *x, b: 3}\n")["y"],
        json!({"a": 2, "b": 1})
    );
    assert_eq!(
        parse("x: &x {a: 1, b: 1}\nz:\n  <<: *x\n  b: 3\n")["z"],
        json!({"a": 1, "b": 3})
    );
    // An inline mapping as the merge value.
    assert_eq!(
        parse("y:\n  <<: {a: 1}\n  c: 2\n")["y"],
        json!({"a": 1, "c": 2})
    );
}

#[test]
fn merges_a_sequence_of_mappings_earlier_first() {
    let text = "a: &a {k: a, only_a: 1}\nb: &b {k: b, only_b: 2}\nm:\n  <<: [*a, *b]\n  own: 3\n";
    assert_eq!(
        parse(text)["m"],
        json!({"k": "a", "only_a": 1, "only_b": 2, "own": 3})
    );
    let reversed = text.replace("[*a, *b]", "[*b, *a]");
    assert_eq!(parse(&reversed)["m"]["k"], "b");
}

#[test]
fn nested_merges_resolve_inside_out() {
    let text = "base: &base {privileged: true, runAsUser: 0}\nmid: &mid\n  <<: *base\n  runAsUser: 1000\ntop:\n  <<: *mid\n  extra: x\n";
    assert_eq!(
        parse(text)["top"],
        json!({"privileged": true, "runAsUser": 1000, "extra": "x"})
    );
    // An anchor on a mapping with a merge key holds the merged mapping.
    assert_eq!(
        parse(text)["mid"],
        json!({"privileged": true, "runAsUser": 1000})
    );
}

#[test]
fn a_quoted_merge_key_is_an_ordinary_key() {
    assert_eq!(
        parse("x: &x {a: 1}\ny: {\"<<\": *x}\n")["y"],
        json!({"<<": {"a": 1}})
    );
    assert_eq!(parse("y: {'<<': 5}\n")["y"], json!({"<<": 5}));
    // JSON input never merges.
    assert_eq!(
        parse("{\"y\": {\"<<\": {\"a\": 1}}}")["y"],
        json!({"<<": {"a": 1}})
    );
    // An explicit !!merge tag does merge.
    assert_eq!(parse("y: {!!merge <<: {a: 1}}\n")["y"], json!({"a": 1}));
}

#[test]
fn malformed_merges_are_parse_errors() {
    assert!(error("y: {<<: 5}\n").contains("merge key"));
    assert!(error("y: {<<: [{a: 1}, 5]}\n").contains("merge key"));
    assert!(error("y: {<<: }\n").contains("merge key"));
    assert!(error("x: &x {a: 1}\ny:\n  <<: *x\n  <<: *x\n").contains("duplicate"));
    // Keys merged twice are not duplicates of explicit ones.
    assert_eq!(
        parse("x: &x {a: 1}\ny: {<<: *x, a: 2}\n")["y"],
        json!({"a": 2})
    );
}

#[test]
fn lint_sees_merged_security_contexts_with_lines() {
    let text = "\
apiVersion: shipstream.io/v1alpha1
kind: MysqlFailoverGroup
metadata: {name: g, namespace: ns}
spec:
  podSecurityContext: &restricted
    runAsNonRoot: true
  containerSecurityContext:
    <<: &x {privileged: true}
    allowPrivilegeEscalation: false
    capabilities: {drop: [ALL]}
";
    let s = parse_stream(Some("m.yaml"), text);
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    let linter = Linter::new(Catalog::builtin().expect("catalog"), LintConfig::default());
    let findings = linter.check(&s.documents[0], &EmptyContext).findings;
    let privileged = findings
        .iter()
        .find(|f| {
            &*f.rule_id == "BR-PSS-004" && f.path == "/spec/containerSecurityContext/privileged"
        })
        .expect("merged privileged: true is judged");
    // The merged key is reported on the line of the merge key.
    assert_eq!(privileged.line, Some(8));
    assert_eq!(
        s.documents[0]
            .position("/spec/containerSecurityContext/allowPrivilegeEscalation")
            .map(|p| p.line),
        Some(9)
    );
}
