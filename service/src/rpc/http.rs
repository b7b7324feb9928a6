//! The RPC listener's HTTP/1.1 loop, bounded against slow and numerous clients
//! (issue #10, finding 11):
//!
//! - a connection must send a request's complete headers within
//!   `rpc.header_timeout_ms` of opening or of its previous response, else it is closed
//!   (hyper's header read timeout), so idle and slow-header connections do not pile up;
//! - at most `rpc.max_connections` connections are open; one more is closed as soon as
//!   it is accepted (counted in `torus_rpc_connections_refused_total`) rather than left
//!   waiting, so a flood cannot hold file descriptors beyond the limit;
//! - the body is read inside the request's time limit (see `jrpc_handler`), so a body
//!   trickled in byte by byte is cut off by `rpc.request_timeout_ms`;
//! - every request carries its connection's peer address (`ConnectInfo<SocketAddr>`), from
//!   which the per-client-address rate limits are keyed (see `limit`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::metrics::Metrics;

/// Limits of the HTTP loop.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Time to deliver a request's complete headers.
    pub header_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
}

/// Serves `router` on `listener` until the future is dropped. Accept errors (for example
/// running out of file descriptors) are logged and retried after a short pause.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Dropped with this future: every connection task then ends too (a stopped server
    // must not keep serving, nor keep the node's state alive, through kept-alive
    // connections).
    let (_close_tx, close_rx) = tokio::sync::watch::channel(());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "RPC accept failed; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics.rpc_connections_refused.inc();
            tracing::debug!(%peer, limit = limits.max_connections, "RPC connection refused: limit reached");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // The peer address travels with every request of the connection (the rate limits
        // are per client address).
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            },
        ));
        let metrics = metrics.clone();
        let mut close = close_rx.clone();
        tokio::spawn(async move {
            metrics.rpc_connections.inc();
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                r = conn => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "RPC connection ended with an error");
                    }
                }
                _ = close.changed() => {}
            }
            metrics.rpc_connections.dec();
            drop(permit);
        });
    }
}
