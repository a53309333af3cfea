//! Backups in standalone mode: `POST /backup` backs up the caught-up replica the failover
//! core reports, `GET /backups` lists it, the archiver follows the primary's binary logs,
//! and a point-in-time restore from what standalone wrote holds exactly the transactions
//! up to the target. Real binary, real MySQL pair, a directory repository.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bloodraven::failover::GroupStatus;
use bloodraven::failover::gtid::GtidSet;

use crate::failover_common::{TestResult, start_pair};
use crate::support::mysql::{MysqlCluster, REPL_PASSWORD, free_port};
use crate::support::tools::{dep_tool, output_text};

const BIN: &str = env!("CARGO_BIN_EXE_bloodraven");

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn call(base: &str, method: &str, path: &str) -> TestResult<(u16, String)> {
    let r = bloodraven::shells::standalone::client::request(
        base,
        method,
        path,
        Duration::from_secs(60),
    )
    .await?;
    Ok((r.status, r.body))
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Until `/status` shows iad active and pdx replicating with no lag.
async fn wait_replica_caught_up(base: &str) -> TestResult {
    wait_for("pdx caught up in /status", async || {
        let Ok((200, body)) = call(base, "GET", "/status").await else {
            return false;
        };
        let Ok(status) = serde_json::from_str::<GroupStatus>(&body) else {
            return false;
        };
        status.active_site.as_deref() == Some("iad")
            && status
                .sites
                .iter()
                .any(|s| s.name == "pdx" && s.replicating && s.seconds_behind_source == Some(0))
    })
    .await
}

/// The group.yaml of the test: both sites, a directory repository, the archiver.
fn write_config(
    dir: &std::path::Path,
    iad: &str,
    pdx: &str,
    port: u16,
) -> TestResult<std::path::PathBuf> {
    std::fs::write(dir.join("repl.password"), format!("{REPL_PASSWORD}\n"))?;
    let config = format!(
        "sites:
  - {{name: iad, address: \"{}\"}}
  - {{name: pdx, address: \"{}\"}}
pollInterval: 300ms
credentials:
  operator: {{user: root}}
  replication: {{user: repl, passwordFile: repl.password}}
listen: 127.0.0.1:{port}
stateFile: state.json
backup:
  repository: file://repo
  threads: 2
  retention: {{count: 2}}
binlogArchive:
  interval: 500ms
  mysqlbinlog: {}
  mysql: {}
",
        iad,
        pdx,
        dep_tool("mysqlbinlog").display(),
        dep_tool("mysql").display(),
    );
    let config_path = dir.join("group.yaml");
    std::fs::write(&config_path, config)?;
    Ok(config_path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_standalone_backs_up_the_replica_and_archives_for_point_in_time() -> TestResult {
    let cluster = start_pair().await?;
    let spare = MysqlCluster::start(1)?;
    let (iad, pdx) = (cluster.get(0)?, cluster.get(1)?);
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let config_path = write_config(dir.path(), &iad.address(), &pdx.address(), port)?;
    let _server = Server(
        Command::new(BIN)
            .args(["standalone", "--config"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_replica_caught_up(&base).await?;
    iad.sql("INSERT INTO app.t VALUES (1, 'iad'), (2, 'iad')")?;

    let (code, body) = call(&base, "POST", "/backup").await?;
    assert_eq!(code, 200, "{body}");
    let manifest: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(manifest["sourceSite"], "pdx", "{manifest}");
    assert_eq!(manifest["sourceReason"], "replica-preferred");
    let id = manifest["id"].as_str().ok_or("id")?.to_owned();
    let (code, body) = call(&base, "GET", "/backups").await?;
    assert_eq!(code, 200);
    let listed: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(listed[0]["state"], "complete", "{listed}");
    let (_, metrics) = call(&base, "GET", "/metrics").await?;
    for line in [
        "bloodraven_backup_runs_total{kind=\"backup\",profile=\"default\",outcome=\"succeeded\"} 1",
        "bloodraven_backup_last_success_timestamp_seconds{kind=\"backup\",profile=\"default\"}",
        "bloodraven_backup_last_size_bytes{kind=\"backup\",profile=\"default\"}",
    ] {
        assert!(
            metrics.contains(line),
            "{line} missing from /metrics:\n{metrics}"
        );
    }

    // Three more transactions on the primary; the second's GTID set is the target.
    iad.sql("INSERT INTO app.t VALUES (3, 'after')")?;
    iad.sql("INSERT INTO app.t VALUES (4, 'after')")?;
    let target = iad
        .sql("SELECT @@GLOBAL.gtid_executed")?
        .replace(['\n', ' '], "");
    iad.sql("INSERT INTO app.t VALUES (5, 'after')")?;
    iad.sql("FLUSH BINARY LOGS")?;
    let repo = dir.path().join("repo");
    let uuid = iad.sql("SELECT @@server_uuid")?.trim().to_owned();
    let binlogs = repo.join("binlogs").join(&uuid);
    let base_gtids = GtidSet::parse(manifest["gtidExecuted"].as_str().ok_or("gtid")?)?;
    let wanted = GtidSet::parse(&target)?.subtract(&base_gtids);
    assert!(!wanted.is_empty());
    wait_for("the archiver to take the closed log", async || {
        let Ok(entries) = std::fs::read_dir(&binlogs) else {
            return false;
        };
        let archived = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .filter_map(|index| GtidSet::parse(index["gtids"].as_str()?).ok())
            .fold(GtidSet::new(), |all, set| all.union(&set));
        archived.contains(&wanted)
    })
    .await?;

    let (_, metrics) = call(&base, "GET", "/metrics").await?;
    assert!(
        metrics
            .contains("bloodraven_backup_last_success_timestamp_seconds{kind=\"binlog_archive\",profile=\"default\"}"),
        "{metrics}"
    );

    // The backup was taken from pdx, a replica: its GTIDs are iad's, so the archive of iad's
    // logs continues it.
    let target_server = spare.get(0)?;
    let url = format!("file://{}", repo.display());
    let out = Command::new(BIN)
        .args(["backup", "restore", "--from", &url, "--id", &id, "--target"])
        .arg(target_server.address())
        .args(["--until-gtid", &target, "--mysql-tls", "required"])
        .arg("--mysqlbinlog")
        .arg(dep_tool("mysqlbinlog"))
        .arg("--mysql")
        .arg(dep_tool("mysql"))
        .env("BLOODRAVEN_MYSQL_USER", "root")
        .output()?;
    assert!(
        out.status.success(),
        "restore failed: {}",
        output_text(&out)
    );
    assert_eq!(
        target_server
            .sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM app.t")?
            .trim(),
        "1,2,3,4"
    );
    Ok(())
}
