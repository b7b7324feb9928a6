//! Scenario 22: a node's database is wiped (its consensus LMDB and its
//! consensus WAL deleted; its node key and configuration kept) after the
//! network has generated its keys and every member pruned the recovery
//! material that every member held. Restarted, the node syncs the chain from its peers and agrees
//! with them at every height. It cannot rebuild shares its peers no longer hold
//! material for, so it reports the gap: `/bftStatus` counts no shares for the
//! created keys, `torus_keygen_recovering_batches` counts the batches it waits
//! for, and its log says, once nobody has answered for 30 s, that only
//! resharing restores them. A ShareRequest for such a key gets the no-share
//! error, never an empty or made-up share, and users still log in through the
//! other nodes, to the same address.

#![allow(clippy::unwrap_used)]

mod net;

use std::time::{Duration, Instant};

/// Node `dir`'s log without terminal colour codes.
fn log_of(dir: &std::path::Path) -> String {
    let raw = std::fs::read_to_string(dir.join("node.log")).unwrap();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_database_is_wiped_resyncs_and_never_answers_without_a_share() {
    let dir = net::test_dir();
    let keys = 40;
    let (mut dn, _logs) = net::full_devnet(dir.path(), 5, keys, 20).await;
    let alice = net::login(&dn, "alice@example.com").await;
    // Every member announces what it holds every 2 s and then prunes on its own
    // tick; wait until each of the five logged that the material of all 40 keys
    // is gone (node 5 pruning alone leaves its peers able to serve recovery).
    let node_dir = dn.opts.data_dir.join("node5");
    let t0 = Instant::now();
    for i in 1..=5 {
        let dir = dn.opts.data_dir.join(format!("node{i}"));
        loop {
            let log = log_of(&dir);
            if log.contains("their recovery material is pruned") && log.contains("below=40") {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "node {i} never pruned"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    dn.stop(5).unwrap();
    std::fs::remove_dir_all(node_dir.join("lmdb")).unwrap();
    std::fs::remove_dir_all(node_dir.join("bft")).unwrap();
    let log_before = log_of(&node_dir).len();
    dn.start_node(5).unwrap();
    let peer_height = net::status(&dn, 1, None).await.unwrap()["height"]
        .as_u64()
        .unwrap();
    let s = net::wait_until(&dn, 5, 180, "the wiped node to sync the chain", |s| {
        s["height"].as_u64() >= Some(peer_height) && s["keys_created"].as_u64() >= Some(keys)
    })
    .await;
    assert_eq!(
        s["shares"], 0,
        "the wiped node holds shares it cannot have: {s}"
    );
    assert_eq!(s["blamed"], serde_json::json!([]), "{s}");
    net::assert_same_history(&dn, &[1, 2, 3, 4, 5]).await;
    // It reports the two batches it waits for, and says why they may never come.
    let t0 = Instant::now();
    loop {
        let m = net::metrics(&dn, 5).await;
        let log = log_of(&node_dir);
        let warned = log[log_before..].contains("only resharing to a new committee restores");
        if net::metric_sum(&m, "torus_keygen_recovering_batches", "") == 2.0 && warned {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "node 5 does not report its missing batches (warned: {warned})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // No share from node 5, a typed error instead; the others' shares agree.
    let (temp, answers) = net::share_answers(&dn, "alice@example.com").await;
    let mut shares = Vec::new();
    for (i, a) in answers {
        match (i, a) {
            (5, Ok(v)) => panic!("the wiped node answered a ShareRequest: {v}"),
            (5, Err(e)) => assert!(
                e.contains("could not retrieve completed share"),
                "node 5's refusal is not the no-share error: {e}"
            ),
            (i, Ok(v)) => shares.push((
                i,
                torus_node::client::decrypt_share(&temp, &v["keys"][0]).unwrap(),
            )),
            (i, Err(e)) => panic!("node {i}: {e}"),
        }
    }
    assert_eq!(shares.len(), 4);
    assert!(
        net::consistent(&shares, 3),
        "the other nodes' shares disagree"
    );
    let again = net::login(&dn, "alice@example.com").await;
    assert_eq!(again.address, alice.address);
    dn.shutdown();
}
