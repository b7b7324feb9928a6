//! KeyAssign authentication (spec §10.5): the signer's signature over the raw body
//! (torus-* fields stripped byte-wise), the receiving node's key, a timestamp and a nonce.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use base64::Engine as _;
use serde_json::Value;
use torus_node::config::NodeConfig;
use torus_node::crypto::NodeKey;
use torus_node::testkit::{Cluster, DEV_VERIFIER};

/// What the signer service computes for one node (`/api/sign`).
fn sign(signer: &NodeKey, node_pub: (&str, &str), raw_body: &str, ts: &str, nonce: &str) -> String {
    let mut body = raw_body.as_bytes().to_vec();
    body.push(0x1c);
    body.extend_from_slice(ts.as_bytes());
    body.push(0x1c);
    body.extend_from_slice(nonce.as_bytes());
    let msg = format!(
        r#"{{"body":"{}","pubkey_x":"{}","pubkey_y":"{}"}}"#,
        base64::engine::general_purpose::STANDARD.encode(&body),
        node_pub.0,
        node_pub.1
    );
    base64::engine::general_purpose::STANDARD.encode(signer.sign(msg.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_assign_requires_a_fresh_signer_signature() {
    let signer = NodeKey::random();
    let signer_pub = hex::encode(signer.public().compressed());
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start_with(
        dir.path(),
        4,
        3,
        0,
        Arc::new(move |cfg: &mut NodeConfig| {
            cfg.rpc.key_assign_auth_pubkey = Some(signer_pub.clone())
        }),
    )
    .await
    .unwrap();
    c.generate_keys(3, 5).await.unwrap();
    let node = c.node(1).unwrap();
    let (px, py) = node.key().public().hex_xy();
    let url = c.endpoints()[0].url.clone();
    drop(node);
    let http = reqwest::Client::new();
    let raw = format!(
        r#"{{"jsonrpc":"2.0","method":"KeyAssign","id":10,"params":{{"verifier":"{DEV_VERIFIER}","verifier_id":"heidi@example.com"}}}}"#
    );
    let ts = torus_node::node::unix_s().to_string();
    let sig = sign(&signer, (&px, &py), &raw, &ts, "n1");
    // The client appends the three fields after params.
    let with = |sig: &str, ts: &str, nonce: &str| {
        format!(
            r#"{},"torus-timestamp":"{ts}","torus-nonce":"{nonce}","torus-signature":"{sig}"}}"#,
            &raw[..raw.len() - 1]
        )
    };
    let post = |body: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let r = http.post(&url).body(body).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // No fields: 401 text/plain.
    let (st, text) = post(raw.clone()).await;
    assert_eq!(st, 401);
    assert!(
        text.starts_with("Error authenticating, err: missing"),
        "{text}"
    );
    // Wrong signature (signed for another nonce).
    let (st, _) = post(with(&sig, &ts, "n2")).await;
    assert_eq!(st, 401);
    // Expired timestamp.
    let old = (torus_node::node::unix_s() - 120).to_string();
    let sig_old = sign(&signer, (&px, &py), &raw, &old, "n3");
    let (st, text) = post(with(&sig_old, &old, "n3")).await;
    assert_eq!((st, text.contains("expired")), (401, true));
    // Valid: assigned.
    let (st, text) = post(with(&sig, &ts, "n1")).await;
    assert_eq!(st, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["result"]["keys"][0]["key_index"], "0");
    // Replayed: refused.
    let (st, text) = post(with(&sig, &ts, "n1")).await;
    assert_eq!((st, text.contains("already used")), (401, true), "{text}");
    // Lookups are not authenticated and ignore the extra fields.
    let lk = format!(
        r#"{{"jsonrpc":"2.0","method":"VerifierLookupRequest","id":10,"params":{{"verifier":"{DEV_VERIFIER}","verifier_id":"heidi@example.com"}},"torus-nonce":"x"}}"#
    );
    let (st, text) = post(lk).await;
    assert_eq!(st, 200);
    assert!(text.contains("\"key_index\":\"0\""), "{text}");
    c.shutdown().await;
}

/// Outside dev mode (without the cluster's `test` verifier, which only dev mode allows).
fn production(cfg: &mut NodeConfig) {
    cfg.dev_mode = false;
    cfg.verifiers
        .retain(|v| v.kind != torus_node::verifier::VerifierKind::Test);
}

/// A KeyAssign request body for `who`.
fn assign_body(who: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","method":"KeyAssign","id":10,"params":{{"verifier":"{DEV_VERIFIER}","verifier_id":"{who}"}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_assign_without_the_signer_is_refused_outside_dev_mode() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start_with(
        dir.path(),
        4,
        3,
        0,
        Arc::new(|cfg: &mut NodeConfig| production(cfg)),
    )
    .await
    .unwrap();
    c.generate_keys(2, 6).await.unwrap();
    let url = c.endpoints()[0].url.clone();
    let http = reqwest::Client::new();
    // Unsigned, and with made-up torus-* fields: refused, and no key leaves the buffer.
    let raw = assign_body("mallory@example.com");
    let forged = format!(
        r#"{},"torus-timestamp":"{}","torus-nonce":"n","torus-signature":"AAAA"}}"#,
        &raw[..raw.len() - 1],
        torus_node::node::unix_s()
    );
    for body in [raw, forged] {
        let r = http.post(&url).body(body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let text = r.text().await.unwrap();
        assert!(text.contains("no signer key is configured"), "{text}");
    }
    let lk = format!(
        r#"{{"jsonrpc":"2.0","method":"VerifierLookupRequest","id":10,"params":{{"verifier":"{DEV_VERIFIER}","verifier_id":"mallory@example.com"}}}}"#
    );
    let text = http
        .post(&url)
        .body(lk)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("has not yet been assigned"), "{text}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_configured_signer_key_authenticates_key_assign_outside_dev_mode() {
    let (old, current) = (NodeKey::random(), NodeKey::random());
    let keys = vec![
        hex::encode(old.public().compressed()),
        hex::encode(current.public().compressed()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start_with(
        dir.path(),
        4,
        3,
        0,
        Arc::new(move |cfg: &mut NodeConfig| {
            production(cfg);
            cfg.rpc.key_assign_signers = keys.clone();
        }),
    )
    .await
    .unwrap();
    c.generate_keys(3, 8).await.unwrap();
    let node = c.node(1).unwrap();
    let (px, py) = node.key().public().hex_xy();
    drop(node);
    let url = c.endpoints()[0].url.clone();
    let http = reqwest::Client::new();
    for (signer, who) in [
        (&current, "olivia@example.com"),
        (&old, "peggy@example.com"),
    ] {
        let raw = assign_body(who);
        let ts = torus_node::node::unix_s().to_string();
        let sig = sign(signer, (&px, &py), &raw, &ts, who);
        let body = format!(
            r#"{},"torus-timestamp":"{ts}","torus-nonce":"{who}","torus-signature":"{sig}"}}"#,
            &raw[..raw.len() - 1]
        );
        let r = http.post(&url).body(body).send().await.unwrap();
        let (st, text) = (r.status().as_u16(), r.text().await.unwrap());
        assert_eq!(st, 200, "{text}");
        assert!(text.contains("key_index"), "{text}");
    }
    // A key that is not configured is refused.
    let raw = assign_body("trent@example.com");
    let ts = torus_node::node::unix_s().to_string();
    let sig = sign(&NodeKey::random(), (&px, &py), &raw, &ts, "t");
    let body = format!(
        r#"{},"torus-timestamp":"{ts}","torus-nonce":"t","torus-signature":"{sig}"}}"#,
        &raw[..raw.len() - 1]
    );
    let r = http.post(&url).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    c.shutdown().await;
}
