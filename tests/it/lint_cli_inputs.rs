//! `bloodraven lint` on awkward inputs: unreadable subdirectories, non-UTF-8 files, CRLF
//! files under `--fix`, and `null` members `--fix` fills.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Output};

use bloodraven::policy::rules::{Catalog, LintConfig, Linter};
use bloodraven::shells::serve::lint::{LintLimits, Refusal, lint_body};
use bloodraven::shells::serve::stream::Cancel;

/// An unprivileged uid for runs that need permissions to be enforced: root reads any
/// directory whatever its mode.
const NOBODY: u32 = 65534;

fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0")
}

fn lint(args: &[&str], as_nobody: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bloodraven"));
    command.arg("lint").args(args);
    if as_nobody {
        command.uid(NOBODY).gid(NOBODY);
    }
    command.output().expect("binary runs")
}

const GROUP: &str = "apiVersion: shipstream.io/v1alpha1\nkind: MysqlFailoverGroup\nmetadata:\n  name: g\n  namespace: ns\nspec:\n  image: mysql:9.7.4\n  podSecurityContext:\n    fsGroup: 999\n";

#[test]
fn an_unreadable_subdirectory_is_reported_and_the_rest_is_linted() {
    let root = tempfile::tempdir().expect("tempdir");
    let top = root.path();
    fs::write(top.join("a.yaml"), GROUP).expect("write");
    let locked = top.join("locked");
    fs::create_dir(&locked).expect("mkdir");
    fs::write(locked.join("hidden.yaml"), GROUP).expect("write");
    fs::write(top.join("z.yaml"), GROUP.replace("name: g", "name: last")).expect("write");
    fs::set_permissions(top, fs::Permissions::from_mode(0o755)).expect("chmod");
    for file in ["a.yaml", "z.yaml"] {
        fs::set_permissions(top.join(file), fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");

    let out = lint(&[top.to_str().expect("utf-8 path")], running_as_root());
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod back");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    let locked_name = locked.display().to_string();
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("{locked_name}:")) && l.contains("cannot list")),
        "the subdirectory is named: {stdout}\n{stderr}"
    );
    // Both readable files were linted.
    for name in ["g", "last"] {
        assert!(
            stdout.contains(&format!("MysqlFailoverGroup ns/{name}")),
            "{name}: {stdout}"
        );
    }
}

#[test]
fn invalid_utf8_is_located_like_post_lint() {
    let mut bytes = GROUP.as_bytes().to_vec();
    // Line 6 is `spec:`; break it after two bytes.
    let line6 = GROUP
        .match_indices('\n')
        .nth(4)
        .map(|(i, _)| i + 1)
        .expect("six lines");
    bytes.insert(line6 + 2, 0xff);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.yaml");
    fs::write(&file, &bytes).expect("write");

    let out = lint(&[file.to_str().expect("utf-8 path")], false);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let linter = Linter::new(Catalog::builtin().expect("catalog"), LintConfig::default());
    let (cancel, _guard) =
        Cancel::new(std::time::Instant::now() + std::time::Duration::from_secs(60));
    let Err(Refusal::Unparseable(endpoint)) =
        lint_body(&linter, &bytes, &LintLimits::default(), &cancel)
    else {
        panic!("a body that is not UTF-8 is refused as unparseable");
    };
    let (line, column) = (endpoint[0].location.line, endpoint[0].location.column);
    assert_eq!((line, column), (6, 3));
    assert!(
        stdout.contains(&format!("{}:{line}:{column}", file.display())),
        "{stdout}"
    );
}

fn fix(file: &Path) -> String {
    let out = lint(&["--fix", file.to_str().expect("utf-8 path")], false);
    assert!(
        out.status.code().is_some_and(|c| c < 2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::read_to_string(file).expect("read back")
}

#[test]
fn fix_keeps_crlf_line_endings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("crlf.yaml");
    fs::write(&file, GROUP.replace('\n', "\r\n")).expect("write");
    let fixed = fix(&file);
    assert!(fixed.contains("failoverCooldown: 5m\r\n"), "{fixed:?}");
    assert!(
        fixed.contains("fsGroupChangePolicy: OnRootMismatch\r\n"),
        "{fixed:?}"
    );
    assert_eq!(
        fixed.matches('\n').count(),
        fixed.matches("\r\n").count(),
        "every line ends in CRLF: {fixed:?}"
    );
}

#[test]
fn fix_fills_null_members_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("nulls.yaml");
    let text = format!(
        "{GROUP}    fsGroupChangePolicy: ~   # set me\n  failoverCooldown:\n  updateStrategy: null\n"
    );
    fs::write(&file, &text).expect("write");
    let fixed = fix(&file);
    assert!(
        fixed.contains("    fsGroupChangePolicy: OnRootMismatch # set me\n"),
        "{fixed}"
    );
    assert!(fixed.contains("\n  failoverCooldown: 5m\n"), "{fixed}");
    assert!(
        fixed.contains("\n  updateStrategy: OrderedUpdate\n"),
        "{fixed}"
    );
    // Three members filled in place; only the absent imagePullPolicy is a new line.
    assert!(
        fixed.ends_with("\n  imagePullPolicy: IfNotPresent\n"),
        "{fixed}"
    );
    assert_eq!(fixed.lines().count(), text.lines().count() + 1, "{fixed}");
    // The result parses (no duplicate keys) and a second run changes nothing.
    assert_eq!(fix(&file), fixed);
}
