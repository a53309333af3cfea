//! `POST /lint` cannot take admission down or exhaust the server: admission keeps its own
//! threads while lint is saturated, lint work is bounded (413/422 naming the limit, reports
//! truncated with a flag) and cancelled when its client leaves. Real TLS, real clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::serve_lint::{BUNDLE, lint};
use crate::serve_support::{ReviewBuilder, TestServer, good_group};

/// `BUNDLE` repeated to about `bytes`, as one stream.
fn bundle_of(bytes: usize) -> Vec<u8> {
    let copies = bytes / (BUNDLE.len() + 4) + 1;
    let mut body = String::with_capacity(copies * (BUNDLE.len() + 4));
    for _ in 0..copies {
        body.push_str("---\n");
        body.push_str(BUNDLE);
    }
    body.into_bytes()
}

fn metric(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_p99_stays_under_50_ms_while_lint_is_saturated() {
    let server = Arc::new(
        TestServer::start_with(|o| {
            o.lint_concurrency = 1;
            o.lint_queue = 1;
        })
        .await,
    );
    let body = Arc::new(bundle_of(128 * 1024));
    let stop = Arc::new(AtomicBool::new(false));
    let (linted, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut posters = Vec::new();
    // Eight clients posting large bundles back to back, as in the report that found this.
    for _ in 0..8 {
        let (server, body, stop) = (Arc::clone(&server), Arc::clone(&body), Arc::clone(&stop));
        let (linted, refused) = (Arc::clone(&linted), Arc::clone(&refused));
        posters.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (status, _, _) = lint(&server, "", None, body.to_vec()).await;
                match status {
                    200 => linted.fetch_add(1, Ordering::Relaxed),
                    429 => refused.fetch_add(1, Ordering::Relaxed),
                    other => panic!("/lint answered {other}"),
                };
                if status == 429 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    // Let the lint slots fill before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let review = ReviewBuilder::create(good_group());
    let mut latencies = Vec::new();
    for _ in 0..300 {
        let started = Instant::now();
        let response = server.review("/validate", &review).await;
        latencies.push(started.elapsed());
        assert_eq!(response["allowed"], true, "{response}");
    }
    stop.store(true, Ordering::Relaxed);
    for poster in posters {
        poster.await.expect("poster");
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let (linted, refused) = (
        linted.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    assert!(
        refused > 0 && linted > 0,
        "lint was saturated while admission was measured ({linted} linted, {refused} refused)"
    );
    assert!(
        p99 < Duration::from_millis(50),
        "/validate p99 {p99:?} while /lint was saturated (max {:?})",
        latencies.last()
    );
    if let Ok(server) = Arc::try_unwrap(server) {
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lint_work_limits_answer_413_and_422_naming_the_limit() {
    let server = TestServer::start_with(|o| {
        o.lint_limits.max_documents = 6;
        o.lint_limits.max_sites_per_group = 3;
    })
    .await;
    // BUNDLE has five documents; two copies are ten.
    let (status, _, text) = lint(&server, "", None, bundle_of(BUNDLE.len() + 8)).await;
    assert_eq!(status, 413, "{text}");
    assert!(
        text.contains("more than 6 documents") && text.contains("--lint-max-documents"),
        "{text}"
    );
    let sites = "  - {name: s, role: primary-candidate}\n".repeat(4);
    let group = format!(
        "apiVersion: shipstream.io/v1alpha1\nkind: MysqlFailoverGroup\nmetadata: {{name: wide}}\nspec:\n  sites:\n{sites}"
    );
    let (status, _, text) = lint(&server, "", None, group.into_bytes()).await;
    assert_eq!(status, 422, "{text}");
    assert!(
        text.contains("MysqlFailoverGroup wide has 4 sites, more than 3")
            && text.contains("--lint-max-sites-per-group"),
        "{text}"
    );
    // Within the limits the same server lints as usual.
    let (status, _, text) = lint(&server, "", None, BUNDLE.as_bytes().to_vec()).await;
    assert_eq!(status, 200, "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_truncated_at_the_findings_cap_with_the_flag_set() {
    let server = TestServer::start_with(|o| o.lint_limits.max_findings = 20).await;
    let body = bundle_of(BUNDLE.len() * 4);

    let (status, _, text) = lint(&server, "?format=json", None, body.clone()).await;
    assert_eq!(status, 200, "{text}");
    let report: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(report["findings"].as_array().map(Vec::len), Some(20));
    let truncated = &report["truncated"];
    assert_eq!(truncated["findingsShown"], 20, "{truncated}");
    let omitted = truncated["findingsOmitted"].as_u64().expect("omitted");
    assert!(omitted > 0, "{truncated}");
    assert!(
        truncated["reason"]
            .as_str()
            .is_some_and(|r| r.contains("at most 20 findings")),
        "{truncated}"
    );
    let counted: u64 = report["summary"]["findings"]
        .as_object()
        .expect("counts")
        .values()
        .filter_map(Value::as_u64)
        .sum::<u64>()
        + report["summary"]["suppressed"].as_u64().unwrap_or(0);
    assert_eq!(counted, 20 + omitted, "the summary counts every finding");

    let (status, _, text) = lint(&server, "?format=sarif", None, body.clone()).await;
    assert_eq!(status, 200, "{text}");
    let log: Value = serde_json::from_str(&text).expect("sarif");
    let run = &log["runs"][0];
    assert_eq!(run["results"].as_array().map(Vec::len), Some(20));
    assert_eq!(run["properties"]["truncated"], true);
    let notes = run["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .expect("notifications");
    assert!(
        notes
            .iter()
            .any(|n| n["descriptor"]["id"] == "truncated" && n["level"] == "warning"),
        "{notes:?}"
    );

    let (_, _, text) = lint(&server, "?format=text", None, body.clone()).await;
    let last = text.lines().last().unwrap_or_default();
    assert!(last.starts_with("report truncated: 20 of "), "{last}");
    let (_, _, text) = lint(&server, "?format=junit", None, body).await;
    let last = text.lines().last().unwrap_or_default();
    assert!(last.starts_with("<!-- report truncated: 20 of "), "{last}");

    // A body with fewer findings than the cap is not flagged.
    let (_, _, text) = lint(&server, "?format=json", None, BUNDLE.as_bytes().to_vec()).await;
    let report: Value = serde_json::from_str(&text).expect("json");
    assert!(report.get("truncated").is_none(), "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_cut_to_the_byte_cap() {
    let limit = 40 * 1024;
    let server = TestServer::start_with(|o| o.lint_limits.max_output_bytes = limit).await;
    let (status, _, text) =
        lint(&server, "?format=sarif", None, bundle_of(BUNDLE.len() * 40)).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.len() <= limit, "{} bytes", text.len());
    let log: Value = serde_json::from_str(&text).expect("a complete SARIF log");
    let truncation = &log["runs"][0]["properties"]["truncation"];
    assert!(
        truncation["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&format!("at most {limit} bytes"))),
        "{truncation}"
    );
    assert!(truncation["findingsOmitted"].as_u64() > Some(0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_mid_lint_frees_its_slot() {
    let server = TestServer::start_with(|o| {
        o.lint_concurrency = 1;
        o.lint_queue = 0;
        o.lint_timeout = Duration::from_secs(60);
        o.lint_limits.max_documents = 100_000;
    })
    .await;
    let body = bundle_of(384 * 1024);
    // How long the whole body takes, for comparison.
    let started = Instant::now();
    let (status, _, _) = lint(&server, "?format=json", None, body.clone()).await;
    assert_eq!(status, 200);
    let full = started.elapsed();

    let impatient = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(
            &std::fs::read(&server.generated.ca_cert).expect("ca.crt"),
        )
        .expect("CA parses")])
        .http1_only()
        .timeout(full / 5)
        .build()
        .expect("client");
    let left = Instant::now();
    let gone = impatient
        .post(server.url("/lint"))
        .body(body.clone())
        .send()
        .await;
    assert!(gone.is_err(), "the client gave up before the answer");
    drop(impatient);
    let freed = loop {
        let (_, metrics) = server.get_text("/metrics").await;
        if metric(&metrics, "bloodraven_lint_slots_in_use") == Some(0.0) {
            break left.elapsed();
        }
        assert!(
            left.elapsed() < full,
            "the slot is still held after the time a whole lint takes ({full:?})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        freed < full / 2,
        "slot freed after {freed:?}; a whole lint takes {full:?}"
    );
    let (_, metrics) = server.get_text("/metrics").await;
    assert_eq!(
        metric(&metrics, "bloodraven_lint_cancelled_total"),
        Some(1.0),
        "{metrics}"
    );
    // The next request gets the slot at once.
    let (status, _, text) = lint(&server, "", None, BUNDLE.as_bytes().to_vec()).await;
    assert_eq!(status, 200, "{text}");
    server.stop().await;
}
