//! A fake Kubernetes API server for the list-then-watch protocol, served over real TLS, so
//! the real kube client (with its ring-backed rustls) is what talks to it.
//!
//! It knows a fixed set of resources by plural. For each it serves
//! - `GET .../{plural}` (all namespaces) and `GET .../namespaces/{ns}/{plural}`: a list
//!   with the current `resourceVersion`;
//! - the same with `watch=true&resourceVersion=N`: the events after `N`, then live events,
//!   as newline-delimited JSON, until [`FakeApiServer::expire_watches`] ends them.
//!
//! Test hooks: uninstall a resource (404, like a CRD that is not installed), forbid one
//! (403, like missing RBAC), delete an object without an event and expire every open watch
//! (a reconnecting client then gets 410 Gone and must relist), and the log of request paths.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bloodraven::shells::certs::GeneratedCerts;
use futures_util::stream;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// `(namespace, name)`; namespace `""` for cluster-scoped objects.
type Key = (String, String);

#[derive(Debug, Clone)]
struct WatchEvent {
    rv: u64,
    kind: &'static str,
    object: Value,
}

#[derive(Debug, Default)]
struct Resource {
    objects: BTreeMap<Key, Value>,
    /// Every event so far, for watches that resume from an older resourceVersion.
    history: Vec<WatchEvent>,
}

#[derive(Debug)]
struct ApiState {
    resources: HashMap<String, Resource>,
    uninstalled: HashSet<String>,
    forbidden: HashSet<String>,
    /// Watches from a resourceVersion at or below this one get 410 Gone.
    compacted: u64,
    rv: u64,
    requests: Vec<String>,
}

/// A change of a resource, or the end of every open watch.
#[derive(Debug, Clone)]
enum Broadcast {
    Event(String, WatchEvent),
    Expire,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<ApiState>>,
    events: broadcast::Sender<Broadcast>,
}

pub struct FakeApiServer {
    pub addr: SocketAddr,
    shared: Shared,
    task: JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeApiServer {
    /// Serves `plurals` on 127.0.0.1 with the serving certificate of `certs`.
    pub async fn start(certs: &GeneratedCerts, plurals: &[&str]) -> Self {
        let shared = Shared {
            state: Arc::new(Mutex::new(ApiState {
                resources: plurals
                    .iter()
                    .map(|p| ((*p).to_owned(), Resource::default()))
                    .collect(),
                uninstalled: HashSet::new(),
                forbidden: HashSet::new(),
                compacted: 0,
                rv: 1,
                requests: Vec::new(),
            })),
            events: broadcast::channel(1024).0,
        };
        let tls = tls_acceptor(certs);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (tls, router) = (tls.clone(), router.clone());
                tokio::spawn(async move {
                    if let Ok(stream) = tls.accept(tcp).await {
                        let _ = http1::Builder::new()
                            .serve_connection(
                                TokioIo::new(stream),
                                TowerToHyperService::new(router),
                            )
                            .await;
                    }
                });
            }
        });
        Self { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// A kube client that trusts only `ca_pem`.
    pub fn client(&self, certs: &GeneratedCerts) -> kube::Client {
        let ca = std::fs::read(&certs.ca_cert).expect("ca.crt");
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(&ca)
            .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
            .expect("CA PEM");
        let mut config = kube::Config::new(self.url().parse().expect("url"));
        config.root_cert = Some(vec![der]);
        "default".clone_into(&mut config.default_namespace);
        kube::Client::try_from(config).expect("kube client")
    }

    /// Creates or replaces an object (an ADDED or MODIFIED event).
    pub fn put(&self, plural: &str, object: Value) {
        let key = key_of(&object);
        let mut state = self.lock();
        state.rv += 1;
        let rv = state.rv;
        let mut object = object;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let resource = state.resources.get_mut(plural).expect("known resource");
        let kind = if resource.objects.insert(key, object.clone()).is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let event = WatchEvent { rv, kind, object };
        resource.history.push(event.clone());
        let _ = self
            .shared
            .events
            .send(Broadcast::Event(plural.to_owned(), event));
    }

    /// Deletes an object with a DELETED event.
    pub fn delete(&self, plural: &str, namespace: &str, name: &str) {
        let mut state = self.lock();
        state.rv += 1;
        let rv = state.rv;
        let resource = state.resources.get_mut(plural).expect("known resource");
        let Some(mut object) = resource
            .objects
            .remove(&(namespace.to_owned(), name.to_owned()))
        else {
            return;
        };
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let event = WatchEvent {
            rv,
            kind: "DELETED",
            object,
        };
        resource.history.push(event.clone());
        let _ = self
            .shared
            .events
            .send(Broadcast::Event(plural.to_owned(), event));
    }

    /// Deletes an object without telling any watch, then expires every watch and the
    /// history: the only way a client can learn of the deletion is a fresh list.
    pub fn delete_while_disconnected(&self, plural: &str, namespace: &str, name: &str) {
        let mut state = self.lock();
        state.rv += 1;
        state.compacted = state.rv;
        let resource = state.resources.get_mut(plural).expect("known resource");
        resource
            .objects
            .remove(&(namespace.to_owned(), name.to_owned()));
        for resource in state.resources.values_mut() {
            resource.history.clear();
        }
        let _ = self.shared.events.send(Broadcast::Expire);
    }

    /// The resource answers 404 (its CRD is not installed).
    pub fn uninstall(&self, plural: &str) {
        self.lock().uninstalled.insert(plural.to_owned());
    }

    /// The resource answers 403 (the client's RBAC does not allow it).
    pub fn forbid(&self, plural: &str) {
        self.lock().forbidden.insert(plural.to_owned());
    }

    /// The paths (without query) of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ApiState> {
        self.shared.state.lock().expect("fake API state")
    }
}

