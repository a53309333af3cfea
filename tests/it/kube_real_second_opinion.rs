//! The operator's second opinion, end to end against a real API server: `bloodraven serve`
//! (the real binary, leading) reaches iad's MySQL through a relay the test can cut, while
//! iad's real sidecar reaches it directly and hears the operator over HTTPS with the token
//! and the CA the operator published into the group's token Secret. With the relay cut the
//! operator sees iad unreachable, asks the sidecar, hears "writable": no promotion and an
//! `UnreachableSiteWritable` Event. Once the sidecar reports iad fenced, the failover goes
//! ahead and `FailoverStarted` records the confirmation.
//!
//! The sidecar's Service is an endpoint-map entry (`<ns>/<group>/<site>/sidecar`), as the
//! MySQL Services are: the API server here runs no pods and no DNS. The scenario runs twice:
//! plain, and with `spec.tls`, where the sidecar serves mTLS with the group's certificate and
//! the operator asks `/status` over HTTPS, checking the sidecar against the CA in the group's
//! certificate Secret.
//!
//! Run by `scripts/kube-apiserver-test.sh PATH/TO/crd-apiserver.sh`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bloodraven::api::annotations::SIDECAR;
use bloodraven::render::names;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};

use crate::failover_common::{TestResult, accepts_writes};
use crate::kube_real_operator::{Fixture, Operator, Timing, active_site};
use crate::sidecar_support::SidecarProcess;
use crate::support::mysql::{MysqlInstance, free_port};
use crate::support::relay::Relay;

const GROUP: &str = "orders";

/// Points the operator at iad's MySQL through `relay` and at iad's sidecar on
/// `sidecar_port`; pdx stays direct.
fn write_endpoints(fixture: &Fixture, relay: &Relay, sidecar_port: u16) -> TestResult {
    let ns = fixture.namespace();
    let endpoints = BTreeMap::from([
        (
            format!("{ns}/{GROUP}/iad"),
            format!("127.0.0.1:{}", relay.port),
        ),
        (
            format!("{ns}/{GROUP}/iad/sidecar"),
            format!("127.0.0.1:{sidecar_port}"),
        ),
        (
            format!("{ns}/{GROUP}/pdx"),
            fixture.instance("pdx")?.address(),
        ),
    ]);
    std::fs::write(
        fixture.work().join("endpoints.yaml"),
        serde_json::to_string(&endpoints)?,
    )?;
    Ok(())
}

