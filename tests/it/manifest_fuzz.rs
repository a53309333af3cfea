//! The manifest loader never panics, whatever it is given, and never loses a document that
//! parses on its own.

use bloodraven::engine::manifest::parse_stream;
use bloodraven::engine::rules::{Catalog, EmptyContext, LintConfig, Linter};
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
