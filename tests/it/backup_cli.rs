//! `bloodraven backup` and `bloodraven binlog` end to end: the real binary against real
//! MySQL 9.7 servers and a real repository (SeaweedFS S3 or a directory). Each test checks
//! what landed in the target with the `mysql` client, independently of the code under test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::mysql::{MysqlCluster, MysqlInstance};
use crate::support::s3::SeaweedS3;
use crate::support::tools::{dep_tool, output_text};

const BIN: &str = env!("CARGO_BIN_EXE_bloodraven");

/// A repository and how the binary reaches it.
pub(crate) struct Repo {
    pub(crate) url: String,
    env: Vec<(&'static str, String)>,
    dir: Option<PathBuf>,
    _keep: Option<tempfile::TempDir>,
}

pub(crate) fn file_repo() -> Repo {
    let dir = tempfile::tempdir().expect("tempdir");
    Repo {
        url: format!("file://{}/repo", dir.path().display()),
        env: Vec::new(),
        dir: Some(dir.path().join("repo")),
        _keep: Some(dir),
    }
}

fn s3_repo(s3: &SeaweedS3, bucket: &str) -> Repo {
    s3.create_bucket(bucket);
    Repo {
        url: format!("s3://{bucket}/prod/db"),
        env: s3.env(),
        dir: None,
        _keep: None,
    }
}

fn bloodraven(repo: &Repo, args: &[&str]) -> Output {
    run_program(Path::new(BIN), repo, args)
}

/// Runs `program` (this binary, or a copy of it) as [`bloodraven`] does.
fn run_program(program: &Path, repo: &Repo, args: &[&str]) -> Output {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_remove("BLOODRAVEN_BACKUP_PASSPHRASE")
        .env("BLOODRAVEN_MYSQL_USER", "root")
        .env("BLOODRAVEN_MYSQL_PASSWORD", "");
    for (key, value) in &repo.env {
        command.env(key, value);
    }
    command.output().expect("run bloodraven")
}

pub(crate) fn ok_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "bloodraven failed: {}",
        output_text(output)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", output_text(output)))
}

fn passphrase_file(dir: &Path, text: &str) -> String {
    let path = dir.join("passphrase");
    std::fs::write(&path, format!("{text}\n")).expect("passphrase");
    path.display().to_string()
}

/// A small shop: orders with JSON, DECIMAL, DATETIME(6), BLOB, NULLs and emoji, and a
/// view, so the CLI's round trip covers the wiring (type coverage is the engine's test).
pub(crate) fn seed(source: &MysqlInstance) {
    source
        .sql(
            "SET SESSION cte_max_recursion_depth = 1000000; CREATE DATABASE shop; \
             CREATE TABLE shop.orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, customer VARCHAR(64), \
               total DECIMAL(12,2), placed DATETIME(6), doc JSON, blob_col BLOB, note TEXT); \
             CREATE TABLE shop.empty_table (id INT PRIMARY KEY); \
             CREATE VIEW shop.big_orders AS SELECT id, total FROM shop.orders WHERE total > 500; \
             INSERT INTO shop.orders (customer, total, placed, doc, blob_col, note) \
               WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
               SELECT CONCAT('c', i), i % 1000 + 0.25, TIMESTAMP('2026-01-01') + INTERVAL i SECOND, \
                 JSON_OBJECT('i', i, 'tags', JSON_ARRAY('a', 'b')), UNHEX(SHA2(i, 256)), \
                 IF(i % 7 = 0, NULL, CONCAT('note \\t\\n \u{1F600} ', i)) FROM n;",
        )
        .expect("seed");
}

pub(crate) fn checksums(server: &MysqlInstance) -> String {
    server
        .sql("CHECKSUM TABLE shop.orders, shop.empty_table; SELECT COUNT(*) FROM shop.big_orders;")
        .expect("checksum")
}

pub(crate) fn gtid_executed(server: &MysqlInstance) -> String {
    server
        .sql("SELECT @@GLOBAL.gtid_executed")
        .expect("gtid")
        .replace(['\n', ' '], "")
}

pub(crate) fn create(repo: &Repo, source: &MysqlInstance, extra: &[&str]) -> Value {
    let address = source.address();
    let mut args = vec![
        "backup",
        "create",
        "--source",
        &address,
        "--to",
        &repo.url,
        "--threads",
        "2",
    ];
    args.extend_from_slice(extra);
    ok_json(&bloodraven(repo, &args))
}

pub(crate) fn restore(repo: &Repo, id: &str, target: &MysqlInstance, extra: &[&str]) -> Output {
    let address = target.address();
    let mysql = dep_tool("mysql").display().to_string();
    let mysqlbinlog = dep_tool("mysqlbinlog").display().to_string();
    let mut args = vec![
        "backup",
        "restore",
        "--from",
        &repo.url,
        "--id",
        id,
        "--target",
        &address,
        "--mysql",
        &mysql,
        "--mysqlbinlog",
        &mysqlbinlog,
    ];
    args.extend_from_slice(extra);
    bloodraven(repo, &args)
}

fn round_trip(repo: &Repo, encrypted: bool) {
    let cluster = MysqlCluster::start(2).expect("mysql");
    let (source, target) = (cluster.get(0).expect("0"), cluster.get(1).expect("1"));
    seed(source);
    let secrets = tempfile::tempdir().expect("tempdir");
    let file = passphrase_file(secrets.path(), "correct horse battery staple");
    let create_extra: Vec<&str> = if encrypted {
        vec!["--encrypt-passphrase-file", &file]
    } else {
        vec![]
    };
    let manifest = create(repo, source, &create_extra);
    let id = manifest["id"].as_str().expect("id").to_owned();
    assert_eq!(
        manifest["gtidExecuted"].as_str().expect("gtid"),
        gtid_executed(source)
    );
    assert_eq!(manifest["encryption"].is_object(), encrypted, "{manifest}");
    let orders = manifest["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["table"] == "orders")
        .expect("orders listed");
    assert_eq!(orders["rows"], 20000);

    let listed = ok_json(&bloodraven(
        repo,
        &["backup", "list", "--from", &repo.url, "--format", "json"],
    ));
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["state"], "complete");

    let read_extra: Vec<&str> = if encrypted {
        vec!["--passphrase-file", &file]
    } else {
        vec![]
    };
    let mut verify_args = vec!["backup", "verify", "--from", &repo.url, "--id", &id];
    verify_args.extend_from_slice(&read_extra);
    let verified = ok_json(&bloodraven(repo, &verify_args));
    assert_eq!(verified["verified"], true);

    let restored = ok_json(&restore(repo, &id, target, &read_extra));
    assert_eq!(restored["rows"], 20000);
    assert_eq!(checksums(target), checksums(source));
    assert_eq!(
        gtid_executed(target),
        manifest["gtidExecuted"].as_str().expect("gtid")
    );
}

