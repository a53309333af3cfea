//! The operator's idle resync: 1,000 groups (2–3 sites each) whose child objects are all
//! in place, reconciled through `reconcile_children` and an in-memory `ObjectStore`
//! preloaded with the objects as an API server would store them.
//!
//! ```text
//! cargo bench --bench reconcile                          # the figures for docs/performance.md
//! cargo bench --bench reconcile -- --groups 5000 --rounds 3
//! ```
//!
//! Measures what one resync of one group costs the operator's CPU when nothing is pending
//! (render, serialise, compare against the cached copies), and asserts it costs the API
//! server nothing: zero writes. Per-reconcile CPU time is read from the thread's CPU clock
//! (`CLOCK_THREAD_CPUTIME_ID`), so time the shared machine gives to other processes does not
//! count. A plain `harness = false` program, like the other benches.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bloodraven::api::MysqlFailoverGroup;
use bloodraven::api::failover_group::{DnsSpec, MysqlFailoverGroupSpec, SiteRole, SiteSpec};
use bloodraven::control::reconcile_children;
use bloodraven::ports::objects::{ObjectError, ObjectKey, ObjectStore};
use bloodraven::render::{RenderOptions, render};
use futures_util::future::BoxFuture;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rustix::time::{ClockId, clock_gettime};
use serde_json::{Value, json};

struct Args {
    groups: usize,
    rounds: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        groups: 1_000,
        rounds: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .ok_or(format!("{arg} needs a value"))?
                .parse::<usize>()
                .map_err(|e| format!("{arg}: {e}"))
        };
        match arg.as_str() {
            "--groups" => args.groups = value()?.max(1),
            "--rounds" => args.rounds = value()?.max(1),
            // `cargo bench` passes `--bench`; filters are meaningless here.
            "--bench" => {}
            other if !other.starts_with('-') => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// Group `i`: 2 or 3 sites, the third dr-only, with a per-site my.cnf override on some, in
/// one of 50 namespaces.
fn group(i: usize) -> MysqlFailoverGroup {
    let site_names: &[&str] = if i.is_multiple_of(2) {
        &["iad", "pdx"]
    } else {
        &["iad", "pdx", "fra"]
    };
    let sites = site_names
        .iter()
        .enumerate()
        .map(|(n, name)| SiteSpec {
            name: (*name).to_owned(),
            role: if n < 2 {
                SiteRole::PrimaryCandidate
            } else {
                SiteRole::DrOnly
            },
            lb_ip: Some(format!("10.{n}.{}.{}", i / 250, i % 250)),
            mysql_conf: if n == 1 && i.is_multiple_of(3) {
                BTreeMap::from([("max_connections".to_owned(), "2000".to_owned())])
            } else {
                BTreeMap::new()
            },
            ..SiteSpec::default()
        })
        .collect();
    let spec = MysqlFailoverGroupSpec {
        image: "registry.example.com/mirror/mysql:9.7.4".to_owned(),
        sites,
        dns: DnsSpec {
            hostname: format!("g{i}-db.example.com"),
            ttl: 60,
        },
        termination_grace_period_seconds: 60,
        clone_timeout: 3600,
        ..MysqlFailoverGroupSpec::default()
    };
    let name = format!("g{i:05}");
    let mut group = MysqlFailoverGroup::new(&name, spec);
    group.metadata = ObjectMeta {
        name: Some(name),
        namespace: Some(format!("team-{}", i % 50)),
        uid: Some(format!("00000000-0000-4000-8000-{i:012}")),
        ..ObjectMeta::default()
    };
    group
}

/// Objects in memory, as the watch cache of `KubeObjects` would hold them: what was
/// applied plus the server's bookkeeping and an empty status.
#[derive(Default)]
struct Preloaded {
    objects: HashMap<ObjectKey, Value>,
    writes: AtomicU64,
}

impl Preloaded {
    fn store(&mut self, desired: &Value) {
        let Some(key) = ObjectKey::of(desired) else {
            return;
        };
        let mut stored = desired.clone();
        if let Some(meta) = stored["metadata"].as_object_mut() {
            meta.insert("resourceVersion".to_owned(), json!("12345"));
            meta.insert(
                "uid".to_owned(),
                json!("11111111-2222-4333-8444-555555555555"),
            );
            meta.insert("generation".to_owned(), json!(1));
            meta.insert(
                "creationTimestamp".to_owned(),
                json!("2026-12-02T00:00:00Z"),
            );
        }
        stored["status"] = json!({});
        self.objects.insert(key, stored);
    }
}

impl ObjectStore for Preloaded {
    fn live(&self, key: &ObjectKey) -> Option<Value> {
        // A clone, as the real adapter hands out.
        self.objects.get(key).cloned()
    }

    fn apply<'a>(&'a self, _desired: &'a Value) -> BoxFuture<'a, Result<(), ObjectError>> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }
}

fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

// Counts here are far below 2^52: the conversions are exact.
#[allow(clippy::cast_precision_loss)]
fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("reconcile bench: {e}");
            return ExitCode::from(2);
        }
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        eprintln!("reconcile bench: no tokio runtime");
        return ExitCode::FAILURE;
    };
    let options = RenderOptions::default();
    let groups: Vec<MysqlFailoverGroup> = (0..args.groups).map(group).collect();
    let mut store = Preloaded::default();
    for g in &groups {
        let values = match render(g, &options).map(|d| d.to_values()) {
            Ok(Ok(values)) => values,
            Ok(Err(e)) => return fail(&e),
            Err(e) => return fail(&e),
        };
        for v in &values {
            store.store(v);
        }
    }
    println!(
        "{} groups, {} objects in place, {} rounds, one thread",
        groups.len(),
        store.objects.len(),
        args.rounds
    );

    let mut samples = Vec::with_capacity(groups.len() * args.rounds);
    let mut unchanged = 0usize;
    let mut failures = 0usize;
    let wall = Instant::now();
    let cpu = thread_cpu();
    runtime.block_on(async {
        for _ in 0..args.rounds {
            for g in &groups {
                let t0 = thread_cpu();
                let outcome = reconcile_children(g, &options, None, &store).await;
                samples.push(thread_cpu().saturating_sub(t0));
                match outcome {
                    Ok(report) => unchanged += report.unchanged,
                    Err(_) => failures += 1,
                }
            }
        }
    });
    let cpu = thread_cpu().saturating_sub(cpu);
    let wall = wall.elapsed();
    let writes = store.writes.load(Ordering::Relaxed);

    let (render_cpu, clone_cpu) = breakdown(&groups, &options, &store);

    samples.sort();
    let total: Duration = samples.iter().sum();
    let mean = total / u32::try_from(samples.len()).unwrap_or(u32::MAX);
    println!(
        "CPU per reconcile: mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        micros(mean),
        micros(percentile(&samples, 50)),
        micros(percentile(&samples, 99)),
        micros(samples[samples.len() - 1]),
    );
    println!(
        "one idle resync of all {} groups: {:.1} ms CPU; whole run {:.2} s CPU, {:.2} s wall",
        groups.len(),
        micros(total / u32::try_from(args.rounds).unwrap_or(1)) / 1000.0,
        cpu.as_secs_f64(),
        wall.as_secs_f64(),
    );
    println!(
        "of which, per reconcile: render + to_values {:.1} µs, copying the live objects out of the store {:.1} µs",
        micros(render_cpu),
        micros(clone_cpu),
    );
    println!("objects compared: {unchanged}; failed reconciles: {failures}; writes: {writes}");
    if writes != 0 || failures != 0 || unchanged != store.objects.len() * args.rounds {
        eprintln!("reconcile bench: an idle resync must write nothing and compare every object");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Mean CPU per group of the two parts of a reconcile that do not depend on the
/// comparison: rendering to JSON, and `live()` handing out owned copies (the port returns
/// `Value`, so every lookup clones the cached object).
fn breakdown(
    groups: &[MysqlFailoverGroup],
    options: &RenderOptions,
    store: &Preloaded,
) -> (Duration, Duration) {
    let mut render_cpu = Duration::ZERO;
    let mut clone_cpu = Duration::ZERO;
    for g in groups {
        let t0 = thread_cpu();
        let values = render(g, options)
            .ok()
            .and_then(|d| d.to_values().ok())
            .unwrap_or_default();
        let t1 = thread_cpu();
        let copies: Vec<Option<Value>> = values
            .iter()
            .filter_map(ObjectKey::of)
            .map(|key| store.live(&key))
            .collect();
        let t2 = thread_cpu();
        drop(copies);
        render_cpu += t1.saturating_sub(t0);
        clone_cpu += t2.saturating_sub(t1);
    }
    let n = u32::try_from(groups.len()).unwrap_or(u32::MAX);
    (render_cpu / n, clone_cpu / n)
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("reconcile bench: {e}");
    ExitCode::FAILURE
}