fn key_of(object: &Value) -> Key {
    let field = |f: &str| {
        object["metadata"][f]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    (field("namespace"), field("name"))
}

fn tls_acceptor(certs: &GeneratedCerts) -> TlsAcceptor {
    use rustls_pki_types::pem::PemObject;
    let chain = rustls_pki_types::CertificateDer::pem_file_iter(&certs.tls_cert)
        .expect("tls.crt")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificates");
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&certs.tls_key).expect("tls.key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server config");
    TlsAcceptor::from(Arc::new(config))
}

/// `(namespace filter, plural)` of `/api/v1[/namespaces/{ns}]/{plural}` or
/// `/apis/{group}/{version}[/namespaces/{ns}]/{plural}`.
fn route(path: &str) -> Option<(Option<String>, String)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (["api", "v1", rest @ ..] | ["apis", _, _, rest @ ..]) = parts.as_slice() else {
        return None;
    };
    match rest {
        [plural] => Some((None, (*plural).to_owned())),
        ["namespaces", ns, plural] => Some((Some((*ns).to_owned()), (*plural).to_owned())),
        _ => None,
    }
}

fn in_namespace(namespace: Option<&str>, object: &Value) -> bool {
    namespace.is_none_or(|ns| object["metadata"]["namespace"] == ns)
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code.as_u16()});
    (code, axum::Json(body)).into_response()
}

async fn handle(
    State(shared): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    let path = request.uri().path().to_owned();
    shared
        .state
        .lock()
        .expect("fake API state")
        .requests
        .push(path.clone());
    let Some((namespace, plural)) = route(&path) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let in_scope = |object: &Value| in_namespace(namespace.as_deref(), object);
    let mut state = shared.state.lock().expect("fake API state");
    if state.uninstalled.contains(&plural) || !state.resources.contains_key(&plural) {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    if state.forbidden.contains(&plural) {
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!("{plural} is forbidden"),
        );
    }
    let current = state.rv;
    if query.get("watch").is_none_or(|w| w != "true" && w != "1") {
        let resource = state.resources.get_mut(&plural).expect("checked above");
        let items: Vec<Value> = resource
            .objects
            .values()
            .filter(|o| in_scope(o))
            .cloned()
            .collect();
        return axum::Json(json!({"apiVersion": "v1", "kind": "List",
            "metadata": {"resourceVersion": current.to_string()}, "items": items}))
        .into_response();
    }
    let since: u64 = query
        .get("resourceVersion")
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0);
    if since < state.compacted {
        let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
            "status": "Failure", "reason": "Expired", "code": 410,
            "message": format!("too old resource version: {since} ({})", state.compacted)}});
        return line_stream(&[gone], None, plural, namespace);
    }
    let live = shared.events.subscribe();
    let resource = state.resources.get_mut(&plural).expect("checked above");
    let backlog: Vec<Value> = resource
        .history
        .iter()
        .filter(|e| e.rv > since && in_scope(&e.object))
        .map(|e| json!({"type": e.kind, "object": e.object}))
        .collect();
    drop(state);
    line_stream(&backlog, Some((live, current)), plural, namespace)
}

/// A chunked body of JSON lines: `first`, then live events of `plural` newer than the
/// snapshot, until the watches are expired.
fn line_stream(
    first: &[Value],
    live: Option<(broadcast::Receiver<Broadcast>, u64)>,
    plural: String,
    namespace: Option<String>,
) -> Response {
    let as_line = |v: &Value| Ok::<_, std::io::Error>(Bytes::from(format!("{v}\n")));
    let backlog = stream::iter(first.iter().map(as_line).collect::<Vec<_>>());
    let live = stream::unfold(live, move |live| {
        let plural = plural.clone();
        let namespace = namespace.clone();
        async move {
            let (mut rx, after) = live?;
            loop {
                match rx.recv().await {
                    Ok(Broadcast::Event(p, e))
                        if p == plural
                            && e.rv > after
                            && in_namespace(namespace.as_deref(), &e.object) =>
                    {
                        let value = json!({"type": e.kind, "object": e.object});
                        return Some((as_line(&value), Some((rx, after))));
                    }
                    Ok(Broadcast::Event(..)) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Ok(Broadcast::Expire) | Err(broadcast::error::RecvError::Closed) => {
                        return None;
                    }
                }
            }
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(futures_util::StreamExt::chain(
            backlog, live,
        )))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