#[test]
fn backup_cli_round_trip_plain_on_a_directory() {
    round_trip(&file_repo(), false);
}

#[test]
fn backup_cli_round_trip_encrypted_on_s3() {
    let s3 = SeaweedS3::start();
    round_trip(&s3_repo(&s3, "backups"), true);
}

/// Every kind of damage to a stored backup is named, and the target stays untouched.
#[test]
fn backup_cli_restore_refuses_damaged_backups_and_writes_nothing() {
    let cluster = MysqlCluster::start(2).expect("mysql");
    let (source, target) = (cluster.get(0).expect("0"), cluster.get(1).expect("1"));
    seed(source);
    let repo = file_repo();
    let secrets = tempfile::tempdir().expect("tempdir");
    let file = passphrase_file(secrets.path(), "right");
    let wrong = secrets.path().join("wrong");
    std::fs::write(&wrong, "wrong").expect("wrong");
    let wrong = wrong.display().to_string();
    // Small chunks, so the orders table has several to swap.
    let manifest = create(
        &repo,
        source,
        &["--encrypt-passphrase-file", &file, "--chunk-mib", "1"],
    );
    let id = manifest["id"].as_str().expect("id").to_owned();
    let data = repo
        .dir
        .as_ref()
        .expect("dir")
        .join("backups")
        .join(&id)
        .join("data");
    let mut chunks: Vec<PathBuf> = walk(&data)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("orders"))
        .collect();
    chunks.sort();
    assert!(chunks.len() >= 2, "expected several chunks, got {chunks:?}");
    let (a, b) = (chunks[0].clone(), chunks[1].clone());
    let original_a = std::fs::read(&a).expect("read");
    let original_b = std::fs::read(&b).expect("read");

    let untouched = |what: &str, output: &Output, expect: &str| {
        assert!(!output.status.success(), "{what}: restore succeeded");
        let text = output_text(output);
        assert!(
            text.contains(expect),
            "{what}: expected {expect:?} in: {text}"
        );
        let schemas = target
            .sql("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'shop'")
            .expect("schemata");
        assert_eq!(schemas.trim(), "0", "{what}: the target was written to");
    };

    untouched(
        "wrong passphrase",
        &restore(&repo, &id, target, &["--passphrase-file", &wrong]),
        "wrong passphrase",
    );
    untouched(
        "no passphrase",
        &restore(&repo, &id, target, &[]),
        "encrypted",
    );

    let mut flipped = original_a.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    std::fs::write(&a, &flipped).expect("flip");
    untouched(
        "flipped byte",
        &restore(&repo, &id, target, &["--passphrase-file", &file]),
        "digest check failed",
    );

    std::fs::write(&a, &original_a[..original_a.len() - 7]).expect("truncate");
    untouched(
        "truncated",
        &restore(&repo, &id, target, &["--passphrase-file", &file]),
        "size check failed",
    );

    std::fs::write(&a, &original_b).expect("swap");
    std::fs::write(&b, &original_a).expect("swap");
    untouched(
        "swapped chunks",
        &restore(&repo, &id, target, &["--passphrase-file", &file]),
        "check failed",
    );

    std::fs::remove_file(&a).expect("remove");
    std::fs::write(&b, &original_b).expect("restore b");
    untouched(
        "missing chunk",
        &restore(&repo, &id, target, &["--passphrase-file", &file]),
        "not found",
    );

    std::fs::write(&a, &original_a).expect("put back");
    let restored = ok_json(&restore(&repo, &id, target, &["--passphrase-file", &file]));
    assert_eq!(restored["rows"], 20000);
    assert_eq!(checksums(target), checksums(source));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Base backup, then transactions archived from the binary log; restores to a GTID in the
/// middle and to a time hold exactly the transactions up to the target.
/// One pass of `binlog archive` from `source` into `repo`; the names it archived.
fn archive_once(repo: &Repo, source: &MysqlInstance, extra: &[&str]) -> Value {
    let address = source.address();
    let mysqlbinlog = dep_tool("mysqlbinlog").display().to_string();
    let mysql = dep_tool("mysql").display().to_string();
    let mut args = vec![
        "binlog",
        "archive",
        "--source",
        &address,
        "--to",
        &repo.url,
        "--once",
        "--mysqlbinlog",
        &mysqlbinlog,
        "--mysql",
        &mysql,
    ];
    args.extend_from_slice(extra);
    ok_json(&bloodraven(repo, &args))
}

