//! The real legacy client, `@toruslabs/torus.js` 8.0.1 on Node.js, unchanged, against
//! an in-process 5-node cluster: getPublicAddress (lookup, KeyAssign, lookup) and
//! retrieveShares (commitments, shares, decryption, Lagrange), with the `test`
//! verifier and with a development OIDC token. The key it reconstructs must equal
//! the one the Rust client reconstructs.
//!
//! Needs Node.js: the test installs the pinned client into
//! `service/tests/torusjs/node_modules` (`npm ci`, once); without Node.js it skips with a
//! notice, unless `TORUS_REQUIRE_NODE=1`.

#![allow(clippy::unwrap_used)]

mod nodejs;

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use torus_node::testkit::{Cluster, DEV_VERIFIER};

fn client_dir() -> PathBuf {
    nodejs::package_dir("torusjs")
}

async fn run_client(c: &Cluster, verifier: &str, verifier_id: &str, token: &str) -> Value {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_legacy_torus_js_client_logs_in() {
    if !nodejs::ready("torusjs", "the_real_legacy_torus_js_client_logs_in") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start(dir.path(), 5, 3, 1).await.unwrap();
    c.generate_keys(6, 21).await.unwrap();

    // The test verifier (dev mode): idtoken "blublu", verifier id from the item.
    let v = run_client(&c, "test", "judy@example.com", "blublu").await;
    assert_eq!(
        v["hits"]["sign"], 1,
        "KeyAssign went through the signer once: {v}"
    );
    let addr = v["ethAddress"].as_str().unwrap().to_string();
    eprintln!("torus.js: {v}");
    assert_eq!(v["publicAddress"]["address"].as_str().unwrap(), addr, "{v}");

    // A development OIDC token; compare with the Rust client's reconstruction.
    let email = "kim@example.com";
    let v2 = run_client(&c, DEV_VERIFIER, email, &c.mint(email)).await;
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
    let v3 = run_client(&c, DEV_VERIFIER, email, &c.mint(email)).await;
    assert_eq!(v3["ethAddress"], v2["ethAddress"]);
    assert_eq!(v3["hits"]["sign"], 0);
    c.shutdown().await;
}
