//! Issue #14's chaos run in CI: `torus-bench chaos` for two minutes with a fixed seed
//! on seven real node processes (k 4, t 1): kills, pauses, partitions and slow links
//! one node at a time while users log in. No invariant may break (same app hash at
//! every height, one address per user, shares on one polynomial, no share lost, the
//! buffer refilled), every faulted node must catch up, and logins must go through.
//! `TORUS_CHAOS_SEED` replays another schedule.

use std::path::PathBuf;
use std::time::Duration;

use torus_bench::chaos::{plan, ChaosBench};

/// The `torus-node` binary of this build (`cargo test --workspace` builds it; a run of
/// this package alone builds it here).
fn node_binary() -> PathBuf {
    let me = std::env::current_exe().expect("the test's path");
    let dir = me
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps");
    let bin = dir.join("torus-node");
    if !bin.exists() {
        let st = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "torus-node", "--bin", "torus-node"])
            .status()
            .expect("cargo build -p torus-node");
        assert!(st.success(), "cargo build -p torus-node failed");
    }
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_minute_chaos_run_breaks_no_invariant() {
    let seed: u64 = std::env::var("TORUS_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let run = Duration::from_secs(120);
    let schedule = plan(seed, 7, 1, run);
    let out = torus_bench::chaos::run(ChaosBench {
        nodes: 7,
        run,
        seed,
        node_binary: node_binary(),
        keys: 100,
        batch_keys: 25,
        netns: false,
        links: Default::default(),
        data_dir: None,
    })
    .await
    .expect("the chaos run");
    eprintln!("{}", serde_json::to_string_pretty(&out).unwrap());
    assert_eq!(out["violations"], 0, "{}", out["violation_list"]);
    assert_eq!(out["faults"].as_u64(), Some(schedule.len() as u64));
    let kinds = out["faults_by_kind"].as_object().unwrap();
    assert!(
        schedule.len() >= 8 && kinds.len() >= 3,
        "too few faults for a test: {kinds:?}"
    );
    // Every fault was recovered from (an unrecovered one is a violation above).
    assert_eq!(
        out["fault_log"].as_array().unwrap().len(),
        schedule.len(),
        "a fault has no recovery time"
    );
    let ok = out["logins_ok"].as_u64().unwrap();
    assert!(
        ok >= 20,
        "only {ok} logins went through: {}",
        out["login_errors"]
    );
    assert!(out["share_checks_during_run"].as_u64().unwrap() > 0);
    assert!(out["users_checked_at_every_node_at_end"].as_u64().unwrap() > 0);
}