#[test]
fn backup_cli_point_in_time_restore_to_a_gtid_and_to_a_time() {
    let cluster = MysqlCluster::start(3).expect("mysql");
    let (source, by_gtid, by_time) = (
        cluster.get(0).expect("0"),
        cluster.get(1).expect("1"),
        cluster.get(2).expect("2"),
    );
    source
        .sql("CREATE DATABASE ledger; CREATE TABLE ledger.entries (id INT PRIMARY KEY, at DATETIME(6));")
        .expect("schema");
    let repo = file_repo();
    let base = create(&repo, source, &[]);
    let id = base["id"].as_str().expect("id").to_owned();
    // Ten single-row transactions after the base, the fifth's GTID remembered, and a
    // pause in the middle so a time falls between the fifth and the sixth.
    let mut middle_gtid = String::new();
    for i in 1..=10 {
        source
            .sql(&format!(
                "INSERT INTO ledger.entries VALUES ({i}, UTC_TIMESTAMP(6))"
            ))
            .expect("insert");
        if i == 5 {
            middle_gtid = gtid_executed(source);
            std::thread::sleep(Duration::from_millis(2100));
        }
    }
    let archived = archive_once(&repo, source, &["--rotate"]);
    assert!(
        !archived.as_array().expect("names").is_empty(),
        "{archived}"
    );

    // To the fifth transaction's GTID set: exactly ids 1..=5.
    let restored = ok_json(&restore(
        &repo,
        &id,
        by_gtid,
        &["--until-gtid", &middle_gtid],
    ));
    assert!(
        !restored["replayedBinlogs"]
            .as_array()
            .expect("replayed")
            .is_empty()
    );
    assert_eq!(
        by_gtid
            .sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM ledger.entries")
            .expect("ids")
            .trim(),
        "1,2,3,4,5"
    );
    assert_eq!(gtid_executed(by_gtid), middle_gtid);

    // The archive in a repository of its own (a PITR profile that is not the backup's):
    // the logs copied there by a second archiver, and removed from beside the backup.
    let elsewhere = file_repo();
    archive_once(&elsewhere, source, &[]);
    std::fs::remove_dir_all(repo.dir.as_ref().expect("dir").join("binlogs")).expect("rm binlogs");
    let stop = pause_time(source);
    let refused = restore(&repo, &id, by_time, &["--until-time", &stop]);
    assert!(!refused.status.success());
    assert!(
        output_text(&refused).contains("--binlogs-from"),
        "{}",
        output_text(&refused)
    );
    // To a time in the pause after the fifth: the same five, not the sixth.
    ok_json(&restore(
        &repo,
        &id,
        by_time,
        &["--until-time", &stop, "--binlogs-from", &elsewhere.url],
    ));
    assert_eq!(
        by_time
            .sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM ledger.entries")
            .expect("ids")
            .trim(),
        "1,2,3,4,5"
    );

    // A target beyond the archive is refused before anything is written.
    let beyond = format!(
        "{}:1-100000",
        source.sql("SELECT @@server_uuid").expect("uuid").trim()
    );
    let refused = restore(
        &repo,
        &id,
        cluster.get(2).expect("2"),
        &[
            "--until-gtid",
            &beyond,
            "--reset-gtids",
            "--binlogs-from",
            &elsewhere.url,
        ],
    );
    assert!(!refused.status.success());
    assert!(
        output_text(&refused).contains("cannot reach the target"),
        "{}",
        output_text(&refused)
    );
}