/// The token Secret's `token` and `ca.crt`, once the leader has created it.
async fn token_secret(fixture: &Fixture, operator: &Operator) -> TestResult<(String, Vec<u8>)> {
    let secrets: Api<Secret> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(data) = secrets
            .get_opt(&names::sidecar_token_secret(GROUP))
            .await?
            .and_then(|s| s.data)
            && let (Some(token), Some(ca)) = (data.get("token"), data.get("ca.crt"))
        {
            return Ok((String::from_utf8(token.0.clone())?, ca.0.clone()));
        }
        if Instant::now() > deadline {
            return Err(format!("no token Secret\n{}", operator.log_text()).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// iad's sidecar as the operator renders it (HTTPS to the operator, trusting only the
/// published CA; with `group_tls`, mTLS with the group's certificate in that directory),
/// reaching iad's MySQL directly.
fn start_sidecar(
    dir: &Path,
    iad: &MysqlInstance,
    (operator_port, sidecar_port): (u16, u16),
    namespace: &str,
    (token, ca): &(String, Vec<u8>),
    group_tls: Option<&Path>,
) -> TestResult<SidecarProcess> {
    std::fs::write(dir.join("token"), format!("{token}\n"))?;
    std::fs::write(dir.join("operator-ca.crt"), ca)?;
    let config = dir.join("sidecar.yaml");
    std::fs::write(
        &config,
        format!(
            "site: iad\nmysql: {{address: \"{mysql}\", credentials: {{user: root}}}}\n\
             operator: {{url: \"https://localhost:{operator_port}{path}\", caFile: operator-ca.crt}}\n\
             leaseTimeout: 60s\npeerCheckInterval: 1s\nlisten: \"127.0.0.1:{sidecar_port}\"\n\
             auth: {{tokenFile: token}}\n",
            mysql = iad.address(),
            path = names::sidecar_active_site_path(namespace, GROUP),
        ) + &group_tls.map_or_else(String::new, |tls| {
            format!(
                "tls: {{certDir: \"{dir}\", clientCaFile: \"{dir}/ca.crt\"}}\n",
                dir = tls.display()
            )
        }),
    )?;
    Ok(SidecarProcess::spawn(
        &config,
        None,
        &dir.join("sidecar.log"),
    ))
}

/// iad's sidecar's `/status` says MySQL is writable (its boot fence lifted by the
/// operator) and the operator named iad. With `ca`, over HTTPS, as the operator asks it:
/// the token and no client certificate.
async fn sidecar_sees_iad_writable(port: u16, token: &str, ca: Option<&[u8]>) -> bool {
    let (scheme, client) = match ca {
        None => ("http", reqwest::Client::new()),
        Some(pem) => {
            let Ok(Ok(client)) = reqwest::Certificate::from_pem(pem)
                .map(|ca| reqwest::Client::builder().tls_certs_only([ca]).build())
            else {
                return false;
            };
            ("https", client)
        }
    };
    let Ok(response) = client
        .get(format!("{scheme}://127.0.0.1:{port}/status"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(2))
        .send()
        .await
    else {
        return false;
    };
    let Ok(status) = response.json::<Value>().await else {
        return false;
    };
    status["mysql"]["readOnly"] == false && status["operator"]["activeSite"] == "iad"
}

fn site_state<'a>(group: &'a Value, site: &str) -> Option<&'a str> {
    group["status"]["sites"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == site)?["state"]
        .as_str()
}

/// The messages of the group's Events with `reason`.
async fn event_messages(fixture: &Fixture, reason: &str) -> TestResult<Vec<String>> {
    let events: Api<Event> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    Ok(events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(GROUP))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.message)
        .collect())
}

