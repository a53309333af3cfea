//! Admission load generator: a full `MysqlFailoverGroup` validation over TLS keep-alive.
//!
//! Run through `scripts/bench-admission.sh`, which starts the server (release build) and
//! passes: `--url https://127.0.0.1:PORT/validate --ca ca.crt --pid SERVER_PID`.
//! Prints, per phase, requests, req/s, p50/p99/max latency, and the server's RSS.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Args {
    url: String,
    ca: String,
    pid: Option<u32>,
    seconds: u64,
    total: u64,
    rate: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: String::new(),
        ca: String::new(),
        pid: None,
        seconds: 10,
        total: 1_000_000,
        rate: 1000,
    };
    let raw_args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut it = raw_args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => args.url.clone_from(value),
            "--ca" => args.ca.clone_from(value),
            "--pid" => args.pid = Some(value.parse().map_err(|e| format!("--pid: {e}"))?),
            "--seconds" => args.seconds = value.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--total" => args.total = value.parse().map_err(|e| format!("--total: {e}"))?,
            "--rate" => args.rate = value.parse().map_err(|e| format!("--rate: {e}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.url.is_empty() || args.ca.is_empty() {
        return Err("--url and --ca are required (run scripts/bench-admission.sh)".to_owned());
    }
    Ok(args)
}

/// The production-ready example's group inside a CREATE AdmissionReview.
fn review_body() -> Vec<u8> {
    let text = include_str!("../docs/examples/production-ready.yaml");
    let stream = bloodraven::policy::manifest::parse_stream(None, text);
    let group = stream
        .documents
        .into_iter()
        .map(|d| d.value)
        .find(|v| v["kind"] == "MysqlFailoverGroup")
        .unwrap_or(Value::Null);
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "bench", "operation": "CREATE", "namespace": "db",
            "kind": {"group": "shipstream.io", "version": "v1alpha1", "kind": "MysqlFailoverGroup"},
            "resource": {"group": "shipstream.io", "version": "v1alpha1", "resource": "mysqlfailovergroups"},
            "userInfo": {"username": "bench"}, "object": group, "dryRun": false
        }
    });
    serde_json::to_vec(&review).unwrap_or_default()
}

