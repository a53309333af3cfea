//! `/metrics`: the families exist with bounded labels, and promtool accepts the exposition.

use std::path::PathBuf;
use std::process::Command;

use crate::serve_support::{ReviewBuilder, TestServer, bad_group, good_group};

/// promtool from `scripts/install-test-deps.sh` (under `.deps/`), `$PROMTOOL`, or `PATH`.
fn promtool() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PROMTOOL") {
        return Some(PathBuf::from(path));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for candidate in [".deps/bin/promtool", ".deps/promtool/usr/bin/promtool"] {
        let path = root.join(candidate);
        if path.is_file() {
            return Some(path);
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("promtool"))
        .find(|p| p.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_requests_findings_decisions_and_pass_promtool() {
    let server = TestServer::start().await;
    server
        .review("/validate", &ReviewBuilder::create(bad_group()))
        .await;
    server
        .review("/validate", &ReviewBuilder::create(good_group()))
        .await;
    server
        .review("/mutate", &ReviewBuilder::create(bad_group()))
        .await;
    let _ = server.post("/validate", &serde_json::json!("junk")).await;
    let (status, text) = server.get_text("/metrics").await;
    assert_eq!(status, 200);
    for expected in [
        "bloodraven_http_requests_total{route=\"/validate\",code=\"200\"} 2",
        "bloodraven_http_requests_total{route=\"/validate\",code=\"400\"} 1",
        "bloodraven_http_request_duration_seconds_count{route=\"/validate\"} 3",
        "bloodraven_findings_total{source=\"admission\",rule=\"BR-TEST-TLS-001\",level=\"required\"} 1",
        "bloodraven_admission_decisions_total{webhook=\"validate\",operation=\"create\",decision=\"denied\"} 1",
        "bloodraven_admission_decisions_total{webhook=\"validate\",operation=\"create\",decision=\"allowed\"} 1",
        "bloodraven_admission_decisions_total{webhook=\"mutate\",operation=\"create\",decision=\"patched\"} 1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    // No label value ever comes from request content (names, namespaces, uids, users).
    for leaked in ["orders", "alice", "705ab4f5", "\"db\""] {
        assert!(!text.contains(leaked), "{leaked} leaked into metrics");
    }

    // Prometheus asks for OpenMetrics and gets it.
    let om = server
        .client
        .get(server.url("/metrics"))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .expect("answered");
    assert!(
        om.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("application/openmetrics-text")
    );
    let om = om.text().await.expect("text");
    assert!(
        om.ends_with("# EOF\n") && om.contains("# TYPE bloodraven_http_requests counter"),
        "{om}"
    );

    let Some(promtool) = promtool() else {
        panic!(
            "promtool not found: run scripts/install-test-deps.sh (installs it under .deps/) or set PROMTOOL"
        );
    };
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), text.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("promtool finishes");
    assert!(
        output.status.success(),
        "promtool check metrics failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    server.stop().await;
}
