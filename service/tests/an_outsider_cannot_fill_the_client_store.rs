//! An outsider floods a node's client port with CommitmentRequests (issue #10, finding 5),
//! over real HTTP against an in-process cluster (own LMDB and HTTP server per node): its
//! address gets its rate limit and no more, whatever `X-Forwarded-For` it writes, another
//! address keeps its own budget, a full client store refuses commitments clearly, and the
//! node keeps committing blocks throughout.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use k256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{json, Value};
use torus_node::config::NodeConfig;
use torus_node::testkit::{Cluster, DEV_VERIFIER};

async fn cluster(tweak: fn(&mut NodeConfig)) -> (tempfile::TempDir, Cluster, String) {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start_with(dir.path(), 4, 3, 0, Arc::new(tweak))
        .await
        .unwrap();
    c.generate_keys(2, 11).await.unwrap();
    let url = c.endpoints()[0].url.clone();
    (dir, c, url)
}

/// A CommitmentRequest body for a fresh commitment `i`.
fn commitment(i: u32) -> Value {
    let temp = k256::SecretKey::random(&mut rand_core::OsRng);
    let p = temp.public_key().to_encoded_point(false);
    json!({"jsonrpc":"2.0","id":10,"method":"CommitmentRequest","params":{
        "messageprefix":"mug00","tokencommitment": format!("{i:064x}"),
        "temppubx": hex::encode(p.x().unwrap()), "temppuby": hex::encode(p.y().unwrap()),
        "verifieridentifier": DEV_VERIFIER}})
}

/// Sends commitments `from..to` from `http`, each with a forged `X-Forwarded-For`; returns
/// the error texts (empty string for a success).
async fn flood(http: &reqwest::Client, url: &str, from: u32, to: u32) -> Vec<String> {
    let mut out = Vec::new();
    for i in from..to {
        let v: Value = http
            .post(url)
            .header("X-Forwarded-For", format!("198.51.100.{}", i % 250))
            .json(&commitment(i))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.push(match &v["error"] {
            Value::Null => {
                assert!(v["result"]["signature"].is_string(), "{v}");
                String::new()
            }
            e => e["data"].as_str().unwrap_or_default().to_owned(),
        });
    }
    out
}

/// KeyAssign for `who` on the cluster's first node (dev mode: no signer), which needs a
/// committed block.
async fn assign_commits_a_block(c: &Cluster, url: &str, who: &str) {
    let before = c.node(1).unwrap().store().head().unwrap().height;
    let v: Value = reqwest::Client::new()
        .post(url)
        .json(&json!({"jsonrpc":"2.0","id":10,"method":"KeyAssign",
                      "params":{"verifier": DEV_VERIFIER, "verifier_id": who}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["result"]["keys"][0]["key_index"].is_string(), "{v}");
    let after = c.node(1).unwrap().store().head().unwrap().height;
    assert!(after > before, "no block committed: {before} -> {after}");
}

async fn metric(url: &str, name: &str) -> f64 {
    let text = reqwest::get(url.replace("/jrpc", "/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsider_flooding_commitments_is_rate_limited_and_blocks_still_commit() {
    let (_dir, c, url) = cluster(|cfg| {
        cfg.rpc.commitment_per_s = 5;
        cfg.rpc.commitment_burst = 10;
    })
    .await;
    let outsider = reqwest::Client::new();
    let started = Instant::now();
    let answers = flood(&outsider, &url, 0, 200).await;
    let elapsed = started.elapsed().as_secs_f64();
    let ok = answers.iter().filter(|a| a.is_empty()).count();
    // The burst, plus what the rate refilled while the flood ran; forged X-Forwarded-For
    // headers bought nothing.
    let most = 10 + (5.0 * elapsed).ceil() as usize;
    assert!(
        (10..=most).contains(&ok),
        "{ok} commitments stored in {elapsed:.2} s"
    );
    for a in answers.iter().filter(|a| !a.is_empty()) {
        assert!(a.starts_with("rate limited"), "{a}");
    }
    assert!(
        metric(
            &url,
            "torus_rpc_rate_limited_total{method=\"CommitmentRequest\"}"
        )
        .await
            >= (200 - most) as f64
    );
    // Another client address has its own budget.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .unwrap();
    let theirs = flood(&other, &url, 1_000, 1_005).await;
    assert!(theirs.iter().all(String::is_empty), "{theirs:?}");
    // The node still commits blocks.
    assign_commits_a_block(&c, &url, "ivan@example.com").await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_client_store_refuses_commitments_and_blocks_still_commit() {
    let (_dir, c, url) = cluster(|cfg| {
        cfg.store.max_token_commitments = 20;
        cfg.rpc.commitment_per_s = 1_000;
        cfg.rpc.commitment_burst = 1_000;
    })
    .await;
    let answers = flood(&reqwest::Client::new(), &url, 0, 40).await;
    assert!(answers[..20].iter().all(String::is_empty), "{answers:?}");
    for a in &answers[20..] {
        assert!(a.contains("token store is full"), "{a}");
    }
    assert!(metric(&url, "torus_client_store_full_total").await >= 20.0);
    // Consensus is untouched.
    assign_commits_a_block(&c, &url, "judy@example.com").await;
    c.shutdown().await;
}
