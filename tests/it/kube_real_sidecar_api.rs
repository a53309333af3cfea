//! The operator's side of the sidecar, end to end against a real API server and a real
//! MySQL pair (the [`Fixture`] of `kube_real_operator`): a group that opts in gets its
//! token Secret once, never overwritten; every replica, leader or not, answers the
//! sidecars' active-site endpoint from the group's stored status, for the group's token
//! only.
//!
//! Run by `scripts/kube-apiserver-test.sh PATH/TO/crd-apiserver.sh`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bloodraven::api::annotations::SIDECAR;
use bloodraven::render::names;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::failover_common::TestResult;
use crate::kube_real_operator::{Fixture, Operator, SIDECAR_ONLY_REQUESTS, Timing};
use crate::sidecar_support::SidecarProcess;
use crate::support::mysql::free_port;

const TOKEN_SECRET: &str = "mysql-orders-sidecar-token";

async fn token(fixture: &Fixture) -> TestResult<Option<String>> {
    let secrets: Api<Secret> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    Ok(secrets.get_opt(TOKEN_SECRET).await?.and_then(|s| {
        let bytes = s.data?.get("token")?.0.clone();
        String::from_utf8(bytes).ok()
    }))
}

async fn wait_token(
    fixture: &Fixture,
    operator: &Operator,
    pred: impl Fn(&str) -> bool,
) -> TestResult<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(t) = token(fixture).await?
            && pred(&t)
        {
            return Ok(t);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no such token Secret: {:?}\n{}",
                token(fixture).await?,
                operator.log_text()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One replica's sidecar endpoint: its port, and the CA its serving certificate chains to.
struct Endpoint {
    port: u16,
    ca: PathBuf,
}

impl Endpoint {
    fn of(operator: &Operator, port: u16) -> Self {
        Self {
            port,
            ca: operator.ca_file().to_owned(),
        }
    }

    /// A client that trusts the operator's CA alone.
    fn client(&self) -> TestResult<reqwest::Client> {
        crate::serve_support::install_crypto_provider();
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&self.ca)?)?;
        Ok(reqwest::Client::builder()
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(5))
            .build()?)
    }
}