/// Gives the group `spec.tls` and its certificate Secret (`mysql-orders-tls`: a CA and a
/// certificate for 127.0.0.1, where the endpoint map points the operator at the sidecar);
/// returns the directory holding the files, for the sidecar.
async fn group_tls(fixture: &Fixture, dir: &Path) -> TestResult<(std::path::PathBuf, Vec<u8>)> {
    let tls = dir.join("group-tls");
    let generated = std::process::Command::new(env!("CARGO_BIN_EXE_bloodraven"))
        .args(["certs", "generate", "--ip", "127.0.0.1", "--out"])
        .arg(&tls)
        .output()?;
    assert!(generated.status.success(), "{generated:?}");
    let read = |name: &str| std::fs::read_to_string(tls.join(name));
    let secrets: Api<Secret> = Api::namespaced(fixture.client().clone(), fixture.namespace());
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": names::default_tls_secret(GROUP)},
                "type": "kubernetes.io/tls",
                "stringData": {"tls.crt": read("tls.crt")?, "tls.key": read("tls.key")?, "ca.crt": read("ca.crt")?}
            }))?,
        )
        .await?;
    fixture
        .patch_spec(json!({"tls": {"issuerRef": {"name": "group-ca"}}}))
        .await?;
    let ca = std::fs::read(tls.join("ca.crt"))?;
    Ok((tls, ca))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_second_opinion_holds_a_failover_past_a_writable_site() -> TestResult {
    Box::pin(scenario(false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real API server: scripts/kube-apiserver-test.sh"]
async fn kube_real_second_opinion_over_tls_checks_the_sidecar_against_the_groups_ca() -> TestResult
{
    Box::pin(scenario(true)).await
}

async fn scenario(tls: bool) -> TestResult {
    crate::serve_support::install_crypto_provider();
    let fixture = Box::pin(Fixture::start_with(Timing::Fast)).await?;
    let (iad, pdx) = (fixture.instance("iad")?, fixture.instance("pdx")?);
    let relay = Relay::start(iad.address()).await?;
    let (operator_port, sidecar_port) = (free_port()?, free_port()?);
    write_endpoints(&fixture, &relay, sidecar_port)?;
    let dir = tempfile::tempdir()?;
    let group_tls = if tls {
        Some(group_tls(&fixture, dir.path()).await?)
    } else {
        None
    };
    fixture.annotate(SIDECAR, "enabled").await?;
    let listen = format!("127.0.0.1:{operator_port}");
    let operator = fixture.operator_with(
        "operator-a",
        &["--sidecar-listen", &listen, "--resync-secs", "1"],
    )?;
    fixture
        .wait_active("iad", Duration::from_secs(60))
        .await
        .map_err(|e| format!("{e}\n{}", operator.log_text()))?;

    // iad's sidecar boots fenced; the operator, naming iad, re-asserts it as the primary.
    let secret = token_secret(&fixture, &operator).await?;
    let _sidecar = start_sidecar(
        dir.path(),
        iad,
        (operator_port, sidecar_port),
        fixture.namespace(),
        &secret,
        group_tls.as_ref().map(|(dir, _)| dir.as_path()),
    )?;
    let group_ca = group_tls.as_ref().map(|(_, ca)| ca.as_slice());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sidecar_sees_iad_writable(sidecar_port, &secret.0, group_ca).await {
        assert!(
            Instant::now() < deadline,
            "the sidecar never saw iad writable under the operator's word\n{}\n{}",
            std::fs::read_to_string(dir.path().join("sidecar.log")).unwrap_or_default(),
            operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The partition between the operator and iad's MySQL only.
    relay.cut();
    fixture
        .wait_group("iad unreachable", Duration::from_secs(20), |g| {
            site_state(g, "iad") == Some("unreachable")
        })
        .await
        .map_err(|e| format!("{e}\n{}", operator.log_text()))?;
    // Without the sidecar's word the failover would start within a poll or two (250 ms,
    // threshold 2): hold for many polls and check nothing moved.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let group = fixture.group().await?;
        assert_eq!(active_site(&group), Some("iad"), "{group:#}");
        assert!(
            group
                .pointer("/status/lastFailoverTarget")
                .is_none_or(Value::is_null),
            "{group:#}\n{}",
            operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        accepts_writes(iad, 900_101),
        "iad, cut off from the operator only, keeps serving"
    );
    assert_eq!(pdx.sql("SELECT @@GLOBAL.read_only")?, "1");
    let reasons = fixture
        .event_reasons_including(GROUP, &["UnreachableSiteWritable"])
        .await?;
    assert!(
        reasons.iter().any(|r| r == "UnreachableSiteWritable"),
        "{reasons:?}\n{}",
        operator.log_text()
    );
    assert!(
        !reasons.iter().any(|r| r == "FailoverStarted"),
        "{reasons:?}"
    );

    // iad is fenced behind the partition: its sidecar reports it, and the failover goes
    // ahead, recording that the sidecar confirmed the fence.
    iad.sql("SET GLOBAL super_read_only = ON")?;
    // (Degraded, not Ready: iad stays unreachable behind the cut.)
    fixture
        .wait_group("activeSite pdx", Duration::from_secs(30), |g| {
            active_site(g) == Some("pdx")
        })
        .await
        .map_err(|e| format!("{e}\n{}", operator.log_text()))?;
    fixture
        .event_reasons_including(GROUP, &["FailoverStarted"])
        .await?;
    let started = event_messages(&fixture, "FailoverStarted").await?;
    assert!(
        started
            .iter()
            .any(|m| m.contains("sidecar confirms fenced: iad")),
        "{started:?}"
    );
    Ok(())
}
