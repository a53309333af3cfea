//! `webhook/`: the configurations keep the properties the admission contract and the
//! good-practice notes require: scoped to our API group, `sideEffects: None`, timeouts set,
//! the operator's own namespace excluded, validating fails closed and mutating fails open.

use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/webhook/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("manifest");
    let mut stream = bloodraven::policy::manifest::parse_stream(Some(name), &text);
    assert!(stream.errors.is_empty(), "{:?}", stream.errors);
    assert_eq!(stream.documents.len(), 1, "{name}");
    stream.documents.remove(0).value
}

fn webhooks(doc: &Value) -> &Vec<Value> {
    doc["webhooks"].as_array().expect("webhooks")
}

#[test]
fn every_webhook_is_scoped_safe_and_excludes_the_operator_namespace() {
    for (file, kind, policy) in [
        ("validating.yaml", "ValidatingWebhookConfiguration", "Fail"),
        ("mutating.yaml", "MutatingWebhookConfiguration", "Ignore"),
    ] {
        let doc = load(file);
        assert_eq!(
            doc["apiVersion"], "admissionregistration.k8s.io/v1",
            "{file}"
        );
        assert_eq!(doc["kind"], kind);
        for hook in webhooks(&doc) {
            let name = hook["name"].as_str().expect("name");
            assert_eq!(hook["failurePolicy"], policy, "{name}");
            assert_eq!(hook["sideEffects"], "None", "{name}: dry-run must work");
            assert_eq!(hook["timeoutSeconds"], 5, "{name}");
            assert_eq!(hook["matchPolicy"], "Equivalent", "{name}");
            assert_eq!(
                hook["admissionReviewVersions"],
                serde_json::json!(["v1"]),
                "{name}"
            );
            let expr = &hook["namespaceSelector"]["matchExpressions"][0];
            assert_eq!(expr["key"], "kubernetes.io/metadata.name");
            assert_eq!(expr["operator"], "NotIn");
            assert_eq!(expr["values"], serde_json::json!(["bloodraven-system"]));
            let path = hook["clientConfig"]["service"]["path"]
                .as_str()
                .expect("path");
            assert_eq!(
                path,
                if policy == "Fail" {
                    "/validate"
                } else {
                    "/mutate"
                }
            );
            for rule in hook["rules"].as_array().expect("rules") {
                assert_eq!(
                    rule["apiGroups"],
                    serde_json::json!(["shipstream.io"]),
                    "{name}: only our group"
                );
                for resource in rule["resources"].as_array().expect("resources") {
                    let resource = resource.as_str().expect("resource");
                    assert!(
                        [
                            "mysqlfailovergroups",
                            "mysqlbackups",
                            "mysqlbackupverifications"
                        ]
                        .contains(&resource.trim_end_matches("/status")),
                        "{name}: {resource}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_status_guard_covers_every_status_subresource() {
    let doc = load("validating.yaml");
    let guard = webhooks(&doc)
        .iter()
        .find(|h| {
            h["rules"][0]["resources"][0]
                .as_str()
                .is_some_and(|r| r.ends_with("/status"))
        })
        .expect("a webhook for status subresources");
    assert_eq!(
        guard["rules"][0]["resources"],
        serde_json::json!([
            "mysqlfailovergroups/status",
            "mysqlbackups/status",
            "mysqlbackupverifications/status"
        ])
    );
    assert_eq!(
        guard["rules"][0]["operations"],
        serde_json::json!(["UPDATE"])
    );
    let kustomization = std::fs::read_to_string(format!(
        "{}/webhook/kustomization.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("kustomization");
    for file in [
        "rbac.yaml",
        "service.yaml",
        "validating.yaml",
        "mutating.yaml",
    ] {
        assert!(kustomization.contains(file), "kustomization lists {file}");
    }
}

/// The RBAC lets the server's ServiceAccount read exactly the kinds its watches list, and
/// nothing else, with read verbs only.
#[test]
fn rbac_grants_read_access_to_exactly_the_watched_kinds() {
    use bloodraven::adapters::kube::LOOKUP_RESOURCES;
    let text = std::fs::read_to_string(format!("{}/webhook/rbac.yaml", env!("CARGO_MANIFEST_DIR")))
        .expect("rbac.yaml");
    let stream = bloodraven::policy::manifest::parse_stream(Some("rbac.yaml"), &text);
    assert!(stream.errors.is_empty(), "{:?}", stream.errors);
    let docs: Vec<Value> = stream.documents.into_iter().map(|d| d.value).collect();
    let mut granted: Vec<(String, String)> = Vec::new();
    // The controllers' own role is checked against the requests they send
    // (kube_real_operator); the lookups are read-only.
    for role in docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] != "bloodraven-operator")
    {
        for rule in role["rules"].as_array().expect("rules") {
            assert_eq!(rule["verbs"], serde_json::json!(["get", "list", "watch"]));
            for group in rule["apiGroups"].as_array().expect("apiGroups") {
                for resource in rule["resources"].as_array().expect("resources") {
                    granted.push((
                        group.as_str().expect("group").to_owned(),
                        resource.as_str().expect("resource").to_owned(),
                    ));
                }
            }
        }
    }
    let mut watched: Vec<(String, String)> = LOOKUP_RESOURCES
        .iter()
        .map(|r| (r.group.to_owned(), r.plural.to_owned()))
        .collect();
    granted.sort();
    watched.sort();
    assert_eq!(granted, watched);

    let account = bloodraven::shells::serve::DEFAULT_OPERATOR_SERVICE_ACCOUNT;
    let bindings: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRoleBinding")
        .collect();
    assert_eq!(bindings.len(), 3);
    for binding in bindings {
        let subject = &binding["subjects"][0];
        let name = format!(
            "system:serviceaccount:{}:{}",
            subject["namespace"].as_str().expect("namespace"),
            subject["name"].as_str().expect("name")
        );
        assert_eq!(
            name, account,
            "the webhook's reads and its status writes share one identity"
        );
    }
}
