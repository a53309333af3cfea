//! The routes and their handlers, independent of how connections arrive (TLS in
//! production, `oneshot` in router tests).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::admission::{Policy, mutate, review, validate};
use super::error::ServeError;
use super::lint::{self, LintLimits, ParseErrorBody, Refusal};
use super::metrics::{FindingSource, ServeMetrics};
use super::options::ServeOptions;
use super::stream::{self, Cancel, ChunkWriter, Counter};
use super::workers::Workers;
use crate::policy::report::{self, Format, RenderOptions, Truncation};
use crate::policy::rules::{Linter, ObjectContext, Report};

/// Admission requests that may wait for a thread; far more than the API server keeps in
/// flight, so this only bounds memory under a flood (the deadline bounds the wait).
const ADMISSION_QUEUE: usize = 1024;

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
    /// Threads for `/validate` and `/mutate` only.
    admission: Workers,
    /// Threads for `/lint` only.
    lint: Workers,
    /// Running plus waiting `/lint` requests; taken before the body is read.
    lint_slots: Arc<Semaphore>,
    ready: AtomicBool,
    request_timeout: Duration,
    lint_timeout: Duration,
    lint_limits: LintLimits,
    max_body_bytes: usize,
}

impl AppState {
    /// Starts the admission and lint threads the options ask for.
    pub fn new(
        linter: Linter,
        ctx: Arc<dyn ObjectContext>,
        policy: Policy,
        metrics: Arc<ServeMetrics>,
        opts: &ServeOptions,
    ) -> Result<Self, ServeError> {
        let lint_threads = opts.lint_concurrency.max(1);
        let lint_slots = lint_threads + opts.lint_queue;
        Ok(Self {
            inner: Arc::new(Inner {
                linter,
                ctx,
                policy,
                metrics,
                admission: Workers::start(
                    "admission",
                    opts.max_concurrency.max(1),
                    ADMISSION_QUEUE,
                )
                .map_err(ServeError::Workers)?,
                // The slots bound what waits, so the queue never refuses.
                lint: Workers::start("lint", lint_threads, lint_slots)
                    .map_err(ServeError::Workers)?,
                lint_slots: Arc::new(Semaphore::new(lint_slots)),
                ready: AtomicBool::new(true),
                request_timeout: opts.request_timeout,
                lint_timeout: opts.lint_timeout,
                lint_limits: opts.lint_limits,
                max_body_bytes: opts.max_body_bytes,
            }),
        })
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
    // Lint has its own, longer budget; admission's stays short whatever lint does.
    let deadline = if route == "/lint" {
        state.inner.lint_timeout
    } else {
        state.inner.request_timeout
    };
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

/// Runs an admission evaluation on the admission threads, which `/lint` never uses, so a
/// burst of lint work cannot make admission wait out its deadline.
#[allow(
    clippy::result_large_err,
    reason = "the error is the HTTP answer, as axum handlers return it"
)]
async fn evaluate<T, F>(state: &AppState, work: F) -> Result<T, Response>
where
    T: Send + 'static,
    F: FnOnce(&Inner) -> T + Send + 'static,
{
    let inner = Arc::clone(&state.inner);
    let done = state
        .inner
        .admission
        .submit(move || work(&inner))
        .map_err(|_| {
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "admission is saturated\n".to_owned(),
            )
        })?;
    done.await.map_err(|_| {
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

/// A `/lint` slot, counted in the metrics while held.
struct LintSlot {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<ServeMetrics>,
}

impl LintSlot {
    fn take(state: &AppState) -> Option<Self> {
        let permit = Arc::clone(&state.inner.lint_slots)
            .try_acquire_owned()
            .ok()?;
        state.inner.metrics.observe_lint_slot(true);
        Some(Self {
            _permit: permit,
            metrics: Arc::clone(&state.inner.metrics),
        })
    }
}

impl Drop for LintSlot {
    fn drop(&mut self) {
        self.metrics.observe_lint_slot(false);
    }
}

/// What the lint thread tells the handler before any byte of the report is sent.
enum Head {
    /// The report follows on the body stream.
    Ready,
    Refused(Refusal),
}

async fn lint_handler(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let format = match requested_format(query.as_deref(), &headers) {
        Ok(format) => format,
        Err(response) => return response,
    };
    // Taken before the body is read, so bodies held in memory are bounded by the slots.
    let Some(slot) = LintSlot::take(&state) else {
        // The body is read and dropped as it arrives (nothing is kept): a client still
        // sending when the answer comes would otherwise see a broken pipe instead of it.
        let drained = drain(request.into_body(), state.inner.max_body_bytes).await;
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (header::RETRY_AFTER, "1"),
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            ],
            "every /lint slot is busy (serve --lint-concurrency, --lint-queue); retry later\n",
        )
            .into_response();
        if !drained {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        return response;
    };
    let body = match body_or_reject(&state, Bytes::from_request(request, &state).await) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let (cancel, guard) = Cancel::new(Instant::now() + state.inner.lint_timeout);
    // The body stream holds the guard: dropping this handler (deadline, client gone) or,
    // later, the response body cancels the lint thread's work.
    let (writer, chunks) = stream::channel(
        cancel.clone(),
        guard,
        tokio::runtime::Handle::current(),
        state.inner.lint_limits.max_output_bytes,
    );
    let (head_tx, head_rx) = oneshot::channel();
    let inner = Arc::clone(&state.inner);
    let submitted = state.inner.lint.submit(move || {
        let _slot = slot;
        produce(&inner, body, format, &cancel, head_tx, writer);
    });
    let Ok(_running) = submitted else {
        return text(
            StatusCode::TOO_MANY_REQUESTS,
            "every /lint thread is busy; retry later\n".to_owned(),
        );
    };
    match head_rx.await {
        Ok(Head::Ready) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.media_type()),
            )],
            Body::from_stream(chunks),
        )
            .into_response(),
        Ok(Head::Refused(refusal)) => refused(&refusal),
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "evaluation failed\n".to_owned(),
        ),
    }
}

