//! The backup repository on real storage: SeaweedFS's S3 gateway (SigV4 on) and a
//! filesystem directory, through the `object_store` adapter; and the catalog (states,
//! retention) on top of it.

use std::sync::Arc;
use std::time::Duration;

use bloodraven::adapters::storage::{ObjectRepository, S3Settings};
use bloodraven::backup::manifest::{
    FAILED_FILE, Failed, MANIFEST_FILE, Method, STARTED_FILE, Started, backup_key,
};
use bloodraven::backup::retention::RetentionPolicy;
use bloodraven::control::backup::{BackupState, Catalog};
use bloodraven::failover::Timestamp;
use bloodraven::ports::artifacts::{BlobError, BlobStore};

use crate::support::s3::SeaweedS3;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            u8::try_from(i % 251)
                .expect("small")
                .wrapping_mul(31)
                .wrapping_add(seed)
        })
        .collect()
}

async fn exercise(store: &dyn BlobStore) {
    let small = pattern(1000, 1);
    // Above the adapter's multipart threshold: goes up in parts.
    let large = pattern(20 << 20, 2);
    store
        .put("backups/a/manifest.json", small.clone())
        .await
        .expect("put small");
    store
        .put("backups/a/data/big", large.clone())
        .await
        .expect("put large");
    store
        .put("backups/b/started.json", b"{}".to_vec())
        .await
        .expect("put b");
    assert_eq!(
        store
            .get("backups/a/manifest.json", 1000)
            .await
            .expect("get"),
        small
    );
    assert_eq!(
        store
            .get("backups/a/data/big", 20 << 20)
            .await
            .expect("get large"),
        large
    );
    assert!(matches!(
        store.get("backups/a/manifest.json", 999).await,
        Err(BlobError::TooLarge { size: 1000, .. })
    ));
    assert!(matches!(
        store.get("backups/a/nothing", 10).await,
        Err(BlobError::Missing { .. })
    ));
    assert_eq!(store.list_dirs("backups").await.expect("dirs"), ["a", "b"]);
    let keys: Vec<String> = store
        .list("backups/a")
        .await
        .expect("list")
        .into_iter()
        .map(|b| b.key)
        .collect();
    assert_eq!(keys, ["backups/a/data/big", "backups/a/manifest.json"]);
    store.delete("backups/a/data/big").await.expect("delete");
    store
        .delete("backups/a/data/big")
        .await
        .expect("delete twice");
    assert_eq!(store.list("backups/a").await.expect("list").len(), 1);
    assert!(
        store
            .list_dirs("nothing/here")
            .await
            .expect("empty")
            .is_empty()
    );
}

#[test]
fn backup_store_round_trips_on_s3_and_on_a_directory() {
    let s3 = SeaweedS3::start();
    s3.create_bucket("repo");
    let rt = runtime();
    let on_s3 = ObjectRepository::open("s3://repo/team/prod", &s3.settings()).expect("open s3");
    rt.block_on(exercise(&on_s3));
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}/repo", dir.path().display());
    let on_disk = ObjectRepository::open(&url, &S3Settings::default()).expect("open dir");
    rt.block_on(exercise(&on_disk));
}

#[test]
fn backup_store_refuses_a_wrong_secret() {
    let s3 = SeaweedS3::start();
    s3.create_bucket("repo");
    let settings = S3Settings {
        secret_access_key: Some("not-the-secret".to_owned()),
        ..s3.settings()
    };
    let store = ObjectRepository::open("s3://repo", &settings).expect("open");
    let error = runtime()
        .block_on(store.put("x", b"x".to_vec()))
        .expect_err("a wrong secret must be refused");
    let text = error.to_string();
    assert!(
        text.contains("SignatureDoesNotMatch") || text.contains("403"),
        "{text}"
    );
}

