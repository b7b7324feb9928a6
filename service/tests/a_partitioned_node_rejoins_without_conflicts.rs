//! Node 5 is cut off from every other node (both its consensus and its p2p
//! links run through relays the test can cut: a transport filter) while the
//! network generates keys; the other four keep deciding blocks and fill the
//! buffer. Healed, node 5 syncs, recovers the shares it missed, and every node
//! holds the same app hash at every height (no conflicting decisions).

#![allow(clippy::unwrap_used)]

mod net;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_node_heals_and_progress_resumes() {
    let dir = net::test_dir();
    let first = 10;
    let keys = 40;
    let (mut dn, links) = net::relayed_devnet(dir.path(), 5, keys, 10).await;
    let relays = &links.nodes;
    let _logs = net::LogsOnPanic(dn.opts.data_dir.clone(), 5);
    for i in 1..=5 {
        dn.start_node(i).unwrap();
    }
    dn.wait_for_keys(first, Duration::from_secs(180), |_| {})
        .await
        .unwrap();
    // Cut node 5 off.
    for ((from, to, _), r) in relays {
        if *from == 5 || *to == 5 {
            r.cut();
        }
    }
    let cut_height = net::status(&dn, 5, None).await.unwrap()["height"]
        .as_u64()
        .unwrap();
    // The majority side keeps going: the rest of the buffer is generated without node 5,
    // and blocks keep being decided (the buffer may already be full at the cut when
    // key generation is fast: then only the heights show progress).
    let s = net::wait_until(
        &dn,
        1,
        240,
        "the four connected nodes to fill the buffer and decide blocks",
        |s| s["keys_created"].as_u64() >= Some(keys) && s["height"].as_u64() > Some(cut_height + 3),
    )
    .await;
    let majority_height = s["height"].as_u64().unwrap();
    // Node 5 decided nothing on its own while cut off.
    let s5 = net::status(&dn, 5, None).await.unwrap();
    assert!(s5["height"].as_u64().unwrap() <= cut_height + 1, "{s5}");
    assert!(majority_height > cut_height + 3);
    net::assert_same_history(&dn, &[1, 2, 3, 4]).await;
    // Heal: node 5 catches up and recovers its shares of the batches it missed.
    for r in relays.values() {
        r.heal();
    }
    net::wait_until(&dn, 5, 240, "node 5 to sync and recover its shares", |s| {
        s["height"].as_u64() >= Some(majority_height) && s["shares"].as_u64() >= Some(keys)
    })
    .await;
    net::assert_same_history(&dn, &[1, 2, 3, 4, 5]).await;
    net::login(&dn, "carol@example.com").await;
    let shares = net::all_shares(&dn, "carol@example.com").await;
    assert!(
        net::consistent(&shares, 3),
        "node 5's shares are not on the polynomial"
    );
    dn.shutdown();
}
