//! The operator with 1,000 groups: resident memory, CPU while idle, and API writes per idle
//! resync, for the real `bloodraven serve --controllers on` against the real API server.
//!
//! Nothing runs pods here, so every site's endpoint is a closed loopback port: each group's
//! failover loop probes (refused at once), decides the group is down, reports it once, and
//! then has nothing new to say. That is the steady state this measures; reaching real MySQL
//! would add only the probes' own cost.
//!
//! A benchmark, not a test: `scripts/bench-operator-scale.sh` runs it and the figures go to
//! docs/performance.md. Ignored, and outside the `kube_real` filter CI runs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bloodraven::api::MysqlFailoverGroup;
use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;

use crate::failover_common::TestResult;
use crate::kube_real_operator::Operator;
use crate::support::kube::{client, create_namespace, unique};

fn proc_field(pid: u32, file: &str) -> TestResult<String> {
    Ok(std::fs::read_to_string(format!("/proc/{pid}/{file}"))?)
}

fn rss_mib(pid: u32) -> TestResult<f64> {
    let status = proc_field(pid, "status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or("no VmRSS")?;
    Ok(kib / 1024.0)
}

/// User plus system CPU seconds the process has used.
fn cpu_seconds(pid: u32) -> TestResult<f64> {
    let stat = proc_field(pid, "stat")?;
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .ok_or("bad stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// Sum of a counter family's samples whose line contains every one of `with`.
fn counter_sum(metrics: &str, family: &str, with: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(family) && with.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// Writes the controllers sent, apart from the leader's Lease renewals (which every
/// elected controller sends, groups or not; reported on their own).
fn writes(metrics: &str) -> f64 {
    let family = "bloodraven_kube_requests_total{";
    ["create", "update", "patch", "delete"]
        .iter()
        .map(|verb| {
            let verb = format!("verb=\"{verb}\"");
            counter_sum(metrics, family, &[&verb])
                - counter_sum(metrics, family, &[&verb, "resource=\"leases\""])
        })
        .sum()
}

/// Each request family sample that grew from `before` to `after`, with its growth.
fn request_deltas(before: &str, after: &str) -> Vec<String> {
    after
        .lines()
        .filter(|l| l.starts_with("bloodraven_kube_requests_total{"))
        .filter_map(|l| {
            let (labels, value) = l.rsplit_once(' ')?;
            let now: f64 = value.parse().ok()?;
            let delta = now - counter_sum(before, labels, &[]);
            (delta > 0.0).then(|| format!("{labels} +{delta}"))
        })
        .collect()
}

/// Every site of every group at a closed loopback port (refused at once).
fn write_endpoints(work: &std::path::Path, namespace: &str, groups: usize) -> TestResult {
    let mut endpoints = BTreeMap::new();
    for g in 0..groups {
        for site in ["iad", "pdx"] {
            endpoints.insert(format!("{namespace}/g{g}/{site}"), "127.0.0.1:9".to_owned());
        }
    }
    std::fs::write(
        work.join("endpoints.yaml"),
        serde_json::to_string(&endpoints)?,
    )?;
    Ok(())
}

/// Creates `groups` two-site groups in `namespace`, 16 at a time.
async fn create_groups(client: &Client, namespace: &str, groups: usize) -> TestResult {
    let api: Api<MysqlFailoverGroup> = Api::namespaced(client.clone(), namespace);
    let results: Vec<_> = futures_util::stream::iter(0..groups)
        .map(|g| {
            let api = api.clone();
            async move {
                let group: MysqlFailoverGroup = serde_json::from_value(json!({
                    "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlFailoverGroup",
                    "metadata": {"name": format!("g{g}")},
                    "spec": {
                        "image": "mysql:9.7.0",
                        "sites": [
                            {"name": "iad", "lbIP": "10.0.0.1", "taintNodeSelector": {"site": "iad"}},
                            {"name": "pdx", "lbIP": "10.0.0.2", "taintNodeSelector": {"site": "pdx"}}
                        ],
                        "credentials": {"operatorSecret": "op"},
                        "dns": {"hostname": format!("g{g}.example.com")}
                    }
                }))?;
                api.create(&PostParams::default(), &group).await?;
                TestResult::Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect::<TestResult<Vec<()>>>()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench-operator-scale.sh"]
async fn bench_operator_scale() -> TestResult {
    let groups: usize = std::env::var("BLOODRAVEN_SCALE_GROUPS")
        .ok()
        .and_then(|g| g.parse().ok())
        .unwrap_or(1000);
    let client = client().await;
    let namespace = unique("scale");
    create_namespace(&client, &namespace).await;
    Api::<Secret>::namespaced(client.clone(), &namespace)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "op"},
                "stringData": {"username": "bloodraven", "password": "x"}
            }))?,
        )
        .await?;
    let work = tempfile::tempdir()?;
    write_endpoints(work.path(), &namespace, groups)?;
    let created = Instant::now();
    create_groups(&client, &namespace, groups).await?;
    eprintln!(
        "created {groups} groups in {:.1} s",
        created.elapsed().as_secs_f64()
    );

    let resync = 20;
    let operator = Operator::start_with(
        work.path(),
        &namespace,
        "scale",
        &["--resync-secs", &resync.to_string()],
    )?;
    let pid = operator.pid();
    // Settled: every group's 12 child objects applied and no write for a whole resync.
    let started = Instant::now();
    let mut last = (f64::NAN, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let metrics = operator.metrics().await.unwrap_or_default();
        let applied = counter_sum(&metrics, "bloodraven_kube_apply_total{", &[]);
        let w = writes(&metrics);
        if (w - last.0).abs() > f64::EPSILON {
            last = (w, Instant::now());
        }
        #[allow(clippy::cast_precision_loss)]
        let all_applied = applied >= (groups * 12) as f64;
        if all_applied && last.1.elapsed() > Duration::from_secs(resync + 5) {
            break;
        }
        if started.elapsed() > Duration::from_secs(900) {
            return Err(format!(
                "not settled after 900 s: {applied} applies\n{}",
                operator
                    .log_text()
                    .lines()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
            .into());
        }
    }
    eprintln!(
        "settled after {:.0} s (every child applied, then no write for a whole resync)",
        started.elapsed().as_secs_f64()
    );
    // Idle: three resync periods.
    let before = operator.metrics().await?;
    let cpu_before = cpu_seconds(pid)?;
    let idle = Duration::from_secs(resync * 3);
    tokio::time::sleep(idle).await;
    let after = operator.metrics().await?;
    let cpu = cpu_seconds(pid)? - cpu_before;
    let rss = rss_mib(pid)?;
    let idle_writes = writes(&after) - writes(&before);
    let idle_reads = counter_sum(&after, "bloodraven_kube_requests_total{", &[])
        - counter_sum(&before, "bloodraven_kube_requests_total{", &[]);
    eprintln!(
        "{groups} groups idle for {} s ({} resyncs): RSS {rss:.0} MiB, CPU {:.1}% of a core, \
         API writes {idle_writes} (Lease renewals apart), API requests {idle_reads}",
        idle.as_secs(),
        idle.as_secs() / resync,
        cpu / idle.as_secs_f64() * 100.0
    );
    eprintln!(
        "requests while idle:\n{}",
        request_deltas(&before, &after).join("\n")
    );
    assert!(
        idle_writes.abs() < f64::EPSILON,
        "writes while idle (Lease renewals apart): {idle_writes}"
    );
    Ok(())
}
