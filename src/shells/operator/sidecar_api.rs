//! The sidecars' active-site endpoint:
//! `GET /sidecar/v1/namespaces/{namespace}/groups/{group}/active-site`, on its own TLS
//! listener (`serve --sidecar-listen`, the chart's Service port `sidecar`, 8082) with the
//! webhooks' serving certificate: the bearer token never crosses the pod network in clear,
//! and a sidecar that trusts only the operator's CA (published into the group's token
//! Secret, see [`super::sidecar_token`]) cannot be answered by a man in the middle.
//!
//! Every replica answers, leader or not, from the group's stored `status.activeSite` as a
//! watch cache of `MysqlFailoverGroups` holds it (no request per answer); the answer is
//! standalone's `{"activeSite": "iad"}` (`null`: no site is active), 503 while the cache
//! has not listed yet or the group has no status yet (the sidecar counts that as no
//! contact).
//!
//! Callers present the group's sidecar token (`mysql-<group>-sidecar-token`, key `token`)
//! as `Authorization: Bearer`, compared in constant time by the sidecar's own
//! [`token_matches`]: 401 without one or with a wrong one, 404 for a group the cache does
//! not hold. The token is read with a bounded GET and kept for [`TOKEN_TTL`]; a token that
//! does not match is re-read at most every [`MISMATCH_REFRESH`] (a rotation is seen at
//! once, a stream of guesses costs the API server one read per group per interval).
//!
//! It never touches admission: it runs on the controllers' runtime and threads, not the
//! admission server's, on a listener of its own, and every request is bounded (in flight,
//! connections, deadline, Secret reads at once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{FutureExt as _, StreamExt as _};
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::AbortHandle;
use tokio_rustls::TlsAcceptor;

use crate::adapters::kube::WatchScope;
use crate::adapters::kube::secrets::read_secret_text;
use crate::api::MysqlFailoverGroup;
use crate::api::failover_group_status::MysqlFailoverGroupStatus;
use crate::render::names;
use crate::shells::serve::server::{accept_bounded, serve_tls_connection};
use crate::shells::sidecar::auth::{bearer, token_matches};
use crate::shells::sidecar::monitor::ActiveSiteBody;
use crate::telemetry::sidecar::EndpointMetrics;

/// The route, as axum matches it ([`names::sidecar_active_site_path`] renders it).
pub const ROUTE: &str = "/sidecar/v1/namespaces/{namespace}/groups/{group}/active-site";
/// A read token is trusted this long before it is read again.
pub const TOKEN_TTL: Duration = Duration::from_secs(30);
/// A token that does not match is re-read (a rotation) at most this often per group.
pub const MISMATCH_REFRESH: Duration = Duration::from_secs(5);
/// Deadline of one request, Secret read included (the sidecar's own call timeout is 2 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Requests being answered at once; more get 503 at once.
const MAX_IN_FLIGHT: usize = 128;
/// Secret reads at once, whatever the number of requests.
const MAX_READS: usize = 4;
/// Open connections; more are closed at once.
const MAX_CONNECTIONS: usize = 512;

/// What the endpoint answers, decided without I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 401: no token, or not the group's.
    Unauthorized,
    /// 404: no such group (in the watched namespaces).
    NotFound,
    /// 503: the cache has not listed yet, the group has no status yet, or its token cannot
    /// be read now.
    Unavailable(&'static str),
    /// 200 `{"activeSite": ..}`.
    Site(Option<String>),
}

/// The answer for a known, authenticated group: its stored active site, or 503 before the
/// operator has written any status (no answer yet is not "no site is active").
pub fn answer_for(status: Option<&MysqlFailoverGroupStatus>) -> Answer {
    status.map_or(
        Answer::Unavailable("the group has no status yet"),
        |status| Answer::Site(status.active_site.clone()),
    )
}

/// Whether `offered` is the group's `token` (none: nothing matches).
pub fn authorized(token: Option<&str>, offered: &[u8]) -> bool {
    token.is_some_and(|token| token_matches(token.as_bytes(), offered))
}

/// Whether a token read `age` ago must be read again before answering: it is older than
/// [`TOKEN_TTL`], or it did not match and is older than [`MISMATCH_REFRESH`].
pub fn reread_due(age: Duration, matched: bool) -> bool {
    age >= TOKEN_TTL || (!matched && age >= MISMATCH_REFRESH)
}

#[derive(Debug, Clone)]
struct CachedToken {
    token: Option<String>,
    read_at: Instant,
}

