//! The real legacy client, `@toruslabs/torus.js` 8.0.1 on Node.js, unchanged, against
//! an in-process 5-node cluster: getPublicAddress (lookup, KeyAssign, lookup) and
//! retrieveShares (commitments, shares, decryption, Lagrange), with the `test`
//! verifier and with a development OIDC token. The key it reconstructs must equal
//! the one the Rust client reconstructs. The client's other services are the devnet's
//! hosts (`torus_node::devnet::hosts`): the metadata host, the allow check and the
//! KeyAssign signer, whose key the nodes require (KeyAssign authentication on).
//!
//! Needs Node.js: the test installs the pinned client into
//! `service/tests/torusjs/node_modules` (`npm ci`, once); without Node.js it skips with a
//! notice, unless `TORUS_REQUIRE_NODE=1`.

#![allow(clippy::unwrap_used)]

mod nodejs;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use serde_json::{json, Value};
use torus_node::config::NodeConfig;
use torus_node::crypto::NodeKey;
use torus_node::devnet::hosts::{Hosts, HostsOptions};
use torus_node::testkit::{Cluster, DEV_VERIFIER};

fn client_dir() -> PathBuf {
    nodejs::package_dir("torusjs")
}

struct Net {
    c: Cluster,
    hosts: Hosts,
}

/// Runs `login.mjs`; `one_key` turns on torus.js's `enableOneKey` (metadata nonces).
async fn run_client(
    net: &Net,
    verifier: &str,
    verifier_id: &str,
    token: &str,
    one_key: bool,
) -> Value {
    let c = &net.c;
    let eps = c.endpoints();
    let pubs: Vec<Value> = (1..=eps.len() as u32)
        .map(|i| {
            let (x, y) = c.node(i).unwrap().key().public().hex_xy();
            json!({"X": x, "Y": y})
        })
        .collect();
    let args = json!({
        "endpoints": eps.iter().map(|e| e.url.clone()).collect::<Vec<_>>(),
        "torusNodePubs": pubs,
        "indexes": eps.iter().map(|e| e.index).collect::<Vec<_>>(),
        "verifier": verifier,
        "verifierId": verifier_id,
        "idToken": token,
        "hosts": net.hosts.urls(),
        "enableOneKey": one_key,
    });
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), args.to_string()).unwrap();
    let path = f.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(client_dir().join("login.mjs"))
            .arg(&path)
            .current_dir(client_dir())
            .output()
            .expect("node is required for the legacy client test")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap_or_else(|_| {
            panic!(
                "client output: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(
        out.status.success(),
        "torus.js failed: {v}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

/// A 5-node cluster that requires the hosts' signer on KeyAssign, and the hosts.
async fn start(dir: &std::path::Path) -> Net {
    let signer = Arc::new(NodeKey::random());
    let signer_pub = hex::encode(signer.public().compressed());
    let c = Cluster::start_with(
        dir,
        5,
        3,
        1,
        Arc::new(move |cfg: &mut NodeConfig| cfg.rpc.key_assign_signers = vec![signer_pub.clone()]),
    )
    .await
    .unwrap();
    let nodes = (1..=5).map(|i| c.node(i).unwrap().key().public()).collect();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hosts = Hosts::serve(
        l,
        HostsOptions {
            signer,
            nodes,
            verifiers: vec!["test".into(), DEV_VERIFIER.into()],
            metadata_file: None,
            mint: None,
        },
    )
    .await
    .unwrap();
    Net { c, hosts }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_legacy_torus_js_client_logs_in() {
    if !nodejs::ready("torusjs", "the_real_legacy_torus_js_client_logs_in") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let net = start(dir.path()).await;
    let c = &net.c;
    c.generate_keys(6, 21).await.unwrap();

    // KeyAssign authentication is on: an unsigned KeyAssign is refused.
    let unsigned = c
        .client()
        .unwrap()
        .call_raw(
            &c.endpoints()[0],
            "KeyAssign",
            json!({"verifier": "test", "verifier_id": "eve@example.com"}),
        )
        .await
        .unwrap();
    assert_eq!(unsigned.0, 401, "{unsigned:?}");

    // The test verifier (dev mode): idtoken "blublu", verifier id from the item.
    let v = run_client(&net, "test", "judy@example.com", "blublu", false).await;
    assert_eq!(
        net.hosts.signatures(),
        1,
        "KeyAssign went through the signer once: {v}"
    );
    let addr = v["ethAddress"].as_str().unwrap().to_string();
    eprintln!("torus.js: {v}");
    assert_eq!(v["publicAddress"]["address"].as_str().unwrap(), addr, "{v}");

    // A development OIDC token; compare with the Rust client's reconstruction.
    let email = "kim@example.com";
    let v2 = run_client(&net, DEV_VERIFIER, email, &c.mint(email), false).await;
    let rust = c
        .client()
        .unwrap()
        .retrieve(DEV_VERIFIER, json!({"verifier_id": email}), &c.mint(email))
        .await
        .unwrap();
    assert_eq!(v2["ethAddress"].as_str().unwrap(), rust.address);
    let pk = v2["privKey"].as_str().unwrap();
    assert_eq!(format!("{pk:0>64}"), hex::encode(*rust.private_key));
    // A second login of the same user: same key, no second KeyAssign.
    let signed = net.hosts.signatures();
    let v3 = run_client(&net, DEV_VERIFIER, email, &c.mint(email), false).await;
    assert_eq!(v3["ethAddress"], v2["ethAddress"]);
    assert_eq!(net.hosts.signatures(), signed);

    // OneKey: the metadata host gives a new user a v2 nonce (unsigned getOrSetNonce) and
    // reveals it to the key's owner only (getNonce signed with the key, which torus.js
    // signs over json-stable-stringify): the public address and the key agree, and
    // differ from the nodes' key by the nonce.
    let one = "lee@example.com";
    let v4 = run_client(&net, DEV_VERIFIER, one, &c.mint(one), true).await;
    assert_eq!(v4["publicAddress"]["typeOfUser"], "v2", "{v4}");
    assert_eq!(v4["publicAddress"]["address"], v4["ethAddress"], "{v4}");
    let raw = c
        .client()
        .unwrap()
        .retrieve(DEV_VERIFIER, json!({"verifier_id": one}), &c.mint(one))
        .await
        .unwrap();
    assert_ne!(v4["ethAddress"].as_str().unwrap(), raw.address);
    let again = run_client(&net, DEV_VERIFIER, one, &c.mint(one), true).await;
    assert_eq!(again["ethAddress"], v4["ethAddress"]);
    net.c.shutdown().await;
}
