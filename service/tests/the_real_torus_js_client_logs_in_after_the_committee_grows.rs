//! Issue #12 with the real client: `@toruslabs/torus.js` 8.0.1 (unchanged, on
//! Node.js) logs users in against a devnet of 5 node processes, the committee grows
//! to 7 (two fresh nodes, k 3 -> 4), and the client, given the new committee's
//! endpoints, gets the same key for a user assigned before and a key for a new user
//! (its KeyAssign may land on a fresh node, whose requests the devnet's signer
//! signs too). The client's other services are the devnet's hosts.
//!
//! Needs Node.js (see `nodejs`): without it the test skips with a notice, unless
//! `TORUS_REQUIRE_NODE=1`.

#![allow(clippy::unwrap_used)]

mod net;

use net::nodejs;

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use torus_node::config::Genesis;
use torus_node::crypto::NodePub;
use torus_node::devnet::Devnet;

/// Runs torus.js's `login.mjs` against `committee` (endpoints, keys and indexes from
/// its genesis entries) for `email` with a development token.
async fn torus_js(dn: &Devnet, committee: &Genesis, email: &str) -> Value {
    let pubs: Vec<Value> = committee
        .nodes
        .iter()
        .map(|g| {
            let pk = NodePub::from_sec1(&hex::decode(&g.pubkey).unwrap()).unwrap();
            let (x, y) = pk.hex_xy();
            json!({"X": x, "Y": y})
        })
        .collect();
    let args = json!({
        "endpoints": committee.nodes.iter().map(|g| g.rpc.clone()).collect::<Vec<_>>(),
        "torusNodePubs": pubs,
        "indexes": committee.nodes.iter().map(|g| g.index).collect::<Vec<_>>(),
        "verifier": "devnet",
        "verifierId": email,
        "idToken": dn.mint(email).unwrap(),
        "hosts": dn.manifest()["torus_hosts"],
        "enableOneKey": false,
    });
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), args.to_string()).unwrap();
    let path = f.path().to_path_buf();
    let dir = nodejs::package_dir("torusjs");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(dir.join("login.mjs"))
            .arg(&path)
            .current_dir(&dir)
            .output()
            .expect("node is required for the torus.js test")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|_| panic!("client output: {stdout}"));
    assert!(
        out.status.success(),
        "torus.js failed: {v}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_torus_js_client_logs_in_before_and_after_the_committee_grows_to_seven() {
    if !nodejs::ready(
        "torusjs",
        "the_real_torus_js_client_logs_in_before_and_after_the_committee_grows_to_seven",
    ) {
        return;
    }
    let dir = net::test_dir();
    let mut dn = Devnet::start(net::opts(dir.path(), 5, 32, 16))
        .await
        .unwrap();
    let _logs = net::LogsOnPanic(dn.opts.data_dir.clone(), 7);
    dn.wait_for_keys(32, Duration::from_secs(180), |_| {})
        .await
        .unwrap();
    let first = dn.genesis.clone();
    let before = torus_js(&dn, &first, "alice@example.com").await;

    let next = net::grow(&mut dn, 7, 4, 1);
    for i in 1..=7 {
        net::wait_until(&dn, i, 180, "the new committee serving", |s| {
            s["epoch"].as_u64() == Some(2) && s["shares"].as_u64().is_some_and(|n| n >= 32)
        })
        .await;
    }
    // The same key from the new committee, and a new user's key.
    let after = torus_js(&dn, &next, "alice@example.com").await;
    assert_eq!(after["ethAddress"], before["ethAddress"], "{after}");
    assert_eq!(after["privKey"], before["privKey"]);
    let dave = torus_js(&dn, &next, "dave@example.com").await;
    assert_ne!(dave["ethAddress"], before["ethAddress"], "{dave}");
    assert_eq!(
        dave["publicAddress"]["address"], dave["ethAddress"],
        "{dave}"
    );
    dn.shutdown();
}