/// The endpoint's state; cheap to clone. Dropping the last clone does not stop the
/// watches: [`SidecarApi::stop`] does.
#[derive(Clone)]
pub struct SidecarApi {
    inner: Arc<Inner>,
}

struct Inner {
    client: kube::Client,
    /// One cache per watched namespace (`None`: every namespace).
    groups: Vec<(Option<String>, Store<MysqlFailoverGroup>)>,
    tokens: Mutex<HashMap<(String, String), CachedToken>>,
    in_flight: Arc<Semaphore>,
    reads: Semaphore,
    watches: Vec<AbortHandle>,
    metrics: EndpointMetrics,
}

impl SidecarApi {
    /// Starts the group watches on the current runtime.
    pub fn start(client: kube::Client, scope: &WatchScope) -> Self {
        let namespaces: Vec<Option<String>> = match scope {
            WatchScope::AllNamespaces => vec![None],
            WatchScope::Namespaces(list) => list.iter().cloned().map(Some).collect(),
        };
        let mut groups = Vec::with_capacity(namespaces.len());
        let mut watches = Vec::with_capacity(namespaces.len());
        for namespace in namespaces {
            let api: Api<MysqlFailoverGroup> = match &namespace {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            };
            let (store, writer) = reflector::store();
            let events = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .modify(|group| {
                    group.metadata.managed_fields = None;
                })
                .reflect(writer);
            let task = tokio::spawn(async move {
                events
                    .for_each(|event| async move {
                        if let Err(e) = event {
                            tracing::debug!(error = %e, "MysqlFailoverGroup watch (sidecar endpoint) failed; it retries");
                        }
                    })
                    .await;
            });
            watches.push(task.abort_handle());
            groups.push((namespace, store));
        }
        Self {
            inner: Arc::new(Inner {
                client,
                groups,
                tokens: Mutex::new(HashMap::new()),
                in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
                reads: Semaphore::new(MAX_READS),
                watches,
                metrics: EndpointMetrics::default(),
            }),
        }
    }

    /// Registers the endpoint's request metrics (on the operator's one `/metrics`).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.inner.metrics.register(registry);
    }

    /// Stops the group watches.
    pub fn stop(&self) {
        for watch in &self.inner.watches {
            watch.abort();
        }
    }

    /// The group as cached: `Err` while its namespace's cache has not listed yet,
    /// `Ok(None)` when it is not there (or its namespace is not watched).
    fn group(&self, namespace: &str, name: &str) -> Result<Option<Arc<MysqlFailoverGroup>>, ()> {
        let Some((_, store)) = self
            .inner
            .groups
            .iter()
            .find(|(ns, _)| ns.as_deref().is_none_or(|ns| ns == namespace))
        else {
            return Ok(None);
        };
        if !matches!(store.wait_until_ready().now_or_never(), Some(Ok(()))) {
            return Err(());
        }
        Ok(store.get(&ObjectRef::new(name).within(namespace)))
    }

    /// Whether `offered` is the group's token, reading the token Secret when the cached
    /// one is due ([`reread_due`]). A failed read answers from a cached token if there is
    /// one, else `Err`.
    async fn check_token(
        &self,
        namespace: &str,
        group: &str,
        offered: &[u8],
    ) -> Result<bool, &'static str> {
        let key = (namespace.to_owned(), group.to_owned());
        let cached = self.tokens().get(&key).cloned();
        let cached_verdict = cached
            .as_ref()
            .map(|c| authorized(c.token.as_deref(), offered));
        if let (Some(c), Some(matched)) = (&cached, cached_verdict)
            && !reread_due(c.read_at.elapsed(), matched)
        {
            return Ok(matched);
        }
        let read = async {
            let _permit = self.inner.reads.acquire().await.map_err(|_| ())?;
            // Another request may have read it while this one waited.
            if let Some(c) = self.tokens().get(&key)
                && cached.as_ref().is_none_or(|old| c.read_at > old.read_at)
            {
                return Ok(c.token.clone());
            }
            read_secret_text(
                &self.inner.client,
                namespace,
                &names::sidecar_token_secret(group),
                names::SIDECAR_TOKEN_KEY,
            )
            .await
            .map_err(|e| {
                tracing::debug!(%namespace, %group, error = %e, "cannot read the sidecar token");
            })
        }
        .await;
        match read {
            Ok(token) => {
                let matched = authorized(token.as_deref(), offered);
                self.tokens().insert(
                    key,
                    CachedToken {
                        token,
                        read_at: Instant::now(),
                    },
                );
                Ok(matched)
            }
            Err(()) => cached_verdict.ok_or("the sidecar token cannot be read now"),
        }
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), CachedToken>> {
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer to a request for `namespace/group` with these headers.
    pub async fn answer(&self, namespace: &str, group: &str, headers: &HeaderMap) -> Answer {
        let Some(offered) = bearer(headers) else {
            return Answer::Unauthorized;
        };
        let found = match self.group(namespace, group) {
            Err(()) => return Answer::Unavailable("the group cache has not listed yet"),
            Ok(None) => {
                self.tokens()
                    .remove(&(namespace.to_owned(), group.to_owned()));
                return Answer::NotFound;
            }
            Ok(Some(found)) => found,
        };
        match self.check_token(namespace, group, offered).await {
            Ok(true) => answer_for(found.status.as_ref()),
            Ok(false) => Answer::Unauthorized,
            Err(why) => Answer::Unavailable(why),
        }
    }
}

