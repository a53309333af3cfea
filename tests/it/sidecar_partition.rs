//! Self-fencing under real network isolation: the site's mysqld, its sidecar and a writer
//! run inside a network namespace joined to the host (where the operator endpoint and a
//! peer answer) by one veth pair. Cutting the pair isolates the site; the test measures
//! the time from the cut to the fence and counts writes acknowledged after it (must be 0),
//! restarts the sidecar mid-partition (MySQL must stay fenced), heals (the sidecar must
//! not lift the fence), then repeats with a one-way partition (a blackhole route on the
//! host: the site's packets leave, no answer comes back).
//!
//! Needs root and iproute2; without them the test fails saying so.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sidecar_support::{FakeOperator, NetNs, SidecarProcess, now_ms, wait_for, write_config};
use crate::support::mysql::{MysqlCluster, MysqlInstance, free_port};

const LEASE_MS: u64 = 3_000;
const INTERVAL_MS: u64 = 1_000;

fn super_read_only(mysql: &MysqlInstance) -> bool {
    mysql
        .sql("SELECT @@GLOBAL.super_read_only")
        .is_ok_and(|s| s.trim() == "1")
}

/// A writer inside the namespace: one connection per INSERT, logging the time each was
/// sent and whether it was acknowledged.
struct Writer {
    child: Child,
    log: std::path::PathBuf,
}

