//! A 5-node network (k = 3, t = 1) of real `torus-node` processes on loopback,
//! with the embedded BFT engine and the libp2p AVSS layer, fills its key buffer
//! in several batches and serves the legacy client flow; `torus-node login`
//! works against its `devnet.json`; every node has the same history.

#![allow(clippy::unwrap_used)]

mod net;

use std::time::Duration;

use torus_node::devnet::Devnet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_generate_keys_and_serve_the_client_flow() {
    let dir = net::test_dir();
    // Batches of the consensus minimum (16 keys), three of them.
    let mut dn = Devnet::start(net::opts(dir.path(), 5, 48, 16))
        .await
        .unwrap();
    let _logs = net::LogsOnPanic(dn.opts.data_dir.clone(), 5);
    dn.wait_for_keys(48, Duration::from_secs(180), |_| {})
        .await
        .unwrap();
    let s = net::status(&dn, 1, None).await.unwrap();
    assert!(s["batches"].as_array().unwrap().len() >= 3, "{s}");
    for b in s["batches"].as_array().unwrap() {
        assert!(b["dealers"].as_array().unwrap().len() >= 3, "{b}");
    }
    for i in 1..=5 {
        let s = net::status(&dn, i, None).await.unwrap();
        assert!(s["shares"].as_u64().unwrap() >= 48, "node {i}: {s}");
        assert_eq!(s["blamed"], serde_json::json!([]), "node {i}");
    }

    // The CLI login against devnet.json.
    let manifest = dn.write_manifest().unwrap();
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!((m["n"].as_u64(), m["k"].as_u64()), (Some(5), Some(3)));
    assert_eq!(m["nodes"].as_array().unwrap().len(), 5);
    assert_eq!(m["verifiers"][0]["name"], "devnet");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_torus-node"))
        .args(["login", "--cluster"])
        .arg(&manifest)
        .args(["--verifier", "devnet", "--user", "alice@example.com"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let address = text
        .lines()
        .find_map(|l| l.strip_prefix("address"))
        .unwrap()
        .trim()
        .to_string();
    assert!(address.starts_with("0x") && address.len() == 42, "{text}");

    // The library flow: the same user gets the same key back (KeyAssign is
    // idempotent), another user gets another one.
    let again = net::login(&dn, "alice@example.com").await;
    assert_eq!(again.address, address);
    let bob = net::login(&dn, "bob@example.com").await;
    assert_ne!(bob.address, address);
    assert_ne!(bob.index, again.index);

    // Every node committed the same history, and the AVSS traffic went through p2p.
    net::assert_same_history(&dn, &[1, 2, 3, 4, 5]).await;
    let m = net::metrics(&dn, 2).await;
    assert!(
        net::metric_sum(&m, "torus_p2p_in_total", "kind=\"send\",outcome=\"ok\"") >= 3.0,
        "{m}"
    );
    assert!(
        net::metric_sum(&m, "torus_keygen_batches_total", "") >= 3.0,
        "{m}"
    );
    dn.shutdown();
}
