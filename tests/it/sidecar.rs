//! `bloodraven sidecar` against a real MySQL 9.7 over real TLS: authentication (no token,
//! a wrong token, a certificate from another CA, no certificate: all refused; the right
//! pair: served), fence-first boot, self-fencing when the operator names another site,
//! and never lifting a fence itself.

use std::time::Duration;

use crate::serve_support::install_crypto_provider;
use crate::sidecar_support::{FakeOperator, Pki, SidecarProcess, TOKEN, wait_for, write_config};
use crate::support::mysql::{MysqlCluster, free_port};

/// `read_only` and `super_read_only`, or an error when the probe's session was cut: a
/// fencing sidecar kills client sessions, and the probe's own may be one of them.
fn try_flags(
    instance: &crate::support::mysql::MysqlInstance,
) -> crate::support::mysql::HarnessResult<(String, String)> {
    let out = instance.sql("SELECT @@GLOBAL.read_only, @@GLOBAL.super_read_only")?;
    let mut parts = out.split_whitespace();
    Ok((
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    ))
}

fn flags(instance: &crate::support::mysql::MysqlInstance) -> (String, String) {
    for _ in 0..5 {
        if let Ok(flags) = try_flags(instance) {
            return flags;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    try_flags(instance).expect("flags: six probes in a row failed")
}

fn client(pki: &Pki, identity: Option<reqwest::Identity>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem().as_bytes()).unwrap()])
        .http1_only()
        .timeout(Duration::from_secs(5));
    if let Some(id) = identity {
        builder = builder.identity(id);
    }
    builder.build().unwrap()
}

