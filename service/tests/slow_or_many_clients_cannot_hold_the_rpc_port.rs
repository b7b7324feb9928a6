//! Slowloris and connection floods against a node's client port (issue #10, finding 11),
//! over real sockets against the node's own RPC server: headers that never end, more
//! connections than the limit, a body trickled in byte by byte.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use torus_node::config::NodeConfig;
use torus_node::testkit::Cluster;

/// A 5-node cluster whose nodes use `tweak` on their `[rpc]` section; node 1's address.
async fn cluster(tweak: fn(&mut NodeConfig)) -> (tempfile::TempDir, Cluster, String) {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start_with(dir.path(), 5, 3, 1, Arc::new(tweak))
        .await
        .unwrap();
    let url = c.endpoints()[0].url.clone();
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/jrpc")
        .to_owned();
    (dir, c, addr)
}

/// Reads until the peer closes the connection (or `limit` passes: then `None`).
async fn read_to_close(s: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

async fn ping(addr: &str) -> Result<Value, reqwest::Error> {
    reqwest::Client::new()
        .post(format!("http://{addr}/jrpc"))
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"Ping","params":{}}))
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .json()
        .await
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let (_dir, c, addr) = cluster(|cfg| cfg.rpc.header_timeout_ms = 300).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    // Headers without the blank line that ends them, then silence.
    s.write_all(b"POST /jrpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        .await
        .unwrap();
    let closed = read_to_close(&mut s, Duration::from_secs(10)).await;
    assert!(
        closed.is_some(),
        "the server still holds a connection whose headers never ended"
    );
    // A connection that sends nothing at all is closed too.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    assert!(read_to_close(&mut idle, Duration::from_secs(10))
        .await
        .is_some());
    // Honest clients are unaffected.
    assert!(ping(&addr).await.is_ok());
    c.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_and_honest_clients_are_served_once_slots_free() {
    let (_dir, c, addr) = cluster(|cfg| {
        cfg.rpc.max_connections = 8;
        cfg.rpc.header_timeout_ms = 60_000;
    })
    .await;
    // An attacker takes every slot with connections that stay silent.
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    // Give the server time to accept all eight before the ninth arrives.
    let node = c.node(1).unwrap();
    for _ in 0..100 {
        if node.metrics().rpc_connections.get() >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(node.metrics().rpc_connections.get(), 8);
    let mut ninth = TcpStream::connect(&addr).await.unwrap();
    let _ = ninth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let answer = read_to_close(&mut ninth, Duration::from_secs(10))
        .await
        .expect("the connection over the limit was kept open");
    assert!(answer.is_empty(), "a connection over the limit was served");
    assert!(node.metrics().rpc_connections_refused.get() >= 1);
    // The attacker's connections end; the slots come back and honest clients are served.
    drop(held);
    let mut served = false;
    for _ in 0..100 {
        if ping(&addr).await.is_ok() {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        served,
        "no slot came back after the held connections closed"
    );
    c.shutdown().await;
}

#[tokio::test]
async fn a_body_that_never_completes_is_cut_off_by_the_request_time_limit() {
    let (_dir, c, addr) = cluster(|cfg| cfg.rpc.request_timeout_ms = 500).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    // Complete headers announcing 1000 bytes of body, then one byte of it and silence.
    s.write_all(
        b"POST /jrpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("the server waited for the body past its request time limit")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("not received within the time limit"),
        "{text}"
    );
    c.shutdown().await;
}