/// The two-image pattern's first half for real: `copy-self` puts a runnable copy of the
/// binary in a directory (an emptyDir in a pod), and that copy archives, verifies with a
/// replay to the latest archived transaction, and restores to a plain UTC time while
/// leaving one transaction out (`--exclude-gtids`), with MySQL's own tools.
#[test]
fn backup_cli_copied_binary_archives_verifies_and_restores_to_a_point_in_time() {
    let shared = tempfile::tempdir().expect("tempdir");
    let copy = copy_self(shared.path());
    let cluster = MysqlCluster::start(3).expect("mysql");
    let (source, scratch, target) = (
        cluster.get(0).expect("0"),
        cluster.get(1).expect("1"),
        cluster.get(2).expect("2"),
    );
    source
        .sql("CREATE DATABASE ledger; CREATE TABLE ledger.entries (id INT PRIMARY KEY);")
        .expect("schema");
    let repo = file_repo();
    let id = create(&repo, source, &[])["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut third = String::new();
    for i in 1..=4 {
        source
            .sql(&format!("INSERT INTO ledger.entries VALUES ({i})"))
            .expect("insert");
        if i == 3 {
            // This server's history is one range, uuid:1-N: the third insert is N.
            let executed = gtid_executed(source);
            let (uuid, range) = executed.split_once(':').expect("uuid:range");
            let last = range.rsplit('-').next().expect("last");
            third = format!("{uuid}:{last}");
        }
    }
    let (mysqlbinlog, mysql) = (
        dep_tool("mysqlbinlog").display().to_string(),
        dep_tool("mysql").display().to_string(),
    );
    let tools = ["--mysqlbinlog", &mysqlbinlog, "--mysql", &mysql];
    let address = source.address();
    let mut archive = vec!["binlog", "archive", "--source", &address, "--to", &repo.url];
    archive.extend(["--once", "--rotate"]);
    archive.extend(tools);
    ok_json(&run_program(&copy, &repo, &archive));

    // Verify, replaying everything archived: all four rows are in the scratch server.
    let scratch_address = scratch.address();
    let mut verify = vec![
        "backup",
        "verify",
        "--from",
        &repo.url,
        "--id",
        &id,
        "--target",
        &scratch_address,
        "--until-latest",
    ];
    verify.extend(tools);
    let report = ok_json(&run_program(&copy, &repo, &verify));
    assert!(
        report["restore"]["replayedBinlogs"]
            .as_array()
            .is_some_and(|logs| !logs.is_empty()),
        "{report}"
    );
    let ids = |server: &MysqlInstance| {
        server
            .sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM ledger.entries")
            .expect("ids")
            .trim()
            .to_owned()
    };
    assert_eq!(ids(scratch), "1,2,3,4");

    // Restore to a plain `YYYY-MM-DD HH:MM:SS` (UTC) time past the archive, leaving the
    // third insert out.
    let later = source
        .sql("SELECT DATE_FORMAT(UTC_TIMESTAMP() + INTERVAL 1 HOUR, '%Y-%m-%d %H:%i:%S')")
        .expect("time")
        .trim()
        .to_owned();
    let target_address = target.address();
    let mut restore = vec![
        "backup",
        "restore",
        "--from",
        &repo.url,
        "--id",
        &id,
        "--target",
        &target_address,
        "--until-time",
        &later,
        "--exclude-gtids",
        &third,
        "--record-as",
        "db.restore-orders-1",
    ];
    restore.extend(tools);
    let report = ok_json(&run_program(&copy, &repo, &restore));
    assert_eq!(ids(target), "1,2,4");
    record_matches_report(&repo, "db.restore-orders-1", &report);
    exclude_needs_a_replay(&copy, &repo, &id, &scratch_address, &third);
}

/// `bloodraven copy-self` into `dir`: the copy is whole and executable.
fn copy_self(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let copy = dir.join("bloodraven");
    let copied = Command::new(BIN)
        .args(["copy-self", "--to"])
        .arg(&copy)
        .output()
        .expect("copy-self");
    assert!(copied.status.success(), "{}", output_text(&copied));
    let mode = std::fs::metadata(&copy).expect("copy").permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
    assert_eq!(
        std::fs::read(&copy).expect("copy"),
        std::fs::read(BIN).expect("original")
    );
    copy
}

/// The record the operator reads (`restores/NAME.json`) says what was replayed, as the
/// restore's report does.
fn record_matches_report(repo: &Repo, name: &str, report: &Value) {
    let path = repo
        .dir
        .as_ref()
        .expect("dir")
        .join(format!("restores/{name}.json"));
    let record: Value =
        serde_json::from_slice(&std::fs::read(path).expect("record")).expect("record JSON");
    assert_eq!(record["replayedBinlogs"], report["replayedBinlogs"]);
    assert!(
        record["replayedBinlogs"]
            .as_array()
            .is_some_and(|logs| !logs.is_empty()),
        "{record}"
    );
    assert_eq!(record["gtidExecuted"], report["gtidExecuted"]);
}

/// Without a replay target, --exclude-gtids is refused before anything is written.
fn exclude_needs_a_replay(copy: &Path, repo: &Repo, id: &str, target: &str, gtids: &str) {
    let refused = run_program(
        copy,
        repo,
        &[
            "backup",
            "restore",
            "--from",
            &repo.url,
            "--id",
            id,
            "--target",
            target,
            "--exclude-gtids",
            gtids,
        ],
    );
    assert!(!refused.status.success());
    assert!(
        output_text(&refused).contains("--exclude-gtids applies to a replay"),
        "{}",
        output_text(&refused)
    );
}

/// The instant halfway through the pause between the fifth and the sixth insert.
fn pause_time(source: &MysqlInstance) -> String {
    let text = source
        .sql("SET time_zone = '+00:00'; SELECT DATE_FORMAT(FROM_UNIXTIME((UNIX_TIMESTAMP(e5.at) + UNIX_TIMESTAMP(e6.at)) / 2), '%Y-%m-%dT%H:%i:%S') \
              FROM ledger.entries e5, ledger.entries e6 WHERE e5.id = 5 AND e6.id = 6")
        .expect("pause");
    // Formatted in UTC (the session's zone set above), whatever the machine's zone is.
    format!("{}Z", text.trim())
}

/// A backup killed midway is never listed as complete; one whose source dies fails
/// cleanly, names why, and is listed as failed.
#[test]
fn backup_cli_interrupted_backups_are_never_complete() {
    let cluster = MysqlCluster::start(1).expect("mysql");
    let source = cluster.get(0).expect("0");
    source
        .sql("SET SESSION cte_max_recursion_depth = 1000000; CREATE DATABASE big; CREATE TABLE big.t (id INT PRIMARY KEY, pad CHAR(200)); \
              INSERT INTO big.t WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) \
              SELECT i, REPEAT('x', 200) FROM n;")
        .expect("seed");
    let repo = file_repo();
    let address = source.address();
    let mut child = Command::new(BIN)
        .args([
            "backup",
            "create",
            "--source",
            &address,
            "--to",
            &repo.url,
            "--threads",
            "1",
            "--chunk-mib",
            "1",
        ])
        .env("BLOODRAVEN_MYSQL_USER", "root")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Kill it once it has written its first chunk.
    let deadline = Instant::now() + Duration::from_secs(60);
    let repo_dir = repo.dir.clone().expect("dir");
    while !walk_if(&repo_dir)
        .iter()
        .any(|p| p.to_string_lossy().contains("/data/"))
    {
        assert!(
            Instant::now() < deadline,
            "the backup wrote no chunk in 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill");
    let _ = child.wait();
    let listed = ok_json(&bloodraven(
        &repo,
        &["backup", "list", "--from", &repo.url, "--format", "json"],
    ));
    assert_eq!(listed.as_array().expect("list").len(), 1);
    assert_eq!(listed[0]["state"], "running", "{listed}");

    // The source dies during the next backup.
    let child = Command::new(BIN)
        .args([
            "backup",
            "create",
            "--source",
            &address,
            "--to",
            &repo.url,
            "--threads",
            "1",
            "--chunk-mib",
            "1",
        ])
        .env("BLOODRAVEN_MYSQL_USER", "root")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(300));
    source.kill9().expect("kill mysqld");
    let output = child.wait_with_output().expect("wait");
    assert!(
        !output.status.success(),
        "the backup succeeded without its source"
    );
    let listed = ok_json(&bloodraven(
        &repo,
        &["backup", "list", "--from", &repo.url, "--format", "json"],
    ));
    let states: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["state"].as_str().unwrap_or(""))
        .collect();
    assert!(!states.contains(&"complete"), "{listed}");
    assert!(states.contains(&"failed"), "{listed}");
    let failure = listed
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["state"] == "failed")
        .expect("failed");
    assert!(
        !failure["failure"]["message"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{failure}"
    );
}

fn walk_if(dir: &Path) -> Vec<PathBuf> {
    if dir.exists() { walk(dir) } else { Vec::new() }
}

