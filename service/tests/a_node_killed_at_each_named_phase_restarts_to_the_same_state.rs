//! Crash consistency at named phases (issue #14, scenario 20): while five nodes
//! generate keys, one node at a time is restarted with a failpoint armed
//! (`TORUS_FAILPOINT=NAME:N`, see `service/src/failpoint.rs`) and kills itself
//! with SIGKILL the N-th time it reaches that step: inside the LMDB write
//! transaction of a decided block or of a batch's shares, right after either
//! commits, after a proposal or a dealing seed is stored, in the middle of a
//! batch's fan-out, right after a transaction enters the mempool. N is drawn from
//! a seeded generator (`TORUS_FAILPOINT_SEED=S` replays another schedule; the
//! seed is printed). Each point is hit four times, on nodes drawn each time. After each death the
//! node restarts on the same data and must catch up; at the end every node holds
//! a share of every key, nobody is blamed, all five committed the same app hash
//! at every height, and every node's share of a user's key lies on one
//! polynomial with the others'. Random kills (the sibling test
//! `nodes_killed_at_random_moments_lose_nothing.rs`) reach these steps only by
//! chance; here each one is reached on purpose.

#![allow(clippy::unwrap_used)]

mod net;

use std::os::unix::process::ExitStatusExt;
use std::time::Instant;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use torus_node::devnet::Devnet;
use torus_node::failpoint;

const NODES: u32 = 5;
/// Each point is armed this many times (on a node drawn each time).
const ROUNDS: usize = 4;
/// The first points of [`POINTS`], those on the key generation path.
const KEYGEN_POINTS: usize = 4;

/// Each point with the largest hit count drawn for it (the step happens that
/// often within a few seconds of a restart). The key generation steps come
/// first ([`KEYGEN_POINTS`] of them); the consensus steps happen at every
/// height whether keys are generated or not.
const POINTS: &[(&str, u32)] = &[
    ("seed.persisted", 3),
    ("p2p.send", 40),
    ("shares.in_commit", 3),
    ("shares.stored", 3),
    ("tx.submitted", 4),
    ("proposal.persisted", 8),
    ("block.in_commit", 8),
    ("block.committed", 8),
];

/// Points reached only during a committee change, armed by
/// `a_committee_change_reshares_every_key.rs` instead.
const RESHARING_POINTS: &[&str] = &["reshare.send"];

#[test]
fn the_schedule_names_every_failpoint_of_the_node() {
    let mut named: Vec<&str> = POINTS.iter().map(|p| p.0).collect();
    named.extend_from_slice(RESHARING_POINTS);
    let mut all = failpoint::NAMES.to_vec();
    named.sort_unstable();
    all.sort_unstable();
    assert_eq!(named, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_at_each_named_phase_restarts_to_the_same_state_and_loses_nothing() {
    let seed: u64 = std::env::var("TORUS_FAILPOINT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_207);
    eprintln!("failpoint schedule seed {seed} (TORUS_FAILPOINT_SEED)");
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let dir = net::test_dir();
    let keys = 2000;
    let mut dn = Devnet::start(net::opts(dir.path(), NODES, keys, 10))
        .await
        .unwrap();
    let _logs = net::LogsOnPanic(dn.opts.data_dir.clone(), NODES);
    net::wait_first_batch(&dn).await;
    let t0 = Instant::now();
    let mut done = Vec::new();
    let mut last = 0;
    // The key generation points' rounds first, while the buffer fills; then the
    // consensus points', which happen at every height.
    let (keygen_points, consensus_points) = POINTS.split_at(KEYGEN_POINTS);
    for group in [keygen_points, consensus_points]
        .into_iter()
        .flat_map(|g| std::iter::repeat_n(g, ROUNDS))
    {
        for &(name, most) in group {
            // Never the same node twice in a row: the others keep a quorum.
            let mut victim = 1 + rng.next_u32() % NODES;
            if victim == last {
                victim = victim % NODES + 1;
            }
            last = victim;
            let at = 1 + rng.next_u32() % most;
            let spec = format!("{name}:{at}");
            dn.kill(victim).unwrap();
            let armed = Instant::now();
            let (status, log) =
                net::start_until_exit(&mut dn, victim, &[(failpoint::ENV, &spec)], 180, false)
                    .await;
            let died_after = armed.elapsed();
            let peer = if victim == 1 { 2 } else { 1 };
            let created = net::keys_created(&dn, peer).await;
            assert_eq!(
                status.signal(),
                Some(9),
                "node {victim} armed with {spec} ended with {status}, not SIGKILL"
            );
            assert!(
                log.contains(&format!("failpoint {name} reached (hit {at})")),
                "node {victim} died, but not at {spec}"
            );
            let target = net::height(&dn, peer).await;
            dn.start_node(victim).unwrap();
            net::wait_until(&dn, victim, 180, "the restarted node to catch up", |s| {
                s["height"].as_u64() >= Some(target)
            })
            .await;
            done.push((victim, spec, died_after.as_millis(), target, created));
        }
    }
    eprintln!(
        "kills in {:?} (node, failpoint, ms from start to death, height caught up, keys created at death): {done:?}",
        t0.elapsed()
    );
    // The key generation points are only worth their names if they struck
    // while keys were being generated.
    let during = done
        .iter()
        .filter(|d| d.4 < keys && keygen_points.iter().any(|p| d.1.starts_with(p.0)))
        .count();
    assert_eq!(
        during,
        KEYGEN_POINTS * ROUNDS,
        "some key generation failpoints struck after the buffer was full: {done:?}"
    );
    net::assert_nothing_lost(&dn, NODES, keys).await;
    // No restart met a store it could not continue from.
    for i in 1..=NODES {
        let log = String::from_utf8_lossy(&std::fs::read(dn.log_path(i)).unwrap()).to_string();
        for bad in ["HALT", "corrupt record", " on top of "] {
            assert!(!log.contains(bad), "node {i} logged `{bad}`");
        }
    }
    dn.shutdown();
}
