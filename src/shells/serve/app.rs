//! The routes and their handlers, independent of how connections arrive (TLS in
//! production, `oneshot` in router tests).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use tokio::sync::Semaphore;

use super::admission::{Policy, mutate, review, validate};
use super::lint::{self, ParseErrorBody, Unparseable};
use super::metrics::{FindingSource, ServeMetrics};
use crate::engine::report::Format;
use crate::engine::rules::{Linter, ObjectContext};

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    linter: Linter,
    ctx: Arc<dyn ObjectContext>,
    policy: Policy,
    metrics: Arc<ServeMetrics>,
    permits: Arc<Semaphore>,
    ready: AtomicBool,
    request_timeout: Duration,
    max_body_bytes: usize,
}

impl AppState {
    pub fn new(
        linter: Linter,
        ctx: Arc<dyn ObjectContext>,
        policy: Policy,
        metrics: Arc<ServeMetrics>,
        max_concurrency: usize,
        request_timeout: Duration,
        max_body_bytes: usize,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                linter,
                ctx,
                policy,
                metrics,
                permits: Arc::new(Semaphore::new(max_concurrency.max(1))),
                ready: AtomicBool::new(true),
                request_timeout,
                max_body_bytes,
            }),
        }
    }

    /// `/readyz` answers 503 from now on (shutdown has begun).
    pub fn set_not_ready(&self) {
        self.inner.ready.store(false, Ordering::Relaxed);
    }

    pub fn metrics(&self) -> &Arc<ServeMetrics> {
        &self.inner.metrics
    }
}

/// Every route, with the body limit, the deadline and the request metrics.
pub fn router(state: AppState) -> Router {
    let limit = state.inner.max_body_bytes;
    Router::new()
        .route("/validate", post(validate_handler))
        .route("/mutate", post(mutate_handler))
        .route("/lint", post(lint_handler))
        .route("/rules", get(rules_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz_handler))
        .route("/metrics", get(metrics_handler))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such route\n") })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// A bounded label for a request path.
fn route_label(path: &str) -> &'static str {
    match path {
        "/validate" => "/validate",
        "/mutate" => "/mutate",
        "/lint" => "/lint",
        "/rules" => "/rules",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        _ => "other",
    }
}

/// Applies the deadline and records the outcome of every request.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = route_label(request.uri().path());
    let started = Instant::now();
    let deadline = state.inner.request_timeout;
    let response = match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "request did not complete within {} ms\n",
                deadline.as_millis()
            ),
        ),
    };
    let elapsed = started.elapsed();
    state
        .inner
        .metrics
        .observe_request(route, response.status().as_u16(), elapsed);
    tracing::debug!(
        route,
        status = response.status().as_u16(),
        micros = elapsed.as_micros(),
        "request"
    );
    response
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the response: {e}\n"),
        ),
    }
}

/// The body, or the response explaining why there is none (413 over the limit).
#[allow(
    clippy::result_large_err,
    reason = "the error is the HTTP answer, as axum handlers return it"
)]
fn body_or_reject(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Response> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            text(
                status,
                format!(
                    "request body exceeds {} bytes\n",
                    state.inner.max_body_bytes
                ),
            )
        } else {
            text(
                status,
                format!("cannot read the request body: {rejection}\n"),
            )
        }
    })
}

/// Runs rule evaluation on the blocking pool, at most `max_concurrency` at a time, so a burst
/// of admission or lint work never occupies the async workers the operator loops share.
#[allow(
    clippy::result_large_err,
    reason = "the error is the HTTP answer, as axum handlers return it"
)]
async fn evaluate<T, F>(state: &AppState, work: F) -> Result<T, Response>
where
    T: Send + 'static,
    F: FnOnce(&Inner) -> T + Send + 'static,
{
    let permit = Arc::clone(&state.inner.permits)
        .acquire_owned()
        .await
        .map_err(|_| {
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting down\n".to_owned(),
            )
        })?;
    let inner = Arc::clone(&state.inner);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work(&inner)
    })
    .await
    .map_err(|_| {
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "evaluation failed\n".to_owned(),
        )
    })
}