#[test]
fn backup_store_rides_out_an_s3_restart() {
    let mut s3 = SeaweedS3::start();
    s3.create_bucket("repo");
    let rt = runtime();
    let store = Arc::new(ObjectRepository::open("s3://repo", &s3.settings()).expect("open"));
    rt.block_on(store.put("before", pattern(1 << 20, 3)))
        .expect("put");
    // The server goes away and comes back while uploads are being attempted: the client's
    // retries carry them over; none is lost or half-written.
    let uploads = {
        let store = store.clone();
        rt.spawn(async move {
            let mut done = Vec::new();
            for i in 0..6u8 {
                let key = format!("during/{i}");
                store
                    .put(&key, pattern(3 << 20, i))
                    .await
                    .map_err(|e| e.to_string())?;
                done.push(key);
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Ok::<_, String>(done)
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    s3.restart();
    let done = rt
        .block_on(uploads)
        .expect("join")
        .expect("uploads survive a restart");
    for (i, key) in done.iter().enumerate() {
        let got = rt.block_on(store.get(key, 3 << 20)).expect("get");
        assert_eq!(
            got,
            pattern(3 << 20, u8::try_from(i).expect("small")),
            "{key}"
        );
    }
    assert_eq!(
        rt.block_on(store.get("before", 1 << 20)).expect("get"),
        pattern(1 << 20, 3)
    );
}

const HOUR: u64 = 3_600_000;

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("json")
}

/// Writes the markers of a backup in `state` at hour `at` (the manifest's content is not
/// what the catalog checks, only its presence and times).
async fn fake_backup(store: &dyn BlobStore, id: &str, at: u64, state: BackupState) {
    let time = Timestamp::from_millis(at * HOUR).rfc3339();
    let started = Started {
        id: id.into(),
        method: Method::Logical,
        source: "db:3306".into(),
        started_at: time.clone(),
    };
    store
        .put(&backup_key(id, STARTED_FILE), json(&started))
        .await
        .expect("started");
    store
        .put(&backup_key(id, "data/x/y/00000.tsv"), b"1".to_vec())
        .await
        .expect("data");
    match state {
        BackupState::Complete => {
            let manifest = serde_json::json!({
                "format": 1, "id": id, "method": "logical", "source": "db:3306",
                "serverVersion": "9.7.0", "gtidExecuted": "", "startedAt": time,
                "finishedAt": time, "plainBytes": 1, "storedBytes": 1, "artifacts": 1,
                "compression": "zstd", "encryption": null,
                "contents": {"key": "contents.json", "plainBytes": 1, "storedBytes": 1, "sha256": "00"}
            });
            store
                .put(&backup_key(id, MANIFEST_FILE), json(&manifest))
                .await
                .expect("manifest");
        }
        BackupState::Failed => {
            let failed = Failed {
                id: id.into(),
                failed_at: time,
                category: "unavailable".into(),
                message: "source went away".into(),
            };
            store
                .put(&backup_key(id, FAILED_FILE), json(&failed))
                .await
                .expect("failed");
        }
        BackupState::Unreadable => {
            store
                .put(&backup_key(id, MANIFEST_FILE), b"{not json".to_vec())
                .await
                .expect("manifest");
        }
        BackupState::Running | BackupState::Abandoned => {}
    }
}

#[test]
fn backup_catalog_lists_states_and_prunes_idempotently() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", dir.path().display());
    let store: Arc<dyn BlobStore> =
        Arc::new(ObjectRepository::open(&url, &S3Settings::default()).expect("open"));
    let rt = runtime();
    let now = Timestamp::from_millis(1000 * HOUR);
    rt.block_on(async {
        fake_backup(&*store, "b01", 100, BackupState::Complete).await;
        fake_backup(&*store, "b02", 200, BackupState::Failed).await;
        fake_backup(&*store, "b03", 300, BackupState::Complete).await;
        fake_backup(&*store, "b04", 400, BackupState::Abandoned).await;
        fake_backup(&*store, "b05", 500, BackupState::Complete).await;
        fake_backup(&*store, "b06", 999, BackupState::Running).await;
        // A manifest that does not parse: listed with why, never pruned.
        fake_backup(&*store, "b00", 50, BackupState::Unreadable).await;
        // Not an id this tool makes: listed nowhere, pruned never.
        store
            .put("backups/..weird/started.json", b"{}".to_vec())
            .await
            .expect("weird");
    });
    let catalog = Catalog::new(store.clone(), Duration::from_secs(24 * 3600));
    let states: Vec<(String, BackupState)> = rt
        .block_on(catalog.list(now))
        .expect("list")
        .into_iter()
        .map(|e| (e.id, e.state))
        .collect();
    assert_eq!(
        states,
        [
            ("b00".to_owned(), BackupState::Unreadable),
            ("b01".to_owned(), BackupState::Complete),
            ("b02".to_owned(), BackupState::Failed),
            ("b03".to_owned(), BackupState::Complete),
            ("b04".to_owned(), BackupState::Abandoned),
            ("b05".to_owned(), BackupState::Complete),
            ("b06".to_owned(), BackupState::Running),
        ]
    );
    // Keep one success and no failures: the newest success and the running one survive.
    let policy = RetentionPolicy {
        count: 1,
        max_age_days: 0,
        min_keep: 1,
        max_failed_keep: 0,
    };
    let outcome = rt.block_on(catalog.prune(policy, now)).expect("prune");
    let mut deleted = outcome.deleted.clone();
    deleted.sort();
    assert_eq!(deleted, ["b01", "b02", "b03", "b04"]);
    let left: Vec<String> = rt
        .block_on(catalog.list(now))
        .expect("list")
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, ["b00", "b05", "b06"]);
    assert!(
        rt.block_on(store.list("backups/b01"))
            .expect("list")
            .is_empty()
    );
    let again = rt
        .block_on(catalog.prune(policy, now))
        .expect("prune again");
    assert!(
        again.deleted.is_empty(),
        "a repeated prune deleted {:?}",
        again.deleted
    );
    assert!(
        rt.block_on(store.get("backups/..weird/started.json", 10))
            .is_ok()
    );
}