impl Writer {
    fn start(ns: &NetNs, mysql: &MysqlInstance, log: &std::path::Path) -> Self {
        let client = MysqlInstance::client_binary();
        let script = format!(
            "i=0; while true; do i=$((i+1)); t=$(date +%s%3N); \
             if {} --no-defaults -h127.0.0.1 -P{} -uroot --connect-timeout=2 -e \"INSERT INTO w.t (n) VALUES ($i)\" 2>/dev/null; \
             then echo \"ok $i $t\"; else echo \"err $i $t\"; fi; done",
            client.display(),
            mysql.port()
        );
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "bash", "-c", &script])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            log: log.to_owned(),
        }
    }

    /// `(acknowledged, sent at ms)` per write so far.
    fn writes(&self) -> Vec<(bool, u64)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut p = l.split_whitespace();
                let ok = p.next()? == "ok";
                let _n = p.next()?;
                Some((ok, p.next()?.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `fenced_at_ms` of the sidecar's last self-fence log line after `after_ms`.
fn fenced_at(log: &str, after_ms: u64) -> Option<u64> {
    log.lines()
        .filter(|l| l.contains("self-fenced"))
        .filter_map(|l| {
            let rest = l.split("fenced_at_ms=").nth(1)?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .find(|t| *t > after_ms)
}

async fn status(client: &reqwest::Client, base: &str) -> Option<serde_json::Value> {
    let r = client
        .get(format!("{base}/status"))
        .bearer_auth(crate::sidecar_support::TOKEN)
        .send()
        .await
        .ok()?;
    serde_json::from_str(&r.text().await.ok()?).ok()
}

fn lift(mysql: &MysqlInstance) {
    mysql
        .sql("SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF")
        .expect("lift the fence as the operator would");
}

struct Measured {
    partition_to_fence_ms: u64,
    acked_after_fence: usize,
    rows_after_fence: u64,
    writes_before: usize,
}

/// Isolates the site with `cut`, waits for the fence and measures it.
async fn measure(
    mysql: &MysqlInstance,
    writer: &Writer,
    sidecar: &SidecarProcess,
    cut: impl FnOnce(),
) -> Measured {
    let writes_before = writer.writes().iter().filter(|w| w.0).count();
    let cut_at = now_ms();
    cut();
    let started = Instant::now();
    while !super_read_only(mysql) {
        assert!(
            started.elapsed() < Duration::from_millis(LEASE_MS + INTERVAL_MS + 3_000),
            "no fence {:?} after the partition\n{}",
            started.elapsed(),
            sidecar.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the writer run into the fence for a while.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let fenced = fenced_at(&sidecar.log_text(), cut_at).expect("a self-fence log line");
    let acked_after_fence = writer
        .writes()
        .iter()
        .filter(|(ok, sent)| *ok && *sent > fenced)
        .count();
    let rows_after_fence: u64 = mysql
        .sql(&format!(
            "SELECT COUNT(*) FROM w.t WHERE UNIX_TIMESTAMP(at) * 1000 > {fenced}"
        ))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    Measured {
        partition_to_fence_ms: fenced.saturating_sub(cut_at),
        acked_after_fence,
        rows_after_fence,
        writes_before,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one scenario, step by step
async fn isolated_site_fences_itself_within_the_lease_and_acknowledges_nothing_after() {
    crate::serve_support::install_crypto_provider();
    let ns = NetNs::create(u8::try_from(std::process::id() % 200).unwrap() + 20);
    let cluster = MysqlCluster::start_in(1, Some(&ns.name)).expect("mysql in the namespace");
    let mysql = cluster.get(0).unwrap();
    let operator =
        FakeOperator::start(format!("{}:0", ns.host_ip).parse().unwrap(), Some("a")).await;
    let peer = FakeOperator::start(format!("{}:0", ns.host_ip).parse().unwrap(), Some("a")).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let config = write_config(
        dir.path(),
        "a",
        &mysql.address(),
        &operator.url(),
        &[("b", peer.base())],
        &format!("{}:{port}", ns.ns_ip),
        false,
        ("3s", "1s"),
    );
    let log = dir.path().join("sidecar.log");
    let mut sidecar = SidecarProcess::spawn(&config, Some(&ns.name), &log);
    let base = format!("http://{}:{port}", ns.ns_ip);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    wait_for(Duration::from_secs(20), "cleared", async || {
        status(&http, &base)
            .await
            .filter(|s| s["fence"]["state"] == "cleared")
    })
    .await;
    assert!(super_read_only(mysql), "fence-first boot");
    lift(mysql);
    mysql
        .sql("CREATE DATABASE w; CREATE TABLE w.t (n INT PRIMARY KEY, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))")
        .unwrap();
    let writer = Writer::start(&ns, mysql, &dir.path().join("writer.log"));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(!super_read_only(mysql), "a cleared site is not re-fenced");

    // 1. Symmetric partition.
    let symmetric = measure(mysql, &writer, &sidecar, || ns.cut()).await;
    assert!(
        symmetric.writes_before > 0,
        "the writer wrote before the partition"
    );

    // 2. A sidecar restarted during the partition, on a server that came back writable.
    sidecar.kill();
    lift(mysql);
    let restarted_at = Instant::now();
    sidecar = SidecarProcess::spawn(&config, Some(&ns.name), &log);
    while !super_read_only(mysql) {
        assert!(
            restarted_at.elapsed() < Duration::from_secs(10),
            "the restarted sidecar did not fence"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reboot_fence = restarted_at.elapsed();
    tokio::time::sleep(Duration::from_millis(LEASE_MS + INTERVAL_MS)).await;
    assert!(super_read_only(mysql), "stays fenced through the partition");

    // 3. Heal: the sidecar reports cleared but never lifts the fence itself.
    ns.heal();
    wait_for(
        Duration::from_secs(10),
        "cleared after healing",
        async || {
            status(&http, &base)
                .await
                .filter(|s| s["fence"]["state"] == "cleared")
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2 * INTERVAL_MS)).await;
    assert!(super_read_only(mysql), "healing never unfences");

    // 4. One-way partition: the host drops everything addressed to the site.
    lift(mysql);
    tokio::time::sleep(Duration::from_millis(2 * INTERVAL_MS)).await;
    assert!(!super_read_only(mysql));
    let one_way = measure(mysql, &writer, &sidecar, || ns.blackhole_inbound()).await;
    ns.clear_blackhole();

    eprintln!(
        "sidecar partition figures (leaseTimeout {LEASE_MS} ms, peerCheckInterval {INTERVAL_MS} ms):\n  \
         symmetric: partition→fence {} ms, acknowledged writes sent after the fence {}, rows committed after it {} ({} writes before)\n  \
         restart during partition: fenced {} ms after the restart\n  \
         one-way: partition→fence {} ms, acknowledged writes after the fence {}, rows after it {}",
        symmetric.partition_to_fence_ms,
        symmetric.acked_after_fence,
        symmetric.rows_after_fence,
        symmetric.writes_before,
        reboot_fence.as_millis(),
        one_way.partition_to_fence_ms,
        one_way.acked_after_fence,
        one_way.rows_after_fence,
    );
    for (name, m) in [("symmetric", &symmetric), ("one-way", &one_way)] {
        assert!(
            m.partition_to_fence_ms <= LEASE_MS + INTERVAL_MS,
            "{name}: fenced {} ms after the partition",
            m.partition_to_fence_ms
        );
        assert!(
            m.partition_to_fence_ms + INTERVAL_MS + 500 >= LEASE_MS,
            "{name}: fenced too early ({} ms): the lease was not honoured",
            m.partition_to_fence_ms
        );
        assert_eq!(
            m.acked_after_fence, 0,
            "{name}: writes acknowledged after the fence"
        );
        assert_eq!(
            m.rows_after_fence, 0,
            "{name}: rows committed after the fence"
        );
    }
    drop(writer);
    drop(sidecar);
    drop(operator);
    drop(peer);
}

/// Asymmetric partition with a real peer: site a (in the namespace) loses the operator but
/// still reaches site b's sidecar (a real `bloodraven sidecar` beside a real MySQL on the
/// host). One reachable peer keeps a's lease, so a stays writable; when the operator then
/// names b, a learns it through b's authenticated `/peer/active-site` and fences before b
/// is made writable: no moment with two writable sites.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one scenario, step by step
async fn asymmetric_partition_fences_through_a_real_peer_before_the_other_site_is_writable() {
    crate::serve_support::install_crypto_provider();
    let ns = NetNs::create(u8::try_from(std::process::id() % 200).unwrap() + 21);
    let site_a = MysqlCluster::start_in(1, Some(&ns.name)).expect("mysql a in the namespace");
    let site_b = MysqlCluster::start(1).expect("mysql b on the host");
    let (a, b) = (site_a.get(0).unwrap(), site_b.get(0).unwrap());
    let operator =
        FakeOperator::start(format!("{}:0", ns.host_ip2).parse().unwrap(), Some("a")).await;
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port().unwrap(), free_port().unwrap());
    let base_a = format!("http://{}:{port_a}", ns.ns_ip);
    let base_b = format!("http://{}:{port_b}", ns.host_ip);
    let config_a = write_config(
        dir_a.path(),
        "a",
        &a.address(),
        &operator.url(),
        &[("b", base_b.clone())],
        &format!("{}:{port_a}", ns.ns_ip),
        false,
        ("3s", "1s"),
    );
    let config_b = write_config(
        dir_b.path(),
        "b",
        &b.address(),
        &operator.url(),
        &[("a", base_a.clone())],
        &format!("{}:{port_b}", ns.host_ip),
        false,
        ("3s", "1s"),
    );
    let sidecar_a = SidecarProcess::spawn(&config_a, Some(&ns.name), &dir_a.path().join("log"));
    let sidecar_b = SidecarProcess::spawn(&config_b, None, &dir_b.path().join("log"));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    wait_for(Duration::from_secs(20), "a cleared", async || {
        status(&http, &base_a)
            .await
            .filter(|s| s["fence"]["state"] == "cleared")
    })
    .await;
    // b relays the operator's view to its peers.
    wait_for(Duration::from_secs(10), "b relays a", async || {
        let r = http
            .get(format!("{base_b}/peer/active-site"))
            .bearer_auth(crate::sidecar_support::TOKEN)
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&r.text().await.ok()?).ok()?;
        (v["activeSite"] == "a").then_some(())
    })
    .await;
    lift(a);
    // Let the lift age past the lease, as a long-running primary's has.
    tokio::time::sleep(Duration::from_millis(LEASE_MS + INTERVAL_MS)).await;
    assert!(!super_read_only(a));
    assert!(super_read_only(b), "b booted fenced");

    let before = status(&http, &base_a).await.expect("a's status");
    assert!(
        before["peers"][0]["lastError"].is_null() && before["peers"][0]["lastReached"].is_u64(),
        "a reaches its peer b: {before}\n{}",
        sidecar_b.log_text()
    );
    // a loses the operator only.
    ns.blackhole_from_inside(&ns.host_ip2);
    tokio::time::sleep(Duration::from_millis(2 * LEASE_MS)).await;
    assert!(
        !super_read_only(a),
        "one reachable peer keeps the lease: {}\n{}",
        status(&http, &base_a).await.unwrap_or_default(),
        sidecar_a.log_text()
    );
    let s = status(&http, &base_a).await.expect("a's status");
    assert!(
        s["operator"]["lastError"].is_string(),
        "the operator is unreachable from a: {s}"
    );

    // The operator names b (b is still fenced): a must fence through b's relay.
    operator.set_active(Some("b"));
    let switched = now_ms();
    let started = Instant::now();
    while !super_read_only(a) {
        assert!(
            started.elapsed() < Duration::from_millis(2 * INTERVAL_MS + 2_000),
            "a not fenced {:?} after the operator named b\n{}",
            started.elapsed(),
            sidecar_a.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fenced = fenced_at(&sidecar_a.log_text(), switched).expect("a's self-fence line");
    // Only now would the operator make b writable: at no moment were both writable.
    lift(b);
    assert!(super_read_only(a));
    let s = status(&http, &base_a).await.expect("a's status");
    assert_eq!(s["fence"]["reason"], "other-site-active", "{s}");
    assert_eq!(s["view"]["source"], "peers", "{s}");
    eprintln!(
        "asymmetric partition (operator unreachable, peer reachable): a stayed writable for {} ms \
         on its peer's lease; fenced {} ms after the operator named b, through b's relay",
        2 * LEASE_MS,
        fenced.saturating_sub(switched)
    );
    ns.clear_blackhole_inside(&ns.host_ip2);
    drop(sidecar_a);
    drop(sidecar_b);
}