/// The clone method: a CLONE of the source's data directory, archived encrypted, unpacked
/// into an empty directory, and a server started on it holds the same data with no replay.
#[test]
fn backup_cli_clone_method_round_trip() {
    let cluster = MysqlCluster::start(2).expect("mysql");
    let source = cluster.get(0).expect("0");
    seed(source);
    let repo = file_repo();
    let secrets = tempfile::tempdir().expect("tempdir");
    let file = passphrase_file(secrets.path(), "clone secret");
    let manifest = create(
        &repo,
        source,
        &["--method", "clone", "--encrypt-passphrase-file", &file],
    );
    assert_eq!(manifest["method"], "clone");
    assert_eq!(
        manifest["gtidExecuted"].as_str().expect("gtid"),
        gtid_executed(source)
    );
    let id = manifest["id"].as_str().expect("id").to_owned();
    let at_backup = checksums(source);
    // Two transactions after the clone, archived: a point in time between them is
    // reached by replaying into the started clone.
    source
        .sql("INSERT INTO shop.empty_table VALUES (1)")
        .expect("first");
    let after_first = gtid_executed(source);
    source
        .sql("INSERT INTO shop.empty_table VALUES (2)")
        .expect("second");
    archive_once(&repo, source, &["--rotate"]);

    let place = tempfile::tempdir().expect("tempdir");
    let instance_dir = place.path().join("restored");
    let datadir = instance_dir.join("data");
    let datadir_arg = datadir.display().to_string();
    // A logical-style restore of a clone is refused with the way to do it.
    let wrong = restore(&repo, &id, source, &["--passphrase-file", &file]);
    assert!(!wrong.status.success());
    assert!(
        output_text(&wrong).contains("--target-datadir"),
        "{}",
        output_text(&wrong)
    );

    let restored = ok_json(&unpack(&repo, &id, &datadir_arg, &file));
    assert_eq!(restored["gtidExecuted"], manifest["gtidExecuted"]);
    // Unpacking never writes over anything.
    let again = unpack(&repo, &id, &datadir_arg, &file);
    assert!(
        !again.status.success() && output_text(&again).contains("not empty"),
        "{}",
        output_text(&again)
    );

    let port = crate::support::mysql::free_port().expect("port");
    crate::support::mysql::start_unowned_instance(&instance_dir, port)
        .expect("start mysqld on the restored data");
    let query = |sql: &str| {
        let out = Command::new(dep_tool("mysql"))
            .args(["--no-defaults", "-N", "-B", "-uroot", "-h127.0.0.1"])
            .arg(format!("-P{port}"))
            .args(["-e", sql])
            .output()
            .expect("mysql");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let restored_sums = query(
        "CHECKSUM TABLE shop.orders, shop.empty_table; SELECT COUNT(*) FROM shop.big_orders;",
    );
    let restored_gtids = query("SELECT @@GLOBAL.gtid_executed").replace(['\n', ' '], "");
    let replay = |target: &str| replay_to(&repo, &id, target, &after_first, &file);
    let replayed = replay(&format!("127.0.0.1:{port}"));
    let replayed_rows = query("SELECT GROUP_CONCAT(id ORDER BY id) FROM shop.empty_table");
    let replayed_gtids = query("SELECT @@GLOBAL.gtid_executed").replace(['\n', ' '], "");
    let _ = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mysql-instance.sh"))
        .arg("stop")
        .arg(&instance_dir)
        .output();
    assert_eq!(restored_sums.trim_end(), at_backup.trim_end());
    assert_eq!(
        restored_gtids,
        manifest["gtidExecuted"].as_str().expect("gtid")
    );
    // The point in time: exactly the first transaction after the clone.
    let report = ok_json(&replayed);
    assert!(
        !report["replayedBinlogs"]
            .as_array()
            .expect("replayed")
            .is_empty(),
        "{report}"
    );
    assert_eq!(replayed_rows.trim(), "1");
    assert_eq!(replayed_gtids, after_first);
    // A server that does not hold the backup is refused, untouched.
    let empty = cluster.get(1).expect("1");
    let before = gtid_executed(empty);
    let refused = replay(&empty.address());
    assert!(!refused.status.success());
    assert!(
        output_text(&refused).contains("does not hold backup"),
        "{}",
        output_text(&refused)
    );
    assert_eq!(gtid_executed(empty), before);
}

/// `backup restore --target-datadir` of a clone backup.
fn unpack(repo: &Repo, id: &str, datadir: &str, passphrase: &str) -> Output {
    bloodraven(
        repo,
        &[
            "backup",
            "restore",
            "--from",
            &repo.url,
            "--id",
            id,
            "--target-datadir",
            datadir,
            "--passphrase-file",
            passphrase,
        ],
    )
}

/// `backup replay` of the archive past backup `id` into `target`, up to `until`.
fn replay_to(repo: &Repo, id: &str, target: &str, until: &str, passphrase: &str) -> Output {
    let mysql = dep_tool("mysql").display().to_string();
    let mysqlbinlog = dep_tool("mysqlbinlog").display().to_string();
    bloodraven(
        repo,
        &[
            "backup",
            "replay",
            "--from",
            &repo.url,
            "--id",
            id,
            "--target",
            target,
            "--until-gtid",
            until,
            "--passphrase-file",
            passphrase,
            "--mysql",
            &mysql,
            "--mysqlbinlog",
            &mysqlbinlog,
        ],
    )
}

/// `--replace-schemas`: the live server goes back to the backup. What was written since
/// (rows, a new schema) is gone, the GTID history is the backup's, and a damaged backup is
/// refused before anything is dropped.
#[test]
fn backup_cli_in_place_restore_replaces_every_user_schema() {
    let cluster = MysqlCluster::start(1).expect("mysql");
    let server = cluster.get(0).expect("0");
    seed(server);
    let repo = file_repo();
    let manifest = create(&repo, server, &[]);
    let id = manifest["id"].as_str().expect("id").to_owned();
    let at_backup = checksums(server);
    server
        .sql(
            "DELETE FROM shop.orders WHERE id <= 100; INSERT INTO shop.empty_table VALUES (1); \
             CREATE DATABASE scratch; CREATE TABLE scratch.t (id INT PRIMARY KEY); \
             INSERT INTO scratch.t VALUES (7);",
        )
        .expect("writes after the backup");
    assert_ne!(checksums(server), at_backup);

    // Without the flag the live server is refused: its schemas exist.
    let refused = restore(&repo, &id, server, &["--reset-gtids"]);
    assert!(!refused.status.success(), "{}", output_text(&refused));

    // A backup whose artifact is damaged: refused with nothing dropped.
    let dir = repo.dir.clone().expect("dir");
    let damaged = walk(&dir.join("backups").join(&id).join("data"))
        .into_iter()
        .find(|p| p.to_string_lossy().contains("orders"))
        .expect("a chunk of orders");
    let original = std::fs::read(&damaged).expect("read chunk");
    let mut flipped = original.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    std::fs::write(&damaged, &flipped).expect("damage");
    let refused = restore(&repo, &id, server, &["--replace-schemas"]);
    assert!(!refused.status.success(), "{}", output_text(&refused));
    assert_eq!(
        server
            .sql("SELECT COUNT(*) FROM scratch.t")
            .expect("scratch kept")
            .trim(),
        "1"
    );
    std::fs::write(&damaged, &original).expect("repair");

    let restored = ok_json(&restore(&repo, &id, server, &["--replace-schemas"]));
    assert_eq!(
        restored["droppedSchemas"],
        serde_json::json!(["scratch", "shop"])
    );
    assert_eq!(checksums(server), at_backup);
    assert_eq!(
        server
            .sql("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'scratch'")
            .expect("schemata")
            .trim(),
        "0"
    );
    assert_eq!(
        gtid_executed(server),
        manifest["gtidExecuted"].as_str().expect("gtid")
    );
}

/// Runs `backup verify` into `target` (emptied first) with `extra` flags; its JSON report,
/// which a failed verification prints too, and whether it succeeded.
fn verify_into(repo: &Repo, id: &str, target: &MysqlInstance, extra: &[&str]) -> (bool, Value) {
    target
        .sql("DROP DATABASE IF EXISTS shop")
        .expect("empty the scratch server");
    let address = target.address();
    let mut args = vec![
        "backup",
        "verify",
        "--from",
        &repo.url,
        "--id",
        id,
        "--target",
        &address,
        "--reset-gtids",
    ];
    args.extend_from_slice(extra);
    let output = bloodraven(repo, &args);
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", output_text(&output)));
    (output.status.success(), report)
}

fn record(repo: &Repo, name: &str) -> Value {
    let path = repo
        .dir
        .as_ref()
        .expect("dir")
        .join("verifications")
        .join(format!("{name}.json"));
    serde_json::from_slice(&std::fs::read(&path).expect("the record")).expect("record JSON")
}

/// `--sanity-min-value` and `--sanity-timeout-seconds`: the query's first column is the
/// scalar (no row counts as 0), it must reach the minimum and finish in time; a failed check
/// still prints its `sanityCheck`, and `--record-as` leaves the outcome in the repository
/// either way.
#[test]
fn backup_cli_verify_sanity_check_meets_or_misses_its_expectation() {
    let cluster = MysqlCluster::start(2).expect("mysql");
    let (source, target) = (cluster.get(0).expect("0"), cluster.get(1).expect("1"));
    source
        .sql(
            "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(20)); \
             INSERT INTO shop.orders VALUES (1, 'first'), (2, 'second'), (3, 'third');",
        )
        .expect("seed");
    let repo = file_repo();
    let manifest = create(&repo, source, &[]);
    let id = manifest["id"].as_str().expect("id").to_owned();
    let count = "SELECT COUNT(*) FROM shop.orders";

    let (ok, report) = verify_into(
        &repo,
        &id,
        target,
        &[
            "--sanity-query",
            count,
            "--sanity-min-value",
            "3",
            "--record-as",
            "v-met",
        ],
    );
    assert!(ok, "{report}");
    let check = &report["sanityCheck"];
    assert_eq!(check["ran"], true, "{report}");
    assert_eq!(check["resultRow"], "3", "{report}");
    assert!(check["durationMs"].as_i64().is_some(), "{report}");
    assert!(check.get("error").is_none(), "{report}");
    let met = record(&repo, "v-met");
    assert_eq!(met["verified"], true, "{met}");
    assert_eq!(met["backupId"], id.as_str(), "{met}");
    assert_eq!(met["sanityCheck"]["resultRow"], "3", "{met}");

    let (ok, report) = verify_into(
        &repo,
        &id,
        target,
        &[
            "--sanity-query",
            count,
            "--sanity-min-value",
            "4",
            "--record-as",
            "v-missed",
        ],
    );
    assert!(!ok, "{report}");
    assert_eq!(report["verified"], false, "{report}");
    assert_eq!(report["reason"], "SanityCheckFailed", "{report}");
    assert_eq!(report["sanityCheck"]["resultRow"], "3", "{report}");
    let error = report["sanityCheck"]["error"].as_str().expect("error");
    assert!(error.contains("less than the minimum 4"), "{error}");
    let missed = record(&repo, "v-missed");
    assert_eq!(missed["verified"], false, "{missed}");
    assert_eq!(missed["reason"], "SanityCheckFailed", "{missed}");
    assert!(
        missed["error"]
            .as_str()
            .is_some_and(|e| e.contains("minimum 4")),
        "{missed}"
    );

    empty_and_odd_results(&repo, &id, target);
    a_slow_query_is_stopped_at_its_limit(&repo, &id, target);
}

/// An empty result is 0: below a minimum of 1 (and, without a minimum, no row fails); a
/// value that is not an integer is named.
fn empty_and_odd_results(repo: &Repo, id: &str, target: &MysqlInstance) {
    let none = "SELECT id FROM shop.orders WHERE id > 100";
    let (ok, report) = verify_into(
        repo,
        id,
        target,
        &["--sanity-query", none, "--sanity-min-value", "1"],
    );
    assert!(!ok, "{report}");
    assert!(report["sanityCheck"].get("resultRow").is_none(), "{report}");
    let error = report["sanityCheck"]["error"].as_str().expect("error");
    assert!(
        error.contains("returned 0, less than the minimum 1"),
        "{error}"
    );
    let (ok, report) = verify_into(repo, id, target, &["--sanity-query", none]);
    assert!(!ok, "{report}");
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("no rows")),
        "{report}"
    );
    let (ok, report) = verify_into(
        repo,
        id,
        target,
        &["--sanity-query", none, "--sanity-min-value", "0"],
    );
    assert!(ok, "{report}");

    // A value that is not an integer is named.
    let (ok, report) = verify_into(
        repo,
        id,
        target,
        &[
            "--sanity-query",
            "SELECT note FROM shop.orders WHERE id = 2",
            "--sanity-min-value",
            "1",
        ],
    );
    assert!(!ok, "{report}");
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("\"second\" is not an integer")),
        "{report}"
    );
}

