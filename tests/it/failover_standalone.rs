//! `bloodraven standalone` end to end: the real binary on a real MySQL pair, its HTTP API
//! (`/status`, `/metrics` checked by promtool, `/healthz`, the request endpoints and their
//! refusals), `bloodraven failover --to`, the post-failover hook, graceful shutdown.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bloodraven::failover::GroupStatus;

use crate::failover_common::{TestResult, start_pair};
use crate::support::mysql::{REPL_PASSWORD, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_bloodraven");

/// `BLOODRAVEN_PROMTOOL`, else `.deps/bin/promtool`; fails naming the install script.
fn promtool() -> TestResult<PathBuf> {
    let path = std::env::var_os("BLOODRAVEN_PROMTOOL").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/bin/promtool"),
        PathBuf::from,
    );
    let works = Command::new(&path)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        Ok(path)
    } else {
        Err(format!(
            "promtool is not installed at {}: run scripts/install-test-deps.sh",
            path.display()
        )
        .into())
    }
}

/// Kills the child on drop, so a failing test leaves no server behind.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn get(base: &str, path: &str) -> TestResult<(u16, String)> {
    let r =
        bloodraven::shells::standalone::client::request(base, "GET", path, Duration::from_secs(5))
            .await?;
    Ok((r.status, r.body))
}

async fn post(base: &str, path: &str) -> TestResult<(u16, String)> {
    let r =
        bloodraven::shells::standalone::client::request(base, "POST", path, Duration::from_secs(5))
            .await?;
    Ok((r.status, r.body))
}

async fn status(base: &str) -> TestResult<GroupStatus> {
    let (code, body) = get(base, "/status").await?;
    if code != 200 {
        return Err(format!("/status {code}: {body}").into());
    }
    Ok(serde_json::from_str(&body)?)
}