/// `(status, body)` of one call to `port`'s endpoint for `group`, over TLS.
async fn ask(
    port: &Endpoint,
    namespace: &str,
    group: &str,
    token: Option<&str>,
) -> TestResult<(u16, String)> {
    let mut request = port.client()?.get(format!(
        "https://localhost:{}/sidecar/v1/namespaces/{namespace}/groups/{group}/active-site",
        port.port
    ));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// Asks until the answer is `status`, for at most `within` (the endpoint's group cache
/// and token reads are eventually consistent).
async fn ask_until(
    port: &Endpoint,
    fixture: &Fixture,
    token: Option<&str>,
    status: u16,
    within: Duration,
) -> TestResult<String> {
    let deadline = Instant::now() + within;
    loop {
        let (got, body) = ask(port, fixture.namespace(), "orders", token).await?;
        if got == status {
            return Ok(body);
        }
        if Instant::now() > deadline {
            return Err(format!("expected {status}, got {got}: {body}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `port` answers the stored active site for `token`, and refuses everything else.
async fn answers_only_the_token(port: &Endpoint, fixture: &Fixture, first: &str) -> TestResult {
    let body = ask_until(port, fixture, Some(first), 200, Duration::from_secs(10)).await?;
    let answer: Value = serde_json::from_str(&body)?;
    assert_eq!(answer, json!({"activeSite": "iad"}), "port {}", port.port);
    let ns = fixture.namespace();
    assert_eq!(ask(port, ns, "orders", None).await?.0, 401, "no token");
    assert_eq!(
        ask(port, ns, "orders", Some("wrong")).await?.0,
        401,
        "wrong token"
    );
    let last = if first.ends_with('0') { "1" } else { "0" };
    let almost = format!("{}{last}", &first[..63]);
    assert_eq!(
        ask(port, ns, "orders", Some(&almost)).await?.0,
        401,
        "near miss"
    );
    assert_eq!(
        ask(port, ns, "nosuch", Some(first)).await?.0,
        404,
        "unknown group"
    );
    assert_eq!(
        ask(port, ns, "nosuch", None).await?.0,
        401,
        "unknown group, no token"
    );
    assert_eq!(
        ask(port, "elsewhere", "orders", Some(first)).await?.0,
        404,
        "unwatched namespace"
    );
    Ok(())
}

/// `bloodraven sidecar` for pdx with `token`, its operator URL the endpoint on `port` over
/// HTTPS, trusting only `operator_ca` (what the token Secret's `ca.crt` mounts as): its
/// `/status` shows the operator's answer, iad, and no error.
async fn a_real_sidecar_hears_the_operator(
    fixture: &Fixture,
    operator: &Operator,
    port: u16,
    token: &str,
    operator_ca: &[u8],
) -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("token"), format!("{token}\n"))?;
    std::fs::write(dir.path().join("operator-ca.crt"), operator_ca)?;
    let listen = free_port()?;
    let config = dir.path().join("sidecar.yaml");
    std::fs::write(
        &config,
        format!(
            "site: pdx\nmysql: {{address: \"{mysql}\", credentials: {{user: root}}}}\n\
             operator: {{url: \"https://localhost:{port}{path}\", caFile: operator-ca.crt}}\n\
             leaseTimeout: 3s\npeerCheckInterval: 1s\nlisten: \"127.0.0.1:{listen}\"\n\
             auth: {{tokenFile: token}}\n",
            mysql = fixture.instance("pdx")?.address(),
            path = names::sidecar_active_site_path(fixture.namespace(), "orders"),
        ),
    )?;
    let _sidecar = SidecarProcess::spawn(&config, None, &dir.path().join("sidecar.log"));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status: Option<Value> = match client
            .get(format!("http://127.0.0.1:{listen}/status"))
            .bearer_auth(token)
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => Some(response.json().await?),
            _ => None,
        };
        if let Some(status) = &status
            && status["operator"]["activeSite"] == "iad"
            && status["operator"]["lastError"].is_null()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the sidecar never heard iad from the operator: {status:?}\n{}\n{}",
                std::fs::read_to_string(dir.path().join("sidecar.log")).unwrap_or_default(),
                operator.log_text()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The token never crosses the wire in clear: plain HTTP to the TLS listener gets no
/// answer.
async fn plain_http_gets_no_answer(port: u16, fixture: &Fixture, token: &str) -> TestResult {
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?
        .get(format!(
            "http://127.0.0.1:{port}{}",
            names::sidecar_active_site_path(fixture.namespace(), "orders")
        ))
        .bearer_auth(token)
        .send()
        .await;
    assert!(
        plain.as_ref().is_err() || plain.as_ref().is_ok_and(|r| r.status() != 200),
        "plain HTTP answered: {plain:?}"
    );
    Ok(())
}

/// The CA rotates (a bundle of the old and a new CA, as `--self-managed-certs` writes
/// during a rotation): the leader publishes it into the token Secret and touches nothing
/// else. Returns the bundle.
async fn a_rotated_ca_is_published_alone(
    fixture: &Fixture,
    leader: &Operator,
    token_now: &str,
) -> TestResult<Vec<u8>> {
    let ca_file = leader.ca_file();
    let rotated_dir = tempfile::tempdir()?;
    let generated = std::process::Command::new(env!("CARGO_BIN_EXE_bloodraven"))
        .args(["certs", "generate", "--dns", "localhost", "--out"])
        .arg(rotated_dir.path())
        .output()?;
    assert!(generated.status.success(), "{generated:?}");
    let mut bundle = std::fs::read(ca_file)?;
    bundle.extend(std::fs::read(rotated_dir.path().join("ca.crt"))?);
    std::fs::write(ca_file, &bundle)?;
    let secrets: Api<Secret> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if published_ca(&secrets.get(TOKEN_SECRET).await?).as_ref() == Some(&bundle) {
            assert_eq!(
                token(fixture).await?.as_deref(),
                Some(token_now),
                "publishing the CA touched the token"
            );
            return Ok(bundle);
        }
        assert!(
            Instant::now() < deadline,
            "the rotated CA was not published\n{}",
            leader.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Opting in: the Secret appears, with 32 random bytes hex-encoded and the operator's CA,
/// owned by the group, and is not written again. Returns the token.
async fn opting_in_creates_the_secret_once(
    fixture: &Fixture,
    leader: &Operator,
) -> TestResult<String> {
    fixture.annotate(SIDECAR, "enabled").await?;
    let first = wait_token(fixture, leader, |_| true).await?;
    assert_eq!(first.len(), 64, "{first}");
    assert!(first.bytes().all(|c| c.is_ascii_hexdigit()), "{first}");
    let secrets: Api<Secret> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let secret = secrets.get(TOKEN_SECRET).await?;
    let owner = &secret.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(owner.kind, "MysqlFailoverGroup");
    assert_eq!(owner.name, "orders");
    assert_eq!(owner.controller, Some(true));
    // Beside the token, the CA that signs the operator's serving certificate: the one CA
    // the group's sidecars trust for the endpoint.
    assert_eq!(
        published_ca(&secret),
        Some(std::fs::read(leader.ca_file())?),
        "the token Secret carries the operator's CA"
    );
    // Many resyncs later it is the same token (created once, never rewritten).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(token(fixture).await?.as_deref(), Some(first.as_str()));
    let version = secrets.get(TOKEN_SECRET).await?.metadata.resource_version;
    assert_eq!(
        version, secret.metadata.resource_version,
        "the Secret was written again"
    );
    Ok(first)
}

/// The token Secret's `ca.crt`.
fn published_ca(secret: &Secret) -> Option<Vec<u8>> {
    Some(secret.data.as_ref()?.get("ca.crt")?.0.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_sidecar_api_token_secret_once_and_active_site_for_the_right_token() -> TestResult
{
    let fixture = Box::pin(Fixture::start_with(Timing::Fast)).await?;
    let (port_a, port_b) = (free_port()?, free_port()?);
    let listen = |port: u16| format!("127.0.0.1:{port}");
    let (listen_a, listen_b) = (listen(port_a), listen(port_b));
    let a = fixture.operator_with(
        "operator-a",
        &["--sidecar-listen", &listen_a, "--resync-secs", "1"],
    )?;
    fixture
        .wait_active("iad", Duration::from_secs(60))
        .await
        .map_err(|e| format!("{e}\n{}", a.log_text()))?;
    // A second replica: it never leads while a holds the Lease, and answers all the same.
    let b = fixture.operator_with(
        "operator-b",
        &["--sidecar-listen", &listen_b, "--resync-secs", "1"],
    )?;

    // Not opted in: no Secret.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(token(&fixture).await?, None, "a Secret before opting in");

    let first = Box::pin(opting_in_creates_the_secret_once(&fixture, &a)).await?;
    let secrets: Api<Secret> = Api::namespaced(fixture.client().clone(), fixture.namespace());

    // Both replicas answer with the stored active site, for the token only, over TLS.
    let (endpoint_a, endpoint_b) = (Endpoint::of(&a, port_a), Endpoint::of(&b, port_b));
    for endpoint in [&endpoint_a, &endpoint_b] {
        answers_only_the_token(endpoint, &fixture, &first).await?;
    }
    plain_http_gets_no_answer(port_a, &fixture, &first).await?;
    let bundle = Box::pin(a_rotated_ca_is_published_alone(&fixture, &a, &first)).await?;

    // A user rotates the token: the operator leaves it alone, the endpoint follows.
    secrets
        .patch(
            TOKEN_SECRET,
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"token": "cm90YXRlZC1ieS10aGUtdXNlcg=="}})),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        token(&fixture).await?.as_deref(),
        Some("rotated-by-the-user"),
        "the operator overwrote a rotated token\n{}",
        a.log_text()
    );
    let body = ask_until(
        &endpoint_a,
        &fixture,
        Some("rotated-by-the-user"),
        200,
        Duration::from_secs(15),
    )
    .await?;
    assert_eq!(
        serde_json::from_str::<Value>(&body)?,
        json!({"activeSite": "iad"})
    );
    assert_eq!(
        ask(&endpoint_a, fixture.namespace(), "orders", Some(&first))
            .await?
            .0,
        401
    );

    // Deleted: created again, with a new token.
    secrets
        .delete(TOKEN_SECRET, &DeleteParams::default())
        .await?;
    let again = wait_token(&fixture, &a, |t| t != "rotated-by-the-user").await?;
    assert_ne!(again, first);

    // A real sidecar (site pdx, a replica: already read-only, so its fences change
    // nothing) reaches the endpoint with the group's token and hears iad.
    let operator_ca = published_ca(&secrets.get(TOKEN_SECRET).await?).ok_or("no ca.crt")?;
    assert_eq!(
        operator_ca, bundle,
        "the recreated Secret carries the current CA"
    );
    Box::pin(a_real_sidecar_hears_the_operator(
        &fixture,
        &b,
        port_b,
        &again,
        &operator_ca,
    ))
    .await?;

    // RBAC: every request granted, the token Secret's creation among them.
    a.sent_only_granted_and_used(&SIDECAR_ONLY_REQUESTS, "the sidecar token")
        .await?;

    endpoint_metrics_counted(&a).await?;
    drop(b);
    Ok(())
}

/// RED metrics of the endpoint on the operator's /metrics: the answers the test got,
/// counted and timed by answer (a fixed set: never the namespace or group as requested).
async fn endpoint_metrics_counted(a: &Operator) -> TestResult {
    let text = a.metrics().await?;
    let value = |answer: &str| -> f64 {
        let prefix = format!("bloodraven_sidecar_endpoint_requests_total{{answer=\"{answer}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(-1.0)
    };
    assert!(value("active_site") >= 1.0, "{text}");
    assert!(value("unauthorized") >= 3.0, "{text}");
    assert!(value("not_found") >= 1.0, "{text}");
    assert!(
        text.contains(
            "bloodraven_sidecar_endpoint_request_duration_seconds_count{answer=\"active_site\"}"
        ),
        "{text}"
    );
    assert!(
        !text.contains("nosuch") && !text.contains("elsewhere"),
        "a requested path reached a label"
    );
    Ok(())
}