/// Over the limit: stopped at it, not after the query's own five seconds.
fn a_slow_query_is_stopped_at_its_limit(repo: &Repo, id: &str, target: &MysqlInstance) {
    let asked = Instant::now();
    let (ok, report) = verify_into(
        repo,
        id,
        target,
        &[
            "--sanity-query",
            "SELECT SLEEP(5)",
            "--sanity-timeout-seconds",
            "1",
            "--record-as",
            "v-slow",
        ],
    );
    let took = asked.elapsed();
    assert!(!ok, "{report}");
    assert_eq!(report["reason"], "SanityCheckTimeout", "{report}");
    let error = report["sanityCheck"]["error"].as_str().expect("error");
    assert!(error.contains("within 1s"), "{error}");
    let ms = report["sanityCheck"]["durationMs"].as_i64().expect("ms");
    assert!((1000..4000).contains(&ms), "{report}");
    assert!(took < Duration::from_secs(5), "{took:?}: {report}");
    assert_eq!(record(repo, "v-slow")["reason"], "SanityCheckTimeout");
}

/// The archived logs' index names (`binlog.000003`) in a file repository.
fn archived_names(repo: &Repo) -> Vec<String> {
    let mut names: Vec<String> = walk_if(&repo.dir.clone().expect("a file repository"))
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "binlogs"))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    names.sort();
    names
}

