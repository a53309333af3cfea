//! Fuzzing the router in-process: arbitrary bytes and mutated `AdmissionReviews` never make
//! it panic, and every answer is a well-formed HTTP response (and, for 200s, a well-formed
//! `AdmissionReview`).

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bloodraven::shells::serve::build_app;
use proptest::prelude::*;
use serde_json::Value;
use tower::ServiceExt as _;

use crate::serve_support::{ReviewBuilder, bad_group, good_group, options};

fn app() -> Router {
    let dir = std::env::temp_dir();
    build_app(&options(&dir)).expect("router builds").0
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Sends one request and checks the answer's shape.
fn exchange(
    rt: &tokio::runtime::Runtime,
    app: &Router,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let request = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = rt
        .block_on(app.clone().oneshot(request))
        .expect("infallible");
    let status = response.status();
    let bytes = rt
        .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .expect("body");
    assert!(
        !status.is_server_error(),
        "{path} answered {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    (status, bytes.to_vec())
}

fn check_review_answer(path: &str, status: StatusCode, body: &[u8], uid: Option<&str>) {
    assert!(
        status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
        "{path}: unexpected {status}"
    );
    if status == StatusCode::OK {
        let review: Value = serde_json::from_slice(body).expect("200 carries JSON");
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(review["kind"], "AdmissionReview");
        let response = &review["response"];
        assert!(response["allowed"].is_boolean());
        if let Some(uid) = uid {
            assert_eq!(response["uid"], uid);
        }
        assert_eq!(
            response.get("patch").is_some(),
            response.get("patchType").is_some()
        );
        if path == "/validate" {
            assert!(response.get("patch").is_none());
        }
    } else {
        assert!(!body.is_empty(), "a 400 explains itself");
    }
}

/// Arbitrary JSON values, small and deep enough to hit every type in every slot.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        Just(Value::String("CREATE".into())),
        Just(Value::String("status".into())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer of a document.
fn pointers(value: &Value, base: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{base}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(v, &p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{base}/{i}");
                out.push(p.clone());
                pointers(v, &p, out);
            }
        }
        _ => {}
    }
}

/// Replaces (or removes, for `None`) the node at `pointer`.
fn mutate_at(root: &mut Value, pointer: &str, replacement: Option<Value>) {
    let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    let last = last.replace("~1", "/").replace("~0", "~");
    let Some(parent) = root.pointer_mut(parent) else {
        return;
    };
    match (parent, replacement) {
        (Value::Object(map), Some(v)) => {
            map.insert(last, v);
        }
        (Value::Object(map), None) => {
            map.remove(&last);
        }
        (Value::Array(items), Some(v)) => {
            if let Some(slot) = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *slot = v;
            }
        }
        (Value::Array(items), None) => {
            if let Ok(i) = last.parse::<usize>()
                && i < items.len()
            {
                items.remove(i);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_break_any_route(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let rt = runtime();
        let app = app();
        for path in ["/validate", "/mutate"] {
            let (status, answer) = exchange(&rt, &app, path, body.clone());
            check_review_answer(path, status, &answer, None);
        }
        let (status, _) = exchange(&rt, &app, "/lint", body);
        prop_assert!(status == StatusCode::OK || status == StatusCode::UNPROCESSABLE_ENTITY, "/lint {}", status);
    }

    #[test]
    fn mutated_admission_reviews_get_well_formed_answers(
        base in prop_oneof![Just(0usize), Just(1), Just(2), Just(3)],
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::option::of(json_value())), 1..6),
    ) {
        let rt = runtime();
        let app = app();
        let mut review = match base {
            0 => ReviewBuilder::create(bad_group()).build(),
            1 => ReviewBuilder::update(bad_group(), good_group()).build(),
            2 => ReviewBuilder::update(good_group(), bad_group()).status().build(),
            _ => ReviewBuilder::create(good_group()).dry_run().build(),
        };
        for (index, replacement) in edits {
            let mut all = Vec::new();
            pointers(&review, "", &mut all);
            if all.is_empty() {
                break;
            }
            let target = all[index.index(all.len())].clone();
            mutate_at(&mut review, &target, replacement);
        }
        let uid = review.pointer("/request/uid").and_then(Value::as_str).map(str::to_owned);
        let body = serde_json::to_vec(&review).expect("json");
        for path in ["/validate", "/mutate"] {
            let (status, answer) = exchange(&rt, &app, path, body.clone());
            check_review_answer(path, status, &answer, uid.as_deref());
        }
    }
}
