//! The standalone HTTP API: `/status`, `/active-site` (what each site's `bloodraven sidecar`
//! polls), `/metrics`, `/healthz`, `POST /planned-failover`,
//! `POST /reclone`, and with a `backup` section `POST /backup` and `GET /backups`. Plain
//! HTTP, meant for loopback or a trusted network.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use serde_json::json;

use crate::control::{ControlHandle, Reply};
use crate::failover::{GroupStatus, Request};
use crate::shells::sidecar::monitor::ActiveSiteBody;

/// Shorter GTID prefixes are too easy to type by accident.
const MIN_CONFIRM_PREFIX: usize = 8;

#[derive(Clone)]
pub struct ApiState {
    pub handle: ControlHandle,
    pub registry: Arc<Registry>,
    pub backups: Option<Arc<super::backups::Backups>>,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/active-site", get(active_site))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/planned-failover", post(planned_failover))
        .route("/reclone", post(reclone))
        .route("/backup", post(backup_now))
        .route("/backups", get(list_backups))
        .with_state(state)
}

fn no_backups() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "no backup section in the config"})),
    )
        .into_response()
}

/// Takes a backup now and answers with its manifest (or why it failed).
async fn backup_now(State(api): State<ApiState>) -> Response {
    let Some(backups) = api.backups else {
        return no_backups();
    };
    match backups.take().await {
        Some(Ok(manifest)) => axum::Json(manifest).into_response(),
        Some(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": e.to_string()})),
        )
            .into_response(),
        None => (
            StatusCode::CONFLICT,
            axum::Json(json!({"error": "a backup is already running"})),
        )
            .into_response(),
    }
}

async fn list_backups(State(api): State<ApiState>) -> Response {
    let Some(backups) = api.backups else {
        return no_backups();
    };
    match backups.list().await {
        Ok(list) => axum::Json(list).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

fn not_ready() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({"error": "no poll has completed yet"})),
    )
        .into_response()
}

async fn status(State(api): State<ApiState>) -> Response {
    match api.handle.status() {
        Some(status) => axum::Json(status).into_response(),
        None => not_ready(),
    }
}

/// The operator's answer to the sidecars: `{"activeSite": "iad"}` (`null`: no site is
/// active). 503 until the first poll, so a sidecar never reads "no answer yet" as an answer.
async fn active_site(State(api): State<ApiState>) -> Response {
    match api.handle.status() {
        Some(status) => {
            axum::Json(ActiveSiteBody::authoritative(status.active_site)).into_response()
        }
        None => not_ready(),
    }
}

async fn metrics(State(api): State<ApiState>) -> Response {
    let body = crate::telemetry::failover::encode(&api.registry);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn healthz(State(api): State<ApiState>) -> Response {
    if api.handle.status().is_some() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

#[derive(Debug, Deserialize)]
struct PlannedQuery {
    target: String,
}

async fn planned_failover(
    State(api): State<ApiState>,
    Query(query): Query<PlannedQuery>,
) -> Response {
    let request = Request::PlannedFailover {
        target: query.target.clone(),
        max_lag_wait: None,
    };
    match api.handle.submit(request).await {
        Ok(Reply::Accepted { message }) => {
            // The status of the accepting poll is published before the reply.
            let start = api
                .handle
                .status()
                .and_then(|s| s.planned_failover)
                .filter(|p| p.target == query.target)
                .map(|p| p.start_time);
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({"accepted": true, "target": query.target, "message": message, "startTime": start})),
            )
                .into_response()
        }
        Ok(Reply::Rejected { reason }) => conflict(&reason),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"accepted": false, "reason": e.to_string()})),
        )
            .into_response(),
    }
}

fn conflict(reason: &str) -> Response {
    (
        StatusCode::CONFLICT,
        axum::Json(json!({"accepted": false, "reason": reason})),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct RecloneQuery {
    site: String,
    #[serde(default)]
    confirm: String,
}

/// The interlock: `confirm` must repeat the site name, or give at least 8 characters of
/// the site's recorded divergent GTID set, so a reclone (which discards data) is never one
/// mistyped request away.
pub fn reclone_confirmed(status: &GroupStatus, site: &str, confirm: &str) -> Result<(), String> {
    let Some(site_status) = status.site(site) else {
        return Err(format!("no site named {site}"));
    };
    if status.active_site.as_deref() == Some(site) {
        return Err(format!("refusing to reclone the active primary {site}"));
    }
    if confirm == site {
        return Ok(());
    }
    let divergent = site_status
        .divergent_gtid
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    if confirm.len() >= MIN_CONFIRM_PREFIX
        && !divergent.is_empty()
        && divergent.starts_with(confirm)
    {
        return Ok(());
    }
    Err(format!(
        "confirm must equal the site name ({site}) or the first {MIN_CONFIRM_PREFIX}+ characters of its divergent GTID set"
    ))
}

async fn reclone(State(api): State<ApiState>, Query(query): Query<RecloneQuery>) -> Response {
    let Some(status) = api.handle.status() else {
        return not_ready();
    };
    if let Err(reason) = reclone_confirmed(&status, &query.site, &query.confirm) {
        return conflict(&reason);
    }
    match api
        .handle
        .submit(Request::Reclone {
            site: query.site.clone(),
        })
        .await
    {
        Ok(Reply::Accepted { message }) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({"accepted": true, "site": query.site, "message": message})),
        )
            .into_response(),
        Ok(Reply::Rejected { reason }) => conflict(&reason),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"accepted": false, "reason": e.to_string()})),
        )
            .into_response(),
    }
}
