//! The command-line test peers `scripts/install-test-deps.sh` puts under `.deps/bin`
//! (helm, promtool, kubernetes-validate, hadolint, ...), and reading what they printed.

use std::path::{Path, PathBuf};
use std::process::Output;

/// `.deps/bin/<name>`; its absence is a failure naming the install command, never a skip.
pub fn dep_tool(name: &str) -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".deps/bin")
        .join(name);
    assert!(
        bin.exists(),
        "{name} is missing at {}: run scripts/install-test-deps.sh {name}",
        bin.display()
    );
    bin
}

/// Stdout then stderr, for assertion messages and greps.
pub fn output_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