/// Binary-log pruning: `binlog archive --prune` deletes the archived logs every complete
/// backup holds, never the newest; the next pass does not archive them again; a restore
/// from the kept backup to a later time still has every log it needs; and `backup prune`
/// reports the logs it pruned after deleting backups.
#[test]
fn backup_cli_binlog_prune_keeps_what_a_kept_backup_needs() {
    let cluster = MysqlCluster::start(2).expect("mysql");
    let (source, target) = (cluster.get(0).expect("0"), cluster.get(1).expect("1"));
    let repo = file_repo();
    let (mysqlbinlog, mysql) = (
        dep_tool("mysqlbinlog").display().to_string(),
        dep_tool("mysql").display().to_string(),
    );
    let address = source.address();
    let archive = |extra: &[&str]| {
        let mut args = vec!["binlog", "archive", "--source", &address, "--to", &repo.url];
        args.extend([
            "--once",
            "--rotate",
            "--mysqlbinlog",
            &mysqlbinlog,
            "--mysql",
            &mysql,
        ]);
        args.extend(extra);
        ok_json(&bloodraven(&repo, &args))
    };
    source
        .sql("CREATE DATABASE ledger; CREATE TABLE ledger.entries (id INT PRIMARY KEY);")
        .expect("schema");
    source
        .sql("INSERT INTO ledger.entries VALUES (1)")
        .expect("insert");
    archive(&[]);
    source
        .sql("INSERT INTO ledger.entries VALUES (2)")
        .expect("insert");
    archive(&[]);
    let before = archived_names(&repo);
    assert!(before.len() >= 2, "{before:?}");

    // A backup now holds everything archived so far; one more write, archived, pruning.
    let id = create(&repo, source, &[])["id"]
        .as_str()
        .expect("id")
        .to_owned();
    source
        .sql("INSERT INTO ledger.entries VALUES (3)")
        .expect("insert");
    archive(&["--prune"]);
    let after = archived_names(&repo);
    assert_eq!(
        after.len(),
        1,
        "only the newest log stays: {before:?} -> {after:?}"
    );
    assert!(
        !before.contains(&after[0]),
        "the newest is the log after the backup"
    );
    // Nothing pruned comes back: the next pass resumes after the newest archived log.
    assert_eq!(archive(&[]), serde_json::json!([]));
    assert_eq!(archived_names(&repo), after);

    // The kept backup restores to a later time with what is left: every row.
    let later = source
        .sql("SELECT DATE_FORMAT(UTC_TIMESTAMP() + INTERVAL 1 HOUR, '%Y-%m-%d %H:%i:%S')")
        .expect("time")
        .trim()
        .to_owned();
    ok_json(&restore(&repo, &id, target, &["--until-time", &later]));
    assert_eq!(
        target
            .sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM ledger.entries")
            .expect("ids")
            .trim(),
        "1,2,3"
    );

    // `backup prune` prunes the archive after the backups: a second backup holds the
    // fourth write, the first is deleted (one kept), and the log holding the third write
    // goes; the fourth's, the newest, stays.
    source
        .sql("INSERT INTO ledger.entries VALUES (4)")
        .expect("insert");
    archive(&[]);
    // Backups are ordered by their finish time, kept to the second.
    std::thread::sleep(Duration::from_millis(1100));
    create(&repo, source, &[]);
    let pruned = ok_json(&bloodraven(
        &repo,
        &[
            "backup",
            "prune",
            "--from",
            &repo.url,
            "--count",
            "1",
            "--max-age-days",
            "0",
            "--min-keep",
            "1",
        ],
    ));
    assert_eq!(pruned["deleted"], serde_json::json!([id]), "{pruned}");
    let logs = pruned["prunedBinlogs"].as_array().expect("prunedBinlogs");
    assert_eq!(logs.len(), 1, "{pruned}");
    assert!(
        logs[0].as_str().is_some_and(|l| l.ends_with(&after[0])),
        "{pruned}"
    );
    assert_eq!(archived_names(&repo).len(), 1);
}

/// A profile's `dump.includeSchemas`/`excludeSchemas`: the dump takes exactly the schemas
/// they leave, a restore brings back only those, a name the server lacks fails the backup
/// saying which, and a clone (the whole instance) refuses a filter.
#[test]
fn backup_cli_schema_filters_take_only_the_named_schemas() {
    let cluster = MysqlCluster::start(2).expect("mysql");
    let (source, target) = (cluster.get(0).expect("0"), cluster.get(1).expect("1"));
    source
        .sql(
            "CREATE DATABASE tenant_a; CREATE TABLE tenant_a.t (id INT PRIMARY KEY); \
             INSERT INTO tenant_a.t VALUES (1), (2); \
             CREATE DATABASE tenant_b; CREATE TABLE tenant_b.t (id INT PRIMARY KEY); \
             INSERT INTO tenant_b.t VALUES (3); \
             CREATE DATABASE scratch; CREATE TABLE scratch.t (id INT PRIMARY KEY);",
        )
        .expect("schemas");
    let repo = file_repo();
    let taken = create(
        &repo,
        source,
        &[
            "--include-schema",
            "tenant_a",
            "--include-schema",
            "scratch",
            "--exclude-schema",
            "scratch",
        ],
    );
    let id = taken["id"].as_str().expect("id").to_owned();
    ok_json(&restore(&repo, &id, target, &[]));
    assert_eq!(
        target
            .sql(
                "SELECT GROUP_CONCAT(SCHEMA_NAME ORDER BY SCHEMA_NAME) FROM information_schema.SCHEMATA \
                 WHERE SCHEMA_NAME NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema')"
            )
            .expect("schemas")
            .trim(),
        "tenant_a"
    );
    assert_eq!(
        target
            .sql("SELECT COUNT(*) FROM tenant_a.t")
            .expect("rows")
            .trim(),
        "2"
    );

    // A typo is an error naming it, and no complete backup is left behind.
    let address = source.address();
    let refused = |extra: &[&str], says: &str| {
        let mut args = vec!["backup", "create", "--source", &address, "--to", &repo.url];
        args.extend_from_slice(extra);
        let output = bloodraven(&repo, &args);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(
            output_text(&output).contains(says),
            "{}",
            output_text(&output)
        );
    };
    refused(&["--include-schema", "tenant_c"], "tenant_c");
    refused(
        &["--method", "clone", "--include-schema", "tenant_a"],
        "logical method",
    );
    let listed = ok_json(&bloodraven(
        &repo,
        &["backup", "list", "--from", &repo.url, "--format", "json"],
    ));
    let complete: Vec<&Value> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter(|b| b["state"] == "complete")
        .collect();
    assert_eq!(complete.len(), 1, "{listed}");
}

