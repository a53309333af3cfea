//! Generated files are committed; these tests fail when they are stale.

use bloodraven::api::crd;
use bloodraven::engine::rules::Catalog;
use bloodraven::engine::rules::docs::markdown;

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
