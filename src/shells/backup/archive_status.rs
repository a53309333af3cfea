//! `binlog archive --status-listen`: the archiver's own view of its archive over HTTP,
//! `GET /summary` answering the [`ArchiveSummary`] JSON that [`archive_summary`] computed
//! after the last pass (503 before the first pass completed, 404 on any other path).
//!
//! It is how the operator fills `status.pitr` when the archive is on a backup volume: the
//! archiver Deployment mounts the volume, the operator does not, and an archiver runs for
//! ever, so no termination message can carry its summary.
//!
//! Plain HTTP on purpose: the answer is not secret (log counts, byte counts, event times)
//! and carries no credential, and the caller needs no identity to read it; the worst a
//! forger on the pod network can do is make `status.pitr` read wrong, which anyone who can
//! create pods in the namespace can do anyway. The handler never reads the store: it
//! answers the value kept in memory, so a flood of requests costs the repository nothing.
//! Every request is bounded all the same (connections, in flight, deadline, head size).
//!
//! [`archive_summary`]: super::binlog::archive_summary

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::binlog::ArchiveSummary;
use super::error::BackupError;
use crate::shells::serve::server::{accept_bounded, serve_plain_connection};

/// The one route.
pub const SUMMARY_PATH: &str = "/summary";
/// Deadline of one request (the operator's own call timeout is 2 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Requests answered at once; more get 503 at once. One caller (the operator's leader)
/// asks every few seconds: a handful is plenty.
const MAX_IN_FLIGHT: usize = 8;
/// Open connections; more are closed at once.
const MAX_CONNECTIONS: usize = 16;
/// The largest request head read; a `GET /summary` is a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;

/// The summary of the last completed pass, shared by the archive loop (which writes it)
/// and the endpoint (which reads it). Cheap to clone.
#[derive(Clone, Default)]
pub struct LastSummary {
    inner: Arc<RwLock<Option<ArchiveSummary>>>,
}

impl LastSummary {
    pub fn set(&self, summary: ArchiveSummary) {
        *self.inner.write().unwrap_or_else(PoisonError::into_inner) = Some(summary);
    }

    pub fn get(&self) -> Option<ArchiveSummary> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[derive(Clone)]
struct Endpoint {
    last: LastSummary,
    in_flight: Arc<Semaphore>,
}

/// The endpoint's routes: `GET /summary`, 404 elsewhere.
pub fn router(last: LastSummary) -> Router {
    let endpoint = Endpoint {
        last,
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
    };
    Router::new()
        .route(SUMMARY_PATH, get(summary))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such route\n") })
        .layer(middleware::from_fn_with_state(endpoint.clone(), bound))
        .with_state(endpoint)
}

/// At most [`MAX_IN_FLIGHT`] requests, each within [`REQUEST_TIMEOUT`], none with a body.
async fn bound(State(endpoint): State<Endpoint>, request: Request, next: Next) -> Response {
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|n| n != "0")
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    if has_body {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "no request body is read here\n",
        )
            .into_response();
    }
    let Ok(_permit) = Arc::clone(&endpoint.in_flight).try_acquire_owned() else {
        return unavailable("too many requests in flight");
    };
    tokio::time::timeout(REQUEST_TIMEOUT, next.run(request))
        .await
        .unwrap_or_else(|_| unavailable("no answer within the deadline"))
}

fn unavailable(why: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        format!("{why}\n"),
    )
        .into_response()
}

async fn summary(State(endpoint): State<Endpoint>) -> Response {
    match endpoint.last.get() {
        Some(summary) => axum::Json(summary).into_response(),
        None => unavailable("no archive pass has completed yet"),
    }
}

/// Binds `--status-listen` before the first pass, so a taken port or a bad address stops
/// the archiver at startup, naming the flag, instead of failing unseen later.
pub async fn bind(listen: SocketAddr) -> Result<(TcpListener, String), BackupError> {
    crate::shells::bind_listener(listen, |address, message| {
        BackupError::Input(format!(
            "--status-listen {address}: cannot listen: {message}"
        ))
    })
    .await
}

/// Serves [`router`] on `listener` until `stop` turns true.
pub async fn serve(listener: TcpListener, last: LastSummary, stop: watch::Receiver<bool>) {
    let router = router(last);
    accept_bounded(
        listener,
        MAX_CONNECTIONS,
        REQUEST_TIMEOUT * 2,
        "archive status",
        stop,
        |tcp, peer, stop| serve_plain_connection(tcp, peer, router.clone(), MAX_HEAD, stop),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt as _;

    async fn get(router: &Router, path: &str) -> (StatusCode, Vec<u8>) {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, body.to_vec())
    }

    #[tokio::test]
    async fn the_summary_is_503_until_a_pass_completed_then_the_last_one() {
        let last = LastSummary::default();
        let router = router(last.clone());
        assert_eq!(
            get(&router, SUMMARY_PATH).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let summary = ArchiveSummary {
            count: 3,
            bytes: 1234,
            oldest_event: Some(100),
            newest_event: Some(200),
        };
        last.set(summary.clone());
        let (status, body) = get(&router, SUMMARY_PATH).await;
        assert_eq!(status, StatusCode::OK);
        let read: ArchiveSummary = serde_json::from_slice(&body).unwrap();
        assert_eq!(read, summary);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["oldestEvent"], 100, "{json}");
    }

    #[tokio::test]
    async fn other_paths_are_404_and_bodies_are_refused() {
        let last = LastSummary::default();
        last.set(ArchiveSummary::default());
        let router = router(last);
        for path in ["/", "/summary/x", "/metrics"] {
            assert_eq!(get(&router, path).await.0, StatusCode::NOT_FOUND, "{path}");
        }
        let response = router
            .oneshot(
                Request::get(SUMMARY_PATH)
                    .header(header::CONTENT_LENGTH, "5")
                    .body(Body::from("hello"))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
