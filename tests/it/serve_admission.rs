//! `/validate` and `/mutate` over real TLS: the admission contract, ratchet, status guard,
//! dry-run, malformed and oversize bodies, and mutation patches.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::serve_support::{
    OPERATOR_SA, ReviewBuilder, TestServer, bad_group, good_group, rule_ids,
};

/// The response-level rules every answer must follow: `allowed` always present, a patch
/// only with its type and only from `/mutate`, a denial with 403 and a message, warnings
/// short and on one line.
fn assert_contract(path: &str, response: &Value) {
    assert!(
        response["allowed"].is_boolean(),
        "allowed always present: {response}"
    );
    let has_patch = response.get("patch").is_some();
    let has_type = response.get("patchType").is_some();
    assert_eq!(
        has_patch, has_type,
        "patch and patchType only together: {response}"
    );
    if path != "/mutate" {
        assert!(!has_patch, "only /mutate sends patches: {response}");
    }
    if has_type {
        assert_eq!(response["patchType"], "JSONPatch");
    }
    if response["allowed"] == false {
        assert_eq!(
            response["status"]["code"], 403,
            "denial carries 403: {response}"
        );
        assert!(
            response["status"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    for w in response["warnings"].as_array().into_iter().flatten() {
        let w = w.as_str().expect("warnings are strings");
        assert!(w.chars().count() <= 120, "warning over 120 chars: {w}");
        assert!(
            !w.contains('\n') && !w.contains('\r'),
            "warning is single-line: {w:?}"
        );
        assert!(w.starts_with("BR-"), "warning starts with the rule ID: {w}");
    }
}

fn warnings(response: &Value) -> Vec<String> {
    response["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_owned))
        .collect()
}

fn warned_rules(response: &Value) -> Vec<String> {
    let mut ids: Vec<String> = warnings(response)
        .iter()
        .filter_map(|w| w.split(' ').next().map(str::to_owned))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_of_an_unsafe_group_is_denied_naming_each_rule_and_pointer() {
    let server = TestServer::start().await;
    let review = ReviewBuilder::create(bad_group()).uid("uid-create-bad");
    let response = server.review("/validate", &review).await;
    assert_contract("/validate", &response);
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().expect("message");
    assert!(
        message.contains("BR-TEST-TLS-001 at /spec/tls"),
        "{message}"
    );
    assert!(
        message.contains("BR-TEST-SC-001 at /spec/sites/0/storage/storageClassName"),
        "{message}"
    );
    // Required but `admission: warn` (depends on apply order): never denies, only warns.
    assert_eq!(rule_ids(message), ["BR-TEST-SC-001", "BR-TEST-TLS-001"]);
    assert_eq!(
        warned_rules(&response),
        [
            "BR-TEST-COOL-001",
            "BR-TEST-CRED-001",
            "BR-TEST-FSG-001",
            "BR-TEST-IMG-001",
            "BR-TEST-PULL-001"
        ]
    );
    assert!(
        warnings(&response).iter().any(|w| w
            == "BR-TEST-CRED-001 /spec/credentials/appSecret: Secret missing-app does not exist"),
        "{response}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_of_a_safe_group_is_allowed_and_recommendations_warn() {
    let server = TestServer::start().await;
    let response = server
        .review("/validate", &ReviewBuilder::create(good_group()))
        .await;
    assert_contract("/validate", &response);
    assert_eq!(response["allowed"], true);
    assert!(
        response.get("status").is_none() && response.get("warnings").is_none(),
        "{response}"
    );

    let mut relaxed = good_group();
    relaxed["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("imagePullPolicy");
    relaxed["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("failoverCooldown");
    let response = server
        .review("/validate", &ReviewBuilder::create(relaxed))
        .await;
    assert_contract("/validate", &response);
    assert_eq!(
        response["allowed"], true,
        "recommended and environment-specific findings allow"
    );
    assert_eq!(
        warnings(&response),
        [
            "BR-TEST-COOL-001 /spec/failoverCooldown: spec.failoverCooldown is not set",
            "BR-TEST-PULL-001 /spec/imagePullPolicy: spec.imagePullPolicy is not set",
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_ratchet_allows_existing_findings_and_denies_new_ones() {
    let server = TestServer::start().await;
    // Both versions carry the same required findings: the update is allowed, with warnings.
    let old = bad_group();
    let mut new = bad_group();
    new["metadata"]["labels"] = json!({"team": "payments"});
    let response = server
        .review("/validate", &ReviewBuilder::update(old, new.clone()))
        .await;
    assert_contract("/validate", &response);
    assert_eq!(response["allowed"], true, "{response}");
    let warned = warned_rules(&response);
    assert!(
        warned.contains(&"BR-TEST-TLS-001".to_owned())
            && warned.contains(&"BR-TEST-SC-001".to_owned()),
        "{warned:?}"
    );

    // Dropping TLS from an object that had it adds a new required finding: denied, and only
    // the new finding is named.
    let mut with_tls = bad_group();
    with_tls["spec"]["tls"] = json!({"issuerRef": {"name": "db-ca", "kind": "Issuer"}});
    let response = server
        .review("/validate", &ReviewBuilder::update(with_tls, bad_group()))
        .await;
    assert_contract("/validate", &response);
    assert_eq!(response["allowed"], false);
    assert_eq!(
        rule_ids(response["status"]["message"].as_str().unwrap_or_default()),
        ["BR-TEST-TLS-001"]
    );
    server.stop().await;

    // With the ratchet off, an update is judged like a create.
    let strict = TestServer::start_with(|o| o.ratchet = false).await;
    let response = strict
        .review("/validate", &ReviewBuilder::update(bad_group(), new))
        .await;
    assert_eq!(response["allowed"], false);
    assert_eq!(
        rule_ids(response["status"]["message"].as_str().unwrap_or_default()),
        ["BR-TEST-SC-001", "BR-TEST-TLS-001"]
    );
    strict.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_are_reserved_to_the_operator_service_account() {
    let server = TestServer::start().await;
    let mut promoted = good_group();
    promoted["status"] = json!({"activeSite": "west"});
    let review = ReviewBuilder::update(good_group(), promoted)
        .status()
        .user("alice");
    let response = server.review("/validate", &review).await;
    assert_contract("/validate", &response);
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().expect("message");
    assert!(
        message.contains(OPERATOR_SA) && message.contains("alice"),
        "{message}"
    );

    // The status guard is about who, not what: even a bad spec does not stop the operator.
    let review = ReviewBuilder::update(bad_group(), bad_group())
        .status()
        .user(OPERATOR_SA);
    let response = server.review("/validate", &review).await;
    assert_eq!(response["allowed"], true, "{response}");
    server.stop().await;

    let custom = TestServer::start_with(|o| {
        o.operator_service_account = "system:serviceaccount:ops:custom".into();
    })
    .await;
    let review = ReviewBuilder::update(good_group(), good_group())
        .status()
        .user(OPERATOR_SA);
    assert_eq!(
        custom.review("/validate", &review).await["allowed"],
        false,
        "the guard's user is configurable"
    );
    custom.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_requests_get_exactly_the_same_answers() {
    let server = TestServer::start().await;
    for (object, path) in [
        (bad_group(), "/validate"),
        (good_group(), "/validate"),
        (bad_group(), "/mutate"),
    ] {
        let wet = server
            .review(path, &ReviewBuilder::create(object.clone()))
            .await;
        let dry = server
            .review(path, &ReviewBuilder::create(object.clone()).dry_run())
            .await;
        let again = server
            .review(path, &ReviewBuilder::create(object).dry_run())
            .await;
        assert_eq!(wet, dry, "{path}: dryRun changes nothing");
        assert_eq!(
            dry, again,
            "{path}: answers do not depend on earlier requests"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_get_400_with_a_clear_message() {
    let server = TestServer::start().await;
    let good = ReviewBuilder::create(good_group()).build();
    let mut wrong_version = good.clone();
    wrong_version["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let mut no_uid = good.clone();
    no_uid["request"]["uid"] = json!("");
    let mut no_object = good.clone();
    no_object["request"]["object"] = Value::Null;
    let mut bad_operation = good.clone();
    bad_operation["request"]["operation"] = json!("PATCH");
    let cases: Vec<(Value, &str)> = vec![
        (json!("not a review"), "not an AdmissionReview"),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
            "no request",
        ),
        (wrong_version, "expected apiVersion admission.k8s.io/v1"),
        (no_uid, "uid is empty"),
        (no_object, "request.object must be an object"),
        (bad_operation, "not an AdmissionReview"),
    ];
    for path in ["/validate", "/mutate"] {
        for (body, expected) in &cases {
            let (status, answer) = server.post(path, body).await;
            assert_eq!(status, 400, "{path} {body}");
            let text = answer.as_str().unwrap_or_default();
            assert!(
                text.contains(expected),
                "{path}: {text:?} should mention {expected:?}"
            );
        }
        let raw = server
            .client
            .post(server.url(path))
            .body("{\"apiVersion\":")
            .send()
            .await
            .expect("answered");
        assert_eq!(raw.status().as_u16(), 400);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_three_mebibytes_get_413() {
    let server = TestServer::start().await;
    for path in ["/validate", "/mutate", "/lint"] {
        let body = vec![b' '; 3 * 1024 * 1024 + 1];
        let response = server
            .client
            .post(server.url(path))
            .body(body)
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status().as_u16(), 413, "{path}");
    }
    // Exactly at the limit is read (and then judged on its content).
    let mut body = serde_json::to_vec(&ReviewBuilder::create(good_group()).build()).expect("json");
    body.resize(3 * 1024 * 1024, b' ');
    let response = server
        .client
        .post(server.url("/validate"))
        .body(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200);
    server.stop().await;
}

fn decode_patch(response: &Value) -> json_patch::Patch {
    let encoded = response["patch"]
        .as_str()
        .expect("patch is a base64 string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("an RFC 6902 patch")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutation_applies_safe_fixes_idempotently_and_the_result_validates() {
    let server = TestServer::start().await;
    let mut fixable = good_group();
    let spec = fixable["spec"].as_object_mut().expect("spec");
    spec.remove("failoverCooldown");
    spec.remove("imagePullPolicy");
    spec.insert("podSecurityContext".into(), json!({"fsGroup": 999}));

    for object in [fixable, bad_group()] {
        let before = server
            .review("/validate", &ReviewBuilder::create(object.clone()))
            .await;
        let response = server
            .review("/mutate", &ReviewBuilder::create(object.clone()))
            .await;
        assert_contract("/mutate", &response);
        assert_eq!(response["allowed"], true, "/mutate never denies");
        let patch = decode_patch(&response);
        for op in &patch.0 {
            let op_path = serde_json::to_value(op).expect("op")["path"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(
                op_path != "/spec/image" && !op_path.contains("credentials"),
                "unsafe op {op_path}"
            );
        }
        let mut patched = object.clone();
        json_patch::patch(&mut patched, &patch).expect("the patch applies to the object");
        assert_eq!(
            patched["spec"]["image"], object["spec"]["image"],
            "images are never changed"
        );
        assert_eq!(
            patched["spec"]["credentials"], object["spec"]["credentials"],
            "credentials are never changed"
        );
        assert_eq!(patched["spec"]["failoverCooldown"], "5m");
        assert_eq!(patched["spec"]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(
            patched["spec"]["podSecurityContext"]["fsGroupChangePolicy"],
            "OnRootMismatch"
        );

        // Reinvocation: nothing left to do, and neither patch nor patchType is sent.
        let second = server
            .review("/mutate", &ReviewBuilder::create(patched.clone()))
            .await;
        assert_contract("/mutate", &second);
        assert!(
            second.get("patch").is_none() && second.get("patchType").is_none(),
            "{second}"
        );

        // The patched object passes /validate as far as the fixes reach: the fixed rules are
        // gone, the decision is unchanged, and nothing new appears.
        let after = server
            .review("/validate", &ReviewBuilder::create(patched))
            .await;
        assert_contract("/validate", &after);
        assert_eq!(after["allowed"], before["allowed"]);
        let fixed = ["BR-TEST-COOL-001", "BR-TEST-FSG-001", "BR-TEST-PULL-001"];
        assert!(
            warned_rules(&after)
                .iter()
                .all(|id| !fixed.contains(&id.as_str())),
            "{after}"
        );
        assert!(
            warned_rules(&after)
                .iter()
                .all(|id| warned_rules(&before).contains(id))
        );
    }
    // The fixable object becomes fully clean apart from the image digest recommendation,
    // whose unsafe "fix" is never sent.
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutation_leaves_deletes_and_subresources_alone() {
    let server = TestServer::start().await;
    let mut delete = ReviewBuilder::update(bad_group(), bad_group());
    delete.operation = "DELETE";
    delete.object = None;
    let response = server.review("/mutate", &delete).await;
    assert!(response.get("patch").is_none() && response["allowed"] == true);
    let response = server.review("/validate", &delete).await;
    assert_eq!(response["allowed"], true, "deletes are never blocked");
    let status = ReviewBuilder::update(bad_group(), bad_group())
        .status()
        .user(OPERATOR_SA);
    let response = server.review("/mutate", &status).await;
    assert!(
        response.get("patch").is_none(),
        "status writes are not mutated"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_health_and_readiness() {
    let server = TestServer::start().await;
    let response = server
        .client
        .get(server.url("/rules"))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200);
    let rules: Value = response.json().await.expect("json");
    let ids: Vec<&str> = rules
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    let expected: Vec<String> = crate::serve_support::catalog()
        .rules()
        .iter()
        .map(|r| r.id.to_string())
        .collect();
    assert_eq!(ids, expected);
    let pull = rules
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["id"] == "BR-TEST-PULL-001")
        .expect("rule");
    for key in [
        "title",
        "level",
        "owner",
        "kinds",
        "section",
        "message",
        "remediation",
        "docsAnchor",
        "hasFix",
    ] {
        assert!(pull.get(key).is_some(), "{key} missing from {pull}");
    }
    assert_eq!(pull["hasFix"], true);
    assert_eq!(pull["level"], "recommended");
    assert_eq!(pull["docsAnchor"], "br-test-pull-001");
    assert_eq!(server.get_text("/healthz").await, (200, "ok".to_owned()));
    assert_eq!(server.get_text("/readyz").await.0, 200);
    assert_eq!(server.get_text("/nope").await.0, 404);
    let wrong_method = server
        .client
        .get(server.url("/validate"))
        .send()
        .await
        .expect("answered");
    assert_eq!(wrong_method.status().as_u16(), 405);
    server.stop().await;
}

/// The shipped catalog on the shipped examples: the production-ready group is admitted, the
/// bad one is denied naming real rule IDs, and a cluster cache built from the example's
/// Secrets and StorageClass feeds the cross-object rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_catalog_admits_the_production_ready_example_and_denies_the_bad_one() {
    let examples = |name: &str| {
        let text = std::fs::read_to_string(format!(
            "{}/docs/examples/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("example");
        let stream = bloodraven::policy::manifest::parse_stream(Some(name), &text);
        assert!(stream.errors.is_empty(), "{:?}", stream.errors);
        stream
            .documents
            .into_iter()
            .map(|d| d.value)
            .collect::<Vec<_>>()
    };
    let good = examples("production-ready.yaml");
    let cache = bloodraven::adapters::kube::ClusterCache::new();
    for kind in ["Secret", "StorageClass"] {
        cache.replace(
            kind,
            None,
            good.iter().filter(|o| o["kind"] == kind).collect(),
        );
    }
    let server = TestServer::start_with(|o| {
        o.catalog = None;
        o.cluster = bloodraven::shells::serve::ClusterLookups::Context(std::sync::Arc::new(cache));
    })
    .await;
    let group = good
        .iter()
        .find(|o| o["kind"] == "MysqlFailoverGroup")
        .expect("group")
        .clone();
    let response = server
        .review("/validate", &ReviewBuilder::create(group))
        .await;
    assert_contract("/validate", &response);
    assert_eq!(response["allowed"], true, "{response}");

    let bad = examples("bad.yaml");
    let group = bad
        .iter()
        .find(|o| o["kind"] == "MysqlFailoverGroup")
        .expect("group")
        .clone();
    let response = server
        .review("/validate", &ReviewBuilder::create(group.clone()))
        .await;
    assert_contract("/validate", &response);
    assert_eq!(response["allowed"], false, "{response}");
    let named = rule_ids(response["status"]["message"].as_str().unwrap_or_default());
    assert!(!named.is_empty());
    let catalog = bloodraven::policy::rules::Catalog::builtin().expect("catalog");
    for id in &named {
        let rule = catalog
            .get(id)
            .unwrap_or_else(|| panic!("{id} is not a catalog rule"));
        assert_eq!(
            rule.level,
            bloodraven::policy::rules::Level::Required,
            "{id}"
        );
    }
    let mutated = server
        .review("/mutate", &ReviewBuilder::create(group.clone()))
        .await;
    assert_contract("/mutate", &mutated);
    if mutated.get("patch").is_some() {
        let mut patched = group;
        json_patch::patch(&mut patched, &decode_patch(&mutated)).expect("builtin fixes apply");
        let again = server
            .review("/mutate", &ReviewBuilder::create(patched))
            .await;
        assert!(
            again.get("patch").is_none(),
            "builtin fixes are idempotent: {again}"
        );
    }
    server.stop().await;
}
