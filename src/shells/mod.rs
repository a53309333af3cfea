//! Front doors: the command line, the kubectl plugin, the HTTPS server, the Kubernetes
//! operator and standalone mode.

pub mod backup;
pub mod certs;
pub mod cli;
pub mod kubectl;
pub mod operator;
pub mod serve;
pub mod sidecar;
pub mod standalone;

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Binds a front door's HTTP listener. Answers it with the address it is bound to (the port
/// the kernel chose, when `listen` asks for port 0), which the start-up log tells; a bind
/// failure becomes the caller's error through `failed(address, message)`.
pub(crate) async fn bind_listener<E>(
    listen: SocketAddr,
    failed: impl FnOnce(String, String) -> E,
) -> Result<(TcpListener, String), E> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| failed(listen.to_string(), e.to_string()))?;
    let bound = listener
        .local_addr()
        .map_or_else(|_| listen.to_string(), |a| a.to_string());
    Ok((listener, bound))
}
