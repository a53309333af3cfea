//! Through the real `/validate` and `/mutate` endpoints over TLS, with the builtin catalog:
//! an explicit `null` is judged as a missing field, fixes for a `null` member are a valid
//! JSON Patch against the object as sent, and reordering a named list in an UPDATE keeps
//! the ratchet's promise.

use base64::Engine as _;
use bloodraven::policy::rules::Catalog;
use serde_json::{Value, json};

use crate::lint_vacant::full_group;
use crate::serve_support::{ReviewBuilder, TestServer};

async fn builtin_server() -> TestServer {
    TestServer::start_with(|o| o.catalog = Some(Catalog::builtin().expect("catalog"))).await
}

fn denial(response: &Value) -> &str {
    response["status"]["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_nulls_are_denied_like_missing_fields() {
    let server = builtin_server().await;
    let clean = server
        .review("/validate", &ReviewBuilder::create(full_group()))
        .await;
    assert_eq!(clean["allowed"], true, "{clean}");

    let cases: [(&str, &str, &str); 5] = [
        ("/spec/tls", "BR-TLS-001", "/spec/tls"),
        ("/spec/backup", "BR-BAK-001", "/spec/backup"),
        ("/spec/credentials", "BR-CRED-001", "/spec/credentials"),
        (
            "/spec/backup/profiles/0/retentionPolicy",
            "BR-BAK-003",
            "/spec/backup/profiles/0/retentionPolicy",
        ),
        (
            "/spec/backup/podSecurityContext/seccompProfile",
            "BR-PSS-002",
            "/spec/backup/podSecurityContext/seccompProfile",
        ),
    ];
    for (field, rule, pointer) in cases {
        let mut group = full_group();
        let cut = field.rfind('/').expect("member");
        group
            .pointer_mut(&field[..cut])
            .and_then(Value::as_object_mut)
            .expect("parent")
            .insert(field[cut + 1..].to_owned(), Value::Null);
        if field == "/spec/credentials" {
            group["spec"]["secretName"] = json!("orders-dsn");
        }
        let response = server
            .review("/validate", &ReviewBuilder::create(group))
            .await;
        assert_eq!(response["allowed"], false, "{field}: {response}");
        assert!(
            denial(&response).contains(&format!("{rule} at {pointer}")),
            "{field}: {}",
            denial(&response)
        );
    }

    // The backup Job reproduction.
    let mut group = full_group();
    group["spec"]["backup"]["containerSecurityContext"] =
        json!({"privileged": true, "allowPrivilegeEscalation": true, "runAsUser": 0});
    let response = server
        .review("/validate", &ReviewBuilder::create(group))
        .await;
    assert_eq!(response["allowed"], false, "{response}");
    for pointer in ["privileged", "allowPrivilegeEscalation", "runAsUser"] {
        assert!(
            denial(&response).contains(&format!(
                "BR-PSS-004 at /spec/backup/containerSecurityContext/{pointer}"
            )),
            "{}",
            denial(&response)
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutate_fills_null_members_with_a_patch_that_applies() {
    let server = builtin_server().await;
    let mut group = full_group();
    group["spec"]["failoverCooldown"] = Value::Null;
    group["spec"]["podSecurityContext"]["fsGroupChangePolicy"] = Value::Null;
    let response = server
        .review("/mutate", &ReviewBuilder::create(group.clone()))
        .await;
    assert_eq!(response["allowed"], true);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().expect("a patch is sent"))
        .expect("base64");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("JSON Patch");
    let ops = serde_json::to_value(&patch).expect("ops");
    assert!(
        ops.as_array()
            .expect("ops")
            .iter()
            .any(|op| op["op"] == "add" && op["path"] == "/spec/failoverCooldown"),
        "{ops}"
    );
    // RFC 6902: `add` onto an existing member replaces its value.
    json_patch::patch(&mut group, &patch).expect("the patch applies to the object as sent");
    assert_eq!(group["spec"]["failoverCooldown"], "5m");
    assert_eq!(
        group["spec"]["podSecurityContext"]["fsGroupChangePolicy"],
        "OnRootMismatch"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordering_backup_profiles_keeps_ratcheted_findings_allowed() {
    let server = builtin_server().await;
    let mut old = full_group();
    let second = json!({"name": "local", "storage": {"type": "S3", "s3": {"bucket": "b"}}});
    old["spec"]["backup"]["profiles"]
        .as_array_mut()
        .expect("profiles")
        .push(second);
    // The old object already lacks a retentionPolicy on the second profile.
    let mut new = old.clone();
    new["spec"]["backup"]["profiles"]
        .as_array_mut()
        .expect("profiles")
        .reverse();
    let response = server
        .review(
            "/validate",
            &ReviewBuilder::update(old.clone(), new.clone()),
        )
        .await;
    assert_eq!(response["allowed"], true, "{}", denial(&response));
    assert!(
        response["warnings"]
            .as_array()
            .expect("kept findings warn")
            .iter()
            .any(|w| w
                .as_str()
                .is_some_and(|w| w.starts_with("BR-BAK-003 /spec/backup/profiles/0/"))),
        "{response}"
    );
    // A profile that is new in the update still denies, whatever its position.
    let mut added = new.clone();
    added["spec"]["backup"]["profiles"]
        .as_array_mut()
        .expect("profiles")
        .insert(
            0,
            json!({"name": "fresh", "storage": {"type": "S3", "s3": {"bucket": "c"}}}),
        );
    let response = server
        .review("/validate", &ReviewBuilder::update(old, added))
        .await;
    assert_eq!(response["allowed"], false, "{response}");
    assert!(
        denial(&response).contains("BR-BAK-003 at /spec/backup/profiles/0/retentionPolicy"),
        "{}",
        denial(&response)
    );
    server.stop().await;
}
