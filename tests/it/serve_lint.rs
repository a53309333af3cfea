//! `POST /lint` over real TLS: the CLI's findings for the same input, formats, 422s.

use bloodraven::policy::manifest::parse_stream;
use bloodraven::policy::report::{Format, RenderOptions, render};
use bloodraven::policy::rules::BundleContext;
use serde_json::Value;

use crate::serve_support::{TestServer, linter};

/// A `helm template`-style bundle: a group, its Secrets (one missing, one sharing a
/// username), a `StorageClass`, and a kind no rule knows.
pub const BUNDLE: &str = r"
apiVersion: v1
kind: Secret
metadata: {name: op}
stringData: {username: operator, password: a}
---
apiVersion: v1
kind: Secret
metadata: {name: app}
stringData: {username: operator, password: b}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
provisioner: kubernetes.io/no-provisioner
reclaimPolicy: Delete
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
---
apiVersion: shipstream.io/v1alpha1
kind: MysqlFailoverGroup
metadata: {name: orders}
spec:
  image: mysql:9.7
  credentials:
    operatorSecret: op
    appSecret: app
    readOnlySecret: ro
  podSecurityContext: {fsGroup: 999, fsGroupChangePolicy: Always}
  dns: {hostname: orders.example.com}
  sites:
  - {name: east, role: primary-candidate, storage: {storageClassName: fast}}
  - {name: west, role: primary-candidate}
";

pub async fn lint(
    server: &TestServer,
    query: &str,
    accept: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, String) {
    let mut request = server
        .client
        .post(server.url(&format!("/lint{query}")))
        .body(body);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.expect("text"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lint_returns_the_same_findings_as_the_linter_for_the_same_input() {
    let server = TestServer::start().await;
    // What `bloodraven lint -` computes for the same bytes on stdin.
    let stream = parse_stream(Some("-"), BUNDLE);
    assert!(stream.errors.is_empty());
    let ctx = BundleContext::of_documents(&stream.documents);
    let expected = linter().lint(&stream.documents, Vec::new(), &ctx);
    assert!(
        expected.findings.len() >= 6,
        "the bundle exercises several rules: {:?}",
        expected.findings
    );
    assert!(
        expected
            .findings
            .iter()
            .any(|f| &*f.rule_id == "BR-TEST-CRED-001" && f.message.contains("same username")),
        "bundle context feeds cross-object rules"
    );

    let catalog = crate::serve_support::catalog();
    let cases = [
        ("?format=json", None, Format::Json),
        ("", Some("application/json"), Format::Json),
        ("", None, Format::Json),
        ("?format=sarif", None, Format::Sarif),
        (
            "",
            Some("text/html, application/sarif+json;q=0.9"),
            Format::Sarif,
        ),
        ("?format=junit", Some("application/json"), Format::Junit),
        ("?format=text", None, Format::Text),
    ];
    for (query, accept, format) in cases {
        let (status, content_type, body) =
            lint(&server, query, accept, BUNDLE.as_bytes().to_vec()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(content_type, format.media_type(), "{query} {accept:?}");
        // Byte for byte what `bloodraven lint - --format F` prints for the same stdin.
        assert_eq!(
            body,
            render(&expected, &catalog, format, &RenderOptions::default()),
            "{query} {accept:?}"
        );
        if format == Format::Json {
            let report: Value = serde_json::from_str(&body).expect("json report");
            assert_eq!(
                report["summary"]["objectsSkipped"], 4,
                "Secrets, StorageClass, ConfigMap: {}",
                report["summary"]
            );
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparseable_input_gets_422_with_line_and_column() {
    let server = TestServer::start().await;
    let body = "kind: ConfigMap\n---\nkind: MysqlFailoverGroup\nspec: {a: [1, 2}\n";
    let (status, content_type, text) = lint(&server, "", None, body.as_bytes().to_vec()).await;
    assert_eq!(status, 422, "{text}");
    assert!(content_type.starts_with("application/json"));
    let answer: Value = serde_json::from_str(&text).expect("json");
    let first = &answer["errors"][0];
    assert_eq!(first["line"], 4, "{answer}");
    assert!(first["column"].as_u64().is_some_and(|c| c > 0), "{answer}");
    assert!(first["message"].as_str().is_some_and(|m| !m.is_empty()));

    let (status, _, text) = lint(&server, "", None, b"kind: x\nname: \xff\xfe\n".to_vec()).await;
    assert_eq!(status, 422, "non-UTF-8: {text}");
    let answer: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(answer["errors"][0]["line"], 2);
    assert_eq!(answer["errors"][0]["column"], 7);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_formats_are_refused() {
    let server = TestServer::start().await;
    let (status, _, text) = lint(&server, "?format=pdf", None, BUNDLE.as_bytes().to_vec()).await;
    assert_eq!(status, 400);
    assert!(text.contains("unknown format"), "{text}");
    let (status, _, text) = lint(&server, "", Some("text/html"), BUNDLE.as_bytes().to_vec()).await;
    assert_eq!(status, 406, "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lint_requests_over_their_deadline_get_503() {
    let server =
        TestServer::start_with(|o| o.lint_timeout = std::time::Duration::from_millis(20)).await;
    // ~2 MiB of documents: reading, parsing and linting it takes far longer than 20 ms.
    let body = BUNDLE.repeat(2 * 1024 * 1024 / BUNDLE.len());
    let (status, _, text) = lint(&server, "", None, body.into_bytes()).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("did not complete within 20 ms"), "{text}");
    // The server is still healthy afterwards (metrics answer well within the deadline).
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(
        metrics.contains("bloodraven_http_requests_total{route=\"/lint\",code=\"503\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}
