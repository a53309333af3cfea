//! Certificates: `generate_certs`, hot reload under load, broken pairs, Secret-volume
//! symlink swaps.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bloodraven::shells::serve::{ServeError, bind};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::serve_support::{
    ReviewBuilder, TestServer, client_for, generate, good_group, install_crypto_provider, options,
};

/// Replaces a file atomically, so that no poll sees a half-written file and counts an extra
/// rejected reload (the test below counts them exactly).
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn leaf_der(path: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(path)
        .expect("a PEM certificate")
        .to_vec()
}

/// The certificate a fresh TLS connection is served.
async fn served_leaf(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    let info = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .ok_or("no TLS info")?;
    info.peer_certificate()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| "no peer certificate".to_owned())
}

async fn wait_for_leaf(client: &reqwest::Client, url: &str, want: &[u8]) -> Duration {
    let started = Instant::now();
    loop {
        if served_leaf(client, url).await.as_deref() == Ok(want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "new certificate not served after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn generate_certs_writes_a_ca_and_a_serving_pair_with_private_keys_0600() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = generate(dir.path(), None);
    assert_eq!(
        first.ca_key.as_deref(),
        Some(dir.path().join("ca.key").as_path())
    );
    for key in [dir.path().join("ca.key"), dir.path().join("tls.key")] {
        let mode = std::fs::metadata(&key)
            .expect("key file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
    }
    // Re-issuing from the same CA: no new CA key, the CA certificate is unchanged, a new serial.
    let out = tempfile::tempdir().expect("tempdir");
    let second = generate(
        out.path(),
        Some((&first.ca_cert, &dir.path().join("ca.key"))),
    );
    assert_eq!(second.ca_key, None);
    assert!(!out.path().join("ca.key").exists());
    assert_eq!(
        std::fs::read(&second.ca_cert).expect("ca"),
        std::fs::read(&first.ca_cert).expect("ca")
    );
    assert_ne!(first.serial, second.serial);
    assert_ne!(leaf_der(&first.tls_cert), leaf_der(&second.tls_cert));
    let none = bloodraven::shells::certs::generate_certs(out.path(), &[], &[], None);
    assert!(none.is_err(), "a serving certificate needs a name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_refuses_to_start_without_a_usable_certificate() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let result = bind(options(dir.path())).await;
    assert!(
        matches!(result, Err(ServeError::Certificate { .. })),
        "{result:?}"
    );
    std::fs::write(dir.path().join("tls.crt"), "garbage").expect("write");
    std::fs::write(dir.path().join("tls.key"), "garbage").expect("write");
    assert!(matches!(
        bind(options(dir.path())).await,
        Err(ServeError::Certificate { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_under_load_drops_no_request() {
    let server = Arc::new(TestServer::start().await);
    let url = server.url("/validate");
    let body = serde_json::to_vec(&ReviewBuilder::create(good_group()).build()).expect("json");
    let old_leaf = leaf_der(&server.generated.tls_cert);
    let fresh = client_for(&server.generated, false);
    assert_eq!(
        served_leaf(&fresh, &server.url("/healthz"))
            .await
            .as_deref(),
        Ok(old_leaf.as_slice())
    );

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut loops = Vec::new();
    // Two keep-alive clients and two that reconnect (and so handshake) on every request.
    for keep_alive in [true, true, false, false] {
        let client = client_for(&server.generated, keep_alive);
        let (url, body, stop, ok, failed) = (
            url.clone(),
            body.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
        );
        loops.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let result = client.post(&url).body(body.clone()).send().await;
                match result {
                    Ok(r) if r.status().as_u16() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(r) => {
                        eprintln!("status {}", r.status());
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => {
                        eprintln!("error {e:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ca_key = server.certs.path().join("ca.key");
    let ca_cert = server.certs.path().join("ca.crt");
    let rotated = generate(server.certs.path(), Some((&ca_cert, &ca_key)));
    let new_leaf = leaf_der(&rotated.tls_cert);
    assert_ne!(new_leaf, old_leaf);
    let took = wait_for_leaf(&fresh, &server.url("/healthz"), &new_leaf).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await.expect("loop");
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed during rotation",
        ok + failed
    );
    assert!(ok > 20, "only {ok} requests ran during the rotation");
    assert!(took < Duration::from_secs(5), "reload took {took:?}");
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(
        metrics.contains("bloodraven_tls_certificate_reloads_total{result=\"success\"} 1"),
        "{metrics}"
    );
    // The expiry gauge follows the certificate in use: the rotated one, valid for days.
    let expiry: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("bloodraven_tls_certificate_expiry_timestamp_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no expiry gauge in:\n{metrics}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .cast_signed();
    assert!(
        expiry > now + 86_400 && expiry < now + 400 * 86_400,
        "expiry {expiry} is not days ahead of {now}"
    );
    if let Ok(server) = Arc::try_unwrap(server) {
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_pair_keeps_the_old_certificate_until_a_good_one_arrives() {
    let server = TestServer::start().await;
    let fresh = client_for(&server.generated, false);
    let health = server.url("/healthz");
    let old_leaf = leaf_der(&server.generated.tls_cert);
    // A certificate whose key is another one's: parses, does not match.
    let other = tempfile::tempdir().expect("tempdir");
    let stranger = generate(
        other.path(),
        Some((
            &server.generated.ca_cert,
            &server.certs.path().join("ca.key"),
        )),
    );
    replace(
        &server.certs.path().join("tls.crt"),
        &std::fs::read(&stranger.tls_cert).expect("read"),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        served_leaf(&fresh, &health).await.as_deref(),
        Ok(old_leaf.as_slice()),
        "old pair still served"
    );
    replace(&server.certs.path().join("tls.key"), b"not a key");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        served_leaf(&fresh, &health).await.as_deref(),
        Ok(old_leaf.as_slice())
    );
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(
        metrics.contains("bloodraven_tls_certificate_reloads_total{result=\"failure\"} 2"),
        "{metrics}"
    );
    assert!(!metrics.contains("result=\"success\""), "{metrics}");

    // The matching key arrives: the new certificate is served.
    replace(
        &server.certs.path().join("tls.key"),
        &std::fs::read(&stranger.tls_key).expect("read"),
    );
    wait_for_leaf(&fresh, &health, &leaf_der(&stranger.tls_cert)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_volume_symlink_swaps_are_picked_up() {
    install_crypto_provider();
    // The layout kubelet uses for a mounted Secret: files are symlinks through `..data`,
    // and an update atomically re-points `..data` at a new timestamped directory.
    let ca_dir = tempfile::tempdir().expect("tempdir");
    let first = generate(ca_dir.path(), None);
    let ca_key = ca_dir.path().join("ca.key");
    let volume = tempfile::tempdir().expect("tempdir");
    let v1 = volume.path().join("..2026_11_22_01");
    std::fs::create_dir(&v1).expect("mkdir");
    for f in ["tls.crt", "tls.key"] {
        std::fs::copy(ca_dir.path().join(f), v1.join(f)).expect("copy");
    }
    std::os::unix::fs::symlink("..2026_11_22_01", volume.path().join("..data")).expect("symlink");
    for f in ["tls.crt", "tls.key"] {
        std::os::unix::fs::symlink(format!("..data/{f}"), volume.path().join(f)).expect("symlink");
    }
    let mut opts = options(volume.path());
    opts.reload_interval = Duration::from_millis(100);
    let server = bind(opts).await.expect("binds");
    let url = format!(
        "https://127.0.0.1:{}/healthz",
        server.local_addr().expect("addr").port()
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    let fresh = client_for(&first, false);
    assert_eq!(
        served_leaf(&fresh, &url).await.as_deref(),
        Ok(leaf_der(&first.tls_cert).as_slice())
    );

    let v2 = volume.path().join("..2026_11_22_02");
    let second = generate(&v2, Some((&first.ca_cert, &ca_key)));
    std::os::unix::fs::symlink("..2026_11_22_02", volume.path().join("..data_tmp"))
        .expect("symlink");
    std::fs::rename(
        volume.path().join("..data_tmp"),
        volume.path().join("..data"),
    )
    .expect("swap");
    std::fs::remove_dir_all(&v1).expect("old version removed, as kubelet does");
    wait_for_leaf(&fresh, &url, &leaf_der(&second.tls_cert)).await;
    let _ = stop.send(());
    task.await.expect("join").expect("clean stop");
}
