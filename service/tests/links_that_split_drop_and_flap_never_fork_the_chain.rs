//! Scenario 23 (partitions and flapping links): every directed link of the
//! five nodes, for consensus and for p2p, runs through a relay the test can cut
//! (a transport filter). While the network generates keys:
//!
//! 1. a split with no majority side ({1, 2} | {3, 4, 5}: neither side has the
//!    four votes a decision needs) decides nothing on either side, and once
//!    healed, progress resumes;
//! 2. then, for a while, single directed links drop and come back at random
//!    (seeded), the drand "broadcast deny" pattern, one link in each step and
//!    several down at once.
//!
//! Afterwards every node holds every key's share, all five committed the same
//! app hash at every height, and a user's shares from every node lie on one
//! polynomial.
//!
//! What it found when it was written: after the flapping, all five nodes
//! relaunched their consensus engines in the same second every 16 s (the stall
//! watchdog, which makes malachite redial dropped peers, fired everywhere at
//! once), each relaunch dialled peers that were themselves restarting, and no
//! block was decided for minutes. The watchdog now waits a per-node jittered
//! time (`bft::engine::relaunch_after`).

#![allow(clippy::unwrap_used)]

mod net;

use std::time::Duration;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use torus_node::devnet::Devnet;

const NODES: u32 = 5;

async fn heights(dn: &Devnet) -> Vec<u64> {
    let mut out = Vec::new();
    for i in 1..=NODES {
        let s = net::status(dn, i, None).await.unwrap();
        out.push(s["height"].as_u64().unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_without_majority_decides_nothing_and_flapping_links_never_fork_the_chain() {
    let dir = net::test_dir();
    let keys = 400;
    let (mut dn, links) = net::relayed_devnet(dir.path(), NODES, keys, 10).await;
    let relays = &links.nodes;
    let _logs = net::LogsOnPanic(dn.opts.data_dir.clone(), NODES);
    for i in 1..=NODES {
        dn.start_node(i).unwrap();
    }
    dn.wait_for_keys(20, Duration::from_secs(180), |_| {})
        .await
        .unwrap();

    // 1. No majority side: {1, 2} | {3, 4, 5}.
    let side = |i: u32| i <= 2;
    for ((from, to, _), r) in relays {
        if side(*from) != side(*to) {
            r.cut();
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let at_cut = heights(&dn).await;
    eprintln!("split at heights {at_cut:?}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during = heights(&dn).await;
    for (i, (a, b)) in at_cut.iter().zip(&during).enumerate() {
        assert!(
            b <= &(a + 1),
            "node {} decided blocks {a} -> {b} without a majority",
            i + 1
        );
    }
    for r in relays.values() {
        r.heal();
    }
    let top = *during.iter().max().unwrap();
    for i in 1..=NODES {
        net::wait_until(&dn, i, 120, "progress after the split heals", |s| {
            s["height"].as_u64() > Some(top + 2)
        })
        .await;
    }
    net::assert_same_history(&dn, &(1..=NODES).collect::<Vec<_>>()).await;

    // 2. Single directed links drop and come back at random.
    let mut rng = ChaCha20Rng::seed_from_u64(23);
    let links: Vec<(u32, u32, bool)> = relays.keys().copied().collect();
    let created =
        |s: Option<serde_json::Value>| s.and_then(|s| s["keys_created"].as_u64()).unwrap_or(0);
    let before = created(net::status(&dn, 1, None).await);
    let t0 = std::time::Instant::now();
    for _ in 0..40 {
        let k = links[(rng.next_u32() as usize) % links.len()];
        let r = &relays[&k];
        if rng.next_u32() % 2 == 0 {
            r.cut();
        } else {
            r.heal();
        }
        tokio::time::sleep(Duration::from_millis(150 + u64::from(rng.next_u32() % 300))).await;
    }
    for r in relays.values() {
        r.heal();
    }
    let after = created(net::status(&dn, 1, None).await);
    eprintln!(
        "flapping for {:.1} s while keys went {before} -> {after}",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        before < keys,
        "the buffer was full before the links started to flap: {before} keys"
    );
    for i in 1..=NODES {
        let s = net::wait_until(&dn, i, 300, "every share of every key", |s| {
            s["keys_created"].as_u64() >= Some(keys) && s["shares"].as_u64() >= Some(keys)
        })
        .await;
        assert_eq!(s["blamed"], serde_json::json!([]), "node {i}: {s}");
    }
    net::assert_same_history(&dn, &(1..=NODES).collect::<Vec<_>>()).await;
    // A consensus connection the flapping dropped may wait for the stall relaunch
    // (`consensus.stall_restart_s`, 15 s) before blocks come again, longer than a
    // KeyAssign's 10 s: like torus.js, the user asks again (a timed-out KeyAssign
    // is retryable; a second failure still fails the test).
    let client = dn.client().unwrap();
    if let Err(e) = client.get_or_assign("devnet", "dave@example.com").await {
        assert!(format!("{e:?}").contains("timed out"), "{e:?}");
        eprintln!("KeyAssign timed out right after the flapping; asking again: {e:?}");
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    net::login(&dn, "dave@example.com").await;
    let shares = net::all_shares(&dn, "dave@example.com").await;
    assert!(
        net::consistent(&shares, 3),
        "shares disagree after the flapping"
    );
    dn.shutdown();
}
