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
//! - on shutdown (the `stop` future of [`serve_http`]) the listener is closed, so new
//!   connections are refused; every open connection finishes the request it is serving and
//!   then closes (idle kept-alive ones close at once); after `rpc.shutdown_grace_ms` the
//!   connections still open are cut;
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
    /// On shutdown, how long requests in flight may take to finish.
    pub shutdown_grace: Duration,
}

/// Serves `router` on `listener` until `stop` resolves (then shuts down gracefully, see
/// the module documentation, and returns) or the future is dropped. Accept errors (for
/// example running out of file descriptors) are logged and retried after a short pause.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max));
    // Dropped with this future: every connection task then ends too (a stopped server
    // must not keep serving, nor keep the node's state alive, through kept-alive
    // connections).
    let (_close_tx, close_rx) = tokio::sync::watch::channel(());
    // Set on shutdown: connections finish their current request, then close.
    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut stop => break,
        };
        let (stream, peer) = match accepted {
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
        let mut drain = drain_rx.clone();
        tokio::spawn(async move {
            metrics.rpc_connections.inc();
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let mut draining = false;
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "RPC connection ended with an error");
                        }
                        break;
                    }
                    _ = drain.wait_for(|d| *d), if !draining => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    _ = close.changed() => break,
                }
            }
            metrics.rpc_connections.dec();
            drop(permit);
        });
    }
    // Refuse new connections, let the open ones finish their requests, then cut the rest.
    drop(listener);
    let _ = drain_tx.send(true);
    let open = max - permits.available_permits();
    tracing::info!(
        open,
        grace_ms = limits.shutdown_grace.as_millis() as u64,
        "RPC server stopping: finishing requests in flight"
    );
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    match tokio::time::timeout(limits.shutdown_grace, permits.acquire_many(all)).await {
        Ok(_) => tracing::info!("RPC server stopped"),
        Err(_) => tracing::warn!(
            open = max - permits.available_permits(),
            "RPC server stopped: connections still open after the grace period were closed"
        ),
    }
    Ok(())
}
