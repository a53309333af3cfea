//! Golden files of the operator's rendering: each `tests/golden/render/<case>.input.yaml`
//! (a MysqlFailoverGroup) renders to exactly `tests/golden/render/<case>.yaml` (every
//! desired object, then the DNSEndpoint for the case's active site), as multi-document
//! YAML.
//!
//! After an intended change, rewrite the files and review the diff:
//! `BLOODRAVEN_BLESS=1 cargo nextest run -E 'test(/render_golden/)'`.

use std::path::{Path, PathBuf};

use bloodraven::api::MysqlFailoverGroup;
use bloodraven::render::{RenderOptions, dns, render};
use serde_json::Value;

/// (case, active site the DNSEndpoint points at).
pub const CASES: [(&str, &str); 2] = [("two-site", "iad"), ("three-site-dr-tls", "pdx")];

pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/render")
}

pub fn load_group(case: &str) -> MysqlFailoverGroup {
    let path = golden_dir().join(format!("{case}.input.yaml"));
    let text = std::fs::read_to_string(&path).expect("read the golden input");
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every object rendered for `group`, the DNSEndpoint for `active` last.
pub fn render_values(group: &MysqlFailoverGroup, active: &str) -> Vec<Value> {
    let mut values = render(group, &RenderOptions::default())
        .expect("the group renders")
        .to_values()
        .expect("objects serialise");
    values.push(serde_json::to_value(dns::dns_endpoint(group, active).expect("dns")).unwrap());
    values
}

pub fn to_yaml(values: &[Value]) -> String {
    let mut out = String::new();
    for v in values {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(v).expect("yaml"));
    }
    out
}

#[test]
fn render_golden_files_match() {
    let bless = std::env::var_os("BLOODRAVEN_BLESS").is_some_and(|v| v == "1");
    for (case, active) in CASES {
        let rendered = to_yaml(&render_values(&load_group(case), active));
        let path = golden_dir().join(format!("{case}.yaml"));
        if bless {
            std::fs::write(&path, &rendered).expect("write the golden file");
            continue;
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; create it with BLOODRAVEN_BLESS=1 cargo nextest run -E 'test(/render_golden/)'",
                path.display()
            )
        });
        if golden != rendered {
            let (line, (want, got)) = golden
                .lines()
                .zip(rendered.lines())
                .enumerate()
                .find(|(_, (a, b))| a != b)
                .map_or(
                    (
                        golden.lines().count().min(rendered.lines().count()),
                        ("<end>", "<end>"),
                    ),
                    |(i, p)| (i, p),
                );
            panic!(
                "{} differs from the rendering at line {}:\n  golden:   {want}\n  rendered: {got}\n\
                 If the change is intended: BLOODRAVEN_BLESS=1 cargo nextest run -E 'test(/render_golden/)'",
                path.display(),
                line + 1
            );
        }
    }
}

#[test]
fn render_golden_yaml_reads_back_as_the_rendered_objects() {
    // The golden files are what the operator would apply: parsing them back gives the same
    // objects, so a YAML quirk (a quoted number, a folded my.cnf) cannot hide in them.
    for (case, active) in CASES {
        let values = render_values(&load_group(case), active);
        let text = to_yaml(&values);
        let back: Vec<Value> = text
            .split("---\n")
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_saphyr::from_str(d).expect("parse a rendered document"))
            .collect();
        assert_eq!(back, values, "{case}");
    }
}
