//! The sidecar's routes: `/health` (open, liveness only), and behind [`super::auth`]:
//! `/status`, `/peer/ping`, `/peer/active-site` and `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

use super::auth::{self, AuthState};
use super::monitor::{Clock, Shared};
use crate::telemetry::sidecar::SidecarMetrics;

/// Requests served at once; a flood waits (bounded by the connection's own timeouts)
/// instead of growing memory.
const MAX_CONCURRENT: usize = 64;

#[derive(Clone)]
pub struct HttpState {
    pub shared: Arc<Shared>,
    pub registry: Arc<Registry>,
    pub metrics: Arc<SidecarMetrics>,
    pub clock: Clock,
}

/// The router with authentication and request metrics.
pub fn router(state: HttpState, auth: AuthState) -> Router {
    let metrics = Arc::clone(&state.metrics);
    Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/peer/ping", get(ping))
        .route("/peer/active-site", get(active_site))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .with_state(state)
        .layer(middleware::from_fn_with_state(auth, auth::require))
        .layer(middleware::from_fn_with_state(metrics, count))
        .layer(tower::limit::ConcurrencyLimitLayer::new(MAX_CONCURRENT))
}

/// The handler label: fixed per route, `other` for anything else, so a scan of random
/// paths cannot grow the label set.
fn handler_of(path: &str) -> &'static str {
    match path {
        "/health" => "health",
        "/status" => "status",
        "/peer/ping" => "peer_ping",
        "/peer/active-site" => "peer_active_site",
        "/metrics" => "metrics",
        _ => "other",
    }
}

async fn count(
    State(metrics): State<Arc<SidecarMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let handler = handler_of(request.uri().path());
    let response = next.run(request).await;
    metrics.observe_request(handler, response.status().as_u16());
    response
}

/// Liveness only: the process answers. Whether MySQL answers is in `/status`; restarting
/// the sidecar would not help a MySQL that does not.
async fn health() -> &'static str {
    "ok\n"
}

async fn status(State(s): State<HttpState>) -> Response {
    let mut snapshot = s.shared.snapshot();
    snapshot.now = s.clock.now();
    axum::Json(snapshot).into_response()
}

async fn ping() -> &'static str {
    "pong\n"
}

async fn active_site(State(s): State<HttpState>) -> Response {
    match s.shared.relayed(s.clock.now()) {
        Some(body) => axum::Json(body).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn metrics_text(State(s): State<HttpState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::exposition::prometheus_text(&s.registry),
    )
        .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}