/// `backup delete` names one backup by its id, which is one path segment of the
/// repository: anything else is refused before the repository is touched, and a backup
/// that is not there counts as deleted (a retried cleanup Job succeeds).
#[test]
fn backup_cli_delete_takes_one_backup_id_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep"), "x").unwrap();
    let repo = format!("file://{}/repo", dir.path().display());
    for id in ["../outside", "a/b", "..", "", "x y"] {
        let out = Command::new(BIN)
            .args(["backup", "delete", "--from", &repo, "--id", id])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{id:?}: {}", output_text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--id"),
            "{id:?}: {}",
            output_text(&out)
        );
    }
    assert!(outside.join("keep").is_file());
    let out = Command::new(BIN)
        .args(["backup", "delete", "--from", &repo, "--id", "never-taken"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let said: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(said["deleted"], "never-taken");
}

/// Every archived log's index (`binlogs/<uuid>/<name>.json`) in a file repository, parsed.
fn archived_indexes(repo: &Repo) -> Vec<Value> {
    walk_if(&repo.dir.clone().expect("a file repository"))
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "binlogs"))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| serde_json::from_slice(&std::fs::read(&p).expect("index")).expect("index JSON"))
        .collect()
}

/// `GET {base}/summary` until it answers a summary of at least `at_least` logs.
async fn summary_of(http: &reqwest::Client, base: &str, at_least: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = http.get(format!("{base}/summary")).send().await
            && response.status() == 200
        {
            let summary: Value = response.json().await.expect("summary JSON");
            if summary["count"].as_u64().is_some_and(|n| n >= at_least) {
                return summary;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no summary with {at_least} logs at {base}/summary"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A running archiver killed when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `binlog archive --status-listen`: the archiver answers `GET /summary` over HTTP with what
/// the archive holds after its last pass (what a real HTTP client reads equals the index
/// files on disk), 404 on any other path; and a port it cannot bind stops it at startup,
/// naming the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_cli_binlog_archive_serves_its_summary_over_http() {
    let cluster = MysqlCluster::start(1).expect("mysql");
    let source = cluster.get(0).expect("0");
    let repo = file_repo();
    let (mysqlbinlog, mysql) = (
        dep_tool("mysqlbinlog").display().to_string(),
        dep_tool("mysql").display().to_string(),
    );
    source
        .sql("CREATE DATABASE ledger; CREATE TABLE ledger.entries (id INT PRIMARY KEY); INSERT INTO ledger.entries VALUES (1)")
        .expect("schema");
    let port = crate::support::mysql::free_port().expect("port");
    let listen = format!("127.0.0.1:{port}");
    let address = source.address();
    let args = [
        "binlog",
        "archive",
        "--source",
        &address,
        "--to",
        &repo.url,
        "--interval",
        "1",
        "--rotate",
        "--status-listen",
        &listen,
        "--mysqlbinlog",
        &mysqlbinlog,
        "--mysql",
        &mysql,
    ];
    let child = Command::new(BIN)
        .args(args)
        .env_remove("BLOODRAVEN_BACKUP_PASSPHRASE")
        .env("BLOODRAVEN_MYSQL_USER", "root")
        .env("BLOODRAVEN_MYSQL_PASSWORD", "")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the archiver");
    let _running = Running(child);
    let http = bloodraven::adapters::sidecar::HttpSidecar::client(Duration::from_secs(2), None)
        .expect("client");
    let base = format!("http://{listen}");
    let summary_with = async |at_least: u64| summary_of(&http, &base, at_least).await;
    // Counted before the write: every pass after it archives one more log (--rotate).
    let first = summary_with(1).await["count"].as_u64().expect("count");
    source
        .sql("INSERT INTO ledger.entries VALUES (2)")
        .expect("insert");
    let mut summary = summary_with(first + 1).await;
    // The index files may have moved on since the answer: compare at a quiet moment, when
    // two answers a pass apart agree with the disk.
    let deadline = Instant::now() + Duration::from_secs(30);
    let indexes = loop {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let again = summary_with(0).await;
        let indexes = archived_indexes(&repo);
        if again == summary && again["count"].as_u64() == Some(indexes.len() as u64) {
            break indexes;
        }
        assert!(Instant::now() < deadline, "{again} vs {summary}");
        summary = again;
    };
    let oldest = indexes
        .iter()
        .filter_map(|i| i["firstEvent"].as_u64())
        .filter(|s| *s > 0)
        .min();
    let newest = indexes.iter().filter_map(|i| i["lastEvent"].as_u64()).max();
    assert_eq!(summary["oldestEvent"].as_u64(), oldest, "{summary}");
    assert_eq!(summary["newestEvent"].as_u64(), newest, "{summary}");
    let on_disk: u64 = walk_if(repo.dir.as_ref().expect("dir"))
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "binlogs"))
        .filter(|p| p.extension().is_none_or(|e| e != "json"))
        .map(|p| std::fs::metadata(p).expect("part").len())
        .sum();
    assert_eq!(summary["bytes"].as_u64(), Some(on_disk), "{summary}");
    assert!(
        summary["count"].as_u64().is_some_and(|n| n >= 2),
        "{summary}"
    );

    for path in ["/", "/summary/extra", "/metrics"] {
        let response = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 404, "{path}");
    }

    // The port is taken (by the archiver above): a second one stops at once, naming it.
    let taken = Command::new(BIN)
        .args(args)
        .env("BLOODRAVEN_MYSQL_USER", "root")
        .env("BLOODRAVEN_MYSQL_PASSWORD", "")
        .output()
        .expect("run");
    assert_eq!(taken.status.code(), Some(2), "{}", output_text(&taken));
    assert!(
        output_text(&taken).contains(&format!("--status-listen {listen}")),
        "{}",
        output_text(&taken)
    );
}
