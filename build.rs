//! Embeds every rule file of `lint-rules/` into the binary, so the catalog needs no files at
//! run time and the CLI, the HTTP endpoint and the webhooks always agree.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    println!("cargo::rerun-if-changed=lint-rules");
    let dir = Path::new("lint-rules");
    let mut files: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    std::path::Path::new(n)
                        .extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("yaml"))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = String::from(
        "/// `(file name, contents)` of every rule file, sorted by name.\npub const RULE_FILES: &[(&str, &str)] = &[\n",
    );
    for name in &files {
        let path = dir.join(name);
        let abs = fs::canonicalize(&path).unwrap_or(path);
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            abs.display().to_string()
        );
    }
    out.push_str("];\n");
    let target =
        Path::new(&env::var("OUT_DIR").unwrap_or_else(|_| ".".to_owned())).join("rule_files.rs");
    if fs::write(&target, out).is_err() {
        println!("cargo::warning=could not write {}", target.display());
    }
}