async fn get(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> Result<(u16, String), String> {
    let mut request = client.get(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one scenario, step by step
async fn sidecar_authenticates_fences_first_and_never_lifts() {
    install_crypto_provider();
    let cluster = MysqlCluster::start(1).expect("mysql");
    let mysql = cluster.get(0).unwrap();
    // A server that came up writable (the case fence-first boot exists for).
    mysql
        .sql("SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF")
        .unwrap();
    assert_eq!(flags(mysql), ("0".into(), "0".into()));

    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("sidecar test CA");
    pki.issue(&dir.path().join("tls"), &["127.0.0.1", "localhost"]);
    std::fs::write(dir.path().join("ca.crt"), pki.ca_pem()).unwrap();
    let operator = FakeOperator::start("127.0.0.1:0".parse().unwrap(), Some("a")).await;
    let port = free_port().unwrap();
    let config = write_config(
        dir.path(),
        "a",
        &mysql.address(),
        &operator.url(),
        &[],
        &format!("127.0.0.1:{port}"),
        true,
        ("3s", "1s"),
    );
    let _sidecar = SidecarProcess::spawn(&config, None, &dir.path().join("sidecar.log"));
    let base = format!("https://127.0.0.1:{port}");
    let anonymous = client(&pki, None);
    let good = client(&pki, Some(pki.client_identity(&dir.path().join("client"))));
    let rogue_pki = Pki::new("someone else's CA");
    let rogue = client(
        &pki,
        Some(rogue_pki.client_identity(&dir.path().join("rogue"))),
    );

    // /health is open: the kubelet has no token and no client certificate.
    let health = wait_for(Duration::from_secs(20), "/health", async || {
        get(&anonymous, &format!("{base}/health"), None).await.ok()
    })
    .await;
    assert_eq!(health, (200, "ok\n".into()));
    // Fence first: the API answers only after super_read_only is on.
    assert_eq!(
        flags(mysql),
        ("1".into(), "1".into()),
        "fenced before serving"
    );

    for path in [
        "/status",
        "/peer/ping",
        "/peer/active-site",
        "/metrics",
        "/nope",
    ] {
        let url = format!("{base}{path}");
        // No client certificate, even with the right token: refused, but for the report
        // the operator reads for its second opinion (the token alone, over TLS).
        let anonymous_answer = if path == "/status" { 200 } else { 401 };
        assert_eq!(
            get(&anonymous, &url, Some(TOKEN)).await.unwrap().0,
            anonymous_answer,
            "{path}"
        );
        assert_eq!(get(&anonymous, &url, None).await.unwrap().0, 401, "{path}");
        // A good certificate but no token, or a wrong one.
        assert_eq!(get(&good, &url, None).await.unwrap().0, 401, "{path}");
        assert_eq!(
            get(&good, &url, Some("wrong")).await.unwrap().0,
            401,
            "{path}"
        );
        assert_eq!(
            get(&good, &url, Some(&TOKEN[..TOKEN.len() - 1]))
                .await
                .unwrap()
                .0,
            401,
            "{path}: a prefix of the token"
        );
        // A certificate from another CA is refused at the handshake.
        let refused = get(&rogue, &url, Some(TOKEN)).await;
        assert!(
            refused.is_err() || refused.as_ref().is_ok_and(|r| r.0 == 401),
            "{path}: {refused:?}"
        );
    }
    // The right pair is served.
    assert_eq!(
        get(&good, &format!("{base}/peer/ping"), Some(TOKEN))
            .await
            .unwrap(),
        (200, "pong\n".into())
    );

    // The operator names this site: cleared, but the sidecar never lifts the fence.
    let status = wait_for(Duration::from_secs(10), "cleared", async || {
        let (code, body) = get(&good, &format!("{base}/status"), Some(TOKEN))
            .await
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (code == 200 && v["fence"]["state"] == "cleared").then_some(v)
    })
    .await;
    assert_eq!(status["site"], "a");
    assert_eq!(status["mysql"]["superReadOnly"], true);
    assert!(status["mysql"]["gtidExecuted"].is_string());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        flags(mysql),
        ("1".into(), "1".into()),
        "cleared is not lifted"
    );
    let (code, relayed) = get(&good, &format!("{base}/peer/active-site"), Some(TOKEN))
        .await
        .unwrap();
    assert_eq!(code, 200);
    let relayed: serde_json::Value = serde_json::from_str(&relayed).unwrap();
    assert_eq!(relayed["activeSite"], "a");

    // The operator lifts the fence (as it would after "cleared"), a client holds a session.
    mysql
        .sql("SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF")
        .unwrap();
    // Named another site right after the lift, the site is left alone (the operator
    // publishes a promotion a poll after lifting the fence)...
    operator.set_active(Some("b"));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        flags(mysql).1,
        "0",
        "not fenced on an answer from before the lift settled"
    );
    // ...but once the lift is a lease old, another active site fences within an interval.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let switched = std::time::Instant::now();
    wait_for(Duration::from_secs(5), "other-site fence", async || {
        try_flags(mysql)
            .is_ok_and(|(_, super_read_only)| super_read_only == "1")
            .then_some(())
    })
    .await;
    let took = switched.elapsed();
    assert!(took < Duration::from_secs(3), "fenced after {took:?}");
    let status: serde_json::Value = wait_for(Duration::from_secs(5), "status reason", async || {
        let (_, body) = get(&good, &format!("{base}/status"), Some(TOKEN))
            .await
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (v["fence"]["reason"] == "other-site-active").then_some(v)
    })
    .await;
    assert_eq!(status["fence"]["state"], "fenced");
    let (_, metrics) = get(&good, &format!("{base}/metrics"), Some(TOKEN))
        .await
        .unwrap();
    assert!(
        metrics.contains("bloodraven_sidecar_self_fences_total{reason=\"other-site-active\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bloodraven_sidecar_fenced{reason=\"other-site-active\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bloodraven_sidecar_auth_refused_total{reason=\"no_token\"}"),
        "{metrics}"
    );
    eprintln!("other-site-active: fenced {took:?} after the operator switched");
}

mod fuzz {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use axum::body::Body;
    use axum::http::Request;
    use bloodraven::adapters::mysql::{Credentials, MysqlSiteClient, MysqlSiteConfig};
    use bloodraven::shells::sidecar::auth::{AuthState, Token};
    use bloodraven::shells::sidecar::config;
    use bloodraven::shells::sidecar::http::{HttpState, router};
    use bloodraven::shells::sidecar::monitor::{Caller, Clock, Monitor};
    use bloodraven::telemetry::sidecar::SidecarMetrics;
    use proptest::prelude::*;
    use tower::ServiceExt as _;

    use crate::sidecar_support::TOKEN;

    fn app(dir: &std::path::Path) -> axum::Router {
        crate::serve_support::install_crypto_provider();
        let cfg = config::parse(
            "fuzz.yaml",
            "site: a\nmysql: {address: \"127.0.0.1:1\", credentials: {user: root}}\noperator: {url: \"http://127.0.0.1:1/active-site\"}\nauth: {tokenFile: token}\n",
            dir,
        )
        .unwrap();
        std::fs::write(dir.join("token"), TOKEN).unwrap();
        let token = Token::load(&dir.join("token")).unwrap();
        let mysql = MysqlSiteClient::new(MysqlSiteConfig::new(
            "a",
            "127.0.0.1:1",
            Credentials::new("root", ""),
            Credentials::new("root", ""),
        ))
        .unwrap();
        let mut registry = prometheus_client::registry::Registry::with_prefix("bloodraven");
        let metrics = Arc::new(SidecarMetrics::register(&mut registry));
        let clock = Clock::new();
        let (_monitor, shared) = Monitor::new(
            Arc::new(cfg),
            mysql,
            Caller {
                http: reqwest::Client::new(),
                operator_trust: None,
                token: token.clone(),
                timeout: Duration::from_secs(1),
            },
            Arc::clone(&metrics),
            clock,
        );
        router(
            HttpState {
                shared,
                registry: Arc::new(registry),
                metrics: Arc::clone(&metrics),
                clock,
            },
            AuthState {
                token,
                require_client_cert: false,
                metrics,
            },
        )
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("health".to_owned()),
            Just("status".to_owned()),
            Just("peer".to_owned()),
            Just("active-site".to_owned()),
            Just("..".to_owned()),
            Just("%2e%2e".to_owned()),
            Just("%00".to_owned()),
            "[a-zA-Z0-9._~%-]{0,40}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Hostile paths, methods and headers: no panic, an answer within a bound, and
        /// nothing but `/health` is ever served without the token.
        #[test]
        fn hostile_requests_are_answered_safely(
            segments in prop::collection::vec(segment(), 0..6),
            query in prop::option::of("[a-z0-9=&%]{0,60}"),
            method in prop_oneof![Just("GET"), Just("POST"), Just("DELETE"), Just("OPTIONS"), Just("HEAD")],
            auth in prop_oneof![
                Just(None),
                Just(Some(format!("Bearer {TOKEN}"))),
                "[ -~]{0,200}".prop_map(Some),
                Just(Some("Bearer ".to_owned())),
                Just(Some(format!("Bearer {TOKEN}{TOKEN}"))),
            ],
            junk in prop::collection::vec(("x-[a-z]{1,20}", "[ -~]{0,500}"), 0..20),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let app = app(dir.path());
            let mut uri = format!("/{}", segments.join("/"));
            if let Some(q) = &query { uri.push('?'); uri.push_str(q); }
            let mut builder = Request::builder().method(method).uri(&uri);
            if let Some(a) = &auth { builder = builder.header("authorization", a.as_str()); }
            for (k, v) in &junk { builder = builder.header(k.as_str(), v.as_str()); }
            let Ok(request) = builder.body(Body::empty()) else { return Ok(()) };
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let started = Instant::now();
            let response = runtime.block_on(app.oneshot(request)).unwrap();
            prop_assert!(started.elapsed() < Duration::from_secs(2));
            let status = response.status().as_u16();
            prop_assert!([200, 204, 401, 404, 405].contains(&status), "{uri}: {status}");
            let authorised = auth.as_deref() == Some(&format!("Bearer {TOKEN}"));
            if status == 200 && !authorised {
                prop_assert_eq!(uri.split('?').next(), Some("/health"));
            }
        }
    }
}