/// The AdmissionReview's request, or the 400/413 answer explaining why there is none.
#[allow(
    clippy::result_large_err,
    reason = "the error is the HTTP answer, as axum handlers return it"
)]
fn admission_request(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<review::AdmissionRequest, Response> {
    let body = body_or_reject(state, body)?;
    review::parse(&body).map_err(|e| text(StatusCode::BAD_REQUEST, format!("{e}\n")))
}

async fn validate_handler(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = match admission_request(&state, body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let operation = request.operation.as_str();
    let outcome = evaluate(&state, move |inner| {
        validate::validate(&request, &inner.linter, inner.ctx.as_ref(), &inner.policy)
    })
    .await;
    match outcome {
        Ok(v) => {
            let metrics = &state.inner.metrics;
            metrics.observe_findings(FindingSource::Admission, &v.findings);
            metrics.observe_decision("validate", operation, v.decision);
            json_response(StatusCode::OK, &v.response.into_review())
        }
        Err(response) => response,
    }
}

async fn mutate_handler(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = match admission_request(&state, body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let operation = request.operation.as_str();
    let outcome = evaluate(&state, move |inner| {
        mutate::mutate(&request, &inner.linter, inner.ctx.as_ref())
    })
    .await;
    match outcome {
        Ok(m) => {
            if m.dropped > 0 {
                tracing::warn!(
                    dropped = m.dropped,
                    "fix operations touching images or credentials were not sent"
                );
            }
            state
                .inner
                .metrics
                .observe_decision("mutate", operation, m.decision);
            json_response(StatusCode::OK, &m.response.into_review())
        }
        Err(response) => response,
    }
}

async fn lint_handler(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body_or_reject(&state, body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let format = match requested_format(query.as_deref(), &headers) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let outcome = evaluate(&state, move |inner| {
        let report = lint::lint_body(&inner.linter, &body)?;
        let rendered = lint::render(&report, inner.linter.catalog(), format);
        Ok::<_, Unparseable>((report, rendered))
    })
    .await;
    match outcome {
        Ok(Ok((report, rendered))) => {
            state
                .inner
                .metrics
                .observe_findings(FindingSource::Lint, &report.findings);
            let content_type = HeaderValue::from_static(format.media_type());
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, content_type)],
                rendered,
            )
                .into_response()
        }
        Ok(Err(Unparseable(errors))) => json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ParseErrorBody::of(&errors),
        ),
        Err(response) => response,
    }
}

/// `?format=` wins over Accept; JSON when neither says (CI tools parse it).
#[allow(
    clippy::result_large_err,
    reason = "the error is the HTTP answer, as axum handlers return it"
)]
fn requested_format(query: Option<&str>, headers: &HeaderMap) -> Result<Format, Response> {
    let from_query = query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "format")
        .map(|(_, v)| v);
    if let Some(name) = from_query {
        return name.parse::<Format>().map_err(|_| {
            text(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown format {:?}; use json, sarif, junit or text\n",
                    name.chars().take(32).collect::<String>()
                ),
            )
        });
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Format::from_accept(accept, Format::Json).ok_or_else(|| {
        text(
            StatusCode::NOT_ACCEPTABLE,
            "no acceptable format; /lint produces application/json, application/sarif+json, application/xml (JUnit) and text/plain\n".to_owned(),
        )
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleEntry<'a> {
    id: &'a str,
    title: &'a str,
    level: crate::engine::rules::Level,
    owner: crate::engine::rules::Owner,
    kinds: &'a [String],
    section: &'a str,
    message: &'a str,
    remediation: &'a str,
    docs_anchor: String,
    has_fix: bool,
    admission: crate::engine::rules::AdmissionAction,
    cross_object: bool,
}

async fn rules_handler(State(state): State<AppState>) -> Response {
    let rules: Vec<RuleEntry<'_>> = state
        .inner
        .linter
        .catalog()
        .rules()
        .iter()
        .map(|r| RuleEntry {
            id: &r.id,
            title: &r.title,
            level: r.level,
            owner: r.owner,
            kinds: &r.kinds,
            section: &r.section,
            message: &r.message,
            remediation: &r.remediation,
            docs_anchor: r.docs_anchor(),
            has_fix: r.fix.is_some(),
            admission: r.admission,
            cross_object: r.condition.is_cross_object(),
        })
        .collect();
    json_response(StatusCode::OK, &rules)
}

async fn readyz_handler(State(state): State<AppState>) -> Response {
    if state.inner.ready.load(Ordering::Relaxed) {
        text(StatusCode::OK, "ok\n".to_owned())
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n".to_owned(),
        )
    }
}

/// `OpenMetrics` when the scraper asks for it (Prometheus does), the classic text format
/// otherwise.
async fn metrics_handler(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let metrics = &state.inner.metrics;
    let (encoded, content_type) = if accept.contains("application/openmetrics-text") {
        (
            metrics.encode(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    } else {
        (
            metrics.encode_prometheus_text(),
            "text/plain; version=0.0.4; charset=utf-8",
        )
    };
    match encoded {
        Ok(body) => ([(header::CONTENT_TYPE, content_type)], Body::from(body)).into_response(),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}\n"),
        ),
    }
}