/// The endpoint's routes.
pub fn router(api: SidecarApi) -> Router {
    Router::new()
        .route(ROUTE, get(active_site))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such route\n") })
        .layer(middleware::from_fn_with_state(api.clone(), bound))
        .with_state(api)
}

/// At most [`MAX_IN_FLIGHT`] requests, each within [`REQUEST_TIMEOUT`]; every answer,
/// refusals included, counted and timed.
async fn bound(State(api): State<SidecarApi>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = match Arc::clone(&api.inner.in_flight).try_acquire_owned() {
        Err(_) => unavailable("too many requests in flight"),
        Ok(_permit) => tokio::time::timeout(REQUEST_TIMEOUT, next.run(request))
            .await
            .unwrap_or_else(|_| unavailable("no answer within the deadline")),
    };
    api.inner
        .metrics
        .observe(response.status().as_u16(), started.elapsed());
    response
}

fn unavailable(why: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        format!("{why}\n"),
    )
        .into_response()
}

async fn active_site(
    State(api): State<SidecarApi>,
    Path((namespace, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match api.answer(&namespace, &group, &headers).await {
        Answer::Site(site) => axum::Json(ActiveSiteBody::authoritative(site)).into_response(),
        Answer::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"bloodraven-operator\"",
            )],
            "unauthorized\n",
        )
            .into_response(),
        Answer::NotFound => (StatusCode::NOT_FOUND, "no such group\n").into_response(),
        Answer::Unavailable(why) => unavailable(why),
    }
}

/// Serves `router` over TLS on `listener` until `stop` turns true, then lets open requests
/// finish. `tls` is the admission server's acceptor: one certificate, one reload.
pub async fn serve(
    listener: TcpListener,
    tls: TlsAcceptor,
    router: Router,
    stop: watch::Receiver<bool>,
) {
    tracing::info!(addr = ?listener.local_addr().ok(), "serving the sidecars' active-site endpoint over TLS");
    accept_bounded(
        listener,
        MAX_CONNECTIONS,
        REQUEST_TIMEOUT * 2,
        "sidecar endpoint",
        stop,
        |tcp, peer, stop| {
            let (router, tls) = (router.clone(), tls.clone());
            serve_tls_connection(tcp, peer, tls, |_| router, stop)
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_the_stored_active_site_and_no_status_is_no_answer() {
        assert_eq!(
            answer_for(None),
            Answer::Unavailable("the group has no status yet")
        );
        let mut status = MysqlFailoverGroupStatus::default();
        assert_eq!(answer_for(Some(&status)), Answer::Site(None));
        status.active_site = Some("iad".to_owned());
        assert_eq!(
            answer_for(Some(&status)),
            Answer::Site(Some("iad".to_owned()))
        );
    }

    #[test]
    fn only_the_groups_token_authorizes() {
        assert!(authorized(Some("s3cret"), b"s3cret"));
        assert!(!authorized(Some("s3cret"), b"s3cre"));
        assert!(!authorized(Some("s3cret"), b"s3cretX"));
        assert!(!authorized(Some("s3cret"), b""));
        assert!(!authorized(None, b""));
        assert!(!authorized(None, b"anything"));
    }

    #[test]
    fn a_token_is_reread_when_old_or_when_it_did_not_match_for_a_while() {
        assert!(!reread_due(Duration::ZERO, true));
        assert!(!reread_due(Duration::from_secs(29), true));
        assert!(reread_due(TOKEN_TTL, true));
        assert!(!reread_due(Duration::from_secs(1), false));
        assert!(reread_due(MISMATCH_REFRESH, false));
    }

    #[test]
    fn the_route_matches_the_rendered_path() {
        let rendered = names::sidecar_active_site_path("{namespace}", "{group}");
        assert_eq!(rendered, ROUTE);
    }
}