/// Reads `body` to its end without keeping it; false when it is longer than `limit` or
/// broken (the connection cannot be reused).
async fn drain(body: Body, limit: usize) -> bool {
    let mut chunks = body.into_data_stream();
    let mut read = 0usize;
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(bytes) => read += bytes.len(),
            Err(_) => return false,
        }
        if read > limit {
            return false;
        }
    }
    true
}

fn refused(refusal: &Refusal) -> Response {
    match refusal {
        Refusal::Unparseable(errors) => json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ParseErrorBody::of(errors),
        ),
        Refusal::TooManyDocuments { .. } => {
            text(StatusCode::PAYLOAD_TOO_LARGE, format!("{refusal}\n"))
        }
        Refusal::TooManySites { .. } => {
            text(StatusCode::UNPROCESSABLE_ENTITY, format!("{refusal}\n"))
        }
        Refusal::Cancelled => text(StatusCode::SERVICE_UNAVAILABLE, format!("{refusal}\n")),
    }
}

/// On a lint thread: lints, tells the handler how to answer, then streams the report.
fn produce(
    inner: &Inner,
    body: Bytes,
    format: Format,
    cancel: &Cancel,
    head: oneshot::Sender<Head>,
    mut writer: ChunkWriter,
) {
    let metrics = &inner.metrics;
    let outcome = lint::lint_body(&inner.linter, &body, &inner.lint_limits, cancel);
    drop(body);
    let linted = match outcome {
        Ok(linted) => linted,
        Err(refusal) => {
            if matches!(refusal, Refusal::Cancelled) {
                metrics.observe_lint_cancelled();
            }
            let _ = head.send(Head::Refused(refusal));
            return;
        }
    };
    metrics.observe_findings(FindingSource::Lint, &linted.report.findings);
    let mut report = linted.report;
    let catalog = inner.linter.catalog();
    let opts = fit(
        &mut report,
        catalog,
        format,
        linted.truncation,
        inner.lint_limits.max_output_bytes,
    );
    if head.send(Head::Ready).is_err() {
        metrics.observe_lint_cancelled();
        return;
    }
    if let Err(e) = report::render_to(&report, catalog, format, &opts, &mut writer) {
        metrics.observe_lint_cancelled();
        tracing::debug!(error = %e, "/lint response not completed");
        writer.abort(&e);
    }
}

/// Render options whose report fits in `max_bytes`: findings are left out (and the
/// truncation says so) until it does. Sizing renders without keeping anything, so a
/// report is never held whole in memory.
fn fit(
    report: &mut Report,
    catalog: &crate::policy::rules::Catalog,
    format: Format,
    truncation: Option<Truncation>,
    max_bytes: usize,
) -> RenderOptions {
    let mut opts = RenderOptions {
        truncation,
        ..RenderOptions::default()
    };
    // Each pass aims below the limit, so one or two passes suffice in practice.
    for _ in 0..4 {
        let mut size = Counter::default();
        let _ = report::render_to(report, catalog, format, &opts, &mut size);
        let shown = report.findings.len();
        if size.0 <= max_bytes || shown == 0 {
            break;
        }
        let keep = shown.saturating_mul(max_bytes / 10 * 9) / size.0;
        report.findings.truncate(keep);
        let before = opts.truncation.take().map_or(0, |t| t.findings_omitted);
        opts.truncation = Some(Truncation {
            findings_shown: keep,
            findings_omitted: before + (shown - keep),
            reason: format!(
                "at most {max_bytes} bytes per response (serve --lint-max-output-bytes)"
            ),
        });
    }
    opts
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
    level: crate::policy::rules::Level,
    owner: crate::policy::rules::Owner,
    kinds: &'a [String],
    section: &'a str,
    message: &'a str,
    remediation: &'a str,
    docs_anchor: String,
    has_fix: bool,
    admission: crate::policy::rules::AdmissionAction,
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
