//! The sidecar's second opinion, end to end: `bloodraven standalone` (the real binary) reaches
//! `iad`'s MySQL through a TCP relay the test can cut, while `iad`'s real sidecar still
//! reaches it directly. With the relay cut the controller sees `iad` unreachable, but the
//! sidecar reports it writable: no promotion, an `UnreachableSiteWritable` alert, and `iad`
//! keeps taking writes. Once the sidecar reports `iad` fenced the failover goes ahead, and
//! the event records the confirmation.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bloodraven::failover::GroupStatus;

use crate::failover_common::{TestResult, accepts_writes, start_pair};
use crate::serve_support::install_crypto_provider;
use crate::sidecar_support::{SidecarProcess, TOKEN, write_config};
use crate::support::mysql::{REPL_PASSWORD, free_port};
use crate::support::relay::Relay;

const BIN: &str = env!("CARGO_BIN_EXE_bloodraven");

/// Kills the child on drop, so a failing test leaves no server behind.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn status(base: &str) -> Option<GroupStatus> {
    let r = bloodraven::shells::standalone::client::request(
        base,
        "GET",
        "/status",
        Duration::from_secs(5),
    )
    .await
    .ok()?;
    (r.status == 200)
        .then(|| serde_json::from_str(&r.body).ok())
        .flatten()
}

async fn wait_status(
    base: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&GroupStatus) -> bool,
) -> TestResult<GroupStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = status(base).await
            && pred(&s)
        {
            return Ok(s);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}: {:#?}", status(base).await).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn site_state(s: &GroupStatus, site: &str) -> Option<String> {
    s.sites
        .iter()
        .find(|x| x.name == site)
        .map(|x| x.state.as_str().to_owned())
}

fn healthy_on(s: &GroupStatus, site: &str) -> bool {
    s.active_site.as_deref() == Some(site) && s.conditions.iter().any(|c| c.reason == "Healthy")
}

/// The sidecar's `/status`, as the controller reads it.
async fn sidecar_read_only(url: &str) -> Option<bool> {
    let body = reqwest::Client::new()
        .get(format!("{url}/status"))
        .bearer_auth(TOKEN)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    json["mysql"]["readOnly"].as_bool()
}

fn log_has(path: &Path, needle: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle))
}

