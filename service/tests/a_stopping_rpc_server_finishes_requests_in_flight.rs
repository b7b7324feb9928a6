//! Graceful shutdown of the client RPC server's HTTP loop, on real sockets: once the stop
//! signal comes, a request already in flight still gets its answer, a new connection is
//! refused, and a request still running after the grace period is cut off.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio::sync::{mpsc, oneshot, Notify};
use torus_node::metrics::Metrics;
use torus_node::rpc::http::{serve_http, HttpLimits};

/// A router whose `/slow` reports that it started, then answers "done" once `release` is
/// notified.
fn slow_router(started: mpsc::UnboundedSender<()>, release: Arc<Notify>) -> Router {
    Router::new().route(
        "/slow",
        get(move || {
            let started = started.clone();
            let release = release.clone();
            async move {
                let _ = started.send(());
                release.notified().await;
                "done"
            }
        }),
    )
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
    started: mpsc::UnboundedReceiver<()>,
    release: Arc<Notify>,
}

async fn server(grace: Duration) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (started_tx, started) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let limits = HttpLimits {
        header_timeout: Duration::from_secs(10),
        max_connections: 16,
        shutdown_grace: grace,
    };
    let done = tokio::spawn(serve_http(
        listener,
        slow_router(started_tx, release.clone()),
        limits,
        Arc::new(Metrics::new()),
        async move {
            let _ = stop_rx.await;
        },
    ));
    Server {
        addr,
        stop: Some(stop_tx),
        done,
        started,
        release,
    }
}

/// Waits (boundedly) until connecting to `addr` is refused.
async fn refused(addr: SocketAddr) -> bool {
    for _ in 0..500 {
        match tokio::net::TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_shutdown_gets_its_answer_and_new_connections_are_refused() {
    let mut s = server(Duration::from_secs(60)).await;
    let url = format!("http://{}/slow", s.addr);
    let in_flight = tokio::spawn(async move { reqwest::get(url).await?.text().await });
    s.started.recv().await.unwrap();

    s.stop.take().unwrap().send(()).unwrap();
    assert!(
        refused(s.addr).await,
        "a new connection was accepted after the stop"
    );
    assert!(
        !s.done.is_finished(),
        "the server returned with a request in flight"
    );

    s.release.notify_one();
    assert_eq!(in_flight.await.unwrap().unwrap(), "done");
    // With nothing left in flight the server returns well before its 60 s grace.
    tokio::time::timeout(Duration::from_secs(30), s.done)
        .await
        .expect("the server did not return after its last request")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_still_running_after_the_grace_period_is_cut_off() {
    let mut s = server(Duration::from_millis(200)).await;
    let url = format!("http://{}/slow", s.addr);
    let in_flight = tokio::spawn(async move { reqwest::get(url).await?.text().await });
    s.started.recv().await.unwrap();

    s.stop.take().unwrap().send(()).unwrap();
    // Never released: the server gives up on it and returns.
    tokio::time::timeout(Duration::from_secs(30), s.done)
        .await
        .expect("the server waited past its grace period")
        .unwrap()
        .unwrap();
    assert!(
        in_flight.await.unwrap().is_err(),
        "the cut request got an answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_does_not_hold_the_shutdown() {
    let mut s = server(Duration::from_secs(60)).await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/slow", s.addr);
    let first = {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move { client.get(url).send().await?.text().await })
    };
    s.started.recv().await.unwrap();
    s.release.notify_one();
    assert_eq!(first.await.unwrap().unwrap(), "done");
    // The client keeps its connection open (keep-alive); stopping closes it at once.
    s.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), s.done)
        .await
        .expect("an idle connection held the shutdown")
        .unwrap()
        .unwrap();
    drop(client);
}