fn client(ca: &[u8]) -> Result<reqwest::Client, String> {
    let cert = reqwest::Certificate::from_pem(ca).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .tls_certs_only([cert])
        .http1_only()
        .pool_max_idle_per_host(1)
        .build()
        .map_err(|e| e.to_string())
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct Outcome {
    latencies_us: Vec<u32>,
    errors: u64,
    elapsed: Duration,
}

/// `workers` connections; each sends back to back (closed loop) or, with `interval`, one
/// request per tick (open loop at a fixed total rate). Stops after `duration` or `limit`.
async fn drive(
    args: &Args,
    body: &Arc<Vec<u8>>,
    ca: &[u8],
    workers: usize,
    interval: Option<Duration>,
    duration: Duration,
    limit: u64,
) -> Result<Outcome, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let per_worker = limit / workers as u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        // Open loop: spread the workers' ticks over the interval, so the rate is smooth
        // instead of `workers` requests arriving together every tick.
        let offset = interval.map_or(Duration::ZERO, |i| {
            i * u32::try_from(worker).unwrap_or(0) / u32::try_from(workers).unwrap_or(1)
        });
        let client = client(ca)?;
        let (url, body, stop) = (args.url.clone(), Arc::clone(body), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(4096);
            let mut errors = 0u64;
            tokio::time::sleep(offset).await;
            let mut ticker = interval.map(|i| {
                let mut t = tokio::time::interval(i);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) && sent < per_worker {
                if let Some(t) = ticker.as_mut() {
                    t.tick().await;
                }
                let t0 = Instant::now();
                let ok = match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.to_vec())
                    .send()
                    .await
                {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                sent += 1;
                if ok {
                    latencies.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let stopper = Arc::clone(&stop);
    let timer = tokio::spawn(async move {
        tokio::time::sleep(duration).await;
        stopper.store(true, Ordering::Relaxed);
    });
    let mut outcome = Outcome {
        latencies_us: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let (l, e) = t.await.map_err(|e| e.to_string())?;
        outcome.latencies_us.extend(l);
        outcome.errors += e;
    }
    outcome.elapsed = started.elapsed();
    timer.abort();
    outcome.latencies_us.sort_unstable();
    Ok(outcome)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = (((sorted.len() - 1) as f64) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

#[allow(clippy::cast_precision_loss)]
fn report(label: &str, o: &Outcome, pid: Option<u32>) {
    let n = o.latencies_us.len();
    println!(
        "{label:<28} requests {n:>8}  errors {:>3}  {:>8.0} req/s  p50 {:>6.3} ms  p99 {:>6.3} ms  max {:>7.3} ms  server RSS {} KiB",
        o.errors,
        n as f64 / o.elapsed.as_secs_f64(),
        percentile(&o.latencies_us, 0.50),
        percentile(&o.latencies_us, 0.99),
        o.latencies_us
            .last()
            .map_or(f64::NAN, |m| f64::from(*m) / 1000.0),
        rss_kib(pid).map_or_else(|| "?".to_owned(), |r| r.to_string()),
    );
}

fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("admission bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        return std::process::ExitCode::FAILURE;
    };
    match runtime.block_on(bench(&args)) {
        Ok(0) => std::process::ExitCode::SUCCESS,
        Ok(errors) => {
            eprintln!("admission bench: {errors} requests failed");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("admission bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Evaluation cost without HTTP or TLS: parse + validate, and parse + mutate, per request.
/// This is what runs on the blocking pool, so it bounds what moving it there can cost.
fn compute_only(body: &[u8]) -> Result<(), String> {
    use bloodraven::policy::rules::{Catalog, EmptyContext, LintConfig, Linter};
    use bloodraven::shells::serve::admission::{Policy, mutate, review, validate};
    let linter = Linter::new(
        Catalog::builtin().map_err(|e| e.to_string())?,
        LintConfig::default(),
    );
    let policy = Policy {
        operator_service_account: String::new(),
        ratchet: true,
    };
    let n = 20_000u32;
    let per_call_us = |f: &dyn Fn() -> Result<(), String>| -> Result<f64, String> {
        let t0 = Instant::now();
        for _ in 0..n {
            f()?;
        }
        Ok(t0.elapsed().as_secs_f64() * 1e6 / f64::from(n))
    };
    let validate_us = per_call_us(&|| {
        let request = review::parse(body).map_err(|e| e.to_string())?;
        std::hint::black_box(validate::validate(
            &request,
            &linter,
            &EmptyContext,
            &policy,
        ));
        Ok(())
    })?;
    let mutate_us = per_call_us(&|| {
        let request = review::parse(body).map_err(|e| e.to_string())?;
        std::hint::black_box(mutate::mutate(&request, &linter, &EmptyContext));
        Ok(())
    })?;
    let parse_us = per_call_us(&|| {
        std::hint::black_box(review::parse(body).map_err(|e| e.to_string())?);
        Ok(())
    })?;
    println!(
        "compute only (one thread, {} rules): parse {parse_us:.1} µs, parse+validate {validate_us:.1} µs, parse+mutate {mutate_us:.1} µs",
        linter.catalog().rules().len()
    );
    Ok(())
}

async fn bench(args: &Args) -> Result<u64, String> {
    let ca = std::fs::read(&args.ca).map_err(|e| format!("{}: {e}", args.ca))?;
    let body = Arc::new(review_body());
    compute_only(&body)?;
    println!(
        "body {} bytes; idle server RSS {} KiB",
        body.len(),
        rss_kib(args.pid).map_or_else(|| "?".into(), |r| r.to_string())
    );
    let secs = Duration::from_secs(args.seconds);
    let mut errors = 0;
    // Warm-up: connections, allocator, lazily built validators.
    let warm = drive(args, &body, &ca, 4, None, Duration::from_secs(2), u64::MAX).await?;
    report("warm-up c=4", &warm, args.pid);
    for c in [1usize, 16, 64] {
        let o = drive(args, &body, &ca, c, None, secs, u64::MAX).await?;
        report(&format!("closed loop c={c}"), &o, args.pid);
        errors += o.errors;
    }
    // 1,000 req/s spread over 16 connections.
    let workers = 16u64;
    let interval = Duration::from_micros(1_000_000 * workers / args.rate.max(1));
    let o = drive(args, &body, &ca, 16, Some(interval), secs, u64::MAX).await?;
    report(&format!("open loop {} req/s c=16", args.rate), &o, args.pid);
    errors += o.errors;
    // Soak: RSS after 10% and after all of `total` requests.
    let tenth = drive(
        args,
        &body,
        &ca,
        64,
        None,
        Duration::from_secs(3600),
        args.total / 10,
    )
    .await?;
    report(&format!("soak first {}", args.total / 10), &tenth, args.pid);
    let rest = drive(
        args,
        &body,
        &ca,
        64,
        None,
        Duration::from_secs(3600),
        args.total - args.total / 10,
    )
    .await?;
    report(&format!("soak to {}", args.total), &rest, args.pid);
    errors += tenth.errors + rest.errors;
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "server RSS after {} requests + 2 s idle: {} KiB",
        args.total,
        rss_kib(args.pid).map_or_else(|| "?".into(), |r| r.to_string())
    );
    Ok(errors)
}
