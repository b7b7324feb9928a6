//! One node is killed with SIGKILL while the network generates keys: the other
//! four finish the batches and serve logins; restarted, the node catches up
//! through consensus sync, rebuilds its shares of the batches it missed from
//! its peers' points, and its app hashes match its peers' at every height.

#![allow(clippy::unwrap_used)]

mod net;

use std::time::Duration;

use torus_node::devnet::Devnet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_recovers_shares_and_matches_its_peers() {
    let dir = net::test_dir();
    let keys = 60;
    let mut dn = Devnet::start(net::opts(dir.path(), 5, keys, 20))
        .await
        .unwrap();
    let _logs = net::LogsOnPanic(dn.opts.data_dir.clone(), 5);
    // Kill node 5 as soon as the first batch is open (keygen under way).
    net::wait_until(&dn, 1, 120, "the first batch to open", |s| {
        !s["open_batch"].is_null() || s["keys_opened"].as_u64().unwrap_or(0) > 0
    })
    .await;
    dn.kill(5).unwrap();
    // The other four fill the buffer and serve logins.
    dn.wait_for_keys(keys, Duration::from_secs(240), |_| {})
        .await
        .unwrap();
    let alice = net::login(&dn, "alice@example.com").await;
    // Node 5 comes back: same data directory, same key.
    dn.start_node(5).unwrap();
    let s = net::wait_until(&dn, 5, 240, "node 5 to recover every share", |s| {
        s["keys_created"].as_u64() >= Some(keys) && s["shares"].as_u64() >= Some(keys)
    })
    .await;
    assert_eq!(s["blamed"], serde_json::json!([]), "{s}");
    net::assert_same_history(&dn, &[1, 2, 3, 4, 5]).await;
    // Its peers keep one summed commitment matrix per key, not the dealers' matrices:
    // node 5 verified their points against the sum t+1 of them sent.
    let log = std::fs::read_to_string(dn.opts.data_dir.join("node5").join("node.log")).unwrap();
    assert!(
        log.contains("the sum t+1 members sent"),
        "node 5 did not recover from its peers' summed commitments"
    );
    // Its shares are good: all five shares of a key lie on one polynomial of degree
    // k - 1 (every 3 of them reconstruct the same key), for keys of both the batch it
    // missed and later ones.
    let shares = net::all_shares(&dn, "alice@example.com").await;
    assert_eq!(shares.len(), 5);
    assert!(
        net::consistent(&shares, 3),
        "node 5's recovered share is not on the polynomial"
    );
    let again = net::login(&dn, "alice@example.com").await;
    assert_eq!(again.address, alice.address);
    let m = net::metrics(&dn, 5).await;
    assert!(
        net::metric_sum(&m, "torus_keygen_batches_total", "") >= 1.0,
        "{m}"
    );
    dn.shutdown();
}