/// Starts `bloodraven standalone` over iad (through the relay, with its sidecar) and pdx;
/// its log goes to the returned path.
fn start_standalone(
    dir: &Path,
    port: u16,
    relay_port: u16,
    sidecar_url: &str,
    pdx: &crate::support::mysql::MysqlInstance,
) -> TestResult<(Server, std::path::PathBuf)> {
    std::fs::write(dir.join("repl.password"), format!("{REPL_PASSWORD}\n"))?;
    std::fs::write(dir.join("sidecar.token"), format!("{TOKEN}\n"))?;
    let config = format!(
        "sites:
  - {{name: iad, address: \"127.0.0.1:{relay_port}\", sidecar: \"{sidecar_url}\"}}
  - {{name: pdx, address: \"{}\"}}
pollInterval: 300ms
probeTimeout: 500ms
failoverCooldown: 5m
replication: {{tls: true}}
credentials:
  operator: {{user: root}}
  replication: {{user: repl, passwordFile: repl.password}}
listen: 127.0.0.1:{port}
stateFile: state.json
sidecarAuth: {{tokenFile: sidecar.token}}
",
        pdx.address(),
    );
    let config_path = dir.join("group.yaml");
    std::fs::write(&config_path, config)?;
    let log = dir.join("standalone.log");
    let log_file = std::fs::File::create(&log)?;
    let server = Server(
        Command::new(BIN)
            .args(["standalone", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()?,
    );
    Ok((server, log))
}

/// Starts iad's sidecar (reaching iad's MySQL directly) and waits until it reports iad
/// writable again after its boot fence.
async fn start_sidecar(
    dir: &Path,
    iad: &crate::support::mysql::MysqlInstance,
    base: &str,
    sidecar_port: u16,
    standalone_log: &Path,
) -> TestResult<SidecarProcess> {
    let sidecar_dir = dir.join("sidecar");
    std::fs::create_dir(&sidecar_dir)?;
    let sidecar_config = write_config(
        &sidecar_dir,
        "iad",
        &iad.address(),
        &format!("{base}/active-site"),
        &[],
        &format!("127.0.0.1:{sidecar_port}"),
        false,
        ("60s", "1s"),
    );
    let sidecar = SidecarProcess::spawn(&sidecar_config, None, &sidecar_dir.join("log"));
    let url = format!("http://127.0.0.1:{sidecar_port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while sidecar_read_only(&url).await != Some(false) {
        if Instant::now() > deadline {
            return Err(format!(
                "the sidecar never saw iad writable again; standalone log:\n{}",
                std::fs::read_to_string(standalone_log).unwrap_or_default()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(sidecar)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_its_sidecar_reports_writable_is_not_failed_over_past() -> TestResult {
    install_crypto_provider();
    let cluster = start_pair().await?;
    let (iad, pdx) = (cluster.get(0)?, cluster.get(1)?);
    let relay = Relay::start(iad.address()).await?;
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let sidecar_port = free_port()?;
    let sidecar_url = format!("http://127.0.0.1:{sidecar_port}");
    let (_server, log) = start_standalone(dir.path(), port, relay.port, &sidecar_url, pdx)?;
    // iad is adopted first (through the relay; pdx is repointed at the relay's address),
    // then iad's sidecar starts: it fences iad at boot, and the controller re-asserts iad
    // as the primary with nothing else writable.
    wait_status(&base, "iad healthy", Duration::from_secs(60), |s| {
        healthy_on(s, "iad")
    })
    .await?;
    let _sidecar = start_sidecar(dir.path(), iad, &base, sidecar_port, &log).await?;
    wait_status(&base, "iad healthy again", Duration::from_secs(30), |s| {
        healthy_on(s, "iad")
    })
    .await?;

    // The partition between the controller and iad's MySQL.
    let cut_at = Instant::now();
    relay.cut();
    wait_status(&base, "iad unreachable", Duration::from_secs(20), |s| {
        site_state(s, "iad").as_deref() == Some("unreachable")
    })
    .await?;
    let detected = cut_at.elapsed();
    // Without the sidecar's word the failover would start on this very poll (see the
    // second half); hold for many polls and check nothing moved.
    let hold = Duration::from_secs(6);
    let until = Instant::now() + hold;
    let mut polls = 0u32;
    while Instant::now() < until {
        let s = status(&base).await.ok_or("no status")?;
        assert_eq!(s.active_site.as_deref(), Some("iad"), "{s:#?}");
        assert_eq!(
            site_state(&s, "pdx").as_deref(),
            Some("read-only"),
            "{s:#?}"
        );
        assert!(s.last_failover.is_none(), "{s:#?}");
        polls += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(polls > 10, "{polls}");
    assert!(
        accepts_writes(iad, 900_001),
        "iad, cut off from the controller only, keeps serving"
    );
    assert_eq!(pdx.sql("SELECT @@GLOBAL.read_only")?, "1");
    assert!(
        log_has(&log, "UnreachableSiteWritable"),
        "no alert in the standalone log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(!log_has(&log, "FailoverStarted"));

    // iad is fenced behind the partition (as its sidecar would fence it when the
    // operator names another site): its sidecar now reports it read-only, and the
    // failover goes ahead, recording that the sidecar confirmed the fence.
    let fenced_at = Instant::now();
    iad.sql("SET GLOBAL super_read_only = ON")?;
    let after = wait_status(&base, "pdx promoted", Duration::from_secs(30), |s| {
        s.active_site.as_deref() == Some("pdx")
    })
    .await?;
    let promoted = fenced_at.elapsed();
    assert_eq!(
        after.last_failover.as_ref().map(|f| f.target.as_str()),
        Some("pdx")
    );
    assert!(
        log_has(&log, "sidecar confirms fenced: iad"),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    eprintln!(
        "unreachable after {detected:?}; held for {hold:?} ({polls} status reads) with no promotion; promoted {promoted:?} after iad was fenced"
    );
    Ok(())
}
