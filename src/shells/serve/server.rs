//! Accepting TLS connections and serving the router on them until shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::admission::Policy;
use super::app::{AppState, router};
use super::error::ServeError;
use super::metrics::ServeMetrics;
use super::options::{ClusterLookups, ServeOptions};
use super::tls::{self, CertStore};
use crate::adapters::kube::{ClusterCache, ClusterWatch, WatchScope};
use crate::policy::rules::{Catalog, EmptyContext, Linter, ObjectContext};

/// A slow or silent client gets this long for its TLS handshake and each request head.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish in-flight requests at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound, not yet serving server; tests bind port 0 and read [`Server::local_addr`].
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    state: AppState,
    certs: Arc<CertStore>,
    reload_interval: Duration,
    /// The cluster watches feeding cross-object rules, when the server runs them.
    watch: Option<ClusterWatch>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

/// The router and its state for `opts`, without any listener (router tests use `oneshot`).
///
/// With [`ClusterLookups::Watch`] the cache is created here but stays empty (every lookup
/// unknown) until [`bind`] starts the watches.
pub fn build_app(opts: &ServeOptions) -> Result<(Router, AppState), ServeError> {
    build_app_with_context(opts, context_of(&opts.cluster).0)
}

/// What the server must watch to fill its cache.
type PendingWatch<'o> = (Arc<ClusterCache>, &'o kube::Client, &'o WatchScope);

/// The context rules read and, when the server runs the watches, what they fill.
fn context_of(cluster: &ClusterLookups) -> (Arc<dyn ObjectContext>, Option<PendingWatch<'_>>) {
    match cluster {
        ClusterLookups::None => (Arc::new(EmptyContext), None),
        ClusterLookups::Context(ctx) => (Arc::clone(ctx), None),
        ClusterLookups::Watch { client, scope } => {
            let cache = Arc::new(ClusterCache::new());
            (
                Arc::clone(&cache) as Arc<dyn ObjectContext>,
                Some((cache, client, scope)),
            )
        }
    }
}

fn build_app_with_context(
    opts: &ServeOptions,
    ctx: Arc<dyn ObjectContext>,
) -> Result<(Router, AppState), ServeError> {
    let catalog = match &opts.catalog {
        Some(catalog) => Arc::clone(catalog),
        None => Catalog::builtin()?,
    };
    let linter = Linter::new(catalog, opts.lint_config.clone());
    let policy = Policy {
        operator_service_account: opts.operator_service_account.clone(),
        ratchet: opts.ratchet,
    };
    let state = AppState::new(linter, ctx, policy, Arc::new(ServeMetrics::new()), opts)?;
    Ok((router(state.clone()), state))
}

/// Loads the certificate, builds the routes and binds the listener.
pub async fn bind(opts: ServeOptions) -> Result<Server, ServeError> {
    let certs = Arc::new(CertStore::load(&opts.cert_dir)?);
    let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(Arc::clone(&certs))?));
    let (ctx, pending) = context_of(&opts.cluster);
    let (router, state) = build_app_with_context(&opts, ctx)?;
    if let Some(not_after) = certs.not_after() {
        state.metrics().observe_cert_expiry(not_after);
    }
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: opts.listen,
            source,
        })?;
    let watch = pending.map(|(cache, client, scope)| {
        ClusterWatch::start(client, &cache, scope, state.metrics().cluster_cache())
    });
    Ok(Server {
        listener,
        acceptor,
        router,
        state,
        certs,
        reload_interval: opts.reload_interval,
        watch,
    })
}

/// Serves until `shutdown` completes, then drains open connections.
pub async fn run(opts: ServeOptions, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
    bind(opts).await?.serve(shutdown).await
}

impl Server {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn metrics(&self) -> Arc<ServeMetrics> {
        Arc::clone(self.state.metrics())
    }

    /// The TLS acceptor of the serving certificate, for another listener of the same
    /// process to serve with the same certificate and the same reloads.
    pub fn tls_acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Serves until `shutdown` completes. In-flight requests finish (up to a drain timeout);
    /// `/readyz` turns 503 as soon as shutdown begins.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let addr = self.listener.local_addr().ok();
        tracing::info!(?addr, "serving admission webhooks and /lint over TLS");
        let watcher = tokio::spawn(tls::watch_files(
            Arc::clone(&self.certs),
            self.metrics(),
            self.reload_interval,
            stop_rx.clone(),
        ));
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        connections.spawn(connection(tcp, peer, self.acceptor.clone(), self.router.clone(), stop_rx.clone()));
                    }
                    Err(e) => {
                        // Out of file descriptors or similar: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
            while connections.try_join_next().is_some() {}
        }
        self.state.set_not_ready();
        let _ = stop_tx.send(true);
        drop(self.listener);
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                open = connections.len(),
                "connections still open after the drain timeout"
            );
            connections.abort_all();
        }
        let _ = watcher.await;
        if let Some(watch) = self.watch {
            watch.stop().await;
        }
        tracing::info!("server stopped");
        Ok(())
    }
}

/// One connection: TLS handshake, then HTTP/1.1 with keep-alive until either side closes or
/// shutdown asks it to finish its current request.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    router: Router,
    stop: watch::Receiver<bool>,
) {
    serve_tls_connection(tcp, peer, acceptor, |_| router, stop).await;
}

/// [`connection`] with the router chosen after the handshake, from what the handshake
/// established (the sidecar marks whether a client certificate was verified).
pub(crate) async fn serve_tls_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    router_for: impl FnOnce(&rustls::ServerConnection) -> Router,
    stop: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let router = router_for(tls.get_ref().1);
    serve_http1(TokioIo::new(tls), peer, router, http1::Builder::new(), stop).await;
}

/// One plain-HTTP connection, for listeners whose answers are not secret and need no
/// caller's identity (the binary-log archiver's status endpoint): HTTP/1.1 with the same
/// head deadline as TLS connections, and request heads bounded to `max_head` bytes (at
/// least 8 KiB, hyper's floor).
pub(crate) async fn serve_plain_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    max_head: usize,
    stop: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let mut builder = http1::Builder::new();
    // hyper panics under 8 KiB: never let a caller's constant reach that.
    builder.max_buf_size(max_head.max(8192));
    serve_http1(TokioIo::new(tcp), peer, router, builder, stop).await;
}

/// HTTP/1.1 with keep-alive on an established connection until either side closes or
/// shutdown asks it to finish its current request; a request head must arrive within
/// [`HANDSHAKE_TIMEOUT`].
async fn serve_http1<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    mut builder: http1::Builder,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let conn = builder
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .keep_alive(true)
        .serve_connection(io, TowerToHyperService::new(router));
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Accepts on `listener` until `stop` turns true, each connection served by `serve` on a
/// task of its own, at most `max_connections` open at once (one more is closed at once:
/// a flood costs sockets, never tasks); then gives open connections `drain` to finish.
/// `what` names the listener in logs.
pub(crate) async fn accept_bounded<S, F>(
    listener: TcpListener,
    max_connections: usize,
    drain: Duration,
    what: &'static str,
    mut stop: watch::Receiver<bool>,
    mut serve: S,
) where
    S: FnMut(TcpStream, SocketAddr, watch::Receiver<bool>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        drop(tcp);
                        continue;
                    };
                    let connection = serve(tcp, peer, stop.clone());
                    connections.spawn(async move {
                        connection.await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!(listener = what, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}

/// Returns once `stop` turns true (or its sender is gone); holds no borrow of the value.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