async fn wait_status(
    base: &str,
    what: &str,
    pred: impl Fn(&GroupStatus) -> bool,
) -> TestResult<GroupStatus> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = status(base).await
            && pred(&s)
        {
            return Ok(s);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}: {:?}", status(base).await).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_serves_status_metrics_and_switches_over_on_request() -> TestResult {
    let promtool = promtool()?;
    let cluster = start_pair().await?;
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    std::fs::write(
        dir.path().join("repl.password"),
        format!("{REPL_PASSWORD}\n"),
    )?;
    let hook_out = dir.path().join("hook.out");
    let config = format!(
        "sites:
  - {{name: iad, role: primary-candidate, address: \"{}\"}}
  - {{name: pdx, address: \"{}\"}}
pollInterval: 300ms
failoverCooldown: 5m
credentials:
  operator: {{user: root}}
  replication: {{userEnv: BLOODRAVEN_TEST_REPL_USER, passwordFile: repl.password}}
listen: 127.0.0.1:{port}
stateFile: state.json
hook:
  command: [sh, -c, 'env | grep ^BLOODRAVEN_ | sort > {}']
  timeout: 5s
",
        cluster.get(0)?.address(),
        cluster.get(1)?.address(),
        hook_out.display()
    );
    let config_path = dir.path().join("group.yaml");
    std::fs::write(&config_path, config)?;
    let mut server = Server(
        Command::new(BIN)
            .args(["standalone", "--config"])
            .arg(&config_path)
            .env("BLOODRAVEN_TEST_REPL_USER", "repl")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_status(&base, "iad healthy", |s| {
        s.active_site.as_deref() == Some("iad")
            && s.conditions.iter().any(|c| c.reason == "Healthy")
    })
    .await?;
    assert_status_shape(&base).await?;
    assert_refusals(&base).await?;
    // The CLI client requests the switchover and waits for it.
    let out = Command::new(BIN)
        .args([
            "failover",
            "--to",
            "pdx",
            "--url",
            &base,
            "--timeout",
            "60s",
        ])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bloodraven failover failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("0 transactions lost"), "{stdout}");
    let after = status(&base).await?;
    assert_eq!(after.active_site.as_deref(), Some("pdx"));
    // A second request is refused (iad is not yet a healthy replica; the cooldown is
    // active too), and the client exits non-zero with the reason.
    let out = Command::new(BIN)
        .args(["failover", "--to", "iad", "--url", &base])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("rejected (409)"), "{stderr}");

    assert_hook_ran(&hook_out, &cluster.get(1)?.address()).await?;
    assert_metrics(&base, &promtool).await?;
    // The state file was written, and SIGTERM stops the server cleanly.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json"))?)?;
    assert_eq!(state["activeSite"], "pdx");
    Command::new("kill")
        .arg("-TERM")
        .arg(server.0.id().to_string())
        .status()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = server.0.try_wait()? {
            break exit;
        }
        if Instant::now() > deadline {
            return Err("no exit within 10s of SIGTERM".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit}");
    Ok(())
}

/// `/status` carries the documented fields; `/healthz` and `/active-site` answer.
async fn assert_status_shape(base: &str) -> TestResult {
    let (code, body) = get(base, "/status").await?;
    assert_eq!(code, 200);
    let json: serde_json::Value = serde_json::from_str(&body)?;
    for field in [
        "activeSite",
        "sites",
        "lastFailover",
        "plannedFailover",
        "conditions",
    ] {
        assert!(json.get(field).is_some(), "/status lacks {field}: {body}");
    }
    let site = &json["sites"][1];
    for field in [
        "name",
        "state",
        "readOnly",
        "gtidExecuted",
        "replicating",
        "secondsBehindSource",
        "divergentGtid",
        "divergentTransactionCount",
    ] {
        assert!(
            site.get(field).is_some(),
            "site status lacks {field}: {site}"
        );
    }
    assert_eq!(get(base, "/healthz").await?.0, 200);
    // What every site's sidecar polls: the active site alone.
    let (code, body) = get(base, "/active-site").await?;
    assert_eq!(code, 200, "{body}");
    let active: serde_json::Value = serde_json::from_str(&body)?;
    assert!(active["activeSite"].is_string(), "{body}");
    assert_eq!(active["activeSite"], json["activeSite"], "{body}");

    Ok(())
}

async fn assert_refusals(base: &str) -> TestResult {
    // Refusals: unknown target, the active primary as reclone target, a wrong confirm.
    assert_eq!(post(base, "/planned-failover?target=sfo").await?.0, 409);
    assert_eq!(post(base, "/planned-failover").await?.0, 400);
    let (code, body) = post(base, "/reclone?site=iad&confirm=iad").await?;
    assert!(
        code == 409 && body.contains("active primary"),
        "{code} {body}"
    );
    let (code, body) = post(base, "/reclone?site=pdx&confirm=pd").await?;
    assert!(code == 409 && body.contains("confirm"), "{code} {body}");

    Ok(())
}

async fn assert_hook_ran(hook_out: &Path, new_primary_address: &str) -> TestResult {
    // The hook ran with the new and old primaries.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !hook_out.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hook_env = std::fs::read_to_string(hook_out)?;
    assert!(
        hook_env.contains("BLOODRAVEN_NEW_PRIMARY_SITE=pdx"),
        "{hook_env}"
    );
    assert!(
        hook_env.contains(&format!(
            "BLOODRAVEN_NEW_PRIMARY_ADDRESS={new_primary_address}"
        )),
        "{hook_env}"
    );
    assert!(
        hook_env.contains("BLOODRAVEN_OLD_PRIMARY_SITE=iad"),
        "{hook_env}"
    );

    Ok(())
}

async fn assert_metrics(base: &str, promtool: &Path) -> TestResult {
    // Metrics: valid exposition with the original operator's `bloodraven_*` names.
    let (code, metrics) = get(base, "/metrics").await?;
    assert_eq!(code, 200);
    for name in [
        "bloodraven_site_state{",
        "bloodraven_state_transitions_total{",
        "bloodraven_replication_lag_seconds{",
        "bloodraven_replication_running{",
        "bloodraven_divergent_transactions{",
        "bloodraven_poll_latency_seconds_bucket{",
        "bloodraven_planned_failovers_total{target_site=\"pdx\",result=\"success\"} 1",
        "bloodraven_planned_failover_duration_seconds_count{target_site=\"pdx\"} 1",
        "bloodraven_hook_failures_total 0",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(check.stdin.as_mut().ok_or("no stdin")?, metrics.as_bytes())?;
    let checked = check.wait_with_output()?;
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    Ok(())
}

#[test]
fn a_bad_config_fails_with_its_location() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("group.yaml");
    std::fs::write(
        &path,
        "sites:\n  - {name: iad, address: \"127.0.0.1:1\"}\n  - {name: pdx, adress: \"127.0.0.1:2\"}\ncredentials:\n  operator: {user: root}\n  replication: {user: repl}\n",
    )?;
    let out = Command::new(BIN)
        .args(["standalone", "--config"])
        .arg(&path)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("group.yaml:3:") && stderr.contains("adress"),
        "{stderr}"
    );
    Ok(())
}
