//! Crash consistency (issue #14): while five nodes generate keys, nodes are
//! killed with SIGKILL at moments drawn from a seeded generator, one at a time
//! (never more than t = 1 of 5 faulty: the next kill waits until the restarted
//! node has caught up), and restarted after a random pause on the same data
//! directory. The kills land wherever the process happens to be: inside LMDB
//! write transactions, in the p2p and key generation pipeline, in consensus,
//! during start-up and recovery. Afterwards every node holds a share of every
//! key, nobody is blamed, all five committed the same app hash at every height,
//! and every node's share of a user's key lies on one polynomial with the
//! others'. `TORUS_CHAOS_SEED=N` replays another schedule (the seed used is
//! printed).

#![allow(clippy::unwrap_used)]

mod net;

use std::time::Duration;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use torus_node::devnet::Devnet;

const NODES: u32 = 5;
const KILLS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_killed_at_random_moments_lose_no_share_and_agree_on_every_block() {
    let seed: u64 = std::env::var("TORUS_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_207);
    eprintln!("kill schedule seed {seed} (TORUS_CHAOS_SEED)");
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let dir = net::test_dir();
    let keys = 3000;
    let mut dn = Devnet::start(net::opts(dir.path(), NODES, keys, 10))
        .await
        .unwrap();
    let _logs = net::LogsOnPanic(dn.opts.data_dir.clone(), NODES);
    net::wait_first_batch(&dn).await;
    let mut schedule = Vec::new();
    for _ in 0..KILLS {
        let victim = 1 + rng.next_u32() % NODES;
        let before_ms = u64::from(rng.next_u32() % 1500);
        let down_ms = u64::from(rng.next_u32() % 1500);
        tokio::time::sleep(Duration::from_millis(before_ms)).await;
        let created = net::keys_created(&dn, if victim == 1 { 2 } else { 1 }).await;
        dn.kill(victim).unwrap();
        tokio::time::sleep(Duration::from_millis(down_ms)).await;
        let peer = if victim == 1 { 2 } else { 1 };
        let target = net::height(&dn, peer).await;
        dn.start_node(victim).unwrap();
        schedule.push((victim, before_ms, down_ms, created, target));
        // Back in the committee before the next kill: it answers and has
        // committed what its peer had when it came back.
        net::wait_until(&dn, victim, 180, "the restarted node to catch up", |s| {
            s["height"].as_u64() >= Some(target)
        })
        .await;
    }
    eprintln!(
        "kills (node, ms before, ms down, keys created then, height to catch up): {schedule:?}"
    );
    // The schedule is only worth its name if most kills hit key generation.
    let during = schedule.iter().filter(|k| k.3 < keys).count();
    assert!(
        during >= KILLS / 2,
        "only {during} of {KILLS} kills came before the buffer was full: {schedule:?}"
    );
    net::assert_nothing_lost(&dn, NODES, keys).await;
    dn.shutdown();
}
